# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's data files (data/*.yml), read on the controller.

One way in for the ``circleci_server.aws.data`` lookup and the filters: no plugin or role
builds a path to data/ of its own (issue 14).
"""
import copy
import os
import re

import yaml

# plugins/plugin_utils/data.py -> the collection root
COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA_DIR = os.path.join(COLLECTION_ROOT, "data")
DATA_NAME = re.compile(r"[a-z0-9_]+\.yml")

_cache = {}


class DataFileError(Exception):
    pass


def data_path(name):
    """The path of data/<name>; only the data directory's own files (no path, no traversal)."""
    if not isinstance(name, str) or not DATA_NAME.fullmatch(name):
        raise DataFileError("%r is not a data file name: use one of %s" % (name, ", ".join(data_names())))
    path = os.path.join(DATA_DIR, name)
    if not os.path.isfile(path):
        raise DataFileError("data/%s does not exist: use one of %s" % (name, ", ".join(data_names())))
    return path


def data_names():
    return sorted(n for n in os.listdir(DATA_DIR) if DATA_NAME.fullmatch(n))


def load_data(name):
    """data/<name> parsed (a fresh copy: callers may change it). Read once per process and file version."""
    path = data_path(name)
    stamp = os.stat(path).st_mtime_ns
    cached = _cache.get(path)
    if cached is None or cached[0] != stamp:
        with open(path) as handle:
            cached = (stamp, yaml.safe_load(handle))
        _cache[path] = cached
    return copy.deepcopy(cached[1])
