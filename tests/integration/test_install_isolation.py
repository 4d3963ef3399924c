"""Two installs in one inventory (the AWX case): each stage works on its own install only.

Both installs are built in moto the way their Terraform builds them (a
Services instance with the install's instance profile, Nomad clients from the
install's Auto Scaling group), next to an instance that merely carries
install A's tags. The collection's inventory plugin lists them; then, per
install:
  - `ansible-playbook --list-hosts` of every stage names only that install's
    hosts (never the other install's, never the impostor);
  - inventory.yml really runs (hosts reached over a local connection) and
    touches only that install's hosts.
And the install directory on the controller belongs to one install: a stage or
a teardown pointed at another install's directory is refused before it acts.
"""
import json
import re
import textwrap

import pytest

from tests.sandbox.ansible import run_playbook
from tests.sandbox.paths import REPO_ROOT

INSTALLS = ("iso-a", "iso-b")
STAGES = ["site.yml", "playbooks/configure_hosts.yml", "playbooks/configure_app.yml", "playbooks/validate.yml",
          "playbooks/inventory.yml"]
PLAY = re.compile(r"^\s*play #\d+ \((?P<pattern>[^)]*)\): (?P<name>.*?)\s+TAGS:.*?\n\s*pattern: .*?\n"
                  r"\s*hosts \((?P<count>\d+)\):\n(?P<hosts>(?:\s{6,}\S+\n?)*)", re.M)


def _install(aws, prefix, clients=2):
    ec2, iam, autoscaling = aws.client("ec2"), aws.client("iam"), aws.client("autoscaling")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    iam.create_role(RoleName=f"{prefix}-circleci", AssumeRolePolicyDocument="{}")
    iam.create_instance_profile(InstanceProfileName=f"{prefix}-circleci")
    iam.add_role_to_instance_profile(InstanceProfileName=f"{prefix}-circleci", RoleName=f"{prefix}-circleci")
    tags = [{"Key": "circleci:install", "Value": prefix}]
    services = ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, InstanceType="m5.2xlarge",
        IamInstanceProfile={"Name": f"{prefix}-circleci"},
        TagSpecifications=[{"ResourceType": "instance",
                            "Tags": tags + [{"Key": "circleci:role", "Value": "services"}]}],
    )["Instances"][0]["InstanceId"]
    ec2.create_launch_template(LaunchTemplateName=f"{prefix}-nomad-clients",
                               LaunchTemplateData={"ImageId": image, "InstanceType": "m5.xlarge"})
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=f"{prefix}-nomad-clients",
        LaunchTemplate={"LaunchTemplateName": f"{prefix}-nomad-clients", "Version": "$Latest"},
        MinSize=clients, MaxSize=clients, DesiredCapacity=clients, AvailabilityZones=[f"{aws.region}a"],
        Tags=[{"Key": "circleci:install", "Value": prefix, "PropagateAtLaunch": True},
              {"Key": "circleci:role", "Value": "nomad_client", "PropagateAtLaunch": True}],
    )
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[f"{prefix}-nomad-clients"])
    return {"services": [services], "clients": [i["InstanceId"] for i in group["AutoScalingGroups"][0]["Instances"]]}


@pytest.fixture
def two_installs(aws, tmp_path):
    installs = {prefix: _install(aws, prefix) for prefix in INSTALLS}
    ec2 = aws.client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    # Anyone allowed ec2:CreateTags can make this: tags alone must not make it install A's Services machine.
    impostor = ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [
            {"Key": "circleci:install", "Value": "iso-a"}, {"Key": "circleci:role", "Value": "services"}]}],
    )["Instances"][0]["InstanceId"]
    inventory = tmp_path / "two.circleci_ec2.yml"
    inventory.write_text(textwrap.dedent(f"""\
        plugin: circleci_server.aws.circleci_ec2
        regions: [{aws.region}]
        installs: [iso-a, iso-b]
        trust:
          iso-a: {{install_dir: {tmp_path / 'iso-a'}}}
          iso-b: {{install_dir: {tmp_path / 'iso-b'}}}
        compose:
          # Stand-in connection: the instances are moto's; inventory.yml only has to reach them.
          ansible_connection: "'local'"
          ansible_python_interpreter: "'{REPO_ROOT / '.venv' / 'bin' / 'python'}'"
        """))
    return installs, impostor, inventory


def _stage_vars(prefix, tmp_path):
    return {"circleci_prefix": prefix, "circleci_install_dir": str(tmp_path / prefix)}


def _listed_hosts(output):
    """pattern -> set of hosts from `ansible-playbook --list-hosts`."""
    plays = {}
    for match in PLAY.finditer(output):
        hosts = set(match["hosts"].split())
        assert len(hosts) == int(match["count"]), output
        plays[f"{match['name']} [{match['pattern']}]"] = hosts
    assert plays, output
    return plays


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_targets_only_its_install(aws, two_installs, tmp_path, stage):
    installs, impostor, inventory = two_installs
    env = aws.env()
    env["ANSIBLE_INVENTORY_UNPARSED_FAILED"] = "True"
    for prefix in INSTALLS:
        other = next(p for p in INSTALLS if p != prefix)
        mine = set(installs[prefix]["services"] + installs[prefix]["clients"])
        theirs = set(installs[other]["services"] + installs[other]["clients"])
        result = run_playbook(REPO_ROOT / stage, inventory=inventory, extra_vars=_stage_vars(prefix, tmp_path),
                              env=env, extra_args=["--list-hosts"])
        assert result.rc == 0, str(result)
        plays = _listed_hosts(result.stdout)
        targeted = set().union(*plays.values()) - {"localhost"}
        assert targeted, f"{stage} targets no host of {prefix}:\n{result.stdout}"
        assert targeted <= mine, f"{stage} for {prefix} targets {sorted(targeted - mine)}:\n{result.stdout}"
        assert not targeted & theirs and impostor not in targeted
        for play, hosts in plays.items():
            if "circleci_services" in play and "circleci_nomad_clients" not in play:
                assert hosts - {"localhost"} == set(installs[prefix]["services"]), play
        assert f"refused {impostor} (circleci:install=iso-a, circleci:role=services)" in " ".join(
            result.stderr.split()), result.stderr


