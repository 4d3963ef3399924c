# Security groups generated from the port tables in ports.yml (a copy of the
# collection's data/ports.yml): one rule block per table row, holding the
# CIDRs of the row's source/destination class. Rows whose class has no CIDRs
# (admin_cidrs empty by default) open nothing.
#
# Inline ingress/egress blocks: they exist in provider 3.39 and 5.x alike,
# keep each group authoritative (rules added by hand are removed on the next
# apply) and cost one API read per group instead of one per rule.
locals {
  ports = yamldecode(file("${path.module}/ports.yml"))

  cidrs_by_class = {
    users    = var.user_cidrs
    admins   = var.admin_cidrs
    subnet   = [data.aws_subnet.this.cidr_block]
    anywhere = ["0.0.0.0/0"]
  }

  # One security group per port table of ports.yml. Names and descriptions
  # are the ones the groups got when each was its own resource: AWS cannot
  # change a group's description, so a new one would replace the group.
  security_groups = {
    services = {
      table       = local.ports.services
      name        = "${var.prefix}-services"
      description = "CircleCI Services machine (${var.prefix})"
    }
    nomad_clients = {
      table       = local.ports.nomad_clients
      name        = "${var.prefix}-nomad-clients"
      description = "CircleCI Nomad clients (${var.prefix})"
    }
    # For the VMs vm-service starts (machine executor, remote Docker).
    vm = {
      table       = local.ports.vm_service
      name        = "${var.prefix}-vm"
      description = "CircleCI vm-service machines (${var.prefix})"
    }
  }

  table_rules = {
    for group, sg in local.security_groups : group => {
      for direction in ["inbound", "outbound"] : direction => [
        for row in lookup(sg.table, direction, []) : {
          protocol = row.protocol
          port     = tostring(row.port)
          cidrs    = local.cidrs_by_class[direction == "inbound" ? row.source : row.destination]
          use      = row.use
        }
      ]
    }
  }

  # Externalised services: the Services machine talks out to them; rows
  # marked `direction: inbound` (metrics) come in from them.
  external_rules = flatten([
    for service, cidrs in var.external_service_cidrs : [
      for row in local.ports.external_services[service] : {
        direction = lookup(row, "direction", "outbound")
        protocol  = row.protocol
        port      = tostring(row.port)
        cidrs     = cidrs
        use       = "${row.use} (${service})"
      }
    ]
  ])

  # Rows of one group and direction, each with the CIDRs no earlier row of
  # the same port and protocol already opens (e.g. 7171 from users and from
  # the subnet, when user_cidrs holds the subnet): AWS refuses a permission
  # twice in one group.
  table_rows = {
    for group, tables in local.table_rules : group => {
      for direction, rows in tables : direction => concat(
        rows, group == "services" ? [for r in local.external_rules : r if r.direction == direction] : []
      )
    }
  }

  rules = {
    for group, tables in local.table_rows : group => {
      for direction, rows in tables : direction => [
        for index, row in rows :
        merge(row, {
          # `port: all, protocol: all` is AWS's every port and protocol: -1, 0-0.
          protocol  = row.protocol == "all" ? "-1" : row.protocol
          from_port = row.port == "all" ? 0 : tonumber(split("-", row.port)[0])
          to_port   = row.port == "all" ? 0 : tonumber(reverse(split("-", row.port))[0])
          cidrs = [
            for cidr in row.cidrs : cidr if !contains(flatten([
              for earlier in slice(rows, 0, index) : earlier.cidrs
              if earlier.protocol == row.protocol && earlier.port == row.port
            ]), cidr)
          ]
        })
      ]
    }
  }

  # Rows left without CIDRs (admin_cidrs empty by default) open nothing.
  open_rules = {
    for group, tables in local.rules : group => {
      for direction, rows in tables : direction => [for row in rows : row if length(row.cidrs) > 0]
    }
  }
}

resource "aws_security_group" "circleci" {
  for_each = local.security_groups

  name        = each.value.name
  description = each.value.description
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = each.value.name })

  dynamic "ingress" {
    for_each = local.open_rules[each.key].inbound
    content {
      protocol    = ingress.value.protocol
      from_port   = ingress.value.from_port
      to_port     = ingress.value.to_port
      cidr_blocks = ingress.value.cidrs
      description = ingress.value.use
    }
  }

  dynamic "egress" {
    for_each = local.open_rules[each.key].outbound
    content {
      protocol    = egress.value.protocol
      from_port   = egress.value.from_port
      to_port     = egress.value.to_port
      cidr_blocks = egress.value.cidrs
      description = egress.value.use
    }
  }
}

# Installs made before the groups were one resource (each its own resource
# block) keep their groups: Terraform moves them in the state, nothing in AWS
# changes (docs/infrastructure.md, "Upgrading an install").
moved {
  from = aws_security_group.services
  to   = aws_security_group.circleci["services"]
}

moved {
  from = aws_security_group.nomad_clients
  to   = aws_security_group.circleci["nomad_clients"]
}

moved {
  from = aws_security_group.vm
  to   = aws_security_group.circleci["vm"]
}
