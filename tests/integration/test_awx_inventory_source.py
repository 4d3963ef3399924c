"""The AWX inventory source file, parsed by the collection's inventory plugin against moto.

AWX runs `ansible-inventory -i awx/inventory/circleci.circleci_ec2.yml` in the
execution environment with the source's variables as environment variables
(CIRCLECI_INSTALL, CIRCLECI_REGION) and the AWS credential's keys; this test
does the same against emulated EC2.
"""
import pytest

from tests.sandbox.ansible import run_inventory
from tests.sandbox.paths import REPO_ROOT

SOURCE = REPO_ROOT / "awx" / "inventory" / "circleci.circleci_ec2.yml"
PLUGIN = REPO_ROOT / "plugins" / "inventory" / "circleci_ec2.py"

# What AWX sets for an inventory update: a source that does not parse fails the update.
AWX_INVENTORY_ENV = {"ANSIBLE_INVENTORY_UNPARSED_FAILED": "True", "ANSIBLE_INVENTORY_ENABLED": "auto"}

pytestmark = pytest.mark.skipif(not PLUGIN.exists(), reason="the circleci_ec2 inventory plugin is not in this tree yet")


def launch(ec2, install, role):
    """An instance as the install's Terraform makes it: the Services machine with the install's
    instance profile, a client launched by the install's ASG (the plugin trusts nothing less)."""
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    tags = [{"Key": "circleci:install", "Value": install}, {"Key": "circleci:role", "Value": role}]
    params = {}
    if role == "services":
        params["IamInstanceProfile"] = {"Name": f"{install}-circleci"}
    else:
        # EC2 reserves "aws:" tags for itself; moto accepts this one, standing for the ASG's launch.
        tags.append({"Key": "aws:autoscaling:groupName", "Value": f"{install}-nomad-clients"})
    reservation = ec2.run_instances(
        ImageId=image, InstanceType="m5.xlarge", MinCount=1, MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}], **params,
    )
    return reservation["Instances"][0]["InstanceId"]


def instance_profile(iam, name):
    iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")
    iam.create_instance_profile(InstanceProfileName=name)
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)


def test_source_finds_the_install_named_in_the_source_variables(aws):
    ec2 = aws.client("ec2")
    for install in ("awx-demo", "someone-else"):
        instance_profile(aws.client("iam"), f"{install}-circleci")
    services = launch(ec2, "awx-demo", "services")
    client = launch(ec2, "awx-demo", "nomad_client")
    other = launch(ec2, "someone-else", "services")

    env = aws.env()
    env.update(CIRCLECI_INSTALL="awx-demo", CIRCLECI_REGION=aws.region, **AWX_INVENTORY_ENV)
    result, inventory = run_inventory(SOURCE, env=env)
    assert inventory is not None, str(result)

    hosts = set(inventory["_meta"]["hostvars"])
    assert other not in hosts, "hosts of another install leaked into this source"
    assert {services, client} <= hosts
    assert services in inventory["circleci_services"]["hosts"]
    assert client in inventory["circleci_nomad_clients"]["hosts"]
    assert set(inventory["circleci_install_awx_demo"]["hosts"]) == {services, client}
    install = inventory["_meta"]["hostvars"][services]["circleci_install"]
    # ansible-inventory --list writes values the plugin marked unsafe as {"__ansible_unsafe": value}.
    assert (install.get("__ansible_unsafe") if isinstance(install, dict) else install) == "awx-demo"


def test_source_without_its_variables_fails_loudly(aws):
    """An AWX source created without source_vars must not import an empty inventory silently."""
    env = aws.env()
    env.pop("CIRCLECI_INSTALL", None)
    env.update(CIRCLECI_REGION=aws.region, **AWX_INVENTORY_ENV)
    result, _inventory = run_inventory(SOURCE, env=env)
    assert result.rc != 0, "an empty install name should fail the inventory update"
