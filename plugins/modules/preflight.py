#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
DOCUMENTATION = r"""
module: preflight
short_description: Check everything the CircleCI Server install guide asks for, before any resource exists
version_added: 0.1.0
description:
  - Read-only checks of the AWS account, the network and the local inputs of a CircleCI Server v2.16 install.
    Only C(Describe*), C(Get*) and C(iam:SimulatePrincipalPolicy) calls are made, so nothing is ever created or
    changed; check mode runs the same checks.
  - 'Each check is returned as C({name, status, reason}) with status C(ok), C(warn), C(fail) or C(skip) (not run:
    its input was not given, or a check it depends on failed). The module fails when any check is C(fail).'
  - 'The checks, in order:'
  - C(region) - the region is one of ec2:DescribeRegions (all regions) and is enabled for the account. Against the
    real API a wrong name has no endpoint and fails to connect; both are a C(fail).
  - C(vpc) - the VPC exists.
  - C(vpc_dns_support) - the VPC has C(enableDnsSupport) true (the guide's requirement); the reason gives the
    command that fixes it.
  - C(subnet) - the subnet exists and belongs to the VPC.
  - C(subnet_free_addresses) - the subnet has free addresses for the Services machine, O(nomad_max) clients and
    O(address_headroom) more (machine and remote-docker VMs), so the install never exhausts them.
  - C(subnet_route) - the subnet's route table (its own or the VPC's main one) sends 0.0.0.0/0 through an Internet
    gateway (public subnet) or a NAT gateway/instance (private subnet); otherwise C(fail) naming the route table.
    A route through a transit gateway, peering or network interface is a C(warn) (not visible from here).
  - C(s3_endpoint) - a private subnet has an S3 VPC endpoint on its route table (C(warn) if not; the guide
    recommends one).
  - C(key_pair) - the EC2 key pair exists in the region.
  - C(ami) - the AMI exists and is available; without O(ami_id), the image provisioning would pick (Canonical's
    newest matching O(ami_name_filter)) exists. With O(docker_versions), its Ubuntu release (from the image's name
    or description) must be able to run each of them by O(os_requirements) - C(fail) when Docker has no packages of
    that version for the release or the release boots with cgroup v2 and the version predates cgroup v2 support;
    C(warn) when the release cannot be told or the data has nothing on a version. C(skip) when neither an AMI nor a
    filter is given.
  - C(services_instance_type), C(nomad_instance_type) - the chosen types exist in the region and meet
    O(services_requirement) / O(nomad_requirement) (C(warn) when below, C(fail) with O(strict_sizing)).
  - C(iam_permissions) - the caller (an assumed role is simulated as its role) is allowed every action of
    O(iam_actions), by iam:SimulatePrincipalPolicy. When the simulator is unavailable (no permission to call it,
    or an emulator that does not implement it) the check is C(warn) with that reason.
  - C(license_file) - the license file is readable and not empty (or O(license_content) is given).
  - C(passphrase) - the secret passphrase is not empty and only letters and digits.
  - C(terraform_binary) - the Terraform (or OpenTofu) binary runs; its version is reported.
  - The local checks look at the host the module runs on. Run it on the controller (a play on C(localhost));
    C(playbooks/preflight.yml) does.
author: circleci_server.aws maintainers (@circleci-server-aws)
options:
  vpc_id:
    description: The existing VPC to install into. Empty fails the C(vpc) check; not given skips the VPC checks.
    type: str
  subnet_id:
    description: The existing subnet for the Services machine and the Nomad clients.
    type: str
  subnet_type:
    description:
      - C(auto) accepts a route through an Internet gateway (public) or a NAT (private).
      - C(public) requires an Internet gateway route, C(private) a NAT route.
    type: str
    choices: [auto, public, private]
    default: auto
  key_name:
    description: EC2 key pair name.
    type: str
  ami_id:
    description: Explicit AMI; empty checks the image O(ami_name_filter) finds instead.
    type: str
  ami_name_filter:
    description:
      - Name filter of the Canonical (owner 099720109477) AMI lookup provisioning makes when no O(ami_id) is given.
    type: str
  docker_versions:
    description:
      - Docker versions the AMI's Ubuntu release must run (the version matrix's C(services_docker) and
        C(nomad_client_docker)). Empty only checks that the AMI exists.
    type: list
    elements: str
    default: []
  os_requirements:
    description:
      - What decides whether an Ubuntu release runs a Docker version, as in C(data/versions.yml)
        C(ubuntu_releases) (release -> codename, cgroup), C(docker_ubuntu_releases) (Docker year.month -> the
        releases with packages) and C(docker_cgroup_v2_minimum).
    type: dict
    default: {}
  nomad_max:
    description: Maximum number of Nomad clients (the Auto Scaling group's maximum).
    type: int
    default: 0
  address_headroom:
    description:
      - Free addresses to keep on top of the Services machine and the Nomad clients, for machine and remote-docker VMs.
    type: int
    default: 20
  services_instance_type:
    description: Services machine instance type to check.
    type: str
  nomad_instance_type:
    description: Nomad client instance type to check.
    type: str
  services_requirement:
    description: C(cpus) and C(ram_gb) the Services machine needs (the sizing filter's C(services)).
    type: dict
  nomad_requirement:
    description: C(cpus) and C(ram_gb) a Nomad client needs (the sizing filter's C(nomad)).
    type: dict
  strict_sizing:
    description: An instance type below its requirement fails instead of warning.
    type: bool
    default: false
  iam_actions:
    description:
      - IAM actions the caller must be allowed. The collection's list is C(data/iam_actions.yml) (key C(actions));
        the preflight playbook passes it. Empty makes C(iam_permissions) a C(warn).
    type: list
    elements: str
    default: []
  license_path:
    description: Path of the CircleCI license (.rli) on the host the module runs on. Empty fails C(license_file).
    type: path
  license_content:
    description: The license itself, instead of O(license_path).
    type: str
  secret_passphrase:
    description: The secret passphrase to check. Empty fails C(passphrase).
    type: str
  terraform_binary:
    description: Terraform or OpenTofu binary (a name searched in PATH, or a path).
    type: str
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
notes:
  - Supports check mode; it changes nothing in either mode.
"""

