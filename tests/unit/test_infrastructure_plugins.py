"""The test plugins the infrastructure role validates its inputs with."""
import pytest

from ansible_collections.circleci_server.aws.plugins.module_utils import regions
from ansible_collections.circleci_server.aws.plugins.test import aws_region as region_plugin
from ansible_collections.circleci_server.aws.plugins.test import cidr as cidr_plugin


@pytest.mark.parametrize("value", ["us-east-1", "eu-central-1", "ap-southeast-2", "us-gov-west-1", "cn-north-1"])
def test_known_regions(value):
    assert region_plugin.aws_region(value)


@pytest.mark.parametrize("value", ["us-moon-1", "US-EAST-1", "us-east", "", None, 5, "us-east-1 "])
def test_unknown_regions(value):
    assert not region_plugin.aws_region(value)


def test_region_shape_is_the_fallback_without_botocore(monkeypatch):
    monkeypatch.setattr(regions, "known_regions", set)
    assert region_plugin.aws_region("xx-newplace-9")
    assert not region_plugin.aws_region("not a region")


@pytest.mark.parametrize("value", ["10.0.0.0/16", "203.0.113.7/32", "0.0.0.0/0"])
def test_cidrs_that_parse(value):
    assert cidr_plugin.cidr(value)


@pytest.mark.parametrize(
    "value", ["10.0.0.1/16", "10.0.0.300/24", "10.0.0.0", "10.0.0.0/33", "::/0", "", None, ["10.0.0.0/8"]]
)
def test_cidrs_that_do_not(value):
    assert not cidr_plugin.cidr(value)


def test_plugins_register_their_names():
    assert region_plugin.TestModule().tests()["aws_region"] is region_plugin.aws_region
    assert cidr_plugin.TestModule().tests()["cidr"] is cidr_plugin.cidr
