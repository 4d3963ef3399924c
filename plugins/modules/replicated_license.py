#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to circleci_server.aws
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: replicated_license
short_description: Load a Replicated license (.rli) with replicatedctl
description:
  - Loads the CircleCI Server license into Replicated with C(replicatedctl license-load), which reads it from
    standard input.
  - Compares the license ID with C(replicatedctl license inspect) first, so a license that is already loaded is
    not loaded again (C(changed=false)).
  - The license ID is read from the license document when it states one (C(license_id), C(LicenseID) or C(id));
    otherwise give O(license_id).
version_added: "1.0.0"
author:
  - circleci_server.aws contributors (@circleci-server-aws)
extends_documentation_fragment:
  - circleci_server.aws.replicatedctl
  - circleci_server.aws.replicatedctl.attributes
options:
  path:
    description:
      - Path of the C(.rli) license file on the managed host.
      - Exactly one of O(path) and O(content) is required.
    type: path
  content:
    description:
      - The license itself.
      - Exactly one of O(path) and O(content) is required.
    type: str
  license_id:
    description:
      - The ID of the license being loaded, used to compare with the loaded one when the license document does
        not state its ID in a readable form.
    type: str
  airgap_package:
    description:
      - Path of the application airgap bundle on the managed host, for airgapped installs.
    type: path
  force:
    description:
      - Load the license even when a license with the same ID (or an unidentifiable one) is loaded already.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Load the CircleCI license copied to the Services machine
  circleci_server.aws.replicated_license:
    path: /var/lib/replicated/circle-config/license.rli

- name: Load it from a vaulted variable
  circleci_server.aws.replicated_license:
    content: "{{ circleci_license_content }}"
    license_id: "{{ circleci_license_id | default(omit) }}"
"""

RETURN = r"""
license_id:
  description: ID of the license loaded after the run.
  returned: success
  type: str
  sample: 5e7d1b8f0a0c4e2c9c3d1f6a
channel:
  description: Release channel of the license.
  returned: success
  type: str
  sample: Stable
expiration_time:
  description: When the license expires (empty when it does not).
  returned: success
  type: str
  sample: "2027-06-30T00:00:00Z"
license_type:
  description: Type of the license (prod, dev, trial...).
  returned: success
  type: str
  sample: prod
previous_license_id:
  description: ID of the license that was loaded before the run (empty when none).
  returned: success
  type: str
  sample: ""
"""

import json  # noqa: E402
import re  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.common.text.converters import to_native  # noqa: E402

from ansible_collections.circleci_server.aws.plugins.module_utils.replicatedctl import (  # noqa: E402
    ReplicatedctlError,
    client_from_module,
    replicatedctl_argument_spec,
)

ID_FIELDS = ("license_id", "LicenseID", "licenseID", "id")


def license_id_of(content):
    """The ID a license document states, or None when it cannot be read."""
    try:
        data = json.loads(content)
    except ValueError:
        data = None
    if isinstance(data, dict):
        for field in ID_FIELDS:
            if data.get(field):
                return str(data[field])
        return None
    for field in ID_FIELDS:
        match = re.search(r"^\s*%s\s*:\s*[\"']?([A-Za-z0-9_-]+)" % field, content, re.MULTILINE)
        if match:
            return match.group(1)
    return None


def summary(loaded):
    loaded = loaded or {}
    return dict(license_id=loaded.get("LicenseID", ""), channel=loaded.get("ChannelName", ""),
                expiration_time=loaded.get("ExpirationTime", ""), license_type=loaded.get("LicenseType", ""))


def main():
    argument_spec = replicatedctl_argument_spec()
    argument_spec.update(
        path=dict(type="path"),
        content=dict(type="str", no_log=True),
        license_id=dict(type="str"),
        airgap_package=dict(type="path"),
        force=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_one_of=[("path", "content")], mutually_exclusive=[("path", "content")])
    params = module.params
    if params["path"]:
        try:
            with open(params["path"], "r") as handle:
                content = handle.read()
        except (IOError, OSError) as exc:
            module.fail_json(msg="cannot read the license file %s: %s" % (params["path"], to_native(exc.strerror)))
    else:
        content = params["content"]
    if not content or not content.strip():
        module.fail_json(msg="the license is empty: check path/content")

    client = client_from_module(module)
    try:
        loaded = client.license_inspect()
        wanted_id = params["license_id"] or license_id_of(content)
        loaded_id = (loaded or {}).get("LicenseID", "")
        result = dict(changed=False, previous_license_id=loaded_id)
        if loaded and not params["force"]:
            if wanted_id is None:
                module.warn("cannot read the ID of this license, and license %s is loaded already: left as it is. "
                            "Set license_id (or force) to replace it." % loaded_id)
                result.update(summary(loaded))
                module.exit_json(**result)
            if wanted_id == loaded_id:
                result.update(summary(loaded))
                module.exit_json(**result)
        result["changed"] = True
        result["diff"] = dict(before={"license_id": loaded_id}, after={"license_id": wanted_id or "(new license)"})
        if module.check_mode:
            result.update(summary(loaded))
            result["license_id"] = wanted_id or ""
            module.exit_json(**result)
        client.license_load(content, airgap_package=params["airgap_package"])
        result.update(summary(client.license_inspect()))
    except ReplicatedctlError as exc:
        module.fail_json(msg="license not loaded: %s" % exc.message)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
