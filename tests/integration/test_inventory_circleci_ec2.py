"""circleci_server.aws.circleci_ec2 through the real `ansible-inventory --list` against moto.

One dataset for the module (seeded once): two installs in two regions, an ASG
of Nomad clients, stopped / terminated / untagged / foreign instances, and
tagged instances that do not belong to their install (no instance profile,
no ASG, a role Terraform never makes). Every AWS call goes through a counting
proxy, so the tests can assert how many calls a run made.
"""
import json
import textwrap
import uuid

import pytest

from tests.integration.aws_proxy import REJECTED_ACCESS_KEY, CountingProxy
from tests.sandbox.ansible import plain_values, run_inventory
from tests.sandbox.aws import DUMMY_ACCESS_KEY

EAST, WEST = "us-east-1", "us-west-2"
PLUGIN = "circleci_server.aws.circleci_ec2"


def _tags(**tags):
    return [{"ResourceType": "instance", "Tags": [{"Key": k.replace("__", ":"), "Value": v} for k, v in tags.items()]}]


def _run(ec2, ami, count=1, subnet=None, profile=None, asg=None, **tags):
    params = {"ImageId": ami, "MinCount": count, "MaxCount": count, "InstanceType": "m5.large"}
    if asg:
        # EC2 refuses user-set "aws:" tags; moto accepts them, which lets these stand for clients an
        # ASG launched (the prod clients below come from a real moto ASG).
        tags["aws__autoscaling__groupName"] = asg
    if tags:
        params["TagSpecifications"] = _tags(**tags)
    if subnet:
        params["SubnetId"] = subnet
    if profile:
        params["IamInstanceProfile"] = {"Name": profile}
    return [i["InstanceId"] for i in ec2.run_instances(**params)["Instances"]]


def _instance_profile(iam, name):
    iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")
    iam.create_instance_profile(InstanceProfileName=name)
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)


def _ami(ec2):
    return ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]


@pytest.fixture(scope="module")
def dataset(moto_server):
    """Seed both regions; returns what each group must contain (instance IDs)."""
    moto_server.reset()
    east, west = moto_server.client("ec2", EAST), moto_server.client("ec2", WEST)
    ami_east, ami_west = _ami(east), _ami(west)

    iam = moto_server.client("iam", EAST)
    _instance_profile(iam, "prod-circleci")
    _instance_profile(iam, "staging-2-circleci")

    # prod (us-east-1): Services in a private subnet (no public IP), Nomad clients from an ASG.
    vpc = east.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    private_subnet = east.create_subnet(VpcId=vpc, CidrBlock="10.40.1.0/24", AvailabilityZone="us-east-1b")
    subnet_id = private_subnet["Subnet"]["SubnetId"]
    prod_services = _run(east, ami_east, subnet=subnet_id, profile="prod-circleci",
                         circleci__install="prod", circleci__role="services", Name="prod-services")
    east.create_launch_template(
        LaunchTemplateName="prod-nomad",
        LaunchTemplateData={"ImageId": ami_east, "InstanceType": "m5.xlarge"},
    )
    autoscaling = moto_server.client("autoscaling", EAST)
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="prod-nomad-clients",
        LaunchTemplate={"LaunchTemplateName": "prod-nomad", "Version": "$Latest"},
        MinSize=3, MaxSize=3, DesiredCapacity=3, VPCZoneIdentifier=subnet_id,
        Tags=[
            {"Key": "circleci:install", "Value": "prod", "PropagateAtLaunch": True},
            {"Key": "circleci:role", "Value": "nomad_client", "PropagateAtLaunch": True},
        ],
    )
    asg = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["prod-nomad-clients"])
    prod_asg_clients = [i["InstanceId"] for i in asg["AutoScalingGroups"][0]["Instances"]]
    # Five stopped clients, each its own reservation (moto pages by reservation).
    stopped = [
        i for _ in range(5) for i in _run(east, ami_east, subnet=subnet_id, asg="prod-nomad-clients",
                                          circleci__install="prod", circleci__role="nomad_client")
    ]
    east.stop_instances(InstanceIds=stopped)
    terminated = _run(east, ami_east, subnet=subnet_id, asg="prod-nomad-clients",
                      circleci__install="prod", circleci__role="nomad_client")
    east.terminate_instances(InstanceIds=terminated)
    _run(east, ami_east)  # untagged
    _run(east, ami_east, circleci__install="someone-else", circleci__role="services")

    # Tagged for prod, but not prod's: what anyone allowed ec2:CreateTags could make.
    impostors = {
        "roleless": _run(east, ami_east, subnet=subnet_id, circleci__install="prod", Name="prod-bastion")[0],
        "services_without_profile": _run(east, ami_east, subnet=subnet_id, circleci__install="prod",
                                         circleci__role="services", Name="build-vm")[0],
        "client_without_asg": _run(east, ami_east, subnet=subnet_id, circleci__install="prod",
                                   circleci__role="nomad_client")[0],
        "client_of_another_asg": _run(east, ami_east, subnet=subnet_id, asg="someone-elses-nomad-clients",
                                      circleci__install="prod", circleci__role="nomad_client")[0],
        "client_in_another_vpc": _run(east, ami_east, asg="prod-nomad-clients", circleci__install="prod",
                                      circleci__role="nomad_client")[0],
    }

    # staging-2 (us-west-2): Services and two Nomad clients with public IPs.
    staging_services = _run(west, ami_west, profile="staging-2-circleci",
                            circleci__install="staging-2", circleci__role="services")
    staging_clients = _run(west, ami_west, count=2, asg="staging-2-nomad-clients",
                           circleci__install="staging-2", circleci__role="nomad_client")
    _run(west, ami_west, Name="untagged-west")

    return {
        "prod_services": prod_services,
        "prod_clients": prod_asg_clients,
        "impostors": impostors,
        "subnet_id": subnet_id,
        "vpc_id": vpc,
        "staging_services": staging_services,
        "staging_clients": staging_clients,
        "stopped": stopped,
        "terminated": terminated,
    }