EXAMPLES = r"""
- name: Preflight an install
  circleci_server.aws.preflight:
    region: us-east-1
    vpc_id: vpc-0abc
    subnet_id: subnet-0def
    key_name: circleci
    nomad_max: 10
    iam_actions: "{{ (lookup('ansible.builtin.file', 'data/iam_actions.yml') | from_yaml).actions }}"
    license_path: ~/circleci.rli
    secret_passphrase: "{{ vault_circleci_passphrase }}"
    terraform_binary: terraform
  register: preflight

- name: Show the checks
  ansible.builtin.debug:
    msg: "{{ preflight.table }}"
"""

RETURN = r"""
checks:
  description: Every check, in order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Check name (see the description).
      type: str
    status:
      description: C(ok), C(warn), C(fail) or C(skip).
      type: str
    reason:
      description: What was found, and for C(fail) what to do.
      type: str
  sample: [{"name": "vpc_dns_support", "status": "fail", "reason": "enableDnsSupport is false on vpc-0abc: ..."}]
table:
  description: The checks as aligned text lines (a header line, a rule, one line per check).
  returned: always
  type: list
  elements: str
summary:
  description: Number of checks per status.
  returned: always
  type: dict
  sample: {"ok": 12, "warn": 1, "fail": 0, "skip": 2}
failed_checks:
  description: Names of the checks that failed.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule  # noqa: E402
from ansible_collections.circleci_server.aws.plugins.module_utils.preflight import (  # noqa: E402
    FAIL,
    Preflight,
    format_table,
    summarize,
)


def main():
    argument_spec = dict(
        vpc_id=dict(type="str"),
        subnet_id=dict(type="str"),
        subnet_type=dict(type="str", default="auto", choices=["auto", "public", "private"]),
        key_name=dict(type="str", no_log=False),
        ami_id=dict(type="str"),
        ami_name_filter=dict(type="str"),
        docker_versions=dict(type="list", elements="str", default=[]),
        os_requirements=dict(type="dict", default={}),
        nomad_max=dict(type="int", default=0),
        address_headroom=dict(type="int", default=20),
        services_instance_type=dict(type="str"),
        nomad_instance_type=dict(type="str"),
        services_requirement=dict(type="dict"),
        nomad_requirement=dict(type="dict"),
        strict_sizing=dict(type="bool", default=False),
        iam_actions=dict(type="list", elements="str", default=[]),
        license_path=dict(type="path"),
        license_content=dict(type="str", no_log=True),
        secret_passphrase=dict(type="str", no_log=True),
        terraform_binary=dict(type="str"),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    region = module.region
    ec2 = iam = sts = None
    if region:
        ec2 = module.client("ec2")
        iam = module.client("iam")
        sts = module.client("sts")

    checks = Preflight(
        ec2=ec2, iam=iam, sts=sts, region=region,
        run_command=lambda argv: module.run_command(argv, check_rc=False),
        get_bin_path=lambda name: module.get_bin_path(name, required=False),
    ).run(
        vpc_id=params["vpc_id"], subnet_id=params["subnet_id"], subnet_type=params["subnet_type"],
        key_name=params["key_name"], ami_id=params["ami_id"], ami_name_filter=params["ami_name_filter"],
        docker_versions=params["docker_versions"], os_requirements=params["os_requirements"],
        nomad_max=params["nomad_max"],
        address_headroom=params["address_headroom"],
        services_instance_type=params["services_instance_type"], nomad_instance_type=params["nomad_instance_type"],
        services_requirement=params["services_requirement"], nomad_requirement=params["nomad_requirement"],
        strict_sizing=params["strict_sizing"], iam_actions=params["iam_actions"],
        license_path=params["license_path"], license_content=params["license_content"],
        secret_passphrase=params["secret_passphrase"], terraform_binary=params["terraform_binary"],
    )
    failed = [c for c in checks if c["status"] == FAIL]
    output = dict(changed=False, checks=checks, table=format_table(checks), summary=summarize(checks),
                  failed_checks=[c["name"] for c in failed])
    if failed:
        module.fail_json(msg="preflight failed: " + "; ".join("%s: %s" % (c["name"], c["reason"]) for c in failed),
                         **output)
    module.exit_json(**output)


if __name__ == "__main__":
    main()
