# Two roles: the Services machine's (what the CircleCI app calls) and the
# Nomad clients' (only what a bootstrap and drain agent on the host needs).
# Compared with the vendor's (circleci/enterprise-setup
# templates/circleci_policy.tpl, files/circleci_role.json), this is stricter
# where the app cannot notice:
# - s3/sqs: named actions on this install's bucket and queue, not s3:*/sqs:*;
# - cloudwatch:PutMetricData, not cloudwatch:*;
# - no iam:GetUser (role credentials cannot use it) and no
#   autoscaling:CompleteLifecycleAction on "*" (the vendor's 1.0 builders);
# - sts:AssumeRole / iam:GetRole on this role's own ARN in this account,
#   not on any account's role of that name (iam::*:role/...);
# - Start/Stop/Terminate and volume attach/detach/delete on this account's
#   instances and volumes only, with the vendor's ManagedBy tag condition.
# Kept as the vendor has it, because vm-service's exact calls are not
# documented: ec2:Describe* (read only), and RunInstances / CreateVolume /
# CreateTags on any resource of this region (images and snapshots of other
# accounts appear in those requests).
# The vendor's Nomad clients have no instance profile at all
# (modules/nomad/main.tf); these have one, minimal, for the fleet's agents.
locals {
  arn_prefix = "arn:${data.aws_partition.current.partition}"
  account_id = data.aws_caller_identity.current.account_id
  # The Services role's ARN, built from its name: the trust policy below
  # names it, so it cannot come from the role resource itself.
  circleci_role_arn = "${local.arn_prefix}:iam::${local.account_id}:role/${var.prefix}-circleci"
  nomad_asg_arn     = "${local.arn_prefix}:autoscaling:${var.region}:${local.account_id}:autoScalingGroup:*:autoScalingGroupName/${var.prefix}-nomad-clients"
}

data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

# EC2, and the role itself: the app assumes its own role to hand builds
# short-lived, scoped credentials (artifact, cache and test-result uploads).
# Since AWS's 2022 change a role may assume itself only when its trust
# policy says so. The principal is the account, narrowed to this role by
# aws:PrincipalArn: IAM rejects a trust policy naming a role ARN that does
# not exist yet, which this one does not while it is being created.
data "aws_iam_policy_document" "assume_circleci" {
  # source_policy_documents: in provider 3.28+ and 5.x (source_json is gone in 5.x).
  source_policy_documents = [data.aws_iam_policy_document.assume_ec2.json]

  statement {
    sid     = "AssumeItself"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = ["${local.arn_prefix}:iam::${local.account_id}:root"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:PrincipalArn"
      values   = [local.circleci_role_arn]
    }
  }
}

