"""Unit tests of the circleci_ec2 inventory helpers (no AWS, no Ansible run)."""
import datetime
import json

import pytest

from ansible_collections.circleci_server.aws.plugins.plugin_utils.circleci_inventory import (
    MISSING,
    InventoryConfigError,
    build_filters,
    host_record,
    install_anchors,
    install_group_name,
    parse_simple_reference,
    read_install_record,
    refusal_message,
    trusted_records,
    validate_trust,
    preferred_hostname,
    resolve_simple_reference,
    validate_installs,
    validate_states,
)

INSTANCE = {
    "InstanceId": "i-0abc",
    "InstanceType": "m5.xlarge",
    "State": {"Code": 16, "Name": "running"},
    "ImageId": "ami-1",
    "LaunchTime": datetime.datetime(2026, 11, 29, 18, 0, tzinfo=datetime.timezone.utc),
    "Placement": {"AvailabilityZone": "us-east-1b"},
    "VpcId": "vpc-1",
    "SubnetId": "subnet-1",
    "PrivateIpAddress": "10.0.1.5",
    "PrivateDnsName": "ip-10-0-1-5.ec2.internal",
    "PublicDnsName": "",
    "Tags": [{"Key": "circleci:install", "Value": "prod"}, {"Key": "circleci:role", "Value": "nomad_client"}],
}


def test_host_record_is_flat_and_json_safe():
    record = host_record(INSTANCE, "us-east-1")
    assert record["launch_time"] == "2026-11-29T18:00:00+00:00"
    assert record["public_ip_address"] is None and record["public_dns_name"] is None
    assert record["ec2_tags"] == {"circleci:install": "prod", "circleci:role": "nomad_client"}
    assert (record["circleci_install"], record["circleci_role"]) == ("prod", "nomad_client")
    assert record["region"] == "us-east-1"
    assert (record["availability_zone"], record["instance_state"]) == ("us-east-1b", "running")


def test_host_record_without_tags_has_no_install():
    record = host_record({"InstanceId": "i-1"}, "eu-west-1")
    assert record["ec2_tags"] == {} and record["circleci_install"] is None and record["private_ip_address"] is None


def test_install_group_name_follows_contract():
    assert install_group_name("circleci_install_", "staging-2.eu") == "circleci_install_staging_2_eu"


@pytest.mark.parametrize("value", [None, [], ["  "], [""]])
def test_a_config_without_installs_is_refused(value):
    with pytest.raises(InventoryConfigError, match="names no install|non-empty"):
        validate_installs(value)


def test_installs_are_deduplicated_and_a_string_is_accepted():
    assert validate_installs(["prod", "prod ", "ci"]) == ["prod", "ci"]
    assert validate_installs("prod") == ["prod"]


def test_unknown_state_is_refused():
    with pytest.raises(InventoryConfigError, match="unknown EC2 state"):
        validate_states(["running", "sleeping"])


def test_filters_combine_options_and_user_filters():
    filters = build_filters(["prod"], ["running"], {"vpc-id": "vpc-1", "tag:Team": ["a", "b"], "launch-index": 0})
    assert filters == [
        {"Name": "tag:circleci:install", "Values": ["prod"]},
        {"Name": "instance-state-name", "Values": ["running"]},
        {"Name": "vpc-id", "Values": ["vpc-1"]},
        {"Name": "tag:Team", "Values": ["a", "b"]},
        {"Name": "launch-index", "Values": ["0"]},
    ]


@pytest.mark.parametrize(
    "filters, message",
    [
        (["vpc-id"], "must be a mapping"),
        ({"vpc-id": {"a": 1}}, "must be a string"),
        ({"vpc-id": []}, "empty list"),
        ({"": "x"}, "not an EC2 filter name"),
        ({"tag:circleci:install": "x"}, "set by the plugin"),
        ({"vpc-id": True}, "must be a string"),
    ],
)
def test_malformed_filters_are_refused(filters, message):
    with pytest.raises(InventoryConfigError, match=message):
        build_filters(["prod"], ["running"], filters)


