"""playbooks/provision.yml and teardown.yml against moto with the real
Terraform and the real AWS provider: one install shared by the assertions.

Order matters (pytest runs a module top to bottom): check mode, apply and the
second run happen once in the fixture; the teardown tests come last.
Route53 is not exercised (its moto wait loop costs ~60 s); nor is the S3
backend (its endpoint settings cannot come from an override file).
"""
import ipaddress
import json
import stat
import time
from pathlib import Path

import pytest

from tests.integration.infrastructure_support import (
    install_vars,
    prepare_account,
    run,
    seed_override,
)
from tests.sandbox.ansible import run_playbook
from tests.sandbox.terraform import Terraform

# The longest prefix the input checks accept (36): the S3 bucket
# <prefix>-circleci-<17 hex digits> then has S3's maximum of 63 characters,
# so this install proves every name built from it fits AWS's limits.
PREFIX = "ci-infra-longest-prefix-allowed-36ch"
assert len(PREFIX) == 36
CONTRACT_OUTPUTS = {
    "services_instance_id", "services_private_ip", "services_public_ip", "console_url", "app_url",
    "bucket_name", "queue_url", "iam_role_name", "instance_profile_name", "vm_security_group_id",
    "subnet_id", "region", "nomad_asg_name", "services_root_volume_id", "services_http_tokens",
    "nomad_client_iam_role_name", "nomad_client_instance_profile_name", "nomad_client_instance_profile_arn",
    "nomad_client_terminating_hook_name", "nomad_client_launching_hook_name",
}
CANONICAL = "099720109477"
OLD_TFVARS = f'# written by hand before (the vendor\'s make init)\nprefix = "{PREFIX}"\n'
TIMES = {}


