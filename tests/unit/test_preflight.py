"""The preflight checks, driven directly (moto in-process for EC2, botocore's Stubber for IAM).

Every test also asserts that only read calls were made and that nothing in
the account changed.
"""
import os
import re
import stat

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from moto import mock_aws

from ansible_collections.circleci_server.aws.plugins.module_utils import preflight as pf
from tests.sandbox.paths import REPO_ROOT

REGION = "us-east-1"
READ_ONLY = re.compile(r"^(Describe|Get|List|Simulate)")
HAPPY_PASSPHRASE = "s3cretPassphrase42"


@pytest.fixture
def account(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for var in ("AWS_URL", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    with mock_aws():
        yield Account(boto3.client("ec2", region_name=REGION))


class Account:
    """A moto account and the datasets the tests build in it."""

    def __init__(self, ec2):
        self.ec2 = ec2

    def network(self, cidr="10.0.1.0/24", egress="igw", dns=True, s3_endpoint=False):
        ec2 = self.ec2
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        if not dns:
            ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": False})
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr)["Subnet"]["SubnetId"]
        rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.associate_route_table(RouteTableId=rtb, SubnetId=subnet)
        if egress == "igw":
            igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
            ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
            ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        elif egress == "nat":
            public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.200.0/24")["Subnet"]["SubnetId"]
            eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
            nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=eip)["NatGateway"]["NatGatewayId"]
            ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
        if s3_endpoint:
            ec2.create_vpc_endpoint(VpcId=vpc, ServiceName="com.amazonaws.%s.s3" % REGION, RouteTableIds=[rtb],
                                    VpcEndpointType="Gateway")
        return {"vpc_id": vpc, "subnet_id": subnet, "route_table": rtb}

    def key_pair(self, name="circleci"):
        self.ec2.create_key_pair(KeyName=name)
        return name

    def snapshot(self):
        ec2 = self.ec2
        strip = re.compile(r"'(ResponseMetadata|RequestId|HTTPHeaders|date)'")

        def clean(value):
            value = dict(value)
            value.pop("ResponseMetadata", None)
            return value

        vpcs = ec2.describe_vpcs()["Vpcs"]
        state = {
            "vpcs": vpcs,
            "dns": [clean(ec2.describe_vpc_attribute(VpcId=v["VpcId"], Attribute="enableDnsSupport")) for v in vpcs],
            "subnets": ec2.describe_subnets()["Subnets"],
            "route_tables": ec2.describe_route_tables()["RouteTables"],
            "key_pairs": ec2.describe_key_pairs()["KeyPairs"],
            "endpoints": ec2.describe_vpc_endpoints()["VpcEndpoints"],
            "instances": ec2.describe_instances()["Reservations"],
            "security_groups": ec2.describe_security_groups()["SecurityGroups"],
        }
        assert not strip.search(repr(state))
        return state


class CallLog:
    """Every API operation a client makes."""

    def __init__(self):
        self.operations = []

    def watch(self, client):
        client.meta.events.register("before-call.*.*", self._record)
        return client

    def _record(self, model, **_kwargs):
        self.operations.append(model.name)

    def writes(self):
        return [op for op in self.operations if not READ_ONLY.match(op)]


def run_checks(account, log=None, region=REGION, **kwargs):
    log = log or CallLog()
    before = account.snapshot()
    checker = pf.Preflight(
        ec2=log.watch(boto3.client("ec2", region_name=REGION)),
        iam=log.watch(boto3.client("iam", region_name=REGION)),
        sts=log.watch(boto3.client("sts", region_name=REGION)),
        region=region,
        run_command=run_command,
        get_bin_path=lambda name: None,
        retry=lambda func: func,
    )
    checks = checker.run(**kwargs)
    assert log.writes() == [], "preflight must only read"
    assert account.snapshot() == before, "preflight changed the account"
    assert [c["name"] for c in checks] == list(pf.CHECK_NAMES)
    return {c["name"]: c for c in checks}


def run_command(argv):
    import subprocess

    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def local_inputs(tmp_path):
    license_file = tmp_path / "circleci.rli"
    license_file.write_bytes(b"not a real license, only non-empty")
    terraform = tmp_path / "terraform"
    terraform.write_text('#!/bin/sh\necho \'{"terraform_version": "1.9.8", "platform": "linux_amd64"}\'\n')
    terraform.chmod(terraform.stat().st_mode | stat.S_IEXEC)
    return {"license_path": str(license_file), "secret_passphrase": HAPPY_PASSPHRASE,
            "terraform_binary": str(terraform)}


