#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to circleci_server.aws
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: replicated_console_auth
short_description: Set the Replicated admin console (port 8800) password
description:
  - 'Sets password authentication for the Replicated admin console with C(replicatedctl console-auth import),
    passing C({"Password": {"Password": "..."}}) on standard input.'
  - Reads C(replicatedctl console-auth export) first. Replicated does not show the password back, so whether it
    differs can only be told when the console has no password yet; O(update_password) chooses what happens
    when one is set.
version_added: "1.0.0"
author:
  - circleci_server.aws contributors (@circleci-server-aws)
extends_documentation_fragment:
  - circleci_server.aws.replicatedctl
  - circleci_server.aws.replicatedctl.attributes
options:
  password:
    description:
      - The console password.
    type: str
    required: true
  update_password:
    description:
      - V(on_create) sets the password only when the console does not use password authentication yet, so a
        second run reports no change.
      - V(always) sets it on every run (reported as changed) unless the CLI shows the current password and it is
        the same.
      - V(on_change) sets it when the console has no password yet or when it differs from the password this
        module set last, told by a salted PBKDF2 fingerprint kept in O(fingerprint_path) (never the password). A
        console whose password was set some other way (the first install's C(/etc/replicated.conf)) and that has no
        fingerprint yet gets the password set once, reported as changed. This is how a changed password is applied.
    type: str
    choices: [on_create, on_change, always]
    default: on_create
  fingerprint_path:
    description:
      - File on the managed host for the fingerprint O(update_password=on_change) compares with (mode 0600,
        written after the password was set). Required with V(on_change).
    type: path
"""

EXAMPLES = r"""
- name: Protect the admin console
  circleci_server.aws.replicated_console_auth:
    password: "{{ circleci_console_password }}"

- name: Rotate the console password
  circleci_server.aws.replicated_console_auth:
    password: "{{ new_console_password }}"
    update_password: always

- name: Set the console password, and set it again whenever it changes
  circleci_server.aws.replicated_console_auth:
    password: "{{ circleci_console_password }}"
    update_password: on_change
    fingerprint_path: /etc/circleci/console_password.fingerprint
"""

RETURN = r"""
auth_type:
  description: Console authentication type after the run.
  returned: success
  type: str
  sample: password
previous_auth_type:
  description: Console authentication type before the run.
  returned: success
  type: str
  sample: anonymous
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.circleci_server.aws.plugins.module_utils.replicatedctl import (  # noqa: E402
    ReplicatedctlError,
    client_from_module,
    replicatedctl_argument_spec,
)
from ansible_collections.circleci_server.aws.plugins.module_utils.secret_fingerprint import (  # noqa: E402
    SecretFingerprint,
)


def auth_type_of(exported):
    if not isinstance(exported, dict):
        return "unknown"
    if exported.get("Type"):
        return str(exported["Type"]).lower()
    if isinstance(exported.get("Password"), dict):
        return "password"
    return "anonymous"


def main():
    argument_spec = replicatedctl_argument_spec()
    argument_spec.update(
        password=dict(type="str", required=True, no_log=True),
        update_password=dict(type="str", choices=["on_create", "on_change", "always"], default="on_create",
                             no_log=False),
        fingerprint_path=dict(type="path"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[("update_password", "on_change", ["fingerprint_path"])])
    password = module.params["password"]
    if not password:
        module.fail_json(msg="password is empty")
    update = module.params["update_password"]
    fingerprint = SecretFingerprint(module.params["fingerprint_path"]) if module.params["fingerprint_path"] else None
    client = client_from_module(module)
    try:
        exported = client.console_auth_export()
        previous = auth_type_of(exported)
        shown = (exported.get("Password") or {}).get("Password") if isinstance(exported, dict) else None
        same = shown == password or (update == "on_change" and fingerprint.matches(password))
        if previous == "password" and (update == "on_create" or same):
            module.exit_json(changed=False, auth_type=previous, previous_auth_type=previous)
        result = dict(changed=True, auth_type="password", previous_auth_type=previous,
                      diff=dict(before={"auth_type": previous, "password": "(set)" if previous == "password" else ""},
                                after={"auth_type": "password", "password": "(set, new value)"}))
        if not module.check_mode:
            client.console_auth_import(password)
            if fingerprint:
                try:
                    fingerprint.record(password)
                except (IOError, OSError) as exc:
                    module.fail_json(msg="console password set, but its fingerprint could not be written to %s "
                                         "(the next run will set it again): %s" % (fingerprint.path, exc))
    except ReplicatedctlError as exc:
        module.fail_json(msg="console password not set: %s" % exc.message)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
