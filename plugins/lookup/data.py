# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
name: data
author: circleci_server.aws contributors (@circleci-server-aws)
short_description: Read one of the collection's data files (data/*.yml)
description:
  - Returns the parsed content of a file in the collection's C(data/) directory (port tables, sizing
    tables, version matrix, app settings, IAM actions, the input contract), or its path with O(path=true).
  - The one way roles and playbooks reach C(data/), instead of paths built from C(role_path).
options:
  _terms:
    description: Data file names, such as C(versions.yml).
    required: true
    type: list
    elements: str
  path:
    description: Return the file's path on the controller instead of its content (for copying it).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: The default CircleCI Server release
  ansible.builtin.debug:
    msg: "{{ lookup('circleci_server.aws.data', 'versions.yml').circleci_server_default_version }}"

- name: Copy the port tables next to a Terraform configuration
  ansible.builtin.copy:
    src: "{{ lookup('circleci_server.aws.data', 'ports.yml', path=true) }}"
    dest: /tmp/work/ports.yml
    mode: "0644"
"""

RETURN = r"""
_raw:
  description: One item per term, the file's parsed YAML (or its path).
  type: list
  elements: raw
"""

import yaml  # noqa: E402
from ansible.errors import AnsibleLookupError  # noqa: E402
from ansible.plugins.lookup import LookupBase  # noqa: E402

from ansible_collections.circleci_server.aws.plugins.plugin_utils.data import (  # noqa: E402
    DataFileError,
    data_path,
    load_data,
)


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        unknown = sorted(set(kwargs) - {"path"})
        if unknown:
            raise AnsibleLookupError("circleci_server.aws.data: unknown option(s) %s (only path)" % ", ".join(unknown))
        want_path = bool(kwargs.get("path", False))
        try:
            return [data_path(term) if want_path else load_data(term) for term in terms]
        except (DataFileError, OSError, ValueError, yaml.YAMLError) as exc:
            raise AnsibleLookupError("circleci_server.aws.data: %s" % exc) from None