def json_run(playbook, extra_vars, env):
    """A run whose output is the ansible.posix.json callback's document."""
    result = run(playbook, extra_vars, dict(env, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json"))
    assert result.rc == 0, str(result)
    return json.loads(result.stdout)


def task_result(doc, name):
    for play in doc["plays"]:
        for task in play["tasks"]:
            # Role tasks are named "<role> : <task>".
            if task["task"]["name"].split(" : ")[-1] == name:
                return task["hosts"]["localhost"]
    raise AssertionError(f"task {name!r} not in the run")


@pytest.fixture(scope="module")
def install(moto_server, terraform_bin, tmp_path_factory):
    moto_server.reset()
    account = prepare_account(moto_server)
    install_dir = tmp_path_factory.mktemp("install") / PREFIX
    seed_override(install_dir, moto_server)
    # A terraform.tfvars from before (the vendor's `make init`) gets backed up.
    old = install_dir / "terraform" / "terraform.tfvars"
    old.write_text(OLD_TFVARS)
    old.chmod(0o600)
    env = moto_server.env()
    # No AMI given: the version matrix's Ubuntu release (2.16: 16.04) is looked
    # up among Canonical's images; moto has a xenial one.
    extra = install_vars(PREFIX, install_dir, account, circleci_tags={"team": "platform"}, circleci_nomad_desired=2,
                         circleci_ami_id="", circleci_version="2.16")
    state = {"account": account, "dir": install_dir, "env": env, "vars": extra, "server": moto_server}

    state["before_check"] = moto_server.resource_counts()
    start = time.monotonic()
    state["check"] = run("playbooks/provision.yml", extra, env, check=True)
    TIMES["check mode (plan)"] = time.monotonic() - start
    state["after_check"] = moto_server.resource_counts()
    # What the configuration asks for, read from a plan: moto cannot show
    # termination protection (it never keeps it).
    workdir = install_dir / "terraform"
    if state["check"].rc == 0:
        tf = Terraform(workdir, env=env)
        tf.run("plan", "-input=false", "-no-color", "-out=intent.tfplan")
        state["plan"] = json.loads(tf.run("show", "-json", "intent.tfplan").stdout)
        (workdir / "intent.tfplan").unlink()

    start = time.monotonic()
    state["apply"] = run("playbooks/provision.yml", extra, env)
    TIMES["first apply"] = time.monotonic() - start
    assert state["apply"].rc == 0, str(state["apply"])
    start = time.monotonic()
    state["rerun"] = json_run("playbooks/provision.yml", extra, env)
    TIMES["second run"] = time.monotonic() - start
    state["root_volume_id"] = json.loads((install_dir / "outputs.json").read_text())["services_root_volume_id"]
    yield state
    print("\nprovision/teardown times in the sandbox: " + ", ".join(f"{k} {v:.1f}s" for k, v in TIMES.items()))


def test_check_mode_plans_and_creates_nothing(install):
    result = install["check"]
    assert result.rc == 0, str(result)
    assert "Terraform would create" in result.stdout
    assert "aws_instance.services" in result.stdout
    assert install["after_check"] == install["before_check"]


def test_configuration_asks_for_protection_metadata_and_a_kept_encrypted_volume(install):
    planned = {r["address"]: r["change"]["after"] for r in install["plan"]["resource_changes"]}
    services = planned["aws_instance.services"]
    assert services["disable_api_termination"] is True
    # CircleCI 2.16's containers use IMDSv1 (data/versions.yml services_http_tokens).
    assert services["metadata_options"][0]["http_tokens"] == "optional"
    assert services["metadata_options"][0]["http_put_response_hop_limit"] == 2
    root = services["root_block_device"][0]
    assert root["encrypted"] is True
    # The guide says 100 GB for <50 users; the vendor's 150 GB is the floor.
    assert root["volume_size"] == 150
    assert root["delete_on_termination"] is False
    assert planned["aws_s3_bucket.circleci"]["force_destroy"] is False
    clients = planned["aws_launch_template.nomad_clients"]["metadata_options"][0]
    assert (clients["http_tokens"], clients["http_put_response_hop_limit"]) == ("required", 1)


def test_the_ami_is_the_matrix_ubuntu_release_from_canonical(install):
    ec2 = install["server"].client("ec2")
    xenial = [i["ImageId"] for i in ec2.describe_images(Owners=[CANONICAL])["Images"]
              if "ubuntu-xenial-16.04-amd64-server" in i["Name"]]
    assert len(xenial) == 1
    instances = [i for r in ec2.describe_instances(Filters=[
        {"Name": "tag:circleci:install", "Values": [PREFIX]},
        {"Name": "instance-state-name", "Values": ["running", "pending"]},
    ])["Reservations"] for i in r["Instances"]]
    assert len(instances) == 3
    assert {i["ImageId"] for i in instances} == set(xenial)


def test_services_instance_is_tagged_imdsv2_and_encrypted(install):
    ec2 = install["server"].client("ec2")
    reservations = ec2.describe_instances(Filters=[
        {"Name": "tag:circleci:install", "Values": [PREFIX]},
        {"Name": "tag:circleci:role", "Values": ["services"]},
        {"Name": "instance-state-name", "Values": ["running"]},
    ])["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    assert len(instances) == 1
    instance = instances[0]
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags["team"] == "platform"
    assert instance["MetadataOptions"]["HttpTokens"] == "optional"
    assert instance["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    assert instance["KeyName"] == "circleci-test"
    root = next(m for m in instance["BlockDeviceMappings"] if m["DeviceName"] == instance["RootDeviceName"])
    assert root["Ebs"]["DeleteOnTermination"] is False
    volume = ec2.describe_volumes(VolumeIds=[root["Ebs"]["VolumeId"]])["Volumes"][0]
    assert volume["Encrypted"] is True
    assert volume["Size"] == 150
    groups = {g["GroupName"] for ni in instance["NetworkInterfaces"] for g in ni["Groups"]}
    assert groups == {f"{PREFIX}-services"}
    profile = instance["IamInstanceProfile"]["Arn"]
    assert profile.endswith(f"/{PREFIX}-circleci")


def test_nomad_clients_come_from_a_launch_template_asg(install):
    server = install["server"]
    groups = server.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[f"{PREFIX}-nomad-clients"])["AutoScalingGroups"]
    assert len(groups) == 1
    group = groups[0]
    assert "LaunchConfigurationName" not in group
    assert group["LaunchTemplate"]["LaunchTemplateName"] == f"{PREFIX}-nomad-clients"
    assert (group["MinSize"], group["DesiredCapacity"], group["MaxSize"]) == (1, 2, 5)
    assert all(t["PropagateAtLaunch"] for t in group["Tags"])
    ec2 = server.client("ec2")
    template = ec2.describe_launch_template_versions(
        LaunchTemplateName=f"{PREFIX}-nomad-clients", Versions=["$Latest"])["LaunchTemplateVersions"][0]
    data = template["LaunchTemplateData"]
    # IMDSv2 only, one hop: build containers cannot reach the instance's credentials.
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    assert data["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True
    # The clients' own profile, never the Services machine's.
    assert data["IamInstanceProfile"]["Name"] == f"{PREFIX}-nomad-client"
    clients = [i for r in ec2.describe_instances(Filters=[
        {"Name": "tag:circleci:role", "Values": ["nomad_client"]},
        {"Name": "tag:circleci:install", "Values": [PREFIX]},
        {"Name": "instance-state-name", "Values": ["running", "pending"]},
    ])["Reservations"] for i in r["Instances"]]
    assert len(clients) == 2
    assert all({"Key": "team", "Value": "platform"} in c["Tags"] for c in clients)


def test_bucket_has_cors_public_access_block_and_encryption(install):
    s3 = install["server"].client("s3")
    name = f"{PREFIX}-circleci-" + install["account"]["vpc_id"].removeprefix("vpc-")
    cors = s3.get_bucket_cors(Bucket=name)["CORSRules"]
    assert [rule["AllowedMethods"] for rule in cors] == [["GET"]]
    block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    assert all(block[k] for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"))
    sse = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert sse["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def _document(value):
    return json.loads(value) if isinstance(value, str) else value


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _condition(statement):
    """A statement's Condition with every value a list (IAM treats "x" and ["x"] alike)."""
    return {test: {key: _as_list(value) for key, value in pairs.items()}
            for test, pairs in statement.get("Condition", {}).items()}


def _statements(iam, role):
    names = iam.list_role_policies(RoleName=role)["PolicyNames"]
    assert names == [role]
    document = _document(iam.get_role_policy(RoleName=role, PolicyName=role)["PolicyDocument"])
    return {st["Sid"]: st for st in document["Statement"]}


def test_services_policy_is_what_the_app_does(install):
    iam = install["server"].client("iam")
    role = f"{PREFIX}-circleci"
    outputs = json.loads((install["dir"] / "outputs.json").read_text())
    account = install["server"].client("sts").get_caller_identity()["Account"]
    bucket_arn = f"arn:aws:s3:::{outputs['bucket_name']}"
    queue_arn = f"arn:aws:sqs:us-east-1:{account}:{PREFIX}-shutdown-queue"
    role_arn = f"arn:aws:iam::{account}:role/{role}"
    statements = _statements(iam, role)
    expected = {
        "ArtifactsBucket": ({"s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"}, {bucket_arn}),
        "ArtifactsObjects": ({"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                              "s3:ListMultipartUploadParts"}, {bucket_arn + "/*"}),
        "ShutdownQueue": ({"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage",
                           "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}, {queue_arn}),
        "OwnRole": ({"sts:AssumeRole", "iam:GetRole"}, {role_arn}),
        "VmServiceRead": ({"ec2:Describe*"}, {"*"}),
        "VmServiceCreate": ({"ec2:RunInstances", "ec2:CreateVolume", "ec2:CreateTags"}, {"arn:aws:ec2:us-east-1:*"}),
        "VmServiceManage": ({"ec2:StartInstances", "ec2:StopInstances", "ec2:TerminateInstances", "ec2:AttachVolume",
                             "ec2:DetachVolume", "ec2:DeleteVolume"},
                            {f"arn:aws:ec2:us-east-1:{account}:instance/*",
                             f"arn:aws:ec2:us-east-1:{account}:volume/*"}),
        "Metrics": ({"cloudwatch:PutMetricData", "autoscaling:DescribeAutoScalingGroups"}, {"*"}),
        # The app (which reads the shutdown queue for 1.0 builders) cannot end a Nomad client's drain.
        "NotTheNomadClientsLifecycle": ({"autoscaling:CompleteLifecycleAction",
                                         "autoscaling:RecordLifecycleActionHeartbeat"},
                                        {f"arn:aws:autoscaling:us-east-1:{account}:autoScalingGroup:*:"
                                         f"autoScalingGroupName/{PREFIX}-nomad-clients"}),
    }
    assert set(statements) == set(expected)
    for sid, (actions, resources) in expected.items():
        statement = statements[sid]
        assert statement["Effect"] == ("Deny" if sid == "NotTheNomadClientsLifecycle" else "Allow")
        assert set(_as_list(statement["Action"])) == actions, sid
        assert set(_as_list(statement["Resource"])) == resources, sid
    # Only vm-service's own instances and volumes (the vendor's tag condition).
    assert _condition(statements["VmServiceManage"]) == {
        "StringEquals": {"ec2:ResourceTag/ManagedBy": ["circleci-vm-service"]}}
    all_actions = {a for st in statements.values() if st["Effect"] == "Allow" for a in _as_list(st["Action"])}
    assert not {a for a in all_actions if "Lifecycle" in a}
    assert "sts:GetFederationToken" not in all_actions
    assert not {a for a in all_actions if a.endswith(":*") or a == "*"}
    profile = iam.get_instance_profile(InstanceProfileName=role)["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == [role]


def test_services_role_may_assume_itself(install):
    iam = install["server"].client("iam")
    role = iam.get_role(RoleName=f"{PREFIX}-circleci")["Role"]
    trust = _document(role["AssumeRolePolicyDocument"])["Statement"]
    account = install["server"].client("sts").get_caller_identity()["Account"]
    by_principal = {(kind, who): st for st in trust for kind, whom in st["Principal"].items() for who in _as_list(whom)}
    assert set(by_principal) == {("Service", "ec2.amazonaws.com"), ("AWS", f"arn:aws:iam::{account}:root")}
    itself = by_principal[("AWS", f"arn:aws:iam::{account}:root")]
    assert _as_list(itself["Action"]) == ["sts:AssumeRole"]
    assert all(st["Effect"] == "Allow" for st in trust)
    # Narrowed to the role itself: no other principal of the account may assume it.
    assert _condition(itself) == {"ArnEquals": {"aws:PrincipalArn": [role["Arn"]]}}


def test_nomad_clients_have_their_own_minimal_role(install):
    server = install["server"]
    iam = server.client("iam")
    outputs = json.loads((install["dir"] / "outputs.json").read_text())
    account = server.client("sts").get_caller_identity()["Account"]
    role = f"{PREFIX}-nomad-client"
    assert outputs["nomad_client_iam_role_name"] == role
    assert outputs["nomad_client_instance_profile_name"] == role
    profile = iam.get_instance_profile(InstanceProfileName=role)["InstanceProfile"]
    assert outputs["nomad_client_instance_profile_arn"] == profile["Arn"]
    assert [r["RoleName"] for r in profile["Roles"]] == [role]
    services_profile = iam.get_instance_profile(InstanceProfileName=f"{PREFIX}-circleci")["InstanceProfile"]
    assert profile["Arn"] != services_profile["Arn"]
    bucket_arn = f"arn:aws:s3:::{outputs['bucket_name']}"
    statements = _statements(iam, role)
    granted = {(a, r) for st in statements.values() for a in _as_list(st["Action"]) for r in _as_list(st["Resource"])}
    asg = f"arn:aws:autoscaling:us-east-1:{account}:autoScalingGroup:*:autoScalingGroupName/{PREFIX}-nomad-clients"
    queue_arn = f"arn:aws:sqs:us-east-1:{account}:{PREFIX}-shutdown-queue"
    assert granted == {
        ("s3:ListBucket", bucket_arn),
        ("s3:GetObject", bucket_arn + "/bootstrap/*"),
        ("autoscaling:CompleteLifecycleAction", asg),
        ("autoscaling:RecordLifecycleActionHeartbeat", asg),
        ("sqs:ReceiveMessage", queue_arn),
        ("sqs:DeleteMessage", queue_arn),
        # The bootstrap: is a launching hook holding me, and its outcome as a tag on itself only.
        ("autoscaling:DescribeAutoScalingInstances", "*"),
        ("ec2:CreateTags", f"arn:aws:ec2:us-east-1:{account}:instance/*"),
    }
    assert _condition(statements["BootstrapList"]) == {"StringLike": {"s3:prefix": ["bootstrap/*"]}}
    assert _condition(statements["TagItselfBootstrapOutcome"]) == {
        "StringEquals": {"aws:ARN": ["${ec2:SourceInstanceARN}"]},
        "ForAllValues:StringEquals": {"aws:TagKeys": ["circleci:bootstrap"]},
    }
    assert all(st["Effect"] == "Allow" for st in statements.values())
    # The clients the group launched carry it (moto propagates the template's profile, if it keeps one).
    clients = [i for r in server.client("ec2").describe_instances(Filters=[
        {"Name": "tag:circleci:role", "Values": ["nomad_client"]},
        {"Name": "tag:circleci:install", "Values": [PREFIX]},
    ])["Reservations"] for i in r["Instances"]]
    for client in clients:
        if "IamInstanceProfile" in client:
            assert client["IamInstanceProfile"]["Arn"] == profile["Arn"]


def expected_security_group_rules(subnet):
    """The rules the install must have, written out here (not read from data/ports.yml):
    user_cidrs 0.0.0.0/0 (the default), admin_cidrs empty."""
    anywhere = "0.0.0.0/0"
    tcp = "tcp"
    return {
        "services": {
            ("inbound", tcp, 80, 80, anywhere), ("inbound", tcp, 443, 443, anywhere),
            ("inbound", tcp, 7171, 7171, anywhere), ("inbound", tcp, 8081, 8081, anywhere),
            ("inbound", "udp", 8125, 8125, subnet), ("inbound", tcp, 4647, 4647, subnet),
            ("inbound", tcp, 8585, 8585, subnet), ("inbound", tcp, 3001, 3001, subnet),
            # Clients reach embedded storage whatever user_cidrs says; Nomad HTTP both ways.
            ("inbound", tcp, 7171, 7171, subnet), ("inbound", tcp, 4646, 4646, subnet),
            ("outbound", tcp, 80, 80, anywhere), ("outbound", tcp, 443, 443, anywhere),
            ("outbound", tcp, 4647, 4647, subnet), ("outbound", tcp, 8585, 8585, subnet),
            ("outbound", tcp, 7171, 7171, subnet), ("outbound", tcp, 3001, 3001, subnet),
            ("outbound", tcp, 4646, 4646, subnet),
            # vm-service drives its VMs over SSH and the Docker API.
            ("outbound", tcp, 22, 22, subnet), ("outbound", tcp, 2376, 2376, subnet),
            ("outbound", "udp", 53, 53, anywhere),
        },
        "nomad-clients": {
            ("inbound", tcp, 64535, 65535, anywhere),
            ("inbound", tcp, 4647, 4647, subnet), ("inbound", tcp, 8585, 8585, subnet),
            ("inbound", tcp, 7171, 7171, subnet), ("inbound", tcp, 3001, 3001, subnet),
            ("inbound", tcp, 4646, 4646, subnet),
            # Builds: any destination, any protocol (covers 2376 to the VMs).
            ("outbound", "-1", 0, 0, anywhere),
        },
        "vm": {
            ("inbound", tcp, 22, 22, subnet), ("inbound", tcp, 2376, 2376, subnet),
            ("inbound", tcp, 54782, 54782, anywhere),
            ("outbound", "-1", 0, 0, anywhere),
        },
    }


def _rules(group):
    found = set()
    for key, direction in (("IpPermissions", "inbound"), ("IpPermissionsEgress", "outbound")):
        for perm in group.get(key, []):
            for rng in perm.get("IpRanges", []):
                found.add((direction, perm["IpProtocol"], perm.get("FromPort", 0), perm.get("ToPort", 0),
                           rng["CidrIp"]))
    return found


def test_security_groups_are_the_expected_rules(install):
    ec2 = install["server"].client("ec2")
    groups = {g["GroupName"]: g for g in ec2.describe_security_groups(
        Filters=[{"Name": "tag:circleci:install", "Values": [PREFIX]}])["SecurityGroups"]}
    expected = expected_security_group_rules(install["account"]["subnet_cidr"])
    assert set(groups) == {f"{PREFIX}-{name}" for name in expected}
    for name, rules in expected.items():
        assert _rules(groups[f"{PREFIX}-{name}"]) == rules, name
    # Admin ports are closed by default (circleci_admin_cidrs = []).
    inbound = [r for g in groups.values() for r in _rules(g) if r[0] == "inbound"]
    assert not [r for r in inbound if r[2] <= 8800 <= r[3]]
    assert not [r for r in inbound if r[2] <= 22 <= r[3] and r[4] == "0.0.0.0/0"]


# The install guide's "Server Ports" tables (CircleCI Server 2.16,
# /work/shared/seeds/000_d8f7d06e0e4462f7.txt, lines 177-195), typed in by hand so
# that this test does not read data/ports.yml, which the code reads. Only rows
# without an "Only if ..." note. Who is where:
#   End users -> circleci_user_cidrs (default 0.0.0.0/0), Administrators ->
#   circleci_admin_cidrs (default none: closed), Nomad clients <-> Services
#   machine -> the install's subnet, GitHub / AWS API / DNS -> 0.0.0.0/0.
# "Bi-directional" rows are one inbound and one outbound rule.
GUIDE_SERVICES = [
    # (direction, protocol, port(s), who)
    ("inbound", "tcp", 80, "users"), ("inbound", "tcp", 443, "users"),         # HTTP(S) web app
    ("inbound", "tcp", 7171, "users"), ("inbound", "tcp", 8081, "users"),      # artifacts access
    ("inbound", "tcp", 22, "admins"), ("inbound", "tcp", 8800, "admins"),      # SSH, admin console
    ("inbound", "udp", 8125, "subnet"),                                        # metrics from Nomad clients
    ("inbound", "tcp", 4647, "subnet"), ("outbound", "tcp", 4647, "subnet"),   # internal, bi-directional
    ("inbound", "tcp", 8585, "subnet"), ("outbound", "tcp", 8585, "subnet"),
    ("inbound", "tcp", 7171, "subnet"), ("outbound", "tcp", 7171, "subnet"),
    ("inbound", "tcp", 3001, "subnet"), ("outbound", "tcp", 3001, "subnet"),
    ("outbound", "tcp", 80, "anywhere"), ("outbound", "tcp", 443, "anywhere"),  # GitHub, AWS API endpoints
    # Not checked: the guide's GitHub table also lists 22 into GitHub from the
    # Services machine (git access); data/ports.yml opens 22 only to the subnet.
]
GUIDE_NOMAD_CLIENTS = [
    ("inbound", "tcp", (64535, 65535), "users"),                               # SSH into builds
    ("inbound", "tcp", 80, "admins"), ("inbound", "tcp", 443, "admins"),       # CircleCI Admin API
    ("inbound", "tcp", 22, "admins"),
    ("outbound", "tcp", 22, "anywhere"),                                       # download code from GitHub
    ("inbound", "tcp", 4647, "subnet"), ("outbound", "tcp", 4647, "subnet"),
    ("inbound", "tcp", 8585, "subnet"), ("outbound", "tcp", 8585, "subnet"),
    ("inbound", "tcp", 7171, "subnet"), ("outbound", "tcp", 7171, "subnet"),
    ("inbound", "tcp", 3001, "subnet"), ("outbound", "tcp", 3001, "subnet"),
    ("outbound", "tcp", 80, "anywhere"), ("outbound", "tcp", 443, "anywhere"),  # GitHub table: API access
    ("outbound", "udp", 53, "anywhere"),                                       # DNS resolution
]


def guide_rules(rows, subnet_cidr, user_cidrs=("0.0.0.0/0",), admin_cidrs=()):
    where = {"users": list(user_cidrs), "admins": list(admin_cidrs), "subnet": [subnet_cidr],
             "anywhere": ["0.0.0.0/0"]}
    rules = set()
    for direction, protocol, ports, who in rows:
        low, high = ports if isinstance(ports, tuple) else (ports, ports)
        rules.update((direction, protocol, low, high, cidr) for cidr in where[who])
    return rules


def allows(rules, direction, protocol, port, cidr):
    """Some rule lets `port` through for every address of `cidr` (a wider CIDR counts)."""
    wanted = ipaddress.ip_network(cidr)
    # Protocol "-1" (all traffic) covers every port; AWS and moto report its ports as 0-0.
    return any(r[0] == direction and (r[1] == "-1" or (r[1] == protocol and r[2] <= port <= r[3]))
               and wanted.subnet_of(ipaddress.ip_network(r[4])) for r in rules)


def test_security_groups_open_the_install_guides_ports(install):
    ec2 = install["server"].client("ec2")
    groups = {g["GroupName"]: _rules(g) for g in ec2.describe_security_groups(
        Filters=[{"Name": "tag:circleci:install", "Values": [PREFIX]}])["SecurityGroups"]}
    subnet = install["account"]["subnet_cidr"]
    for group, rows in ((f"{PREFIX}-services", GUIDE_SERVICES), (f"{PREFIX}-nomad-clients", GUIDE_NOMAD_CLIENTS)):
        missing = [rule for rule in sorted(guide_rules(rows, subnet))
                   if not allows(groups[group], rule[0], rule[1], rule[2], rule[4])
                   or not allows(groups[group], rule[0], rule[1], rule[3], rule[4])]
        assert not missing, f"{group} lacks the install guide's rules {missing}"
    # Admin ports (SSH, the admin console, the clients' Admin API) are open to
    # nobody by default (circleci_admin_cidrs = []), least of all to the world.
    for group, port in ((f"{PREFIX}-services", 22), (f"{PREFIX}-services", 8800),
                        (f"{PREFIX}-nomad-clients", 22), (f"{PREFIX}-nomad-clients", 80),
                        (f"{PREFIX}-nomad-clients", 443)):
        opened = [r for r in groups[group] if r[0] == "inbound" and r[2] <= port <= r[3]]
        assert not opened, f"{group} opens admin port {port}: {opened}"


def test_outputs_are_a_fact_and_a_file(install):
    server = install["server"]
    outputs = json.loads((install["dir"] / "outputs.json").read_text())
    assert set(outputs) == CONTRACT_OUTPUTS
    fact = task_result(install["rerun"], "Share the outputs with the rest of the run")["ansible_facts"]
    assert fact["circleci_infrastructure"] == outputs
    instance = server.client("ec2").describe_instances(
        InstanceIds=[outputs["services_instance_id"]])["Reservations"][0]["Instances"][0]
    assert outputs["services_private_ip"] == instance["PrivateIpAddress"]
    assert outputs["console_url"] == f"https://{instance['PublicIpAddress']}:8800"
    assert outputs["app_url"] == f"https://{instance['PublicIpAddress']}"
    assert outputs["queue_url"] in server.client("sqs").list_queues()["QueueUrls"]
    assert outputs["subnet_id"] == install["account"]["subnet_id"]
    assert outputs["region"] == "us-east-1"


def test_second_run_changes_nothing(install):
    doc = install["rerun"]
    assert doc["stats"]["localhost"]["changed"] == 0
    assert task_result(doc, "Apply the Terraform configuration")["changed"] is False


def test_tfvars_is_private_backed_up_and_free_of_credentials(install):
    workdir = install["dir"] / "terraform"
    tfvars = workdir / "terraform.tfvars"
    assert stat.S_IMODE(tfvars.stat().st_mode) == 0o600
    text = tfvars.read_text()
    assert f'prefix                          = "{PREFIX}"' in text
    for secret in (install["env"]["AWS_ACCESS_KEY_ID"], install["env"]["AWS_SECRET_ACCESS_KEY"],
                   install["vars"]["circleci_secret_passphrase"]):
        assert secret not in text
    assert "access_key" not in text and "secret_key" not in text
    backups = sorted(workdir.glob("terraform.tfvars.*~"))
    # Rendered three times (check, apply, second run), changed once: one backup.
    assert len(backups) == 1
    assert backups[0].read_text() == OLD_TFVARS
    assert stat.S_IMODE(backups[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(install["dir"].stat().st_mode) == 0o700


def test_scale_in_is_held_by_a_terminating_hook_that_notifies_the_shutdown_queue(install):
    server = install["server"]
    iam = server.client("iam")
    outputs = json.loads((install["dir"] / "outputs.json").read_text())
    account = server.client("sts").get_caller_identity()["Account"]
    queue_arn = f"arn:aws:sqs:us-east-1:{account}:{PREFIX}-shutdown-queue"
    hooks = server.client("autoscaling").describe_lifecycle_hooks(
        AutoScalingGroupName=f"{PREFIX}-nomad-clients")["LifecycleHooks"]
    by_name = {h["LifecycleHookName"]: h for h in hooks}
    assert set(by_name) == {f"{PREFIX}-nomad-client-launching", f"{PREFIX}-nomad-client-terminating"}
    # The launching hook holds a new instance until its bootstrap completes it; one that never
    # answers is abandoned (the group replaces it), not put in service half-configured.
    launching = by_name[f"{PREFIX}-nomad-client-launching"]
    assert outputs["nomad_client_launching_hook_name"] == launching["LifecycleHookName"]
    assert launching["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_LAUNCHING"
    assert launching["DefaultResult"] == "ABANDON"
    hook = by_name[f"{PREFIX}-nomad-client-terminating"]
    # The name the nomad_client drain agent derives from the circleci:install tag.
    assert outputs["nomad_client_terminating_hook_name"] == hook["LifecycleHookName"]
    assert hook["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    assert hook["DefaultResult"] == "CONTINUE"
    assert hook["HeartbeatTimeout"] == 600
    assert hook["NotificationTargetARN"] == queue_arn
    role = iam.get_role(RoleName=f"{PREFIX}-nomad-lifecycle")["Role"]
    assert hook["RoleARN"] == role["Arn"]
    # Auto Scaling, and nothing else, assumes the role; it may only post to that queue.
    trust = _document(role["AssumeRolePolicyDocument"])["Statement"]
    assert [(st["Effect"], st["Principal"], _as_list(st["Action"])) for st in trust] == [
        ("Allow", {"Service": "autoscaling.amazonaws.com"}, ["sts:AssumeRole"])]
    statements = _statements(iam, f"{PREFIX}-nomad-lifecycle")
    granted = {(a, r) for st in statements.values() for a in _as_list(st["Action"]) for r in _as_list(st["Resource"])}
    assert granted == {("sqs:SendMessage", queue_arn), ("sqs:GetQueueUrl", queue_arn)}
    assert all(st["Effect"] == "Allow" and not st.get("Condition") for st in statements.values())


def test_a_rerun_keeps_the_desired_capacity_scaling_set(install):
    server = install["server"]
    autoscaling = server.client("autoscaling")
    group_name = f"{PREFIX}-nomad-clients"
    # The install asked for 2 (min 1, max 5); someone scales to 3 through the API.
    autoscaling.set_desired_capacity(AutoScalingGroupName=group_name, DesiredCapacity=3)
    start = time.monotonic()
    doc = json_run("playbooks/provision.yml", install["vars"], install["env"])
    TIMES["run after an API scale-out"] = time.monotonic() - start
    assert doc["stats"]["localhost"]["changed"] == 0
    assert task_result(doc, "Apply the Terraform configuration")["changed"] is False
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])["AutoScalingGroups"][0]
    assert (group["MinSize"], group["DesiredCapacity"], group["MaxSize"]) == (1, 3, 5)
    assert len(group["Instances"]) == 3


def test_teardown_refuses_without_confirmation(install):
    before = install["server"].resource_counts()
    for confirm in (None, "someone-else"):
        extra = dict(install["vars"])
        if confirm:
            extra["circleci_teardown_confirm"] = confirm
        result = run_playbook("playbooks/teardown.yml", extra_vars=extra, env=install["env"])
        assert result.rc != 0
        assert "refusing to tear down" in result.stdout
    assert install["server"].resource_counts() == before


def test_teardown_keeps_the_bucket_by_default(install):
    server = install["server"]
    # Only the prefix, the confirmation and where the install lives are needed.
    extra = {k: install["vars"][k] for k in ("circleci_prefix", "circleci_install_dir", "circleci_terraform_binary")}
    extra["circleci_teardown_confirm"] = PREFIX
    start = time.monotonic()
    result = run("playbooks/teardown.yml", extra, install["env"])
    TIMES["teardown (bucket kept)"] = time.monotonic() - start
    assert result.rc == 0, str(result)
    counts = server.resource_counts()
    assert counts["buckets"] == 1
    assert {k: v for k, v in counts.items() if k not in ("buckets", "vpcs")} == {
        k: 0 for k in counts if k not in ("buckets", "vpcs")}
    assert not (install["dir"] / "outputs.json").exists()
    # The Services root volume outlived its instance, and the teardown said so.
    volume_id = install["root_volume_id"]
    assert f"Kept the Services root volume {volume_id}" in result.stdout
    volume = server.client("ec2").describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    assert volume["State"] == "available"


def test_teardown_with_delete_bucket_leaves_moto_empty(install):
    server = install["server"]
    bucket = server.client("s3").list_buckets()["Buckets"][0]["Name"]
    server.client("s3").put_object(Bucket=bucket, Key="artifacts/build-1.txt", Body=b"kept until asked")
    extra = dict(install["vars"], circleci_teardown_confirm=PREFIX, circleci_teardown_delete_bucket=True)
    start = time.monotonic()
    result = run("playbooks/teardown.yml", extra, install["env"])
    TIMES["teardown (bucket deleted)"] = time.monotonic() - start
    assert result.rc == 0, str(result)
    ec2 = server.client("ec2")
    ec2.delete_subnet(SubnetId=install["account"]["subnet_id"])
    ec2.delete_vpc(VpcId=install["account"]["vpc_id"])
    assert server.resource_counts() == {k: 0 for k in server.resource_counts()}
    state = json.loads((Path(install["dir"]) / "terraform" / "terraform.tfstate").read_text())
    assert state["resources"] == []