def test_hostname_falls_back_to_instance_id():
    record = host_record(INSTANCE, "us-east-1")
    assert preferred_hostname(record, "private_ip_address") == "10.0.1.5"
    assert preferred_hostname(record, "public_dns_name") == "i-0abc"
    assert preferred_hostname(record, "name_tag") == "i-0abc"


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("private_ip_address", "10.0.1.5"),
        (" ec2_tags['circleci:role'] ", "nomad_client"),
        ('ec2_tags["circleci:install"]', "prod"),
        ("groups_list[1]", "b"),
        ("groups_list[-1]", "b"),
        ("nested.inner.value", 3),
    ],
)
def test_simple_references_resolve_like_jinja(expression, expected):
    variables = dict(host_record(INSTANCE, "us-east-1"), groups_list=["a", "b"], nested={"inner": {"value": 3}})
    parsed = parse_simple_reference(expression)
    assert parsed is not None
    assert resolve_simple_reference(parsed, variables) == expected


@pytest.mark.parametrize(
    "expression",
    ["private_ip_address | default('x')", "a ~ b", "none", "True", "tags.keys()", "x[0:1]", "'literal'", "a.b + 1"],
)
def test_anything_but_a_plain_reference_goes_to_jinja(expression):
    assert parse_simple_reference(expression) is None


@pytest.mark.parametrize(
    "expression", ["missing", "ec2_tags['absent']", "ec2_tags.items", "groups_list[5]", "instance_id.x"]
)
def test_unresolvable_references_are_left_to_jinja(expression):
    variables = dict(host_record(INSTANCE, "us-east-1"), groups_list=["a"])
    assert resolve_simple_reference(parse_simple_reference(expression), variables) is MISSING


# --- trust: which tagged instances belong to their install -------------------------------------------------

PROFILE_ARN = "arn:aws:iam::123456789012:instance-profile/prod-circleci"


def _instance(instance_id, role, install="prod", vpc="vpc-1", subnet="subnet-1", profile=PROFILE_ARN, asg=None):
    tags = [{"Key": "circleci:install", "Value": install}]
    if role:
        tags.append({"Key": "circleci:role", "Value": role})
    if asg:
        tags.append({"Key": "aws:autoscaling:groupName", "Value": asg})
    instance = {"InstanceId": instance_id, "VpcId": vpc, "SubnetId": subnet, "Tags": tags}
    if profile:
        instance["IamInstanceProfile"] = {"Arn": profile, "Id": "AIPA1"}
    return host_record(instance, "us-east-1")


def _anchors(configured=None, record=None, install="prod"):
    return {install: install_anchors(install, validate_trust({install: configured or {}}, [install])[install],
                                     record_reader=lambda path: dict(record or {}))}


def _split(records, anchors):
    trusted, refused = trusted_records(records, list(anchors), anchors)
    return [r["instance_id"] for r in trusted], {r["instance_id"]: reason for r, reason in refused}


def test_host_record_has_the_vpc_and_the_instance_profile_name():
    record = _instance("i-1", "services", profile="arn:aws:iam::1:instance-profile/some/path/prod-circleci")
    assert (record["vpc_id"], record["iam_instance_profile"]) == ("vpc-1", "prod-circleci")
    assert host_record({"InstanceId": "i-2"}, "us-east-1")["iam_instance_profile"] is None


def test_the_terraform_known_services_id_is_the_only_services_machine():
    records = [_instance("i-real", "services"), _instance("i-rogue", "services")]
    trusted, refused = _split(records, _anchors(record={"services_instance_id": "i-real"}))
    assert trusted == ["i-real"]
    assert "not the Services instance Terraform created for prod (i-real" in refused["i-rogue"]


def test_without_the_id_two_services_candidates_are_both_refused():
    records = [_instance("i-a", "services"), _instance("i-b", "services")]
    trusted, refused = _split(records, _anchors())
    assert trusted == []
    assert set(refused) == {"i-a", "i-b"}
    assert "trust.prod.services_instance_id" in refused["i-a"]


def test_a_services_machine_without_the_install_profile_is_refused():
    records = [_instance("i-a", "services", profile=None), _instance("i-b", "services",
               profile="arn:aws:iam::1:instance-profile/build-vm")]
    trusted, refused = _split(records, _anchors())
    assert trusted == []
    assert "instance profile is <none>, not the install's prod-circleci" in refused["i-a"]
    assert "build-vm" in refused["i-b"]


