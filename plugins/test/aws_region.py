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

import re  # noqa: E402 - after the documentation, as Ansible plugins do

REGION_SHAPE = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}")


def known_regions():
    try:
        import botocore.session
    except ImportError:
        return None
    session = botocore.session.get_session()
    regions = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("ec2", partition_name=partition))
    return regions or None


def aws_region(value):
    if not isinstance(value, str) or not REGION_SHAPE.fullmatch(value):
        return False
    regions = known_regions()
    return True if regions is None else value in regions


class TestModule(object):
    def tests(self):
        return {"aws_region": aws_region}
