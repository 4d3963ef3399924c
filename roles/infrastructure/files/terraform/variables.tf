# Values that data/ owns (sizing: data/sizing.yml through the sizing filter;
# the Ubuntu release and IMDS setting: data/versions.yml) have no default
# here: the infrastructure role always writes them into terraform.tfvars, so
# there is one copy of each. Defaults below are for values data/ does not own.

variable "prefix" {
  description = "Install name: prefixes every resource, value of tag circleci:install."
  type        = string
  # The same rule as playbooks/tasks/check_inputs.yml and the role's
  # validate.yml: at most 36 characters, because the longest name built from
  # it is the S3 bucket "<prefix>-circleci-<17 hex digits of the VPC id>"
  # (27 more characters; S3 allows 63). IAM role names (64) allow more.
  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,34}[a-z0-9])?$", var.prefix))
    error_message = "The prefix must be 1-36 lowercase letters, digits and inner '-', starting with a letter (the S3 bucket name <prefix>-circleci-<VPC id> has at most 63)."
  }
}

variable "region" {
  description = "AWS region."
  type        = string
}

variable "vpc_id" {
  description = "Existing VPC."
  type        = string
}

variable "subnet_id" {
  description = "Existing subnet for the Services machine and the Nomad clients."
  type        = string
}

variable "key_name" {
  description = "EC2 key pair for SSH to every instance."
  type        = string
}

variable "ami_id" {
  description = "Explicit AMI; empty = the latest Canonical Ubuntu image matching ubuntu_ami_name_filter."
  type        = string
  default     = ""
}

variable "ubuntu_ami_name_filter" {
  description = "Name filter for the Canonical AMI lookup (owner 099720109477) when ami_id is empty; the role derives it from the version matrix's Ubuntu release."
  type        = string
}

variable "root_device_name" {
  description = "Root device of an explicit AMI (Ubuntu: /dev/sda1); the lookup's own value is used otherwise."
  type        = string
  default     = "/dev/sda1"
}

variable "services_instance_type" {
  description = "Instance type of the Services machine (the sizing filter's services.instance_type: data/sizing.yml)."
  type        = string
}

variable "services_root_volume_gb" {
  description = "Root volume of the Services machine (the sizing filter's services.root_volume_gb: data/sizing.yml, at least 150)."
  type        = number
}

variable "services_http_tokens" {
  description = "IMDS on the Services machine: optional (IMDSv1 allowed) or required (IMDSv2 only); from the version matrix (data/versions.yml)."
  type        = string
  validation {
    condition     = contains(["optional", "required"], var.services_http_tokens)
    error_message = "services_http_tokens must be optional or required."
  }
}

variable "services_termination_protection" {
  description = "EC2 termination protection of the Services machine (the teardown turns it off first)."
  type        = bool
  default     = true
}

variable "services_associate_public_ip" {
  type    = bool
  default = true
}

variable "nomad_instance_type" {
  description = "Instance type of the Nomad clients (the sizing filter's nomad.instance_type: data/sizing.yml)."
  type        = string
}

variable "nomad_root_volume_gb" {
  description = "Root volume of each Nomad client (data/sizing.yml, nomad_client_minimum.disk_gb)."
  type        = number
}

variable "nomad_min" {
  description = "Fewest Nomad clients (the sizing filter's nomad.min: data/sizing.yml)."
  type        = number
}

variable "nomad_max" {
  description = "Most Nomad clients (the sizing filter's nomad.max: data/sizing.yml)."
  type        = number
}

variable "nomad_desired" {
  description = "The group's desired capacity when it is created; later changes of this value are ignored (scaling owns it); the sizing filter's nomad.desired (data/sizing.yml)."
  type        = number
}

variable "nomad_drain_heartbeat_timeout" {
  description = "Seconds a terminating Nomad client waits for its drain agent's next heartbeat before the hook's CONTINUE applies (30-7200)."
  type        = number
  default     = 600
  # PutLifecycleHook's HeartbeatTimeout range (AWS API reference).
  validation {
    condition     = var.nomad_drain_heartbeat_timeout >= 30 && var.nomad_drain_heartbeat_timeout <= 7200
    error_message = "nomad_drain_heartbeat_timeout must be 30-7200 seconds."
  }
}

variable "nomad_bootstrap" {
  description = <<-EOT
    How a Nomad client the group launches configures itself (docs/fleet.md "How a new client joins"):
    mode "local" (run the roles from the bootstrap bundle site.yml publishes) or "awx" (an AWX provisioning
    callback to awx_callback_url); heartbeat_timeout of the launching hook (30-7200 s); deadline of the whole
    bootstrap (s); aws_endpoint overrides every AWS endpoint the instance calls (empty: AWS's own; the sandbox
    points it at its stand-in). No secret: this ends up in the user data.
  EOT
  type = object({
    mode              = string
    heartbeat_timeout = number
    deadline          = number
    aws_endpoint      = string
    awx_callback_url  = string
  })
  default = {
    mode              = "local"
    heartbeat_timeout = 600
    deadline          = 1800
    aws_endpoint      = ""
    awx_callback_url  = ""
  }
  validation {
    condition = (contains(["local", "awx"], var.nomad_bootstrap.mode)
      && var.nomad_bootstrap.heartbeat_timeout >= 30 && var.nomad_bootstrap.heartbeat_timeout <= 7200
    && (var.nomad_bootstrap.mode != "awx" || length(var.nomad_bootstrap.awx_callback_url) > 0))
    error_message = "nomad_bootstrap: mode must be local or awx (awx needs awx_callback_url); heartbeat_timeout 30-7200 seconds."
  }
}

variable "admin_cidrs" {
  description = "Who reaches the admin ports (SSH 22, console 8800). Empty = nobody."
  type        = list(string)
  default     = []
}

variable "user_cidrs" {
  description = "Who reaches the user ports (80, 443, 7171, 8081) and SSH into builds (64535-65535)."
  type        = list(string)
  default     = []
}

variable "external_service_cidrs" {
  description = "Externalised services (keys of external_services in ports.yml) -> the CIDRs they live in."
  type        = map(list(string))
  default     = {}
}

variable "hostname" {
  description = "Host name users browse to; empty = the Services machine's public (or private) IP."
  type        = string
  default     = ""
}

variable "scheme" {
  type    = string
  default = "https"
  validation {
    condition     = contains(["http", "https"], var.scheme)
    error_message = "The scheme must be http or https."
  }
}

variable "route53_zone_id" {
  description = "Hosted zone for an A record hostname -> Services machine; empty = no record."
  type        = string
  default     = ""
}

variable "bucket_name" {
  # Not the vendor's name (enterprise-setup uses <prefix>-bucket-<vpc id>):
  # an install made with the vendor's Terraform is not adopted by this one.
  description = "S3 bucket name; empty = <prefix>-circleci-<vpc id without 'vpc-'>."
  type        = string
  default     = ""
}

variable "bucket_force_destroy" {
  description = "Let a destroy delete a bucket that still holds objects."
  type        = bool
  default     = false
}

variable "bucket_sse_algorithm" {
  description = "AES256 (S3-managed keys) or aws:kms."
  type        = string
  default     = "AES256"
}

variable "bucket_kms_key_id" {
  description = "KMS key for aws:kms bucket encryption (empty = the AWS-managed key)."
  type        = string
  default     = ""
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
