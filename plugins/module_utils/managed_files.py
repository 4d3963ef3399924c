# -*- coding: utf-8 -*-
# Copyright: contributors to circleci_server.aws
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Put many files and directories on a host in one module run, changing only what differs.

The circleci_server.aws.managed_files module is a thin shell over ManagedFiles
and ManagedServices below. Each entry is compared the way ansible.builtin.copy and
ansible.builtin.file compare (existence, type, content, mode, owner, group)
and only what differs is written; a converged host costs one module run for
the whole list instead of one per file. The systemd units the files belong to
are then enabled and started in the same run (ManagedServices): one
`systemctl show` for all of them when nothing needs doing.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import stat
import tempfile

# Larger files get no content diff (copy's default max_file_size_for_diff is 100 KiB too).
MAX_DIFF_BYTES = 104448
STATES = ("file", "directory", "absent")

# Where systemd reads unit files and drop-ins: a change there needs a daemon-reload.
SYSTEMD_UNIT_DIRS = ("/etc/systemd/system/", "/run/systemd/system/", "/lib/systemd/system/", "/usr/lib/systemd/system/")
# The UnitFileState values for which `systemctl is-enabled` exits 0 (systemctl(1)), as
# ansible.builtin.systemd_service counts a unit as enabled.
ENABLED_FILE_STATES = frozenset(("enabled", "enabled-runtime", "alias", "static", "indirect", "generated", "transient"))
# ActiveState values of a unit that runs or is on its way (systemd_service counts active and activating).
RUNNING_STATES = frozenset(("active", "activating", "reloading"))
UNIT_PROPERTIES = ("Id", "LoadState", "ActiveState", "UnitFileState", "NeedDaemonReload")


class ManagedFilesError(Exception):
    pass


def summarize(outcomes, name_key, changed_key, results_key):
    """(result, diff) per entry -> changed, the changed entries' names, the results and the changed ones' diffs."""
    results = [result for result, _diff in outcomes]
    return {
        "changed": any(result["changed"] for result in results),
        changed_key: [result[name_key] for result in results if result["changed"]],
        results_key: results,
        "diff": [diff for result, diff in outcomes if result["changed"]],
    }


