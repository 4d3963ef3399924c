# -*- coding: utf-8 -*-
# Copyright: contributors to circleci_server.aws
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replicated 2.x snapshots through `replicatedctl snapshot` (over the Replicatedctl client).

The commands and flags, from Replicated's replicatedctl reference
(help.replicated.com/api/replicatedctl/, legacy Replicated 2.x):
  replicatedctl snapshot start [--exclude-app-data] [--wait]          (replicatedctl_snapshot_start)
  replicatedctl snapshot ls [-o json|yaml] [-q]                       (replicatedctl_snapshot_ls)
  replicatedctl snapshot restore ID [--dismiss-preflight-checks] [--node-timeout N]
                                                                      (replicatedctl_snapshot_restore)
each with the store flags of the `replicatedctl snapshot` command: --store s3|sftp|local,
--s3-bucket, --s3-folder, --s3-region, --s3-key-id, --s3-secret-key, --s3-compatible-endpoint,
--s3-server-side-encryption, --s3-sse-kms-key-id, --path (replicatedctl_snapshot).

`snapshot ls -o json` prints a JSON array of snapshots; Replicated documents no schema for it. The
fields read here are the two HashiCorp's documented Terraform Enterprise recovery scripts read from
the same output (`jq -r 'sort_by(.finished) | .[-1].id'`, "Private Terraform Enterprise Automated
Recovery"): `id` and `finished`. Everything else is passed through untouched.

`snapshot start --wait` documents no output either, so the new snapshot's ID is the one `snapshot ls`
lists after the start and did not list before it.

Replicated keeps its snapshot metadata in the destination, and "multiple instances cannot share the
same destination" (help.replicated.com/docs/snapshots/customer-snapshot-configuration): every
destination here is a folder of its own (one per backup, see playbooks/backup.yml).
"""

from __future__ import absolute_import, division, print_function

import json

from ansible_collections.circleci_server.aws.plugins.module_utils.replicatedctl import ReplicatedctlError


class SnapshotError(ReplicatedctlError):
    """A snapshot step failed, or its outcome is not what was asked for."""


def snapshot_sort_key(snapshot):
    """Oldest first: by `finished` (RFC 3339 strings sort in time order), then by id."""
    return (str(snapshot.get("finished") or ""), str(snapshot.get("id") or ""))


def choose_snapshot(snapshots, wanted_id=None):
    """The snapshot to restore: the one with `wanted_id`, else the newest finished one."""
    finished = [s for s in snapshots if s.get("id") and s.get("finished")]
    if wanted_id:
        for snapshot in snapshots:
            if snapshot.get("id") == wanted_id:
                return snapshot
        raise SnapshotError("snapshot %s is not in this destination; it holds: %s"
                            % (wanted_id, ", ".join(s.get("id", "?") for s in snapshots) or "no snapshot"))
    if not finished:
        raise SnapshotError("no finished snapshot in this destination (replicatedctl snapshot ls lists %d)"
                            % len(snapshots))
    return sorted(finished, key=snapshot_sort_key)[-1]


def install_is_live(license_info, app_status):
    """(live?, why). Live = a license is loaded and the app is started or on its way there.

    A restore replaces the license, the settings and the app data: over such an install it would
    throw away whatever happened since the snapshot. A replaced Services machine has no license
    yet (or its app is stopped), so it is not live.
    """
    if not license_info:
        return False, "no license is loaded (a fresh or replaced Services machine)"
    status = app_status or {}
    state, desired = status.get("State", ""), status.get("DesiredState", "")
    if "started" in (state, desired) or state == "starting":
        return True, ("license %s is loaded and the app is %s (desired %s)"
                      % (license_info.get("LicenseID", "?"), state or "?", desired or "?"))
    return False, ("license %s is loaded but the app is %s"
                   % (license_info.get("LicenseID", "?"), state or "not installed"))


class ReplicatedSnapshots:
    """Snapshots of the Replicated app in one destination (an S3 folder, or a local path)."""

    def __init__(self, client, store="s3", s3_bucket=None, s3_folder=None, s3_region=None,
                 s3_endpoint=None, s3_key_id=None, s3_secret_key=None, s3_server_side_encryption=None,
                 s3_sse_kms_key_id=None, path=None):
        self.client = client
        self.store = store
        self.s3_bucket = s3_bucket
        self.s3_folder = s3_folder
        self.s3_region = s3_region
        self.s3_endpoint = s3_endpoint
        self.s3_key_id = s3_key_id
        self.s3_secret_key = s3_secret_key
        self.s3_server_side_encryption = s3_server_side_encryption
        self.s3_sse_kms_key_id = s3_sse_kms_key_id
        self.path = path
        self.check()

    def check(self):
        if self.store == "s3":
            missing = [name for name, value in (("s3_bucket", self.s3_bucket), ("s3_folder", self.s3_folder),
                                                ("s3_region", self.s3_region)) if not value]
            if missing:
                raise SnapshotError("the s3 snapshot store needs %s" % ", ".join(missing))
            if bool(self.s3_key_id) != bool(self.s3_secret_key):
                raise SnapshotError("give both s3_key_id and s3_secret_key, or neither (the instance's role)")
        elif self.store == "local":
            if not self.path or not self.path.startswith("/"):
                raise SnapshotError("the local snapshot store needs an absolute path")
        else:
            raise SnapshotError("store must be s3 or local, not %r" % self.store)

    @property
    def destination(self):
        if self.store == "s3":
            return "s3://%s/%s" % (self.s3_bucket, self.s3_folder.strip("/"))
        return self.path

    def store_args(self):
        """The `replicatedctl snapshot` store flags for this destination."""
        if self.store == "local":
            return ["--store", "local", "--path", self.path]
        args = ["--store", "s3", "--s3-bucket", self.s3_bucket, "--s3-folder", self.s3_folder.strip("/"),
                "--s3-region", self.s3_region]
        if self.s3_endpoint:
            args += ["--s3-compatible-endpoint", self.s3_endpoint]
        if self.s3_server_side_encryption:
            args += ["--s3-server-side-encryption", self.s3_server_side_encryption]
        if self.s3_sse_kms_key_id:
            args += ["--s3-sse-kms-key-id", self.s3_sse_kms_key_id]
        if self.s3_key_id:
            # The CLI takes the key only as a flag (no stdin form is documented); the client masks it
            # from every error it reports.
            args += ["--s3-key-id", self.s3_key_id, "--s3-secret-key", self.s3_secret_key]
        return args

    def _secrets(self):
        return [self.s3_secret_key] if self.s3_secret_key else []

    def list(self):
        """Every snapshot in the destination, oldest first."""
        out = self.client.run(["snapshot", "ls"] + self.store_args() + ["-o", "json"], secrets=self._secrets())
        try:
            data = json.loads(out) if (out or "").strip() else []
        except ValueError:
            raise SnapshotError("replicatedctl snapshot ls did not print JSON: %r" % (out or "")[:200]) from None
        if data is None:
            data = []
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise SnapshotError("replicatedctl snapshot ls: expected a JSON array of snapshots")
        return sorted(data, key=snapshot_sort_key)

    def start(self, exclude_app_data=False):
        """Take a snapshot and wait for it; return the new snapshot (from `snapshot ls`)."""
        before = set(s.get("id") for s in self.list())
        args = ["snapshot", "start", "--wait"]
        if exclude_app_data:
            args.append("--exclude-app-data")
        self.client.run(args + self.store_args(), secrets=self._secrets())
        new = [s for s in self.list() if s.get("id") not in before]
        if not new:
            raise SnapshotError("replicatedctl snapshot start --wait returned, but no new snapshot is listed in %s"
                                % self.destination)
        snapshot = sorted(new, key=snapshot_sort_key)[-1]
        if not snapshot.get("finished"):
            raise SnapshotError("snapshot %s in %s has not finished after snapshot start --wait"
                                % (snapshot.get("id"), self.destination))
        return snapshot

    def restore(self, snapshot_id, dismiss_preflight_checks=True, node_timeout=None):
        args = ["snapshot", "restore", snapshot_id]
        if dismiss_preflight_checks:
            args.append("--dismiss-preflight-checks")
        if node_timeout:
            args += ["--node-timeout", str(int(node_timeout))]
        self.client.run(args + self.store_args(), secrets=self._secrets())
