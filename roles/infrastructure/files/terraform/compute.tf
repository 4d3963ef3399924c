resource "aws_instance" "services" {
  ami                         = local.ami_id
  instance_type               = var.services_instance_type
  key_name                    = var.key_name
  subnet_id                   = var.subnet_id
  vpc_security_group_ids      = [aws_security_group.circleci["services"].id]
  iam_instance_profile        = aws_iam_instance_profile.instance["services"].name
  associate_public_ip_address = var.services_associate_public_ip
  disable_api_termination     = var.services_termination_protection

  root_block_device {
    volume_size = var.services_root_volume_gb
    volume_type = "gp3"
    encrypted   = true
    # Every datastore lives on this volume: it must outlive an accidental
    # termination (the vendor's services_delete_on_termination defaults to
    # false too). A teardown leaves it behind; delete it deliberately.
    delete_on_termination = false
  }

  metadata_options {
    http_endpoint = "enabled"
    # From the version matrix (data/versions.yml services_http_tokens): the
    # 2.x containers' AWS SDKs predate IMDSv2, so "optional" keeps v1 working.
    http_tokens = var.services_http_tokens
    # 2 hops: the CircleCI services run in containers and use the instance role.
    http_put_response_hop_limit = 2
  }

  tags = merge(local.tags, {
    Name             = "${var.prefix}-services"
    "circleci:role"  = "services"
  })

  lifecycle {
    # A newer Ubuntu AMI must never replace the Services machine (its data
    # lives on the root volume); rebuild it deliberately instead.
    ignore_changes = [ami]
  }
}

resource "aws_launch_template" "nomad_clients" {
  name                   = "${var.prefix}-nomad-clients"
  image_id               = local.ami_id
  instance_type          = var.nomad_instance_type
  key_name               = var.key_name
  vpc_security_group_ids = [aws_security_group.circleci["nomad_clients"].id]

  # The clients' own minimal profile, never the Services machine's (iam.tf).
  iam_instance_profile {
    name = aws_iam_instance_profile.instance["nomad_client"].name
  }

  block_device_mappings {
    device_name = local.root_device_name
    ebs {
      volume_size           = var.nomad_root_volume_gb
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  # IMDSv2 only, and one hop: the host's own agents reach the metadata
  # service, build containers (one more hop through Docker's bridge) do not,
  # so no build can take the instance's credentials.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  # cloud-init user data: writes the bootstrap and the AWS calls it shares with the drain agent
  # (the nomad_client role's files), its settings, and runs it once. It reads the bundle site.yml
  # publishes to s3://<bucket>/bootstrap/ and completes the launching hook below. Gzipped (cloud-init
  # decompresses gzip user data): about 7 KB of the 16 KB EC2 allows. No secret is in it (docs/fleet.md).
  user_data = base64gzip(templatefile("${path.module}/nomad_client_user_data.yaml.tpl", {
    aws_module = file("${path.module}/circleci_aws.py")
    bootstrap  = file("${path.module}/circleci_bootstrap.py")
    settings = jsonencode({
      mode                       = var.nomad_bootstrap.mode
      bucket                     = aws_s3_bucket.circleci.id
      prefix                     = "bootstrap/"
      region                     = var.region
      aws_endpoint               = var.nomad_bootstrap.aws_endpoint
      asg_name                   = "${var.prefix}-nomad-clients"
      hook_name                  = "${var.prefix}-nomad-client-launching"
      heartbeat_interval         = max(10, floor(var.nomad_bootstrap.heartbeat_timeout / 4))
      deadline                   = var.nomad_bootstrap.deadline
      awx_callback_url           = var.nomad_bootstrap.awx_callback_url
      awx_host_config_key_object = "bootstrap/awx/host_config_key"
      awx_extra_vars             = { circleci_prefix = var.prefix }
    })
  }))

  tag_specifications {
    resource_type = "volume"
    tags          = merge(local.tags, { Name = "${var.prefix}-nomad-client", "circleci:role" = "nomad_client" })
  }

  tags = merge(local.tags, { Name = "${var.prefix}-nomad-clients" })
}

resource "aws_autoscaling_group" "nomad_clients" {
  name                = "${var.prefix}-nomad-clients"
  min_size            = var.nomad_min
  max_size            = var.nomad_max
  desired_capacity    = var.nomad_desired
  vpc_zone_identifier = [var.subnet_id]

  launch_template {
    id      = aws_launch_template.nomad_clients.id
    version = aws_launch_template.nomad_clients.latest_version
  }

  # `tag` blocks (not the `tags` list, gone in 5.x): each is put on the
  # instances the group launches.
  dynamic "tag" {
    for_each = merge(local.tags, { Name = "${var.prefix}-nomad-client", "circleci:role" = "nomad_client" })
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    # desired_capacity is the group's first size only: afterwards scaling
    # (the AWS API, a scale playbook, a scaling policy) owns it, and a later
    # run must not reset a size someone scaled the group to. min/max
    # stay managed: AWS raises (lowers) the desired capacity to a new min
    # (max) itself (UpdateAutoScalingGroup API reference).
    ignore_changes = [desired_capacity]
  }
}

# Scale-in waits for the client to drain: the instance stays in
# Terminating:Wait until the nomad_client role's drain agent completes the
# action (it heartbeats while builds finish), or the heartbeat timeout runs
# out and CONTINUE terminates it anyway. The notification goes to the
# shutdown queue, as the vendor's terminating hook does
# (enterprise-setup modules/legacy-builder/main.tf). The agent derives the
# name from the circleci:install tag: keep "<prefix>-nomad-client-terminating".
resource "aws_autoscaling_lifecycle_hook" "nomad_client_terminating" {
  name                    = "${var.prefix}-nomad-client-terminating"
  autoscaling_group_name  = aws_autoscaling_group.nomad_clients.name
  lifecycle_transition    = "autoscaling:EC2_INSTANCE_TERMINATING"
  default_result          = "CONTINUE"
  heartbeat_timeout       = var.nomad_drain_heartbeat_timeout
  notification_target_arn = aws_sqs_queue.shutdown.arn
  role_arn                = aws_iam_role.nomad_lifecycle.arn

  # AWS sends a test message when the hook is put: the role must be able to.
  depends_on = [aws_iam_role_policy.nomad_lifecycle]
}

# A launch is InService only after the instance configured itself: the
# bootstrap in the user data completes this action with CONTINUE once its
# Nomad agent registered, ABANDON when a step failed (the group then
# terminates it and launches another); it heartbeats while it works, and a
# bootstrap that stops answering is abandoned at the heartbeat timeout.
# Instances the group launched when it was created (before this hook
# existed) are not held: site.yml configures those.
resource "aws_autoscaling_lifecycle_hook" "nomad_client_launching" {
  name                   = "${var.prefix}-nomad-client-launching"
  autoscaling_group_name = aws_autoscaling_group.nomad_clients.name
  lifecycle_transition   = "autoscaling:EC2_INSTANCE_LAUNCHING"
  default_result         = "ABANDON"
  heartbeat_timeout      = var.nomad_bootstrap.heartbeat_timeout
}
