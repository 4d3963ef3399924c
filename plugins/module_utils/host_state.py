# -*- coding: utf-8 -*-
# Copyright: contributors to circleci_server.aws
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read what a role manages on a host in one go, and decide what differs.

The roles of this collection read every file, unit and package they manage
with one run of the host_state module (HostStateReader below) and run a
write task only where the host differs from what they want (the
comparisons below, exposed as filters). Each module run costs a fraction of
a second to seconds of CPU on the host and on the controller; on a converged
host this turns one or two module runs per file into one per role.

The comparisons follow what ansible.builtin.copy/file compare: existence,
type, SHA-1 of the content, mode, owner and group.
"""

from __future__ import absolute_import, division, print_function

import fnmatch
import grp
import hashlib
import os
import pwd
import stat

# Enough for any configuration file; a larger file asked for in `read` is an error, not a truncation.
MAX_READ_BYTES = 1024 * 1024

_FILE_TYPES = (
    (stat.S_ISREG, "file"),
    (stat.S_ISDIR, "directory"),
    (stat.S_ISLNK, "link"),
)


class HostStateError(Exception):
    pass


def _sha1_of_file(path):
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(65536), b""):
            digest.update(block)
    return digest.hexdigest()


def _name_of(lookup, ident):
    try:
        return lookup(ident)[0]
    except KeyError:  # an id with no name on this host
        return str(ident)


def package_name(spec):
    """'docker-ce=5:20.10.*' -> 'docker-ce' (the apt module's name=version form)."""
    return spec.split("=", 1)[0].strip()


class HostStateReader:
    """Reads files, systemd units and Debian packages. Never changes anything.

    run_command(argv) -> (rc, stdout, stderr); AnsibleModule.run_command fits, tests pass a fake.
    """

    def __init__(self, run_command, systemctl=None, dpkg_query=None):
        self.run_command = run_command
        self.systemctl = systemctl
        self.dpkg_query = dpkg_query

    def file(self, path, read=False):
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return {"exists": False}
        except OSError as exc:
            raise HostStateError("cannot look at %s: %s" % (path, exc.strerror)) from None
        file_type = next((name for check, name in _FILE_TYPES if check(info.st_mode)), "other")
        result = {
            "exists": True,
            "type": file_type,
            "mode": "%04o" % stat.S_IMODE(info.st_mode),
            "owner": _name_of(pwd.getpwuid, info.st_uid),
            "group": _name_of(grp.getgrgid, info.st_gid),
        }
        if file_type == "file":
            try:
                result["checksum"] = _sha1_of_file(path)
                if read:
                    if info.st_size > MAX_READ_BYTES:
                        raise HostStateError("%s is %d bytes; read takes files up to %d bytes"
                                             % (path, info.st_size, MAX_READ_BYTES))
                    with open(path, "rb") as handle:
                        result["content"] = handle.read().decode("utf-8", errors="replace")
            except OSError as exc:
                raise HostStateError("cannot read %s: %s" % (path, exc.strerror)) from None
        return result

    def unit(self, name):
        """{'active': 'active'|'inactive'|..., 'enabled': 'enabled'|'disabled'|'not-found'|...}"""
        if not self.systemctl:
            return {"active": "unknown", "enabled": "unknown"}
        rc, out, _err = self.run_command([self.systemctl, "is-active", name])
        active = out.strip() or "unknown"
        rc, out, _err = self.run_command([self.systemctl, "is-enabled", name])
        enabled = out.strip() or ("not-found" if rc != 0 else "unknown")
        return {"active": active, "enabled": enabled}

    def packages(self, specs):
        """{name: installed version or None} for Debian package names (name=version specs accepted)."""
        names = sorted({package_name(spec) for spec in specs})
        if not names:
            return {}
        versions = dict.fromkeys(names)
        if not self.dpkg_query:
            return versions
        # dpkg-query exits 1 when one of the names is unknown, and still lists the others.
        _rc, out, _err = self.run_command([self.dpkg_query, "-W", "-f", "${Package}\t${db:Status-Abbrev}\t${Version}\n"]
                                          + names)
        for line in out.splitlines():
            fields = line.split("\t")
            # Status-Abbrev: wanted action (i=install, h=hold, ...), then state (i=installed).
            if len(fields) == 3 and fields[1][1:2] == "i" and fields[0] in versions:
                versions[fields[0]] = fields[2]
        return versions

    def collect(self, files=(), read=(), units=(), packages=()):
        read = set(read)
        paths = list(files) + sorted(read - set(files))
        return {
            "files": {path: self.file(path, read=path in read) for path in paths},
            "units": {name: self.unit(name) for name in units},
            "packages": self.packages(packages),
        }


# --- comparisons (the filters of plugins/filter/host_state.py) ----------------------------


def _wanted_mode(mode):
    if mode is None:
        return None
    if isinstance(mode, int):
        return mode
    try:
        return int(str(mode), 8)
    except ValueError:
        raise HostStateError("mode %r is not an octal number such as '0644'" % (mode,)) from None


def _entry(host_state, section, key, option):
    try:
        return host_state[section][key]
    except (KeyError, TypeError):
        raise HostStateError("%s was not read: add it to the host_state module's %s option" % (key, option)) from None


def file_differs(host_state, path, content=None, mode=None, owner=None, group=None, state="file"):
    """True when the host's `path` is not what the caller wants.

    state: 'file' (content, when given, compared by SHA-1), 'directory' or 'absent'.
    mode/owner/group: compared when given.
    """
    current = _entry(host_state, "files", path, "files")
    if state == "absent":
        return bool(current.get("exists"))
    if state not in ("file", "directory"):
        raise HostStateError("state must be file, directory or absent (is %r)" % (state,))
    if not current.get("exists") or current.get("type") != state:
        return True
    if state == "file" and content is not None:
        data = content if isinstance(content, bytes) else str(content).encode("utf-8")
        if hashlib.sha1(data).hexdigest() != current.get("checksum"):
            return True
    wanted_mode = _wanted_mode(mode)
    if wanted_mode is not None and int(current.get("mode", "0"), 8) != wanted_mode:
        return True
    if owner is not None and current.get("owner") != owner:
        return True
    return group is not None and current.get("group") != group


def unit_needs_start(host_state, name):
    """True unless the systemd unit is both active and enabled."""
    current = _entry(host_state, "units", name, "units")
    return not (current.get("active") == "active" and current.get("enabled") == "enabled")


def packages_missing(host_state, specs):
    """The specs (name or name=version, version may hold * wildcards) not installed as asked."""
    missing = []
    for spec in specs:
        name = package_name(spec)
        installed = _entry(host_state, "packages", name, "packages")
        wanted = spec.split("=", 1)[1].strip() if "=" in spec else None
        if installed is None or (wanted and not fnmatch.fnmatchcase(installed, wanted)):
            missing.append(spec)
    return missing