def happy_inputs(account, local_inputs, **network):
    net = account.network(**network)
    return dict(vpc_id=net["vpc_id"], subnet_id=net["subnet_id"], key_name=account.key_pair(), nomad_max=10,
                iam_actions=["ec2:RunInstances"], **local_inputs), net


def statuses(checks):
    return {name: c["status"] for name, c in checks.items()}


# -- happy paths ------------------------------------------------------------------------------

def test_public_subnet_passes(account, local_inputs):
    inputs, net = happy_inputs(account, local_inputs)
    checks = run_checks(account, **inputs)
    assert [c for c in checks.values() if c["status"] == pf.FAIL] == []
    assert statuses(checks)["vpc_dns_support"] == pf.OK
    assert "Internet gateway igw-" in checks["subnet_route"]["reason"]
    assert checks["s3_endpoint"]["status"] == pf.OK  # not needed when public
    assert checks["terraform_binary"]["reason"].endswith("version 1.9.8")
    # moto does not implement iam:SimulatePrincipalPolicy: a warning, not a crash.
    assert checks["iam_permissions"]["status"] == pf.WARN
    assert "simulation unavailable" in checks["iam_permissions"]["reason"]


def test_private_subnet_with_nat_and_s3_endpoint_passes(account, local_inputs):
    inputs, net = happy_inputs(account, local_inputs, egress="nat", s3_endpoint=True)
    checks = run_checks(account, subnet_type="private", **inputs)
    assert checks["subnet_route"]["status"] == pf.OK
    assert "private subnet: 0.0.0.0/0 through NAT nat-" in checks["subnet_route"]["reason"]
    assert checks["s3_endpoint"]["status"] == pf.OK


def test_existing_ami_and_instance_types_pass(account, local_inputs):
    inputs = happy_inputs(account, local_inputs)[0]
    ami = "ami-12c6146b"  # one of moto's built-in images
    checks = run_checks(account, ami_id=ami, services_instance_type="m5.4xlarge",
                        services_requirement={"cpus": 12, "ram_gb": 64}, nomad_instance_type="m5.xlarge",
                        nomad_requirement={"cpus": 4, "ram_gb": 16}, **inputs)
    assert statuses(checks)["ami"] == pf.OK
    assert checks["services_instance_type"]["reason"].startswith("m5.4xlarge has 16 vCPU / 64 GB RAM")
    assert statuses(checks)["nomad_instance_type"] == pf.OK


# -- one dataset per failing condition ------------------------------------------------------------

def test_dns_support_off_fails_with_the_fix(account, local_inputs):
    inputs, net = happy_inputs(account, local_inputs, dns=False)
    check = run_checks(account, **inputs)["vpc_dns_support"]
    assert check["status"] == pf.FAIL
    assert "enableDnsSupport is false on %s" % net["vpc_id"] in check["reason"]
    assert "modify-vpc-attribute --vpc-id %s --enable-dns-support" % net["vpc_id"] in check["reason"]


def test_tiny_subnet_fails_with_the_arithmetic(account, local_inputs):
    inputs, net = happy_inputs(account, local_inputs, cidr="10.0.1.0/28")
    check = run_checks(account, **inputs)["subnet_free_addresses"]
    assert check["status"] == pf.FAIL
    assert "has 11 free addresses, the install needs 31" in check["reason"]
    # Headroom is configurable: with none, 11 addresses hold 1 + 10.
    assert run_checks(account, **dict(inputs, address_headroom=0))["subnet_free_addresses"]["status"] == pf.OK


def test_private_subnet_without_nat_route_fails_naming_the_route_table(account, local_inputs):
    inputs, net = happy_inputs(account, local_inputs, egress=None)
    check = run_checks(account, **inputs)["subnet_route"]
    assert check["status"] == pf.FAIL
    assert net["route_table"] in check["reason"] and "no 0.0.0.0/0 route" in check["reason"]


def test_subnet_declared_private_but_routed_to_an_internet_gateway_fails(account, local_inputs):
    inputs, net = happy_inputs(account, local_inputs, egress="igw")
    check = run_checks(account, subnet_type="private", **inputs)["subnet_route"]
    assert check["status"] == pf.FAIL
    assert "declared private" in check["reason"] and net["route_table"] in check["reason"]


