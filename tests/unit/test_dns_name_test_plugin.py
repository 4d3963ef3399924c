"""The circleci_server.aws.dns_name Jinja test used by the input checks."""
import pytest

from ansible_collections.circleci_server.aws.plugins.test import dns_name as dns_name_plugin

dns_name = dns_name_plugin.dns_name


@pytest.mark.parametrize("value", ["circleci.example.com", "ci", "a-b.c-d.example", "circleci.example.com.",
                                   "x" * 63 + ".example.com"])
def test_host_names_pass(value):
    assert dns_name(value)


@pytest.mark.parametrize("value", ["", "https://ci.example.com", "ci.example.com/", "ci example.com",
                                   "ci.example.com:443", "-ci.example.com", "ci-.example.com", "x" * 64 + ".com",
                                   "a." * 127 + "com", None, 42, ["ci.example.com"]])
def test_everything_else_fails(value):
    assert not dns_name(value)


def test_registered_as_a_jinja_test():
    assert dns_name_plugin.TestModule().tests()["dns_name"] is dns_name
