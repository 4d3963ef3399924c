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
  - A real C(.rli) is opaque (Replicated documents no readable layout), so the module learns the license ID and
    expiry from C(replicatedctl license inspect) after the load, and remembers the file by its SHA-256 next to that
    ID in O(record_path). A later run with the same file, while that license is still loaded, changes nothing;
    another file is loaded (C(changed=true)).
  - When the license is a JSON/YAML document stating its ID (C(license_id), C(LicenseID) or C(id)), or O(license_id)
    is given, that ID is compared with the loaded one instead.
  - Warns when the loaded license expires within O(expiry_warning_days).
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
      - Load the license even when the same license is loaded already.
    type: bool
    default: false
  record_path:
    description:
      - File on the managed host that remembers the SHA-256 of the last license file loaded and the license ID and
        expiry C(license inspect) reported for it (mode 0600; holds no part of the license).
    type: path
    default: /etc/circleci/replicated-license.json
  expiry_warning_days:
    description:
      - Warn when the loaded license expires within this many days (0 = never warn).
    type: int
    default: 30
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
expires_in_days:
  description: Whole days until the license expires (negative when expired; null when it does not expire).
  returned: success
  type: int
  sample: 208
reason:
  description: Why the license was, or was not, loaded.
  returned: success
  type: str
  sample: this file was loaded before as license 5e7d1b8f0a0c4e2c9c3d1f6a, which is still loaded
previous_license_id:
  description: ID of the license that was loaded before the run (empty when none).
  returned: success
  type: str
  sample: ""
previous_expiration_time:
  description: When the license loaded before the run expires (empty when none is loaded or it does not expire).
  returned: success
  type: str
  sample: "2026-12-31T00:00:00Z"
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.common.text.converters import to_native  # noqa: E402

from ansible_collections.circleci_server.aws.plugins.module_utils.replicatedctl import (  # noqa: E402
    DEFAULT_LICENSE_RECORD,
    ReplicatedctlError,
    client_from_module,
    days_until,
    license_decision,
    license_fingerprint,
    license_id_of,
    read_license_record,
    replicatedctl_argument_spec,
    write_license_record,
)


def summary(loaded):
    loaded = loaded or {}
    return dict(license_id=loaded.get("LicenseID", ""), channel=loaded.get("ChannelName", ""),
                expiration_time=loaded.get("ExpirationTime", ""), license_type=loaded.get("LicenseType", ""),
                expires_in_days=days_until(loaded.get("ExpirationTime", "")))


def main():
    argument_spec = replicatedctl_argument_spec()
    argument_spec.update(
        path=dict(type="path"),
        content=dict(type="str", no_log=True),
        license_id=dict(type="str"),
        airgap_package=dict(type="path"),
        force=dict(type="bool", default=False),
        record_path=dict(type="path", default=DEFAULT_LICENSE_RECORD),
        expiry_warning_days=dict(type="int", default=30),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_one_of=[("path", "content")], mutually_exclusive=[("path", "content")])
    params = module.params
    if params["path"]:
        try:
            with open(params["path"], "rb") as handle:
                content = handle.read().decode("utf-8", "surrogateescape")
        except (IOError, OSError) as exc:
            module.fail_json(msg="cannot read the license file %s: %s" % (params["path"], to_native(exc.strerror)))
    else:
        content = params["content"]
    if not content or not content.strip():
        module.fail_json(msg="the license is empty: check path/content")

    client = client_from_module(module)
    fingerprint = license_fingerprint(content)
    record = read_license_record(params["record_path"])
    try:
        loaded = client.license_inspect()
        wanted_id = params["license_id"] or license_id_of(content)
        loaded_id = (loaded or {}).get("LicenseID", "")
        load, reason = license_decision(loaded, wanted_id, fingerprint, record, params["force"])
        result = dict(changed=load, previous_license_id=loaded_id, reason=reason,
                      previous_expiration_time=(loaded or {}).get("ExpirationTime", ""))
        if not load:
            result.update(summary(loaded))
            if not module.check_mode and (record.get("sha256") != fingerprint or record.get("license_id") != loaded_id):
                # Remember this file for runs that cannot read its ID (bookkeeping, not a change).
                write_license_record(params["record_path"], fingerprint, loaded)
        else:
            result["diff"] = dict(before={"license_id": loaded_id},
                                  after={"license_id": wanted_id or "(the license in the file)"})
            if module.check_mode:
                result.update(summary(loaded))
                result["license_id"] = wanted_id or ""
                module.exit_json(**result)
            client.license_load(content, airgap_package=params["airgap_package"])
            loaded = client.license_inspect()
            result.update(summary(loaded))
            if wanted_id and result["license_id"] and wanted_id != result["license_id"]:
                module.warn("the license file states ID %s, but Replicated reports %s after loading it"
                            % (wanted_id, result["license_id"]))
            write_license_record(params["record_path"], fingerprint, loaded)
    except ReplicatedctlError as exc:
        module.fail_json(msg="license not loaded: %s" % exc.message)
    except (IOError, OSError) as exc:
        module.fail_json(msg="cannot write record_path %s: %s" % (params["record_path"], to_native(exc)))
    days = result.get("expires_in_days")
    if days is not None and params["expiry_warning_days"] > 0 and days < params["expiry_warning_days"]:
        module.warn("license %s expires on %s (in %d days): ask CircleCI for a new license"
                    % (result.get("license_id"), result.get("expiration_time"), days))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
