"""playbooks/preflight.yml against moto: the real ansible-playbook, the module, the filter.

Each run asserts that the account is exactly as before (preflight is read-only).
"""
import json
import re

import pytest

from tests.sandbox.ansible import run_playbook

PLAYBOOK = "playbooks/preflight.yml"
PASSPHRASE = "NeverPrintMe12345"


def snapshot(aws):
    """Everything preflight reads or could touch, in full."""
    ec2 = aws.client("ec2")
    vpcs = ec2.describe_vpcs()["Vpcs"]
    return {
        "counts": aws.resource_counts(),
        "vpcs": vpcs,
        "dns": [ec2.describe_vpc_attribute(VpcId=v["VpcId"], Attribute="enableDnsSupport")["EnableDnsSupport"]
                for v in vpcs],
        "subnets": ec2.describe_subnets()["Subnets"],
        "route_tables": ec2.describe_route_tables()["RouteTables"],
        "key_pairs": ec2.describe_key_pairs()["KeyPairs"],
        "endpoints": ec2.describe_vpc_endpoints()["VpcEndpoints"],
    }


def build_network(aws, cidr="10.0.1.0/24", private=True, dns=True, s3_endpoint=True, key=True):
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    if not dns:
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": False})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr)["Subnet"]["SubnetId"]
    rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=rtb, SubnetId=subnet)
    if private:
        public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.200.0/24")["Subnet"]["SubnetId"]
        eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
        nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=eip)["NatGateway"]["NatGatewayId"]
        ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    if s3_endpoint:
        ec2.create_vpc_endpoint(VpcId=vpc, ServiceName="com.amazonaws.%s.s3" % aws.region, RouteTableIds=[rtb])
    if key:
        ec2.create_key_pair(KeyName="circleci")
    return {"vpc": vpc, "subnet": subnet, "route_table": rtb}


@pytest.fixture
def install_vars(tmp_path, terraform_bin):
    license_file = tmp_path / "circleci.rli"
    license_file.write_text("stand-in license body, not a real .rli")

    def make(aws, net, **overrides):
        values = {
            "circleci_region": aws.region,
            "circleci_vpc_id": net["vpc"],
            "circleci_subnet_id": net["subnet"],
            "circleci_key_name": "circleci",
            "circleci_ami_id": XENIAL,
            "circleci_daily_active_users": 120,
            "circleci_license_path": str(license_file),
            "circleci_secret_passphrase": PASSPHRASE,
            "circleci_terraform_binary": str(terraform_bin),
        }
        values.update(overrides)
        return values

    return make


# moto's built-in Canonical images (owner 099720109477): Ubuntu 16.04 and 14.04.
XENIAL = "ami-785db401"
TRUSTY = "ami-1e749f67"


def json_results(result):
    """Task name -> the localhost result, from the ansible.posix.json callback."""
    data = json.loads(result.stdout)
    return {t["task"]["name"]: t["hosts"]["localhost"] for play in data["plays"] for t in play["tasks"]}


def run_json(aws, extra_vars, **kwargs):
    env = aws.env()
    env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
    return run_playbook(PLAYBOOK, extra_vars=extra_vars, env=env, **kwargs)


def test_happy_path_prints_a_readable_table_and_changes_nothing(aws, install_vars):
    net = build_network(aws)
    before = snapshot(aws)
    result = run_playbook(PLAYBOOK, extra_vars=install_vars(aws, net), env=aws.env())
    assert result.rc == 0, str(result)
    assert snapshot(aws) == before
    assert result.changed == 0
    # The table: a header and one aligned line per check.
    table = re.findall(r'^\s+"(\S+)\s+(OK|WARN|FAIL|SKIP)\s+(.*)",?$', result.stdout, re.M)
    rows = {name: (status, reason) for name, status, reason in table}
    assert set(rows) == {
        "region", "vpc", "vpc_dns_support", "subnet", "subnet_free_addresses", "subnet_route", "s3_endpoint",
        "key_pair", "ami", "services_instance_type", "nomad_instance_type", "iam_permissions", "license_file",
        "passphrase", "terraform_binary"}
    assert rows["subnet_route"][0] == "OK" and "NAT nat-" in rows["subnet_route"][1]
    assert rows["subnet_free_addresses"][1].startswith("251 free addresses, 31 needed")  # 1 + 10 (50-250) + 20
    assert rows["iam_permissions"][0] == "WARN"  # moto answers 500 for SimulatePrincipalPolicy
    # 2.16 (the default): Docker 17.12.1 / 17.03.2 run on Ubuntu 16.04.
    assert rows["ami"][0] == "OK" and "is Ubuntu 16.04, which runs Docker 17.12.1, 17.03.2" in rows["ami"][1]
    assert rows["terraform_binary"][1].endswith("version 1.15.5")
    assert "preflight passed: 14 ok, 1 warning(s), 0 skipped" in " ".join(result.stdout.split())
    assert "m5.4xlarge" in result.stdout  # the recommendation for 120 users
    assert PASSPHRASE not in result.stdout + result.stderr