@pytest.fixture(scope="module")
def proxy(moto_server, dataset):
    with CountingProxy(moto_server.url) as running:
        yield running


@pytest.fixture
def inventory(tmp_path, proxy, moto_server):
    """Write a config, run ansible-inventory through the proxy; returns (result, data, calls)."""

    def run(body, name="test.circleci_ec2.yml", access_key=DUMMY_ACCESS_KEY, extra_args=(), env_extra=None):
        path = tmp_path / name
        path.write_text(f"plugin: {PLUGIN}\n" + textwrap.dedent(body))
        env = moto_server.env()
        env.update(
            AWS_ACCESS_KEY_ID=access_key,
            AWS_URL=proxy.url,
            AWS_ENDPOINT_URL=proxy.url,
            ANSIBLE_INVENTORY_UNPARSED_FAILED="True",
            ANSIBLE_INVENTORY_ENABLED=PLUGIN,
        )
        for key, value in (env_extra or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        proxy.reset()
        result, data = run_inventory(path, env=env, extra_args=extra_args)
        return result, plain_values(data), list(proxy.calls)

    return run


def _members(data, group):
    return set(data.get(group, {}).get("hosts", []))


TWO_INSTALLS = """
    regions: [us-east-1, us-west-2]
    installs: [prod, staging-2]
"""


def _refused(result):
    """instance id -> reason, from the plugin's warnings."""
    refused = {}
    for line in " ".join(result.stderr.split()).split("[WARNING]: "):
        if line.startswith("circleci_ec2: refused "):
            instance_id = line.split()[2]
            refused[instance_id] = line.strip()
    return refused


def test_groups_and_hostvars_for_two_installs(inventory, dataset, moto_server):
    result, data, calls = inventory(TWO_INSTALLS)
    assert result.rc == 0, result

    d = dataset
    assert _members(data, "circleci_services") == set(d["prod_services"] + d["staging_services"])
    assert _members(data, "circleci_nomad_clients") == set(d["prod_clients"] + d["staging_clients"])
    assert _members(data, "circleci_install_prod") == set(d["prod_services"] + d["prod_clients"])
    assert _members(data, "circleci_install_staging_2") == set(d["staging_services"] + d["staging_clients"])
    hostvars = data["_meta"]["hostvars"]
    everything = set(d["prod_services"] + d["prod_clients"] + d["staging_services"] + d["staging_clients"])
    # stopped, terminated, untagged, foreign installs and impostors are left out (not even in `all`)
    assert set(hostvars) == everything

    # Every impostor is named in a warning that says why.
    refused = _refused(result)
    impostors = d["impostors"]
    assert set(refused) == set(impostors.values()), result.stderr
    assert "Terraform makes only instances of role services or nomad_client" in refused[impostors["roleless"]]
    assert "instance profile is <none>, not the install's prod-circleci" in refused[
        impostors["services_without_profile"]]
    assert "aws:autoscaling:groupName is not set" in refused[impostors["client_without_asg"]]
    assert "someone-elses-nomad-clients" in refused[impostors["client_of_another_asg"]]
    assert "not in the VPC of the install's Services machine (%s)" % d["vpc_id"] in refused[
        impostors["client_in_another_vpc"]]
    assert all(reason.endswith("it is in no group") for reason in refused.values())

    # One DescribeInstances per region, nothing per host.
    assert sorted((c.action, c.region) for c in calls) == [("DescribeInstances", EAST), ("DescribeInstances", WEST)]

    # Hostvars match what EC2 says about the instance.
    services_id = d["prod_services"][0]
    described = moto_server.client("ec2", EAST).describe_instances(InstanceIds=[services_id])
    instance = described["Reservations"][0]["Instances"][0]
    hv = hostvars[services_id]
    assert hv["instance_id"] == services_id
    assert hv["private_ip_address"] == instance["PrivateIpAddress"]
    assert hv["ansible_host"] == instance["PrivateIpAddress"]
    assert hv["public_ip_address"] is None  # private subnet
    assert hv["private_dns_name"] == instance["PrivateDnsName"]
    assert hv["availability_zone"] == "us-east-1b"
    assert hv["region"] == EAST
    assert hv["instance_type"] == "m5.large"
    assert hv["instance_state"] == "running"
    assert hv["launch_time"].startswith(instance["LaunchTime"].strftime("%Y-%m-%dT%H:%M"))
    assert hv["ec2_tags"] == {"circleci:install": "prod", "circleci:role": "services", "Name": "prod-services"}
    assert hv["circleci_install"] == "prod"
    assert hv["circleci_role"] == "services"
    assert "tags" not in hv  # a reserved playbook keyword: ansible-core would warn on every run
    assert "reserved name" not in result.stderr, result.stderr

    client = hostvars[d["prod_clients"][0]]
    assert client["circleci_role"] == "nomad_client"
    assert client["instance_type"] == "m5.xlarge"  # from the ASG's launch template
    assert client["ec2_tags"]["aws:autoscaling:groupName"] == "prod-nomad-clients"
    west = hostvars[d["staging_clients"][0]]
    assert west["region"] == WEST and west["public_ip_address"] and west["public_dns_name"]


def test_public_ip_option_and_state_filter(inventory, dataset):
    result, data, _ = inventory("""
        regions: [us-east-1, us-west-2]
        installs: [prod, staging-2]
        use_public_ip: true
        instance_states: [running, stopped]
        hostname: private_ip_address
    """)
    assert result.rc == 0, result
    hostvars = data["_meta"]["hostvars"]
    by_id = {hv["instance_id"]: hv for hv in hostvars.values()}
    staging = by_id[dataset["staging_services"][0]]
    assert staging["ansible_host"] == staging["public_ip_address"]
    prod = by_id[dataset["prod_services"][0]]
    assert prod["ansible_host"] == prod["private_ip_address"]  # no public IP: private one kept
    assert "have no public IP" in result.stderr
    assert set(dataset["stopped"]) <= set(by_id)
    assert not set(dataset["terminated"]) & set(by_id)
    assert all(name == hv["private_ip_address"] for name, hv in hostvars.items())


def test_pagination_makes_one_call_per_page(inventory, dataset):
    result, data, calls = inventory("""
        regions: [us-east-1]
        installs: [prod]
        page_size: 5
        instance_states: [pending, running, stopped, terminated]
    """)
    assert result.rc == 0, result
    assert len(data["_meta"]["hostvars"]) == 10  # services, 3 ASG clients, 5 stopped, terminated
    assert {c.action for c in calls} == {"DescribeInstances"}
    assert len(calls) >= 2  # at least 9 reservations in pages of 5


def test_compose_groups_and_keyed_groups(inventory, dataset):
    result, data, _ = inventory("""
        regions: [us-east-1, us-west-2]
        installs: [prod, staging-2]
        compose:
          nomad_node_name: instance_id
          role_from_tag: ec2_tags['circleci:role']
          label: "circleci_install ~ '/' ~ (circleci_role | default('none', true))"
        groups:
          big_clients: instance_type == 'm5.xlarge'
        keyed_groups:
          - key: ec2_tags['circleci:role']
            prefix: role
          - key: region
            prefix: aws
    """)
    assert result.rc == 0, result
    hostvars = data["_meta"]["hostvars"]
    d = dataset
    svc = hostvars[d["prod_services"][0]]
    assert svc["nomad_node_name"] == d["prod_services"][0]
    assert svc["role_from_tag"] == "services"
    assert svc["label"] == "prod/services"
    assert _members(data, "big_clients") == set(d["prod_clients"])
    assert _members(data, "role_nomad_client") == set(d["prod_clients"] + d["staging_clients"])
    assert _members(data, "role_services") == set(d["prod_services"] + d["staging_services"])
    assert _members(data, "aws_us_west_2") == set(d["staging_services"] + d["staging_clients"])


def test_compose_skips_undefined_variables_unless_strict(inventory, dataset):
    body = """
        regions: [us-east-1]
        installs: [prod]
        strict: {strict}
        compose:
          from_missing_tag: ec2_tags['Team']
    """
    result, data, _ = inventory(body.format(strict="false"))
    assert result.rc == 0, result
    assert "from_missing_tag" not in data["_meta"]["hostvars"][dataset["prod_services"][0]]
    result, _, _ = inventory(body.format(strict="true"))
    assert result.rc != 0
    assert "from_missing_tag" in result.stderr


def test_group_names_are_configurable(inventory, dataset):
    result, data, _ = inventory("""
        regions: [us-west-2]
        installs: [staging-2]
        services_group: svc
        nomad_clients_group: clients
        install_group_prefix: install_
    """)
    assert result.rc == 0, result
    assert _members(data, "svc") == set(dataset["staging_services"])
    assert _members(data, "clients") == set(dataset["staging_clients"])
    assert _members(data, "install_staging_2") == set(dataset["staging_services"] + dataset["staging_clients"])
    assert "circleci_services" not in data


def test_cache_second_run_makes_no_api_call(inventory, tmp_path):
    cache_dir = tmp_path / f"cache-{uuid.uuid4().hex[:6]}"
    config = TWO_INSTALLS + f"""
    cache: true
    cache_plugin: ansible.builtin.jsonfile
    cache_connection: {cache_dir}
    cache_timeout: 600
    """
    first, first_data, first_calls = inventory(config)
    assert first.rc == 0, first
    assert len(first_calls) == 2

    second, second_data, second_calls = inventory(config)
    assert second.rc == 0, second
    assert second_calls == []
    assert second_data == first_data

    flushed, flushed_data, flushed_calls = inventory(config, extra_args=["--flush-cache"])
    assert flushed.rc == 0, flushed
    assert len(flushed_calls) == 2
    assert flushed_data == first_data

    # Another query under the same file name is not answered from the cache.
    narrower, narrower_data, narrower_calls = inventory(config.replace("[prod, staging-2]", "[staging-2]"))
    assert narrower.rc == 0, narrower
    assert len(narrower_calls) == 2
    assert "circleci_install_prod" not in narrower_data


def _error_line(result):
    """Ansible prints the plugin's error twice (warning, then cause); it must be one line, one message."""
    assert result.rc != 0, result
    messages = {line[line.index("circleci_ec2: "):] for line in result.stderr.splitlines() if "circleci_ec2: " in line}
    assert len(messages) == 1, result.stderr
    return messages.pop()


@pytest.mark.parametrize(
    "body, access_key, expected",
    [
        ("regions: [us-east-1]\ninstalls: [prod]\n", REJECTED_ACCESS_KEY, "AWS rejected the credentials"),
        ("regions: [us-east-1, mars-north-1]\ninstalls: [prod]\n", DUMMY_ACCESS_KEY, "unknown region(s) mars-north-1"),
        ("regions: [us-east-1]\n", DUMMY_ACCESS_KEY, "names no install"),
        ("regions: [us-east-1]\ninstalls: []\n", DUMMY_ACCESS_KEY, "names no install"),
        ("regions: [us-east-1]\ninstalls: [prod]\nfilters:\n  vpc-id: {a: 1}\n", DUMMY_ACCESS_KEY,
         "malformed filter: 'vpc-id' must be a string"),
        ("regions: [us-east-1]\ninstalls: [prod]\nfilters: [vpc-id]\n", DUMMY_ACCESS_KEY, "filters"),
        ("regions: [us-east-1]\ninstalls: [prod]\nfilters:\n  instance-state-name: stopped\n", DUMMY_ACCESS_KEY,
         "malformed filter: 'instance-state-name' is set by the plugin"),
    ],
    ids=["bad-credentials", "unknown-region", "no-install", "empty-installs", "filter-value", "filter-list",
         "filter-reserved"],
)
def test_errors_are_one_clear_line(inventory, body, access_key, expected):
    result, _, calls = inventory(body, access_key=access_key)
    if expected == "filters":  # Ansible's own option type check answers first
        assert result.rc != 0 and "filters" in result.stderr, result
        return
    assert expected in _error_line(result)
    if access_key != REJECTED_ACCESS_KEY:
        assert calls == []  # configuration errors stop the run before any AWS call


def test_missing_credentials_are_named(inventory, tmp_path):
    result, _, _ = inventory(
        "regions: [us-east-1]\ninstalls: [prod]\n",
        env_extra={"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_CONFIG_FILE": str(tmp_path / "none"),
                   "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true"},
    )
    assert "no AWS credentials found" in _error_line(result)


def test_assume_role_is_used_and_skipped_on_a_cache_hit(inventory, tmp_path):
    config = f"""
    regions: [us-west-2]
    installs: [staging-2]
    assume_role_arn: arn:aws:iam::123456789012:role/circleci-inventory
    cache: true
    cache_plugin: ansible.builtin.jsonfile
    cache_connection: {tmp_path / "role-cache"}
    cache_timeout: 600
    """
    first, first_data, calls = inventory(config)
    assert first.rc == 0, first
    assert [c.action for c in calls] == ["AssumeRole", "DescribeInstances"]
    assert calls[1].access_key not in ("", DUMMY_ACCESS_KEY)  # signed with the role's credentials
    assert len(first_data["_meta"]["hostvars"]) == 3

    second, second_data, second_calls = inventory(config)
    assert second.rc == 0, second
    assert second_calls == [] and second_data == first_data


def test_the_install_record_and_the_trust_option_pick_the_services_machine(inventory, dataset, moto_server, tmp_path):
    """A second instance with the install's profile (a build able to pass the role could launch one):
    without the Terraform-known id both are refused; the install record or the option settles it."""
    east = moto_server.client("ec2", EAST)
    real = dataset["prod_services"][0]
    impostor = _run(east, _ami(east), subnet=dataset["subnet_id"], profile="prod-circleci",
                    circleci__install="prod", circleci__role="services")[0]
    try:
        no_record = tmp_path / "no-record"
        result, data, _ = inventory(f"""
            regions: [us-east-1]
            installs: [prod]
            trust:
              prod:
                install_dir: {no_record}
        """)
        assert result.rc == 0, result
        assert _members(data, "circleci_services") == set()
        refused = _refused(result)
        assert {real, impostor} <= set(refused)
        assert "2 instances claim to be the Services machine of prod" in refused[real]
        assert "trust.prod.services_instance_id" in refused[impostor]

        record_dir = tmp_path / "install"
        record_dir.mkdir()
        (record_dir / "outputs.json").write_text(json.dumps({
            "services_instance_id": real, "subnet_id": dataset["subnet_id"],
            "nomad_asg_name": "prod-nomad-clients", "instance_profile_name": "prod-circleci"}))
        result, data, calls = inventory(f"""
            regions: [us-east-1]
            installs: [prod]
            trust:
              prod:
                install_dir: {record_dir}
        """)
        assert result.rc == 0, result
        assert _members(data, "circleci_services") == {real}
        assert _members(data, "circleci_nomad_clients") == set(dataset["prod_clients"])
        assert "not the Services instance Terraform created for prod (%s, from the install record" % real in (
            _refused(result)[impostor])
        assert len(calls) == 1  # still one DescribeInstances

        result, data, _ = inventory(f"""
            regions: [us-east-1]
            installs: [prod]
            trust:
              prod:
                services_instance_id: {impostor}
                install_dir: {record_dir}
        """)
        assert result.rc == 0, result
        assert _members(data, "circleci_services") == {impostor}  # the option wins over the record
    finally:
        east.terminate_instances(InstanceIds=[impostor])