def _kind(path):
    """'file', 'directory', 'link', 'other' or None (missing); links are not followed."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISDIR(mode):
        return "directory"
    return "file" if stat.S_ISREG(mode) else "other"


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def _as_bytes(content):
    return content.encode("utf-8") if not isinstance(content, bytes) else content


def _text_for_diff(data):
    if data is None:
        return ""
    if len(data) > MAX_DIFF_BYTES or b"\0" in data:
        return "(%d bytes, not shown)\n" % len(data)
    return data.decode("utf-8", errors="replace")


def merge_json(existing, wanted):
    """existing with wanted merged in: nested objects key by key, anything else replaced (combine(recursive=True))."""
    merged = dict(existing)
    for key, value in wanted.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_json(merged[key], value)
        else:
            merged[key] = value
    return merged


def json_text(data):
    """JSON as to_nice_json(indent=2) writes it, with a final newline."""
    return json.dumps(data, indent=2, sort_keys=True, separators=(",", ": ")) + "\n"


class ManagedFiles:
    """Brings a list of entries to the wanted state.

    files: [{dest, state ('file'|'directory'|'absent'), content (str, for a file) or json_merge (dict), mode, owner,
    group, backup, protected}]
    module: an AnsibleModule (its load_file_common_arguments, set_fs_attributes_if_different,
    atomic_move, backup_local and check_mode are used).
    """

    def __init__(self, module):
        self.module = module

    def apply(self, files):
        self._refuse_protected_changes(files)
        return summarize([self._one(entry) for entry in files], "dest", "changed_paths", "results")

    @staticmethod
    def _refuse_protected_changes(files):
        """Fail before anything is written when a protected file holds other content (its message says why)."""
        for entry in files:
            message = entry.get("protected")
            if not message or (entry.get("state") or "file") != "file" or entry.get("content") is None:
                continue
            dest = entry["dest"]
            if _kind(dest) == "file" and _read(dest) != _as_bytes(entry["content"]):
                raise ManagedFilesError("%s: %s" % (dest, message))

    def _one(self, entry):
        dest = entry["dest"]
        state = entry.get("state") or "file"
        if state not in STATES:
            raise ManagedFilesError("%s: state must be one of %s (is %r)" % (dest, ", ".join(STATES), state))
        kind = _kind(dest)
        result = {"dest": dest, "state": state, "changed": False}
        diff = {"before_header": dest, "after_header": dest, "before": {}, "after": {}}

        if state == "absent":
            if kind is not None:
                diff["before"]["state"], diff["after"]["state"] = kind, "absent"
                if not self.module.check_mode:
                    self._remove(dest, kind)
                result["changed"] = True
            return result, diff

        if state == "directory":
            if kind not in (None, "directory"):
                raise ManagedFilesError("%s is a %s, not a directory: remove it, then run again" % (dest, kind))
            if kind is None:
                diff["before"]["state"], diff["after"]["state"] = "absent", "directory"
                result["changed"] = True
                if not self.module.check_mode:
                    os.makedirs(dest)
        else:
            content = entry.get("content")
            if entry.get("json_merge") is not None:
                content = json_text(merge_json(self._json_object(dest, kind), entry["json_merge"]))
            if content is None:
                raise ManagedFilesError("%s: a file needs content (or src or template)" % dest)
            if kind not in (None, "file", "link"):
                raise ManagedFilesError("%s is a %s, not a file: remove it, then run again" % (dest, kind))
            wanted = _as_bytes(content)
            current = _read(dest) if kind == "file" else None
            if current != wanted:
                result["changed"] = True
                diff["before"] = _text_for_diff(current) if kind != "link" else "(a symbolic link)\n"
                diff["after"] = _text_for_diff(wanted)
                if not self.module.check_mode:
                    self._write(dest, wanted, backup=entry.get("backup") and kind == "file", result=result)

        # In check mode a file that is not there yet has no attributes to compare.
        if self.module.check_mode and kind is None:
            return result, diff
        attributes = self.module.load_file_common_arguments(
            {"mode": entry.get("mode"), "owner": entry.get("owner"), "group": entry.get("group")}, path=dest)
        attr_diff = {"before": {}, "after": {}}
        if self.module.set_fs_attributes_if_different(attributes, False, diff=attr_diff):
            result["changed"] = True
            if isinstance(diff["before"], dict):
                if kind is not None:  # a new path had no attributes before
                    diff["before"].update(attr_diff["before"])
                diff["after"].update(attr_diff["after"])
            else:
                # Content and attributes in one entry: show the attributes in the headers.
                diff["before_header"] = "%s %s" % (dest, _attrs(attr_diff["before"]))
                diff["after_header"] = "%s %s" % (dest, _attrs(attr_diff["after"]))
        return result, diff

    @staticmethod
    def _json_object(dest, kind):
        """The JSON object a file holds ({} for a missing or empty file), read on the host."""
        if kind != "file":
            return {}
        text = _read(dest).decode("utf-8", errors="replace")
        if not text.strip():
            return {}
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ManagedFilesError("%s is not valid JSON (%s): fix or remove it, then run again"
                                    % (dest, exc)) from None
        if not isinstance(data, dict):
            raise ManagedFilesError("%s holds JSON that is not an object: fix or remove it, then run again" % dest)
        return data

    def _remove(self, dest, kind):
        if kind == "directory":
            try:
                os.rmdir(dest)
            except OSError as exc:
                raise ManagedFilesError("%s is a directory that is not empty (%s): it is not removed"
                                        % (dest, exc.strerror)) from None
        else:
            os.unlink(dest)

    def _write(self, dest, data, backup, result):
        parent = os.path.dirname(dest) or "."
        if not os.path.isdir(parent):
            raise ManagedFilesError("the directory of %s does not exist: list it before the file, as state=directory"
                                    % dest)
        if backup:
            result["backup_file"] = self.module.backup_local(dest)
        handle, temporary = tempfile.mkstemp(dir=parent, prefix=".managed_files.")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            self.module.atomic_move(temporary, dest, unsafe_writes=False)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)


def touches_units(paths):
    """Whether any of these paths is a unit file or drop-in that systemd reads."""
    return any(path.startswith(SYSTEMD_UNIT_DIRS) for path in paths)


def parse_show(text, count):
    """`systemctl show -p ... unit...` output -> one {property: value} per unit, in the order given.

    systemctl prints one block of Key=value lines per unit, separated by an empty line.
    """
    blocks, current = [], {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, _sep, value = line.partition("=")
        current[key] = value
    if current:
        blocks.append(current)
    if len(blocks) != count:
        raise ManagedFilesError("systemctl show answered for %d unit(s), not %d: %r" % (len(blocks), count, text[:300]))
    return blocks


class ManagedServices:
    """Brings systemd units to enabled/started (or disabled/stopped), asking systemd once when nothing is to do.

    services: [{name, enabled (bool), state ('started'|'stopped')}]
    module: an AnsibleModule (run_command, get_bin_path and check_mode are used).
    A daemon-reload comes first when `reload_needed` (a unit file of this run changed), when systemd reports
    NeedDaemonReload for a unit (also after an earlier run that wrote a unit file and failed), or when a unit is
    not loaded yet (a unit file that is new to systemd).
    """

    def __init__(self, module):
        self.module = module
        self.systemctl = module.get_bin_path("systemctl", required=True)

    def _run(self, *args):
        rc, out, err = self.module.run_command([self.systemctl] + list(args))
        if rc != 0:
            raise ManagedFilesError("systemctl %s failed (rc %d): %s" % (" ".join(args), rc, (err or out).strip()))
        return out

    def _show(self, names):
        return parse_show(self._run("show", "--property=" + ",".join(UNIT_PROPERTIES), "--", *names), len(names))

    def apply(self, services, reload_needed=False):
        names = [service["name"] for service in services]
        units = self._show(names)
        reload_now = not self.module.check_mode and (reload_needed or any(
            unit.get("NeedDaemonReload") == "yes" or unit.get("LoadState") == "not-found" for unit in units))
        if reload_now:
            self._run("daemon-reload")
            units = self._show(names)
        outcome = summarize([self._one(service, unit) for service, unit in zip(services, units)],
                            "name", "changed_services", "services")
        outcome["daemon_reloaded"] = reload_now
        return outcome

    def _one(self, service, unit):
        name = service["name"]
        load_state = unit.get("LoadState", "")
        if load_state == "masked":
            raise ManagedFilesError("the systemd unit %s is masked: unmask it (systemctl unmask %s), then run again"
                                    % (name, name))
        enabled, active = unit.get("UnitFileState", ""), unit.get("ActiveState", "")
        result = {"name": name, "changed": False, "enabled": enabled, "state": active}
        diff = {"before_header": "systemd unit %s" % name, "after_header": "systemd unit %s" % name,
                "before": {"enabled": enabled, "state": active}}
        if load_state != "loaded":
            if not self.module.check_mode:
                raise ManagedFilesError("systemd has no unit %s (LoadState %s): install it before this task"
                                        % (name, load_state or "unknown"))
            # Its unit file comes with an earlier task or this one, which check mode did not run.
            result.update(changed=True, state="(unit not loaded yet)")
            diff["after"] = {"enabled": service["enabled"], "state": service["state"]}
            return result, diff
        if (enabled in ENABLED_FILE_STATES) != service["enabled"]:
            self._change("enable" if service["enabled"] else "disable", name)
            result["enabled"] = "enabled" if service["enabled"] else "disabled"
        running = service["state"] == "started"
        if (active in RUNNING_STATES) != running:
            self._change("start" if running else "stop", name)
            result["state"] = "active" if running else "inactive"
        diff["after"] = {"enabled": result["enabled"], "state": result["state"]}
        result["changed"] = diff["after"] != diff["before"]
        return result, diff

    def _change(self, verb, name):
        if not self.module.check_mode:
            self._run(verb, "--", name)


def _attrs(values):
    return " ".join("%s=%s" % (key, values[key]) for key in sorted(values))
