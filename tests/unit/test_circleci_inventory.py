"""Unit tests of the circleci_ec2 inventory helpers (no AWS, no Ansible run)."""
import datetime

import pytest

from ansible_collections.circleci_server.aws.plugins.plugin_utils.circleci_inventory import (
    MISSING,
    InventoryConfigError,
    build_filters,
    host_record,
    install_group_name,
    parse_simple_reference,
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
