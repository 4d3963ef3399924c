# The AWS side of a CircleCI Server 2.x install. Run by the role
# circleci_server.aws.infrastructure from a per-install working directory;
# data/ports.yml is copied next to these files as ports.yml.
terraform {
  required_version = ">= 1.1" # moved blocks (security_groups.tf, iam.tf)
  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 3.39 is what the offline test bed has (and the only version tested
      # here); 5.x is what users get from the registry. Every argument here
      # exists in both (see the comments where that decided the shape).
      # 4.0.0-4.8.0 made aws_s3_bucket's inline cors_rule and
      # server_side_encryption_configuration read-only (plan fails); 4.9.0
      # made them settable again (provider CHANGELOG), and 4.0-4.8 had no
      # patch releases, so excluding those nine versions excludes them all.
      # 6.0 drops arguments used here, hence < 6.0. docs/infrastructure.md.
      version = ">= 3.39, != 4.0.0, != 4.1.0, != 4.2.0, != 4.3.0, != 4.4.0, != 4.5.0, != 4.6.0, != 4.7.0, != 4.8.0, < 6.0"
    }
  }
}

provider "aws" {
  region = var.region
  # Credentials come from the environment, a profile or the instance role;
  # they are never part of this configuration or of terraform.tfvars.
}