def test_clients_must_come_from_the_install_asg():
    records = [_instance("i-s", "services"),
               _instance("i-asg", "nomad_client", asg="prod-nomad-clients", profile=None),
               _instance("i-tagged", "nomad_client", profile=None),
               _instance("i-other-asg", "nomad_client", asg="staging-nomad-clients", profile=None)]
    trusted, refused = _split(records, _anchors())
    assert trusted == ["i-s", "i-asg"]
    assert "aws:autoscaling:groupName is not set" in refused["i-tagged"]
    assert "staging-nomad-clients" in refused["i-other-asg"]


def test_clients_outside_the_services_machines_vpc_are_refused():
    records = [_instance("i-s", "services"),
               _instance("i-far", "nomad_client", vpc="vpc-9", asg="prod-nomad-clients")]
    trusted, refused = _split(records, _anchors())
    assert trusted == ["i-s"]
    assert "vpc-9" in refused["i-far"] and "VPC of the install's Services machine" in refused["i-far"]


def test_vpc_and_subnet_from_the_trust_option():
    records = [_instance("i-s", "services", subnet="subnet-2"),
               _instance("i-c", "nomad_client", vpc="vpc-2", asg="prod-nomad-clients")]
    trusted, refused = _split(records, _anchors({"vpc_id": "vpc-1", "subnet_ids": "subnet-1"}))
    assert trusted == []
    assert "subnet subnet-2, not in the install's subnet subnet-1" in refused["i-s"]
    assert "VPC vpc-2, not in the install's VPC vpc-1" in refused["i-c"]


def test_roleless_instances_are_refused_and_other_installs_ignored():
    records = [_instance("i-x", None), _instance("i-y", "bastion"), _instance("i-z", "services", install="PROD")]
    trusted, refused = _split(records, _anchors())
    assert trusted == [] and set(refused) == {"i-x", "i-y"}
    assert refusal_message(records[0], refused["i-x"]).startswith(
        "circleci_ec2: refused i-x (circleci:install=prod, circleci:role=<none>): ")


def test_the_trust_option_wins_over_the_install_record_over_defaults():
    record = {"nomad_asg_name": "from-record", "services_instance_id": "i-rec"}
    anchors = _anchors({"nomad_asg_name": "custom"}, record=record)["prod"]
    assert anchors["nomad_asg_name"] == "custom" and anchors["sources"]["nomad_asg_name"] == "trust option"
    assert anchors["services_instance_id"] == "i-rec"
    assert anchors["instance_profile_name"] == "prod-circleci"
    assert anchors["install_dir"] == "~/.circleci_server/prod"


def test_install_record_is_read_from_outputs_json(tmp_path):
    (tmp_path / "outputs.json").write_text(json.dumps({
        "services_instance_id": "i-1", "subnet_id": "subnet-1", "nomad_asg_name": "p-nomad-clients",
        "instance_profile_name": "p-circleci", "bucket_name": "b"}))
    assert read_install_record(str(tmp_path / "outputs.json")) == {
        "services_instance_id": "i-1", "subnet_ids": ["subnet-1"], "nomad_asg_name": "p-nomad-clients",
        "instance_profile_name": "p-circleci"}
    assert read_install_record(str(tmp_path / "missing.json")) == {}
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InventoryConfigError, match="cannot read the install record"):
        read_install_record(str(tmp_path / "bad.json"))


@pytest.mark.parametrize("trust,message", [
    ("prod", "must be a mapping of install prefix"),
    ({"staging": {}}, "not in 'installs'"),
    ({"prod": {"services_id": "i-1"}}, "unknown key"),
    ({"prod": {"subnet_ids": [""]}}, "string or a list of strings"),
    ({"prod": {"vpc_id": 5}}, "must be a string"),
])
def test_a_malformed_trust_option_is_refused(trust, message):
    with pytest.raises(InventoryConfigError, match=message):
        validate_trust(trust, ["prod"])


def test_a_filter_name_with_a_trailing_newline_is_refused():
    with pytest.raises(InventoryConfigError, match="malformed filter"):
        build_filters(["prod"], ["running"], {"vpc-id\n": "vpc-1"})
