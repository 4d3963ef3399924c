"""An install made by the collection's earlier Terraform code keeps every
resource when the current code takes it over (moto, real Terraform and the
real AWS provider).

The earlier code is a copy of main at OLD_COMMIT (tests/integration/fixtures/
terraform_0f2a641; main before the security
groups and instance roles became for_each resources and before backend.tf lost
its settings): its *.tf files, its data/ports.yml and the backend.tf its role
rendered for the local backend. Terraform applies it in an install directory
as the old role left it; then playbooks/provision.yml runs on that directory in
check mode (it copies the current code, initialises the backend and plans),
and the plan it leaves is read back with `terraform show -json` and applied.

What a user would notice if this went wrong: a security group, IAM role or
instance profile deleted and created again (running machines lose their
groups or credentials for a while), state moved elsewhere, or a run stopping
at a `terraform init` question.
"""
import json
import time

import jinja2
import pytest

from tests.integration.infrastructure_support import install_vars, prepare_account, run, seed_override
from tests.sandbox.paths import REPO_ROOT
from tests.sandbox.terraform import Terraform

# main on 2026-12-03, before issue 14's Terraform changes.
OLD_COMMIT = "0f2a641d0bf4da0db79a4b5c3bc244e70510bf31"
PREFIX = "ci-upgrade"
# Old address -> new address (the moved blocks in security_groups.tf and iam.tf).
MOVES = {
    "aws_security_group.services": 'aws_security_group.circleci["services"]',
    "aws_security_group.nomad_clients": 'aws_security_group.circleci["nomad_clients"]',
    "aws_security_group.vm": 'aws_security_group.circleci["vm"]',
    "aws_iam_role.circleci": 'aws_iam_role.instance["services"]',
    "aws_iam_role_policy.circleci": 'aws_iam_role_policy.instance["services"]',
    "aws_iam_instance_profile.circleci": 'aws_iam_instance_profile.instance["services"]',
    "aws_iam_role.nomad_client": 'aws_iam_role.instance["nomad_client"]',
    "aws_iam_role_policy.nomad_client": 'aws_iam_role_policy.instance["nomad_client"]',
    "aws_iam_instance_profile.nomad_client": 'aws_iam_instance_profile.instance["nomad_client"]',
}
TIMES = {}


# The old files, copied from that commit (a CI clone may have no history).
OLD_CODE = REPO_ROOT / "tests/integration/fixtures/terraform_0f2a641"


def old_file(path):
    return (OLD_CODE / path).read_text()


def write_old_code(workdir):
    """What the old role put into <install dir>/terraform for the local backend."""
    listing = sorted((OLD_CODE / "roles/infrastructure/files/terraform").glob("*.tf"))
    assert listing, f"no Terraform files in {OLD_CODE}"
    for path in listing:
        (workdir / path.name).write_text(path.read_text())
    (workdir / "ports.yml").write_text(old_file("data/ports.yml"))
    template = jinja2.Environment(keep_trailing_newline=True)
    template.filters["to_json"] = json.dumps
    backend = template.from_string(old_file("roles/infrastructure/templates/backend.tf.j2")).render(
        ansible_managed="Ansible managed", infrastructure_terraform_backend="local",
        infrastructure_terraform_backend_config={})
    assert 'path = "terraform.tfstate"' in backend
    (workdir / "backend.tf").write_text(backend)


def old_tfvars(account):
    """The values the old role wrote for these inputs (the first sizing band, 2.16)."""
    values = {
        "prefix": PREFIX, "region": "us-east-1", "vpc_id": account["vpc_id"], "subnet_id": account["subnet_id"],
        "key_name": "circleci-test", "ami_id": account["ami_id"],
        "ubuntu_ami_name_filter": "ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-*",
        "root_device_name": "/dev/sda1", "services_instance_type": "m5.2xlarge", "services_root_volume_gb": 150,
        "services_http_tokens": "optional", "services_termination_protection": True,
        "services_associate_public_ip": True, "nomad_instance_type": "m5.xlarge", "nomad_root_volume_gb": 100,
        "nomad_min": 1, "nomad_max": 5, "nomad_desired": 1, "nomad_drain_heartbeat_timeout": 600,
        "admin_cidrs": [], "user_cidrs": ["0.0.0.0/0"], "external_service_cidrs": {}, "hostname": "",
        "scheme": "https", "route53_zone_id": "", "bucket_name": "", "bucket_force_destroy": False,
        "bucket_sse_algorithm": "AES256", "bucket_kms_key_id": "", "tags": {},
    }
    return "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())


def identities(server):
    """What running machines depend on: group IDs, role IDs, profile IDs, the Services machine."""
    ec2, iam = server.client("ec2"), server.client("iam")
    groups = {g["GroupName"]: g["GroupId"] for g in ec2.describe_security_groups(
        Filters=[{"Name": "tag:circleci:install", "Values": [PREFIX]}])["SecurityGroups"]}
    roles = {name: iam.get_role(RoleName=name)["Role"]["RoleId"]
             for name in (f"{PREFIX}-circleci", f"{PREFIX}-nomad-client")}
    profiles = {name: iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]["InstanceProfileId"]
                for name in roles}
    policies = {name: iam.list_role_policies(RoleName=name)["PolicyNames"] for name in roles}
    services = [i["InstanceId"] for r in ec2.describe_instances(Filters=[
        {"Name": "tag:circleci:install", "Values": [PREFIX]}, {"Name": "tag:circleci:role", "Values": ["services"]},
        {"Name": "instance-state-name", "Values": ["running"]}])["Reservations"] for i in r["Instances"]]
    return {"groups": groups, "roles": roles, "profiles": profiles, "policies": policies, "services": services}


