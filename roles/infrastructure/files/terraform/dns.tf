# Optional: hostname -> Services machine (public IP when it has one).
resource "aws_route53_record" "services" {
  count   = var.route53_zone_id != "" && var.hostname != "" ? 1 : 0
  zone_id = var.route53_zone_id
  name    = var.hostname
  type    = "A"
  ttl     = 300
  records = [aws_instance.services.public_ip != "" ? aws_instance.services.public_ip : aws_instance.services.private_ip]
}