def test_private_subnet_without_s3_endpoint_warns(account, local_inputs):
    inputs, net = happy_inputs(account, local_inputs, egress="nat")
    checks = run_checks(account, **inputs)
    assert checks["s3_endpoint"]["status"] == pf.WARN
    assert "no S3 VPC endpoint" in checks["s3_endpoint"]["reason"]
    assert [c for c in checks.values() if c["status"] == pf.FAIL] == []


def test_missing_key_pair_fails(account, local_inputs):
    inputs = happy_inputs(account, local_inputs)[0]
    check = run_checks(account, **dict(inputs, key_name="nobody"))["key_pair"]
    assert check == {"name": "key_pair", "status": pf.FAIL,
                     "reason": "key pair nobody does not exist in us-east-1: create or import it there"}


def test_subnet_of_another_vpc_fails_and_skips_what_depends_on_it(account, local_inputs):
    inputs, net = happy_inputs(account, local_inputs)
    other_vpc = account.ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    checks = run_checks(account, **dict(inputs, vpc_id=other_vpc))
    assert checks["subnet"]["status"] == pf.FAIL
    assert "belongs to VPC %s, not to %s" % (net["vpc_id"], other_vpc) in checks["subnet"]["reason"]
    for dependent in ("subnet_free_addresses", "subnet_route", "s3_endpoint"):
        assert checks[dependent]["status"] == pf.SKIP


def test_missing_vpc_and_subnet_fail(account, local_inputs):
    checks = run_checks(account, vpc_id="vpc-0123456789abcdef0", subnet_id="subnet-0123456789abcdef0",
                        key_name=account.key_pair(), **local_inputs)
    assert checks["vpc"]["status"] == pf.FAIL and "does not exist" in checks["vpc"]["reason"]
    assert checks["vpc_dns_support"]["status"] == pf.SKIP
    assert checks["subnet"]["status"] == pf.FAIL


def test_missing_ami_fails(account, local_inputs):
    inputs = happy_inputs(account, local_inputs)[0]
    check = run_checks(account, ami_id="ami-0000000000000dead", **inputs)["ami"]
    assert check["status"] == pf.FAIL and "AMI ami-0000000000000dead does not exist" in check["reason"]


def test_instance_types_below_requirement_warn_or_fail_when_strict(account, local_inputs):
    inputs = happy_inputs(account, local_inputs)[0]
    args = dict(inputs, services_instance_type="m5.2xlarge", services_requirement={"cpus": 12, "ram_gb": 64})
    check = run_checks(account, **args)["services_instance_type"]
    assert check["status"] == pf.WARN
    assert check["reason"] == ("Services machine m5.2xlarge is below the requirement: "
                               "8 vCPU (needs 12), 32 GB RAM (needs 64)")
    assert run_checks(account, strict_sizing=True, **args)["services_instance_type"]["status"] == pf.FAIL
    bogus = run_checks(account, **dict(inputs, nomad_instance_type="m5.bogus"))["nomad_instance_type"]
    assert bogus["status"] == pf.FAIL and "not an instance type" in bogus["reason"]


def test_unknown_region_fails_and_skips_the_aws_checks(account, local_inputs):
    inputs = happy_inputs(account, local_inputs)[0]
    checks = run_checks(account, region="us-nowhere-1", **inputs)
    assert checks["region"]["status"] == pf.FAIL
    assert checks["region"]["reason"].startswith("us-nowhere-1 is not an EC2 region")
    assert {checks[n]["status"] for n in pf.CHECK_NAMES[1:12]} == {pf.SKIP}
    # The local checks still run.
    assert checks["passphrase"]["status"] == pf.OK


def test_region_not_opted_in_fails(account, local_inputs):
    disabled = [r["RegionName"] for r in account.ec2.describe_regions(AllRegions=True)["Regions"]
                if r["OptInStatus"] == "not-opted-in"][0]
    check = run_checks(account, region=disabled, **local_inputs)["region"]
    assert check["status"] == pf.FAIL and "not enabled for this account" in check["reason"]


# -- IAM simulation logic (botocore Stubber: moto has no simulator) ------------------------------