def test_check_mode_runs_the_same_checks(aws, install_vars):
    net = build_network(aws)
    before = snapshot(aws)
    result = run_json(aws, install_vars(aws, net), check=True)
    assert result.rc == 0, str(result)
    checks = json_results(result)["Check the account, the network and the inputs"]["checks"]
    assert len(checks) == 15 and not [c for c in checks if c["status"] == "fail"]
    assert snapshot(aws) == before


def test_failing_conditions_are_named_and_nothing_is_created(aws, install_vars):
    net = build_network(aws, cidr="10.0.1.0/28", private=True, dns=False, s3_endpoint=False, key=False)
    before = snapshot(aws)
    extra = install_vars(aws, net, circleci_secret_passphrase="Bad Pass 42!",
                         circleci_services_instance_type="m5.2xlarge")
    result = run_json(aws, extra)
    assert result.rc != 0
    assert snapshot(aws) == before
    tasks = json_results(result)
    preflight = tasks["Check the account, the network and the inputs"]
    by_name = {c["name"]: c for c in preflight["checks"]}
    assert sorted(preflight["failed_checks"]) == sorted(
        ["vpc_dns_support", "subnet_free_addresses", "key_pair", "passphrase"])
    assert "modify-vpc-attribute" in by_name["vpc_dns_support"]["reason"]
    assert "has 11 free addresses, the install needs 31" in by_name["subnet_free_addresses"]["reason"]
    assert by_name["s3_endpoint"]["status"] == "warn"
    assert by_name["services_instance_type"]["status"] == "warn"
    # The sizing warning names the gap too.
    sizing = tasks["Size the install from daily active users"]["ansible_facts"]["circleci_sizing"]
    assert sizing["warnings"] == ["Services machine instance type m5.2xlarge is below the requirement for 120 daily "
                                  "active users: 8 vCPU (needs 12), 32 GB RAM (needs 64)"]
    stop = tasks["Stop when a check failed"]
    assert stop["failed"] and "key_pair: key pair circleci does not exist" in stop["msg"]
    assert "Bad Pass 42!" not in result.stdout + result.stderr


def test_strict_sizing_fails_from_the_table_or_from_the_ec2_api(aws, install_vars):
    net = build_network(aws)
    before = snapshot(aws)
    # m5.xlarge is in the sizing table: the filter stops the play before any AWS call.
    result = run_playbook(PLAYBOOK, extra_vars=install_vars(aws, net, circleci_sizing_strict=True,
                                                            circleci_services_instance_type="m5.xlarge"),
                          env=aws.env())
    assert result.rc != 0
    assert "Services machine instance type m5.xlarge is below the requirement" in result.output()
    assert "Check the account" not in result.stdout
    # m5.large is not in the table: the filter warns, the module reads its size from EC2 and fails it.
    result = run_json(aws, install_vars(aws, net, circleci_sizing_strict=True, circleci_nomad_instance_type="m5.large"))
    assert result.rc != 0
    tasks = json_results(result)
    sizing = tasks["Size the install from daily active users"]["ansible_facts"]["circleci_sizing"]
    assert "m5.large is not in the sizing table" in sizing["warnings"][0]
    preflight = tasks["Check the account, the network and the inputs"]
    assert preflight["failed_checks"] == ["nomad_instance_type"]
    assert [c["reason"] for c in preflight["checks"] if c["name"] == "nomad_instance_type"] == [
        "Nomad client m5.large is below the requirement: 2 vCPU (needs 4), 8 GB RAM (needs 16)"]
    assert snapshot(aws) == before


def test_an_ami_whose_ubuntu_cannot_run_the_matrix_docker_fails(aws, install_vars):
    # CircleCI 2.19 runs Docker 18.09.9 on the Nomad clients: Docker has no 18.09 packages for Ubuntu 14.04.
    net = build_network(aws)
    result = run_json(aws, install_vars(aws, net, circleci_ami_id=TRUSTY, circleci_version="2.19"))
    assert result.rc != 0
    by_name = {c["name"]: c for c in json_results(result)["Check the account, the network and the inputs"]["checks"]}
    assert by_name["ami"]["status"] == "fail"
    assert "Docker has no 18.09.9 packages for Ubuntu 14.04" in by_name["ami"]["reason"]
    assert [name for name, check in by_name.items() if check["status"] == "fail"] == ["ami"]


def test_without_an_ami_the_matrix_ubuntu_is_looked_up_and_checked(aws, install_vars):
    net = build_network(aws)
    result = run_json(aws, install_vars(aws, net, circleci_ami_id=""))
    assert result.rc == 0, str(result)
    by_name = {c["name"]: c for c in json_results(result)["Check the account, the network and the inputs"]["checks"]}
    assert by_name["ami"]["status"] == "ok"
    assert f"the AMI provisioning picks, AMI {XENIAL}" in by_name["ami"]["reason"]
