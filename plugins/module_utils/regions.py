# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWS regions the collection knows: botocore's endpoint data, over every partition.

One place for the preflight module, the inventory plugin and the aws_region test plugin
(issue 14). botocore's endpoint data may lag behind a brand-new region: a newer botocore knows it.
"""
from __future__ import absolute_import, division, print_function

import functools
import re

try:
    import botocore.session
except ImportError:  # pragma: no cover - reported by the callers that need botocore
    botocore = None

# The shape of a region name (us-east-1, us-gov-west-1, us-isob-east-1, ap-southeast-10).
REGION_SHAPE = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}")


def known_regions():
    """EC2 region names botocore knows (a set); empty when botocore is missing."""
    return set(_botocore_regions())


@functools.lru_cache(maxsize=1)
def _botocore_regions():
    # A botocore session loads its endpoint data: once per process.
    if botocore is None:
        return frozenset()
    session = botocore.session.get_session()
    regions = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("ec2", partition_name=partition))
    return frozenset(regions)


def is_region_name(value):
    """True for a region botocore knows; without botocore, for a value shaped like a region name."""
    if not isinstance(value, str) or not REGION_SHAPE.fullmatch(value):
        return False
    regions = known_regions()
    return value in regions if regions else True


def unknown_regions(names):
    """The names in ``names`` that botocore does not know (all are known without botocore data)."""
    regions = known_regions()
    return [name for name in names if regions and name not in regions]
