#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to circleci_server.aws
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: replicated_snapshot
short_description: Take, list or restore Replicated 2.x snapshots of the CircleCI Server app
description:
  - Drives C(replicatedctl snapshot start|ls|restore) (Replicated's replicatedctl reference,
    U(https://help.replicated.com/api/replicatedctl/replicatedctl_snapshot/)) with the snapshot store given
    on the command line (C(--store s3 --s3-bucket --s3-folder --s3-region ...)), so the console's snapshot
    settings need not be set.
  - V(state=present) takes a snapshot (C(snapshot start --wait)) and returns it, its ID read from
    C(snapshot ls -o json) (the ID listed after the start and not before; the start command documents no
    output). Always C(changed=true); in check mode nothing is taken.
  - V(state=listed) lists the snapshots of the destination, oldest first (never changes anything).
  - V(state=restored) restores O(snapshot_id), or the newest finished snapshot when it is not given
    (C(snapshot restore ID --dismiss-preflight-checks)). It refuses an install that is live (a license is
    loaded and the app is started or starting) unless O(allow_over_live=true), since a restore replaces the license,
    the settings and the app data with the snapshot's. The app is not started here (start it with
    M(circleci_server.aws.replicated_app)).
version_added: "1.1.0"
author:
  - circleci_server.aws contributors (@circleci-server-aws)
extends_documentation_fragment:
  - circleci_server.aws.replicatedctl
  - circleci_server.aws.replicatedctl.attributes
options:
  state:
    description:
      - V(present) takes a snapshot, V(listed) lists them, V(restored) restores one.
    type: str
    choices: [present, listed, restored]
    default: present
  store:
    description:
      - Snapshot backend, the C(--store) flag. V(local) is for tests and single machines only
        (Replicated discourages it in production).
    type: str
    choices: [s3, local]
    default: s3
  s3_bucket:
    description:
      - Bucket of the snapshots (C(--s3-bucket)). Required with V(store=s3).
    type: str
  s3_folder:
    description:
      - Folder in the bucket (C(--s3-folder)); one destination per install (Replicated keeps its snapshot
        metadata there, and instances must not share it). Required with V(store=s3).
    type: str
  s3_region:
    description:
      - Region of the bucket (C(--s3-region)). Required with V(store=s3).
    type: str
  s3_endpoint:
    description:
      - An AWS-compatible S3 endpoint (C(--s3-compatible-endpoint)); not set for AWS itself.
    type: str
  s3_key_id:
    description:
      - Access key ID with write access to the bucket (C(--s3-key-id)). Leave unset, with O(s3_secret_key), to
        give Replicated no key.
    type: str
  s3_secret_key:
    description:
      - Secret of O(s3_key_id) (C(--s3-secret-key)). The CLI takes it only as a command-line flag, so it is
        visible in the Services machine's process list while the command runs; it is masked in every result and
        error.
    type: str
  s3_server_side_encryption:
    description:
      - C(--s3-server-side-encryption), V('') or V(aws:kms).
    type: str
  s3_sse_kms_key_id:
    description:
      - C(--s3-sse-kms-key-id), the KMS key for V(aws:kms).
    type: str
  path:
    description:
      - Absolute path of the snapshots with V(store=local) (C(--path)).
    type: path
  exclude_app_data:
    description:
      - With V(state=present), snapshot only Replicated's data (C(--exclude-app-data)).
    type: bool
    default: false
  snapshot_id:
    description:
      - With V(state=restored), the snapshot to restore; default the newest finished one.
    type: str
  allow_over_live:
    description:
      - With V(state=restored), restore even over a live install (license loaded, app started).
    type: bool
    default: false
  node_timeout:
    description:
      - With V(state=restored), C(--node-timeout) (seconds to wait for nodes to connect).
    type: int
"""

EXAMPLES = r"""
- name: Snapshot the app into the install's bucket, one folder per backup
  circleci_server.aws.replicated_snapshot:
    state: present
    s3_bucket: "{{ circleci_infrastructure.bucket_name }}"
    s3_folder: "circleci-backups/ci/20261203T164512Z/replicated"
    s3_region: us-east-1
  register: snapshot

- name: Restore the newest snapshot of that folder onto a replaced Services machine
  circleci_server.aws.replicated_snapshot:
    state: restored
    s3_bucket: "{{ circleci_infrastructure.bucket_name }}"
    s3_folder: "circleci-backups/ci/20261203T164512Z/replicated"
    s3_region: us-east-1
"""

RETURN = r"""
snapshot_id:
  description: ID of the snapshot taken (present) or restored (restored).
  returned: state is present or restored
  type: str
  sample: 6a1f0d9c2b7e4c1e
snapshot:
  description: That snapshot as C(snapshot ls -o json) lists it.
  returned: state is present or restored
  type: dict
  sample: {"id": "6a1f0d9c2b7e4c1e", "finished": "2026-12-03T16:45:20Z"}
snapshots:
  description: The snapshots of the destination, oldest first.
  returned: always
  type: list
  elements: dict
destination:
  description: Where the snapshots are (C(s3://bucket/folder) or the local path).
  returned: always
  type: str
  sample: s3://ci-circleci-bucket/circleci-backups/ci/20261203T164512Z/replicated
live:
  description: Whether the install was live before a restore, and why.
  returned: state is restored
  type: dict
  sample: {"live": false, "reason": "no license is loaded (a fresh or replaced Services machine)"}
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.circleci_server.aws.plugins.module_utils.replicatedctl import (  # noqa: E402
    ReplicatedctlError,
    client_from_module,
    replicatedctl_argument_spec,
)
from ansible_collections.circleci_server.aws.plugins.module_utils.replicated_snapshot import (  # noqa: E402
    ReplicatedSnapshots,
    SnapshotError,
    choose_snapshot,
    install_is_live,
)


def main():
    argument_spec = replicatedctl_argument_spec()
    argument_spec.update(
        state=dict(type="str", choices=["present", "listed", "restored"], default="present"),
        store=dict(type="str", choices=["s3", "local"], default="s3"),
        s3_bucket=dict(type="str"),
        s3_folder=dict(type="str"),
        s3_region=dict(type="str"),
        s3_endpoint=dict(type="str"),
        s3_key_id=dict(type="str", no_log=True),
        s3_secret_key=dict(type="str", no_log=True),
        s3_server_side_encryption=dict(type="str"),
        s3_sse_kms_key_id=dict(type="str", no_log=False),
        path=dict(type="path"),
        exclude_app_data=dict(type="bool", default=False),
        snapshot_id=dict(type="str"),
        allow_over_live=dict(type="bool", default=False),
        node_timeout=dict(type="int"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[("store", "s3", ("s3_bucket", "s3_folder", "s3_region")),
                                        ("store", "local", ("path",))],
                           required_together=[("s3_key_id", "s3_secret_key")])
    params = module.params
    client = client_from_module(module)
    try:
        snapshots = ReplicatedSnapshots(
            client, store=params["store"], s3_bucket=params["s3_bucket"], s3_folder=params["s3_folder"],
            s3_region=params["s3_region"], s3_endpoint=params["s3_endpoint"], s3_key_id=params["s3_key_id"],
            s3_secret_key=params["s3_secret_key"], s3_server_side_encryption=params["s3_server_side_encryption"],
            s3_sse_kms_key_id=params["s3_sse_kms_key_id"], path=params["path"])
    except SnapshotError as exc:
        module.fail_json(msg=exc.message)
    result = dict(changed=False, destination=snapshots.destination)
    state = params["state"]
    try:
        if state == "listed":
            result["snapshots"] = snapshots.list()
        elif state == "present":
            result["changed"] = True
            result["diff"] = dict(before={"snapshots_in_destination": len(snapshots.list())},
                                  after={"snapshots_in_destination": "one more"})
            if module.check_mode:
                result["snapshots"] = snapshots.list()
                module.exit_json(**result)
            taken = snapshots.start(exclude_app_data=params["exclude_app_data"])
            result.update(snapshot=taken, snapshot_id=taken.get("id"), snapshots=snapshots.list())
        else:
            listed = snapshots.list()
            chosen = choose_snapshot(listed, params["snapshot_id"])
            live, why = install_is_live(client.license_inspect(), client.app_status())
            result.update(snapshots=listed, snapshot=chosen, snapshot_id=chosen.get("id"),
                          live=dict(live=live, reason=why))
            if live and not params["allow_over_live"]:
                module.fail_json(msg="refusing to restore snapshot %s over a live install: %s. A restore replaces "
                                     "the license, the settings and the app data with the snapshot's; to do it "
                                     "anyway set allow_over_live (circleci_restore_over_live=true)"
                                     % (chosen.get("id"), why), **result)
            result["changed"] = True
            result["diff"] = dict(before={"restored_snapshot": ""}, after={"restored_snapshot": chosen.get("id")})
            if not module.check_mode:
                snapshots.restore(chosen["id"], node_timeout=params["node_timeout"])
    except ReplicatedctlError as exc:
        module.fail_json(msg="replicated snapshot %s failed (%s): %s" % (state, snapshots.destination, exc.message),
                         **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
