# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function


DOCUMENTATION = r"""
name: cidr
short_description: Is the value an IPv4 network in CIDR notation?
description:
  - True for a string such as C(10.0.0.0/16) or C(203.0.113.7/32) that parses
    as an IPv4 network with no host bits set (what AWS security groups accept).
  - Uses Python's ipaddress module, so it needs no netaddr.
options:
  _input:
    description: The value to check.
    type: raw
    required: true
author: circleci_server.aws maintainers
"""

EXAMPLES = r"""
- name: Every admin CIDR parses
  ansible.builtin.assert:
    that: admin_cidrs | reject('circleci_server.aws.cidr') | list | length == 0
"""

RETURN = r"""
_value:
  description: Whether the value is an IPv4 CIDR block.
  type: boolean
"""

# One rule for a CIDR block: the input contract's (module_utils/input_contract.py).
from ansible_collections.circleci_server.aws.plugins.module_utils.input_contract import is_cidr  # noqa: E402

cidr = is_cidr


class TestModule(object):
    def tests(self):
        return {"cidr": cidr}
