# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
name: installed_collections
author: circleci_server.aws contributors (@circleci-server-aws)
short_description: Where the controller has collections installed, and their versions
description:
  - For each collection name, the copy this Ansible run loads (the first on the collections search path),
    with the version its C(MANIFEST.json) names.
  - The result has the shape of C(ansible-galaxy collection list --format json)
    (collections directory -> name -> C({version})), without starting a second Ansible process.
  - A collection that is not installed, or whose copy has no C(MANIFEST.json) (a source checkout), is left out.
options:
  _terms:
    description: Collection names, such as C(community.docker).
    required: true
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Which community.docker does this controller have?
  ansible.builtin.debug:
    msg: "{{ lookup('circleci_server.aws.installed_collections', 'community.docker') }}"
"""

RETURN = r"""
_raw:
  description: One dict, collections directory -> collection name -> C({version}).
  type: list
  elements: dict
"""

import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
from importlib import import_module  # noqa: E402

from ansible.errors import AnsibleLookupError  # noqa: E402
from ansible.plugins.lookup import LookupBase  # noqa: E402

_NAME = re.compile(r"\A[A-Za-z0-9_]+\.[A-Za-z0-9_]+\Z")


def installed_copy(name):
    """(collections directory, version) of the copy of name the collection loader finds, or None."""
    try:
        package = import_module("ansible_collections." + name)
    except ImportError:
        return None
    directory = os.path.dirname(getattr(package, "__file__", None) or "")
    manifest = os.path.join(directory, "MANIFEST.json")
    if not directory or not os.path.isfile(manifest):
        return None
    with open(manifest, "rb") as handle:
        version = json.loads(handle.read().decode("utf-8"))["collection_info"]["version"]
    # .../ansible_collections/<namespace>/<name>: ansible-galaxy lists the ansible_collections directory.
    return os.path.dirname(os.path.dirname(directory)), version


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        if kwargs:
            raise AnsibleLookupError("circleci_server.aws.installed_collections takes no options")
        listing = {}
        for name in terms:
            if not _NAME.match(str(name)):
                raise AnsibleLookupError("%r is not a collection name (namespace.name)" % (name,))
            found = installed_copy(name)
            if found:
                listing.setdefault(found[0], {})[name] = {"version": found[1]}
        return [listing]