data "aws_iam_policy_document" "circleci" {
  statement {
    sid       = "ArtifactsBucket"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"]
    resources = [aws_s3_bucket.circleci.arn]
  }

  statement {
    sid = "ArtifactsObjects"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${aws_s3_bucket.circleci.arn}/*"]
  }

  statement {
    sid = "ShutdownQueue"
    actions = [
      "sqs:SendMessage",
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
    ]
    resources = [aws_sqs_queue.shutdown.arn]
  }

  # The vendor's policy: output-processor calls iam:GetRole (enterprise-setup
  # c5420b0) and the app assumes its own role for build credentials.
  statement {
    sid       = "OwnRole"
    actions   = ["sts:AssumeRole", "iam:GetRole"]
    resources = [local.circleci_role_arn]
  }

  # vm-service reads what it starts and the images, subnets and groups it uses.
  statement {
    sid       = "VmServiceRead"
    actions   = ["ec2:Describe*"]
    resources = ["*"]
  }

  # vm-service starts machine / remote Docker VMs and Docker layer caching volumes.
  statement {
    sid       = "VmServiceCreate"
    actions   = ["ec2:RunInstances", "ec2:CreateVolume", "ec2:CreateTags"]
    resources = ["${local.arn_prefix}:ec2:${var.region}:*"]
  }

  # ...and may stop, remove and move only what it tagged as its own.
  statement {
    sid = "VmServiceManage"
    actions = [
      "ec2:StartInstances",
      "ec2:StopInstances",
      "ec2:TerminateInstances",
      "ec2:AttachVolume",
      "ec2:DetachVolume",
      "ec2:DeleteVolume",
    ]
    resources = [
      "${local.arn_prefix}:ec2:${var.region}:${local.account_id}:instance/*",
      "${local.arn_prefix}:ec2:${var.region}:${local.account_id}:volume/*",
    ]
    condition {
      test     = "StringEquals"
      variable = "ec2:ResourceTag/ManagedBy"
      values   = ["circleci-vm-service"]
    }
  }

  statement {
    sid       = "Metrics"
    actions   = ["cloudwatch:PutMetricData", "autoscaling:DescribeAutoScalingGroups"]
    resources = ["*"]
  }

  # CircleCI 2.x reads the shutdown queue for its 1.0 builders and completes
  # lifecycle actions (enterprise-setup modules/legacy-builder: a terminating
  # hook to the same queue; templates/circleci_policy.tpl grants
  # autoscaling:CompleteLifecycleAction on "*"). Seeing a Nomad client's
  # message, it could end that client's drain early. Nothing above allows it;
  # the explicit deny also wins over a policy attached to this role later
  # (the vendor's, say). The drain agent on the client completes the action.
  statement {
    sid       = "NotTheNomadClientsLifecycle"
    effect    = "Deny"
    actions   = ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"]
    resources = [local.nomad_asg_arn]
  }
}

# The Nomad clients' role: what a bootstrap and drain agent on the host
# needs, nothing a build could use against the install (IMDSv2 with one hop
# keeps builds from the credentials anyway; compute.tf).
data "aws_iam_policy_document" "nomad_client" {
  statement {
    sid       = "BootstrapList"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.circleci.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["bootstrap/*"]
    }
  }

  statement {
    sid       = "BootstrapRead"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.circleci.arn}/bootstrap/*"]
  }

  statement {
    sid       = "OwnLifecycle"
    actions   = ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"]
    resources = [local.nomad_asg_arn]
  }

  # The bootstrap asks whether a launching hook holds it (Pending:Wait);
  # Describe* actions take no resource-level restriction.
  statement {
    sid       = "OwnLifecycleState"
    actions   = ["autoscaling:DescribeAutoScalingInstances"]
    resources = ["*"]
  }

  # The bootstrap's outcome as a tag on the instance itself, that one key only:
  # aws:ARN (the instance acted on) equal to the calling instance's ARN.
  statement {
    sid       = "TagItselfBootstrapOutcome"
    actions   = ["ec2:CreateTags"]
    resources = ["${local.arn_prefix}:ec2:${var.region}:${local.account_id}:instance/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ARN"
      values   = ["$${ec2:SourceInstanceARN}"]
    }
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "aws:TagKeys"
      values   = ["circleci:bootstrap"]
    }
  }

  statement {
    sid       = "ShutdownQueue"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage"]
    resources = [aws_sqs_queue.shutdown.arn]
  }
}

# Each machine role's role, inline policy (named like the role) and instance
# profile, keyed by the circleci:role tag of the machines that carry it. The
# names are the ones each got when it was written out on its own: IAM cannot
# rename a role or profile, so a new name would replace them.
locals {
  instance_roles = {
    services = {
      name   = "${var.prefix}-circleci"
      trust  = data.aws_iam_policy_document.assume_circleci.json
      policy = data.aws_iam_policy_document.circleci.json
    }
    nomad_client = {
      name   = "${var.prefix}-nomad-client"
      trust  = data.aws_iam_policy_document.assume_ec2.json
      policy = data.aws_iam_policy_document.nomad_client.json
    }
  }
}

resource "aws_iam_role" "instance" {
  for_each = local.instance_roles

  name               = each.value.name
  assume_role_policy = each.value.trust
  tags               = local.tags
}

resource "aws_iam_role_policy" "instance" {
  for_each = local.instance_roles

  name   = each.value.name
  role   = aws_iam_role.instance[each.key].id
  policy = each.value.policy
}

resource "aws_iam_instance_profile" "instance" {
  for_each = local.instance_roles

  name = each.value.name
  role = aws_iam_role.instance[each.key].name
}

# Installs made before these were one for_each (each written out on its own)
# keep their roles and profiles: Terraform moves them in the state, nothing in
# AWS changes (docs/infrastructure.md, "Upgrading an install").
moved {
  from = aws_iam_role.circleci
  to   = aws_iam_role.instance["services"]
}

moved {
  from = aws_iam_role_policy.circleci
  to   = aws_iam_role_policy.instance["services"]
}

moved {
  from = aws_iam_instance_profile.circleci
  to   = aws_iam_instance_profile.instance["services"]
}

moved {
  from = aws_iam_role.nomad_client
  to   = aws_iam_role.instance["nomad_client"]
}

moved {
  from = aws_iam_role_policy.nomad_client
  to   = aws_iam_role_policy.instance["nomad_client"]
}

moved {
  from = aws_iam_instance_profile.nomad_client
  to   = aws_iam_instance_profile.instance["nomad_client"]
}

# What Auto Scaling assumes to publish the Nomad clients' lifecycle
# notifications to the shutdown queue: sqs:SendMessage and sqs:GetQueueUrl
# on that queue only (AWS's AutoScalingNotificationAccessRole allows them on
# "*"; the vendor's queue role, enterprise-setup modules/aws_sqs/main.tf, on
# its queue, as here). AWS: "Prepare to add a lifecycle hook to your Auto
# Scaling group", configuring-lifecycle-hook-notifications.html.
data "aws_iam_policy_document" "assume_autoscaling" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["autoscaling.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "nomad_lifecycle" {
  statement {
    sid       = "ShutdownQueue"
    actions   = ["sqs:SendMessage", "sqs:GetQueueUrl"]
    resources = [aws_sqs_queue.shutdown.arn]
  }
}

resource "aws_iam_role" "nomad_lifecycle" {
  name               = "${var.prefix}-nomad-lifecycle"
  assume_role_policy = data.aws_iam_policy_document.assume_autoscaling.json
  tags               = local.tags
}

resource "aws_iam_role_policy" "nomad_lifecycle" {
  name   = "${var.prefix}-nomad-lifecycle"
  role   = aws_iam_role.nomad_lifecycle.id
  policy = data.aws_iam_policy_document.nomad_lifecycle.json
}
