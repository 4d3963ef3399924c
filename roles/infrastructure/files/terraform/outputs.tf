# Outputs that index a for_each resource go through try(): `terraform import`
# of one instance (docs/infrastructure.md, "Faults") evaluates every output
# while the state holds only some of the keys. A full state has them all.
# Written to <install dir>/outputs.json and the fact circleci_infrastructure
# (docs/dev/contract.md): a flat name -> value object.
locals {
  services_host = var.hostname != "" ? var.hostname : (
    aws_instance.services.public_ip != "" ? aws_instance.services.public_ip : aws_instance.services.private_ip
  )
}

output "services_instance_id" {
  value = aws_instance.services.id
}

# Kept by a teardown (delete_on_termination = false): the teardown names it.
output "services_root_volume_id" {
  value = aws_instance.services.root_block_device[0].volume_id
}

output "services_private_ip" {
  value = aws_instance.services.private_ip
}

output "services_public_ip" {
  value = aws_instance.services.public_ip
}

output "console_url" {
  value = "https://${local.services_host}:8800"
}

output "app_url" {
  value = "${var.scheme}://${local.services_host}"
}

output "bucket_name" {
  value = aws_s3_bucket.circleci.id
}

output "queue_url" {
  value = aws_sqs_queue.shutdown.id
}

output "iam_role_name" {
  value = try(aws_iam_role.instance["services"].name, null)
}

output "instance_profile_name" {
  value = try(aws_iam_instance_profile.instance["services"].name, null)
}

output "nomad_client_iam_role_name" {
  value = try(aws_iam_role.instance["nomad_client"].name, null)
}

output "nomad_client_instance_profile_name" {
  value = try(aws_iam_instance_profile.instance["nomad_client"].name, null)
}

output "nomad_client_instance_profile_arn" {
  value = try(aws_iam_instance_profile.instance["nomad_client"].arn, null)
}

output "services_http_tokens" {
  value = var.services_http_tokens
}

output "vm_security_group_id" {
  value = try(aws_security_group.circleci["vm"].id, null)
}

output "subnet_id" {
  value = var.subnet_id
}

output "region" {
  value = var.region
}

output "nomad_asg_name" {
  value = aws_autoscaling_group.nomad_clients.name
}

# The drain agent's default (nomad_client_drain_hook_name empty) is this name.
output "nomad_client_terminating_hook_name" {
  value = aws_autoscaling_lifecycle_hook.nomad_client_terminating.name
}

output "nomad_client_launching_hook_name" {
  value = aws_autoscaling_lifecycle_hook.nomad_client_launching.name
}
