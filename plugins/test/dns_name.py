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

import re  # noqa: E402 - after the documentation, as Ansible plugins do

_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def dns_name(value):
    if not isinstance(value, str) or not value or len(value) > 253:
        return False
    return all(_LABEL.fullmatch(label) for label in value.rstrip(".").split("."))


class TestModule(object):
    def tests(self):
        return {"dns_name": dns_name}
