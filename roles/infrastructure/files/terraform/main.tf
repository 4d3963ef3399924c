data "aws_subnet" "this" {
  id = var.subnet_id
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

# Latest Canonical Ubuntu image, only when no explicit AMI is given.
data "aws_ami" "ubuntu" {
  count       = var.ami_id == "" ? 1 : 0
  most_recent = true
  owners      = ["099720109477"]
  filter {
    name   = "name"
    values = [var.ubuntu_ami_name_filter]
  }
  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
}

locals {
  ami_id           = var.ami_id != "" ? var.ami_id : data.aws_ami.ubuntu[0].id
  root_device_name = var.ami_id != "" ? var.root_device_name : data.aws_ami.ubuntu[0].root_device_name

  # What the inventory plugin finds hosts by (docs/dev/contract.md).
  tags = merge(var.tags, {
    "circleci:install" = var.prefix
  })

  bucket_name = var.bucket_name != "" ? var.bucket_name : "${var.prefix}-circleci-${replace(var.vpc_id, "vpc-", "")}"
}
