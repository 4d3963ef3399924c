#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to circleci_server.aws
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: replicated_app_config
short_description: Set CircleCI Server app settings in Replicated
description:
  - Reads the current settings with C(replicatedctl app-config export), and imports only the keys whose values
    differ with C(replicatedctl app-config import) (on standard input).
  - Replicated keeps every value as a string; booleans become C("1")/C("0"), numbers their decimal text.
  - The diff lists only the keys that change; values of secret settings are masked.
  - Changed settings take effect when the app is (re)started, see M(circleci_server.aws.replicated_app).
version_added: "1.0.0"
author:
  - circleci_server.aws contributors (@circleci-server-aws)
extends_documentation_fragment:
  - circleci_server.aws.replicatedctl
  - circleci_server.aws.replicatedctl.attributes
options:
  settings:
    description:
      - Desired settings, key to value, for example C(hostname), C(aws_region), C(s3_bucket),
        C(storage_backend), C(sqs_queue_url), C(ghe_type).
      - Do not put secrets here (their values would be logged); use O(secret_settings).
    type: dict
    default: {}
  secret_settings:
    description:
      - Desired secret settings, such as C(secret_passphrase) or C(ghe_client_secret). Never logged; masked in
        the diff.
    type: dict
    default: {}
  settings_file:
    description:
      - 'A JSON file on the managed host with more settings, either in the C(app-config export) shape
        C({"key": {"value": "..."}}) or flat C({"key": "value"}). O(settings) and O(secret_settings) win over it.'
      - Its values are treated as secrets in the diff when their key looks secret.
    type: path
  secret_keys:
    description:
      - More setting names to mask in the diff (names containing secret, password, passphrase, token, private or
        credential are always masked).
    type: list
    elements: str
    default: []
  protected_settings:
    description:
      - Settings that must not change once set, such as C(secret_passphrase) (CircleCI encrypts the secrets it
        stores with it, so a new one makes them unreadable). When one of these already has a non-empty value in
        Replicated that differs from the desired one, the module fails and changes nothing unless
        O(confirm_protected_changes) is true.
    type: list
    elements: str
    default: []
  confirm_protected_changes:
    description:
      - Change O(protected_settings) that already hold another value.
    type: bool
    default: false
  skip_validation:
    description:
      - Pass C(--skip-validation) to C(app-config import).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: CircleCI settings
  circleci_server.aws.replicated_app_config:
    settings:
      hostname: circleci.example.com
      allow_cluster: true
      storage_backend: storage_backend_s3
      s3_bucket: "{{ circleci_infrastructure.bucket_name }}"
      aws_region: "{{ circleci_region }}"
      sqs_queue_url: "{{ circleci_infrastructure.queue_url }}"
      iam_auth_type: role
      license_agreement: true
    secret_settings:
      secret_passphrase: "{{ circleci_secret_passphrase }}"
"""

RETURN = r"""
changed_keys:
  description: Names of the settings that were (or in check mode would be) changed.
  returned: success
  type: list
  elements: str
  sample: [hostname, s3_bucket]
"""

import json  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.common.text.converters import to_native  # noqa: E402

from ansible_collections.circleci_server.aws.plugins.module_utils.replicatedctl import (  # noqa: E402
    ProtectedSettingsRefused,
    ReplicatedctlError,
    apply_settings,
    client_from_module,
    is_secret_key,
    replicatedctl_argument_spec,
    to_setting_value,
)


def read_settings_file(module, path):
    try:
        with open(path, "r") as handle:
            data = json.load(handle)
    except (IOError, OSError) as exc:
        module.fail_json(msg="cannot read settings_file %s: %s" % (path, to_native(exc)))
    except ValueError as exc:
        module.fail_json(msg="settings_file %s is not JSON: %s" % (path, to_native(exc)))
    if not isinstance(data, dict):
        module.fail_json(msg='settings_file %s must hold a JSON object ({"key": {"value": "..."}})' % path)
    values = {}
    for key, item in data.items():
        if isinstance(item, dict):
            item = item.get("value", "")
        values[key] = to_setting_value(item)
    return values


def main():
    argument_spec = replicatedctl_argument_spec()
    argument_spec.update(
        settings=dict(type="dict", default={}),
        secret_settings=dict(type="dict", default={}, no_log=True),
        settings_file=dict(type="path"),
        secret_keys=dict(type="list", elements="str", default=[], no_log=False),
        protected_settings=dict(type="list", elements="str", default=[], no_log=False),
        confirm_protected_changes=dict(type="bool", default=False),
        skip_validation=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params

    desired = {}
    if params["settings_file"]:
        desired.update(read_settings_file(module, params["settings_file"]))
    for key, value in params["settings"].items():
        if is_secret_key(key, params["secret_keys"]):
            module.warn("setting %s looks secret: pass it in secret_settings so that it is never logged" % key)
        desired[key] = to_setting_value(value)
    for key, value in params["secret_settings"].items():
        desired[key] = to_setting_value(value)
    secret_keys = set(params["secret_keys"]) | set(params["secret_settings"])

    client = client_from_module(module)
    try:
        result = apply_settings(client, desired, secret_keys=secret_keys, check_mode=module.check_mode,
                                skip_validation=params["skip_validation"], protected=params["protected_settings"],
                                confirm_protected=params["confirm_protected_changes"])
    except ProtectedSettingsRefused as exc:
        module.fail_json(msg=exc.message, refused_keys=exc.keys)
    except ReplicatedctlError as exc:
        module.fail_json(msg="app settings not applied: %s" % exc.message)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