def stubbed_iam_checker(caller_arn, simulate_response=None, simulate_error=None):
    sts = boto3.client("sts", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
    iam = boto3.client("iam", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
    sts_stub, iam_stub = Stubber(sts), Stubber(iam)
    sts_stub.add_response("get_caller_identity", {"Arn": caller_arn, "Account": "111122223333", "UserId": "AID"})
    if simulate_error:
        iam_stub.add_client_error("simulate_principal_policy", service_error_code=simulate_error,
                                  http_status_code=403 if simulate_error == "AccessDenied" else 500)
    elif simulate_response is not None:
        iam_stub.add_response("simulate_principal_policy", simulate_response)
    sts_stub.activate()
    iam_stub.activate()
    checker = pf.Preflight(iam=iam, sts=sts, region=REGION, retry=lambda func: func)
    return checker, iam_stub


def evaluation(decisions):
    return {"EvaluationResults": [{"EvalActionName": a, "EvalDecision": d} for a, d in decisions],
            "IsTruncated": False}


def test_iam_denied_actions_fail_and_are_named():
    checker, stub = stubbed_iam_checker(
        "arn:aws:sts::111122223333:assumed-role/Deployer/session-1",
        evaluation([("ec2:RunInstances", "allowed"), ("iam:PassRole", "implicitDeny"),
                    ("s3:CreateBucket", "explicitDeny")]))
    checker.check_iam_permissions(["ec2:RunInstances", "iam:PassRole", "s3:CreateBucket"])
    stub.assert_no_pending_responses()
    check = checker.checks[-1]
    assert check["status"] == pf.FAIL
    assert check["reason"] == ("arn:aws:iam::111122223333:role/Deployer (assumed role Deployer) is denied 2 of 3 "
                               "actions the install needs (simulated for resource *): iam:PassRole, s3:CreateBucket")


def test_iam_all_allowed_passes_and_simulates_the_user_itself():
    checker, stub = stubbed_iam_checker("arn:aws:iam::111122223333:user/ops",
                                        evaluation([("ec2:RunInstances", "allowed"), ("sqs:CreateQueue", "allowed")]))
    checker.check_iam_permissions(["ec2:RunInstances", "sqs:CreateQueue"])
    assert checker.checks[-1] == {"name": "iam_permissions", "status": pf.OK,
                                  "reason": "arn:aws:iam::111122223333:user/ops is allowed all 2 actions"}


@pytest.mark.parametrize("code", ["AccessDenied", "InternalFailure"])
def test_iam_simulator_unavailable_is_a_warning(code):
    checker = stubbed_iam_checker("arn:aws:iam::111122223333:user/ops", simulate_error=code)[0]
    checker.check_iam_permissions(["ec2:RunInstances"])
    check = checker.checks[-1]
    assert check["status"] == pf.WARN and code in check["reason"] and "not checked" in check["reason"]


def test_iam_root_caller_is_not_simulated():
    checker, stub = stubbed_iam_checker("arn:aws:iam::111122223333:root")
    checker.check_iam_permissions(["ec2:RunInstances"])
    assert checker.checks[-1]["status"] == pf.WARN and "root user" in checker.checks[-1]["reason"]


def test_iam_without_action_list_warns():
    checker = pf.Preflight(region=REGION)
    checker.check_iam_permissions([])
    assert checker.checks[-1]["status"] == pf.WARN and "no action list" in checker.checks[-1]["reason"]


# -- local checks ----------------------------------------------------------------------------------

def local_check(method, *args):
    checker = pf.Preflight(run_command=run_command, get_bin_path=lambda name: None)
    getattr(checker, method)(*args)
    return checker.checks[-1]


def test_license_file(tmp_path):
    empty = tmp_path / "empty.rli"
    empty.write_bytes(b"")
    assert local_check("check_license", str(empty), None)["reason"].endswith("is empty: download the .rli again")
    assert local_check("check_license", str(tmp_path / "missing.rli"), None)["status"] == pf.FAIL
    assert local_check("check_license", str(tmp_path), None)["status"] == pf.FAIL
    assert local_check("check_license", "", None)["status"] == pf.FAIL
    assert local_check("check_license", None, None)["status"] == pf.SKIP
    assert local_check("check_license", None, "LICENSE-DATA")["status"] == pf.OK


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_license_file_fails(tmp_path):
    locked = tmp_path / "locked.rli"
    locked.write_bytes(b"x")
    locked.chmod(0)
    assert "not readable" in local_check("check_license", str(locked), None)["reason"]


@pytest.mark.parametrize("passphrase,status", [
    ("abc123XYZ", pf.OK), ("", pf.FAIL), ("with space", pf.FAIL), ("dash-ed", pf.FAIL), ("päss", pf.FAIL),
    (None, pf.SKIP),
])
def test_passphrase(passphrase, status):
    check = local_check("check_passphrase", passphrase)
    assert check["status"] == status
    if passphrase:
        assert passphrase not in check["reason"], "the passphrase must never be echoed"


def test_terraform_binary(tmp_path, local_inputs):
    assert local_check("check_terraform_binary", local_inputs["terraform_binary"])["status"] == pf.OK
    broken = tmp_path / "broken-terraform"
    broken.write_text("#!/bin/sh\necho 'segfault' >&2\nexit 3\n")
    broken.chmod(0o755)
    check = local_check("check_terraform_binary", str(broken))
    assert check["status"] == pf.FAIL and "rc=3" in check["reason"] and "segfault" in check["reason"]
    missing = local_check("check_terraform_binary", "terraform-that-is-not-installed")
    assert missing["status"] == pf.FAIL and "not an executable" in missing["reason"]
    old_style = tmp_path / "old-terraform"
    old_style.write_text("#!/bin/sh\n[ \"$2\" = -json ] && exit 1\necho 'Terraform v0.11.14'\n")
    old_style.chmod(0o755)
    assert local_check("check_terraform_binary", str(old_style))["reason"].endswith("version Terraform v0.11.14")


# -- output ----------------------------------------------------------------------------------------

def test_table_is_aligned_and_summary_counts():
    checks = [pf.result("region", pf.OK, "fine"), pf.result("subnet_free_addresses", pf.FAIL, "too small"),
              pf.result("ami", pf.SKIP, "none")]
    lines = pf.format_table(checks)
    assert lines[0].split() == ["CHECK", "STATUS", "REASON"]
    columns = {line.index(word) for line, word in zip(lines[2:], ("OK", "FAIL", "SKIP"))}
    assert columns == {lines[0].index("STATUS")}
    assert lines[3].endswith("too small")
    assert pf.summarize(checks) == {"ok": 1, "warn": 0, "fail": 1, "skip": 1}


def test_a_crashing_check_fails_that_check_only(account, local_inputs):
    checker = pf.Preflight(ec2=boto3.client("ec2", region_name=REGION), region=REGION, run_command=run_command,
                           retry=lambda func: func)

    def explode(*_args):
        raise RuntimeError("boom")

    checker.check_key_pair = explode
    checks = {c["name"]: c for c in checker.run(key_name="k", **local_inputs)}
    assert checks["key_pair"]["status"] == pf.FAIL and "RuntimeError: boom" in checks["key_pair"]["reason"]
    assert checks["passphrase"]["status"] == pf.OK


# -- the AMI's Ubuntu release against the version matrix's Docker -------------------------------

VERSIONS = yaml.safe_load((REPO_ROOT / "data" / "versions.yml").read_text())
OS_REQUIREMENTS = {key: VERSIONS[key]
                   for key in ("ubuntu_releases", "docker_ubuntu_releases", "docker_cgroup_v2_minimum")}
DOCKER_2_16 = ["17.12.1", "17.03.2"]  # Services, Nomad clients
DOCKER_2_19 = ["17.12.1", "18.09.9"]
XENIAL_FILTER = "ubuntu/images/hvm-ssd*/ubuntu-xenial-16.04-amd64-server-*"


def register_ubuntu(account, name, description=""):
    return account.ec2.register_image(Name=name, Description=description, RootDeviceName="/dev/sda1",
                                      VirtualizationType="hvm", Architecture="x86_64")["ImageId"]


def moto_canonical(account, release):
    images = account.ec2.describe_images(Owners=[pf.CANONICAL_OWNER])["Images"]
    return next(i["ImageId"] for i in images if ("-%s-amd64" % release) in i["Name"])


def ami_check(account, local_inputs, **kwargs):
    if not hasattr(account, "inputs"):
        account.inputs = happy_inputs(account, local_inputs)[0]
    inputs = account.inputs
    return run_checks(account, os_requirements=OS_REQUIREMENTS, **inputs, **kwargs)["ami"]


def test_matrix_ami_lookup_finds_xenial_and_accepts_it(account, local_inputs):
    # moto's Canonical images are 14.04 and 16.04 ones: the 2.16 lookup finds 16.04.
    check = ami_check(account, local_inputs, ami_id="", ami_name_filter=XENIAL_FILTER, docker_versions=DOCKER_2_16)
    assert check["status"] == pf.OK, check
    assert moto_canonical(account, "16.04") in check["reason"]
    assert "Ubuntu 16.04, which runs Docker 17.12.1, 17.03.2" in check["reason"]


def test_matrix_ami_lookup_that_finds_nothing_fails(account, local_inputs):
    check = ami_check(account, local_inputs, ami_id="", docker_versions=DOCKER_2_16,
                      ami_name_filter="ubuntu/images/hvm-ssd*/ubuntu-noble-24.04-amd64-server-*")
    assert check["status"] == pf.FAIL and "no Canonical AMI in us-east-1 matches" in check["reason"]


def test_trusty_runs_docker_17_but_not_18_09(account, local_inputs):
    trusty = moto_canonical(account, "14.04")
    assert ami_check(account, local_inputs, ami_id=trusty, docker_versions=DOCKER_2_16)["status"] == pf.OK
    check = ami_check(account, local_inputs, ami_id=trusty, docker_versions=DOCKER_2_19)
    assert check["status"] == pf.FAIL
    assert "Docker has no 18.09.9 packages for Ubuntu 14.04 (only for 16.04, 18.04)" in check["reason"]


@pytest.mark.parametrize("name,release", [
    ("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20240423", "24.04"),
    ("ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20230516", "22.04"),
])
def test_cgroup_v2_releases_are_refused_for_docker_before_20_10(account, local_inputs, name, release):
    ami = register_ubuntu(account, name)
    check = ami_check(account, local_inputs, ami_id=ami, docker_versions=DOCKER_2_16)
    assert check["status"] == pf.FAIL
    assert "is Ubuntu %s" % release in check["reason"]
    expected = "Docker 17.12.1 cannot run on Ubuntu %s's cgroup v2 (Docker needs 20.10 or later" % release
    assert expected in check["reason"]
    assert "leave circleci_ami_id empty" in check["reason"]


def test_bionic_has_no_docker_17_packages(account, local_inputs):
    ami = register_ubuntu(account, "custom-build-7", "Canonical, Ubuntu, 18.04 LTS, amd64 bionic image")
    check = ami_check(account, local_inputs, ami_id=ami, docker_versions=DOCKER_2_16)
    assert check["status"] == pf.FAIL
    assert "Docker has no 17.12.1 packages for Ubuntu 18.04 (only for 14.04, 16.04)" in check["reason"]
    assert "Docker has no 17.03.2 packages for Ubuntu 18.04" in check["reason"]


def test_an_ami_of_unknown_release_or_docker_warns(account, local_inputs):
    ami = register_ubuntu(account, "golden-image-2024", "our own image")
    check = ami_check(account, local_inputs, ami_id=ami, docker_versions=DOCKER_2_16)
    assert check["status"] == pf.WARN and "give no Ubuntu release" in check["reason"]
    xenial = moto_canonical(account, "16.04")
    check = ami_check(account, local_inputs, ami_id=xenial, docker_versions=["19.03.5"])
    assert check["status"] == pf.WARN and "no package data for Docker 19.03.5" in check["reason"]


def test_every_matrix_row_runs_on_its_own_ubuntu_release():
    for version, row in VERSIONS["circleci_server_versions"].items():
        problems, unknown = pf.docker_os_problems(
            row["ubuntu"], [row["services_docker"], row["nomad_client_docker"]], OS_REQUIREMENTS)
        assert (problems, unknown) == ([], []), version


@pytest.mark.parametrize("image,release", [
    ({"Name": "ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-20190628"}, "16.04"),
    ({"Name": "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20240423"}, "24.04"),
    ({"Name": "x", "Description": "Canonical, Ubuntu, 18.04 LTS, amd64 bionic image build on 2019-06-28"}, "18.04"),
    ({"Name": "amzn2-ami-hvm-2.0.20190618-x86_64-gp2", "Description": "Amazon Linux 2 AMI 2.0.20190618"}, None),
])
def test_ubuntu_release_of(image, release):
    assert pf.ubuntu_release_of(image) == release
