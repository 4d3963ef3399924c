# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function


DOCUMENTATION = r"""
name: aws_region
short_description: Is the value an AWS region botocore knows?
description:
  - True when the value names an EC2 region of any AWS partition in the
    controller's botocore endpoint data (so a brand-new region needs a current botocore).
  - Without botocore it falls back to the shape of a region name (for example C(us-east-1)).
options:
  _input:
    description: The region name.
    type: string
    required: true
author: circleci_server.aws maintainers
"""

EXAMPLES = r"""
- name: Refuse an unknown region
  ansible.builtin.assert:
    that: region is circleci_server.aws.aws_region
    fail_msg: "{{ region }} is not an AWS region"
"""

RETURN = r"""
_value:
  description: Whether the value is a known region.
  type: boolean
"""

from ansible_collections.circleci_server.aws.plugins.module_utils.regions import is_region_name  # noqa: E402


def aws_region(value):
    return is_region_name(value)


class TestModule(object):
    def tests(self):
        return {"aws_region": aws_region}
