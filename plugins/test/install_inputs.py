# Copyright: circleci_server.aws contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja tests used by the input checks of the install playbooks.

ansible.utils' ipaddr needs netaddr on the controller; these need only the
standard library, so the checks run on a bare controller (and in AWX).
"""
import ipaddress
import re

# RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def ipv4_cidr(value):
    """True for an IPv4 network in CIDR notation with no host bits set (10.0.0.0/16)."""
    if not isinstance(value, str) or "/" not in value:
        return False
    try:
        ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        return False
    return True


def dns_name(value):
    """True for a host name users can browse to (no scheme, port, path or spaces)."""
    if not isinstance(value, str) or not value or len(value) > 253:
        return False
    return all(_LABEL.match(label) for label in value.rstrip(".").split("."))


class TestModule:
    def tests(self):
        return {"ipv4_cidr": ipv4_cidr, "dns_name": dns_name}