def test_the_inventory_stage_runs_on_its_install_only(aws, two_installs, tmp_path):
    installs, impostor, inventory = two_installs
    prefix = "iso-b"
    result = run_playbook(REPO_ROOT / "playbooks" / "inventory.yml", inventory=inventory,
                          extra_vars=dict(_stage_vars(prefix, tmp_path), circleci_connect_timeout=30),
                          env=aws.env())
    assert result.rc == 0, str(result)
    reached = set(result.recap) - {"localhost"}
    assert reached == set(installs[prefix]["services"] + installs[prefix]["clients"]), result.stdout
    assert f"Install {prefix}: Services machine {installs[prefix]['services'][0]};" in " ".join(result.stdout.split())


# --- the install directory belongs to one install ------------------------------------------------------------

def _foreign_dir(tmp_path, how):
    install_dir = tmp_path / "someone-elses"
    (install_dir / "terraform").mkdir(parents=True)
    if how == "marker":
        (install_dir / "circleci_install.json").write_text(json.dumps({"circleci_prefix": "prod-b"}))
    else:  # a directory provisioned before the marker existed: its tfvars name the install
        (install_dir / "terraform" / "terraform.tfvars").write_text(
            '# managed\nprefix                          = "prod-b"\nregion = "us-east-1"\n')
    return install_dir


@pytest.mark.parametrize("how", ["marker", "tfvars"])
@pytest.mark.parametrize("playbook", ["playbooks/teardown.yml", "playbooks/validate.yml",
                                      "playbooks/inventory.yml", "playbooks/inputs.yml"])
def test_a_directory_of_another_install_is_refused(aws, tmp_path, how, playbook):
    install_dir = _foreign_dir(tmp_path, how)
    result = run_playbook(REPO_ROOT / playbook, env=aws.env(), extra_vars={
        "circleci_prefix": "prod-a", "circleci_install_dir": str(install_dir),
        "circleci_teardown_confirm": "prod-a", "check_inputs_groups": []})
    assert result.rc != 0, str(result)
    assert (f"circleci_install_dir {install_dir} belongs to install 'prod-b'" in " ".join(result.stdout.split())
            and "not to circleci_prefix 'prod-a'" in result.stdout), result.stdout
    assert "TASK [circleci_server.aws.infrastructure" not in result.stdout
    assert aws.is_empty()


def test_the_provision_stage_claims_its_directory_and_a_rerun_accepts_it(aws, tmp_path):
    """The claim (what provision.yml runs before Terraform), then the check every stage makes."""
    install_dir = tmp_path / "mine"
    playbook = tmp_path / "claim.yml"
    playbook.write_text(textwrap.dedent(f"""\
        - hosts: localhost
          connection: local
          gather_facts: false
          vars:
            ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
          tasks:
            - ansible.builtin.import_tasks: {REPO_ROOT / 'playbooks' / 'tasks' / 'check_install_dir.yml'}
              vars:
                check_install_dir_claim: true
        """))
    variables = {"circleci_prefix": "prod-a", "circleci_install_dir": str(install_dir)}
    assert run_playbook(playbook, extra_vars=variables, env=aws.env()).rc == 0
    marker = install_dir / "circleci_install.json"
    assert json.loads(marker.read_text()) == {"circleci_prefix": "prod-a"}
    assert oct(marker.stat().st_mode & 0o777) == "0o600" and oct(install_dir.stat().st_mode & 0o777) == "0o700"
    assert run_playbook(REPO_ROOT / "playbooks" / "inputs.yml", extra_vars=dict(
        variables, check_inputs_groups=[]), env=aws.env()).rc == 0
    refused = run_playbook(REPO_ROOT / "playbooks" / "inputs.yml", extra_vars=dict(
        variables, circleci_prefix="prod-b", check_inputs_groups=[]), env=aws.env())
    assert refused.rc != 0 and "belongs to install 'prod-a'" in refused.stdout


def test_a_prefix_the_stages_cannot_see_is_an_error(aws, tmp_path):
    """`hosts:` patterns see extra vars, not inventory vars: a prefix set in the inventory would make
    every host play match nothing and "pass"; the input checks refuse it instead."""
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  vars:\n    circleci_prefix: prod-a\n  hosts:\n    localhost:\n"
                         "      ansible_connection: local\n")
    result = run_playbook(REPO_ROOT / "playbooks" / "validate.yml", inventory=inventory, env=aws.env(),
                          extra_vars={"circleci_install_dir": str(tmp_path / "install")})
    assert result.rc != 0, str(result)
    assert "circleci_prefix must be given as an extra variable" in result.stdout, result.stdout