@pytest.fixture(scope="module")
def upgraded(moto_server, terraform_bin, tmp_path_factory):
    moto_server.reset()
    account = prepare_account(moto_server, cidr="10.41.0.0/16", subnet_cidr="10.41.1.0/24")
    install_dir = tmp_path_factory.mktemp("upgrade") / PREFIX
    seed_override(install_dir, moto_server)
    install_dir.chmod(0o700)
    workdir = install_dir / "terraform"
    workdir.chmod(0o700)
    write_old_code(workdir)
    (workdir / "terraform.tfvars").write_text(old_tfvars(account))
    (workdir / "terraform.tfvars").chmod(0o600)
    env = moto_server.env()
    tf = Terraform(workdir, env=env)
    start = time.monotonic()
    tf.init()
    tf.apply()
    TIMES["old code: init + apply"] = time.monotonic() - start
    state = {"server": moto_server, "dir": install_dir, "tf": tf, "account": account,
             "before": identities(moto_server),
             "old_state": json.loads((workdir / "terraform.tfstate").read_text())}
    extra = install_vars(PREFIX, install_dir, account, circleci_nomad_desired=1)

    start = time.monotonic()
    state["check"] = run("playbooks/provision.yml", extra, env, check=True)
    TIMES["current code: check mode"] = time.monotonic() - start
    assert state["check"].rc == 0, str(state["check"])
    # The role left the current code, its tfvars and an initialised backend:
    # that plan, applied as it is, is what the next real run does.
    start = time.monotonic()
    tf.run("plan", "-input=false", "-no-color", "-out=upgrade.tfplan")
    state["plan"] = json.loads(tf.run("show", "-json", "upgrade.tfplan").stdout)
    tf.run("apply", "-input=false", "-no-color", "upgrade.tfplan")
    (workdir / "upgrade.tfplan").unlink()
    TIMES["current code: plan + apply"] = time.monotonic() - start
    state["after"] = identities(moto_server)
    state["outputs"] = {k: v["value"] for k, v in json.loads(tf.run("output", "-json").stdout).items()}
    yield state
    print("\nupgrade times in the sandbox: " + ", ".join(f"{k} {v:.1f}s" for k, v in TIMES.items()))


def test_the_current_code_initialises_the_old_install_without_a_question(upgraded):
    result = upgraded["check"]
    assert "destroy 0 resources" in result.stdout
    workdir = upgraded["dir"] / "terraform"
    # The backend keeps its state file where it was (no migration).
    backend = json.loads((workdir / ".terraform" / "terraform.tfstate").read_text())["backend"]
    assert (backend["type"], backend["config"]["path"]) == ("local", "terraform.tfstate")
    assert 'backend "local" {}' in (workdir / "backend.tf").read_text()


def test_the_plan_moves_groups_and_roles_and_destroys_nothing(upgraded):
    changes = upgraded["plan"]["resource_changes"]
    destroyed = [c["address"] for c in changes if "delete" in c["change"]["actions"]]
    assert not destroyed, f"the current code would destroy or replace {destroyed}"
    moved = {c["previous_address"]: c["address"] for c in changes if c.get("previous_address")}
    assert moved == MOVES
    by_address = {c["address"]: c["change"]["actions"] for c in changes}
    # Moved, not re-created. The only in-place edits are policy texts that changed on main
    # since OLD_COMMIT (issue 13: the Services role's explicit Deny of lifecycle actions on the
    # Nomad client group; the clients' bootstrap reading its lifecycle state and tagging
    # itself): the documents, never the roles they belong to.
    changed_in_place = {new: by_address[new] for new in MOVES.values() if by_address[new] != ["no-op"]}
    policies = {'aws_iam_role_policy.instance["services"]', 'aws_iam_role_policy.instance["nomad_client"]'}
    assert set(changed_in_place) <= policies, changed_in_place
    assert all(actions == ["update"] for actions in changed_in_place.values()), changed_in_place
    if changed_in_place:
        policy = next(c for c in changes if c["address"] == 'aws_iam_role_policy.instance["services"]')
        assert "NotTheNomadClientsLifecycle" in json.dumps(policy["change"]["after"]), policy["change"]["after"]


def test_the_apply_keeps_every_group_role_and_profile(upgraded):
    before, after = upgraded["before"], upgraded["after"]
    assert set(before["groups"]) == {f"{PREFIX}-services", f"{PREFIX}-nomad-clients", f"{PREFIX}-vm"}
    assert after == before
    outputs = upgraded["outputs"]
    assert outputs["vm_security_group_id"] == before["groups"][f"{PREFIX}-vm"]
    assert outputs["instance_profile_name"] == f"{PREFIX}-circleci"
    assert outputs["nomad_client_instance_profile_name"] == f"{PREFIX}-nomad-client"


def test_the_state_stays_in_its_file_under_the_new_addresses(upgraded):
    workdir = upgraded["dir"] / "terraform"
    state = json.loads((workdir / "terraform.tfstate").read_text())
    assert state["lineage"] == upgraded["old_state"]["lineage"]
    assert state["serial"] > upgraded["old_state"]["serial"]
    listed = set(upgraded["tf"].run("state", "list").stdout.split())
    assert set(MOVES.values()) <= listed
    assert not set(MOVES) & listed
