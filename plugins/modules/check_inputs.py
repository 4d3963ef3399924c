#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: check_inputs
short_description: Check the install's inputs against the input contract (data/inputs.yml)
description:
  - Checks every C(circleci_*) input the play sees against its one rule in the collection's C(data/inputs.yml)
    (type, pattern, choices, bounds) and the rules across inputs (Nomad client counts, license path or content,
    TLS files, GitHub Enterprise host, proxy credentials, the S3 backend's lock).
  - Runs on the controller as an action (it reads the play's variables and controller files); it changes nothing.
  - Fails with one line that names each bad variable and says what to fix; secret values are never shown.
options:
  groups:
    description:
      - Which stages' inputs to check (inputs of group C(always) are always checked).
      - C(scale) (scale.yml) requires C(circleci_nomad_desired) and keeps it within the sizing band of
        C(circleci_daily_active_users) unless C(circleci_nomad_allow_outside_sizing=true).
    type: list
    elements: str
    choices: [aws, app, github, scale]
    default: [aws, app, github]
author: circleci_server.aws contributors (@circleci-server-aws)
attributes:
  check_mode:
    description: Checks only; the same in check mode.
    support: full
  diff_mode:
    description: Nothing changes, so there is no diff.
    support: none
"""

EXAMPLES = r"""
- name: Check the inputs of the host stage
  circleci_server.aws.check_inputs:
    groups: [app]
"""

RETURN = r"""
checked:
  description: The inputs that were set and checked.
  type: list
  elements: str
  returned: always
problems:
  description: One line per bad input (when the check failed).
  type: list
  elements: str
  returned: failure
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402


def main():
    spec = {"groups": {"type": "list", "elements": "str", "choices": ["aws", "app", "github", "scale"],
                       "default": ["aws", "app", "github"]}}
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    module.fail_json(msg="circleci_server.aws.check_inputs runs as an action on the controller: call it from a play")


if __name__ == "__main__":
    main()
