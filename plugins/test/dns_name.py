# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function


DOCUMENTATION = r"""
name: dns_name
short_description: Is the value a DNS host name?
description:
  - True for a host name made of RFC 1123 labels (letters, digits, inner hyphens, up to 63 characters each,
    253 in all), such as C(circleci.example.com).
  - False for anything with a scheme, port, path or spaces, which users often paste by mistake.
options:
  _input:
    description: The value to check.
    type: raw
    required: true
author: circleci_server.aws maintainers
"""

EXAMPLES = r"""
- name: The hostname is a bare host name
  ansible.builtin.assert:
    that: circleci_hostname is circleci_server.aws.dns_name
"""

RETURN = r"""
_value:
  description: Whether the value is a host name.
  type: boolean
"""

# One rule for a host name: the input contract's (module_utils/input_contract.py).
from ansible_collections.circleci_server.aws.plugins.module_utils.input_contract import is_dns_name  # noqa: E402

dns_name = is_dns_name


class TestModule(object):
    def tests(self):
        return {"dns_name": dns_name}
