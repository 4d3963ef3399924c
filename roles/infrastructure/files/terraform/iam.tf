# The role the Services machine and the Nomad clients run as. Scoped to this
# install's bucket and queue: no s3:* and no sqs:* on "*".
data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
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

  # Builds get short-lived credentials for artifact and cache uploads.
  statement {
    sid       = "BuildCredentials"
    actions   = ["sts:GetFederationToken"]
    resources = ["arn:${data.aws_partition.current.partition}:sts::${data.aws_caller_identity.current.account_id}:federated-user/build-*"]
  }

  # vm-service starts and stops the VMs of machine / remote Docker jobs.
  statement {
    sid = "VmService"
    actions = [
      "ec2:RunInstances",
      "ec2:TerminateInstances",
      "ec2:CreateTags",
      "ec2:DescribeInstances",
      "ec2:DescribeInstanceStatus",
      "ec2:DescribeImages",
      "ec2:DescribeSubnets",
      "ec2:DescribeSecurityGroups",
      "ec2:DescribeVolumes",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "Metrics"
    actions   = ["cloudwatch:PutMetricData", "autoscaling:DescribeAutoScalingGroups"]
    resources = ["*"]
  }
}

resource "aws_iam_role" "circleci" {
  name               = "${var.prefix}-circleci"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
  tags               = local.tags
}

resource "aws_iam_role_policy" "circleci" {
  name   = "${var.prefix}-circleci"
  role   = aws_iam_role.circleci.id
  policy = data.aws_iam_policy_document.circleci.json
}

resource "aws_iam_instance_profile" "circleci" {
  name = "${var.prefix}-circleci"
  role = aws_iam_role.circleci.name
}
