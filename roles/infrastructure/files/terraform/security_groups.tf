# Security groups generated from the port tables in ports.yml (a copy of the
# collection's data/ports.yml): one rule per (row, CIDR).
locals {
  ports = yamldecode(file("${path.module}/ports.yml"))

  cidrs_by_class = {
    users    = var.user_cidrs
    admins   = var.admin_cidrs
    subnet   = [data.aws_subnet.this.cidr_block]
    anywhere = ["0.0.0.0/0"]
  }

  # security group -> port table in ports.yml
  port_tables = {
    services      = local.ports.services
    nomad_clients = local.ports.nomad_clients
    vm            = local.ports.vm_service
  }

  table_rules = flatten([
    for group, table in local.port_tables : [
      for direction in ["inbound", "outbound"] : [
        for row in lookup(table, direction, []) : [
          for cidr in local.cidrs_by_class[direction == "inbound" ? row.source : row.destination] : {
            group     = group
            type      = direction == "inbound" ? "ingress" : "egress"
            protocol  = row.protocol
            port      = tostring(row.port)
            cidr      = cidr
            use       = row.use
          }
        ]
      ]
    ]
  ])

  # Externalised services: the Services machine talks out to them; rows marked
  # `direction: inbound` (metrics) come in from them.
  external_rules = flatten([
    for service, cidrs in var.external_service_cidrs : [
      for row in local.ports.external_services[service] : [
        for cidr in cidrs : {
          group    = "services"
          type     = lookup(row, "direction", "outbound") == "inbound" ? "ingress" : "egress"
          protocol = row.protocol
          port     = tostring(row.port)
          cidr     = cidr
          use      = row.use
        }
      ]
    ]
  ])

  # Identical rules (e.g. a user CIDR equal to the subnet) collapse into one:
  # AWS refuses duplicates.
  sg_rules = {
    for key, rules in {
      for rule in concat(local.table_rules, local.external_rules) :
      "${rule.group}/${rule.type}/${rule.protocol}/${rule.port}/${rule.cidr}" => rule...
    } : key => rules[0]
  }
}

resource "aws_security_group" "services" {
  name        = "${var.prefix}-services"
  description = "CircleCI Services machine (${var.prefix})"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.prefix}-services" })
}

resource "aws_security_group" "nomad_clients" {
  name        = "${var.prefix}-nomad-clients"
  description = "CircleCI Nomad clients (${var.prefix})"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.prefix}-nomad-clients" })
}

# For the VMs vm-service starts (machine executor, remote Docker).
resource "aws_security_group" "vm" {
  name        = "${var.prefix}-vm"
  description = "CircleCI vm-service machines (${var.prefix})"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.prefix}-vm" })
}

locals {
  security_group_ids = {
    services      = aws_security_group.services.id
    nomad_clients = aws_security_group.nomad_clients.id
    vm            = aws_security_group.vm.id
  }
}

# aws_security_group_rule rather than the newer per-rule resources: only it
# exists in both provider 3.39 and 5.x.
resource "aws_security_group_rule" "rule" {
  for_each          = local.sg_rules
  security_group_id = local.security_group_ids[each.value.group]
  type              = each.value.type
  protocol          = each.value.protocol
  from_port         = tonumber(split("-", each.value.port)[0])
  to_port           = tonumber(reverse(split("-", each.value.port))[0])
  cidr_blocks       = [each.value.cidr]
  description       = each.value.use
}
