# The AWS side of a CircleCI Server 2.x install. Run by the role
# circleci_server.aws.infrastructure from a per-install working directory;
# data/ports.yml is copied next to these files as ports.yml.
terraform {
  required_version = ">= 1.0"
  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 3.39 is what the offline test bed has; 5.x is what users get from the
      # registry. Every argument here exists in both (see the comments where
      # that decided the shape). 6.0 drops arguments used here, hence < 6.0.
      version = ">= 3.39, < 6.0"
    }
  }
}

provider "aws" {
  region = var.region
  # Credentials come from the environment, a profile or the instance role;
  # they are never part of this configuration or of terraform.tfvars.
}
