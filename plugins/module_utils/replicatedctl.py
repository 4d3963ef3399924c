# -*- coding: utf-8 -*-
# Copyright: contributors to circleci_server.aws
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A client for Replicated's `replicatedctl` CLI (Replicated 2.x).

It runs the CLI, asks for JSON, parses it, and turns failures into typed
errors carrying the CLI's own message. Secrets (license content, settings
values, passwords) only ever travel on stdin, and are masked out of every
error message.
"""

from __future__ import absolute_import, division, print_function

import datetime
import hashlib
import json
import os
import re
import tempfile
import time

DEFAULT_HOST = "unix:///var/run/replicated/replicated-cli.sock"
NO_SUCH_IMAGE = "no such image"
MASK = "********"
# Settings whose names look like these are shown masked in diffs.
SECRET_KEY_PATTERN = re.compile(r"secret|password|passphrase|token|private|credential", re.IGNORECASE)
# In output the client could not parse: a secret-looking key followed by its
# value, bare ("key": "v", key=v) or in the app-config shape ("key": {"value": "v"}).
SECRET_PAIR_PATTERN = re.compile(
    r"""(["']?[\w.-]*(?:secret|password|passphrase|token|private|credential)[\w.-]*["']?\s*[:=]\s*"""
    r"""(?:\{\s*["']?value["']?\s*:\s*)?)("(?:[^"\\]|\\.)*"?|'[^']*'?|[^\s,}]+)""",
    re.IGNORECASE)


class ReplicatedctlError(Exception):
    """replicatedctl failed; `message` is the CLI's own reason (secrets masked)."""

    def __init__(self, message, command=None, rc=None, stderr=""):
        super(ReplicatedctlError, self).__init__(message)
        self.message = message
        self.command = command or []
        self.rc = rc
        self.stderr = stderr


class ReplicatedDaemonUnavailable(ReplicatedctlError):
    """The CLI could not reach the Replicated daemon (socket missing, refused)."""


class ReplicatedNotFound(ReplicatedctlError):
    """The thing asked for does not exist yet (no license loaded, no app)."""


class ReplicatedctlNotInstalled(ReplicatedctlError):
    """The replicatedctl binary itself could not be run."""


def module_runner(module):
    """Runner over AnsibleModule.run_command (stdin through `data`, no trailing newline added)."""

    def run(argv, data=None):
        return module.run_command(argv, data=data, binary_data=True, check_rc=False)

    return run


def cli_message(stderr, stdout=""):
    """The CLI's own reason: its `Error: ...` lines, else the last non-empty output line."""
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    errors = [line[len("Error:"):].strip() for line in lines if line.startswith("Error:")]
    if errors:
        return "; ".join(errors)
    # Ignore a stand-in's notice line, keep whatever else the CLI said.
    lines = [line for line in lines if "STAND-IN" not in line]
    if lines:
        return lines[-1]
    out = [line.strip() for line in (stdout or "").splitlines() if line.strip()]
    return out[-1] if out else "no output"


def is_secret_key(key, extra=()):
    return key in extra or bool(SECRET_KEY_PATTERN.search(key))


def to_setting_value(value):
    """Replicated stores every setting as a string; booleans are "1"/"0"."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def settings_changes(current, desired):
    """Keys of `desired` whose string value differs from `current` -> new value."""
    return dict((key, value) for key, value in sorted(desired.items()) if current.get(key) != value)


def masked_settings_diff(current, changes, secret_keys=()):
    """before/after holding only the keys that change; secret values masked."""
    before, after = {}, {}
    for key, value in changes.items():
        secret = is_secret_key(key, secret_keys)
        old = current.get(key)
        before[key] = (MASK if old else "") if secret and old is not None else old
        after[key] = (MASK + " (changed)" if value else "") if secret else value
    return {"before": before, "after": after}


class ProtectedSettingsRefused(ReplicatedctlError):
    """A protected setting (the secret passphrase) would change without confirmation."""

    def __init__(self, keys):
        self.keys = keys
        super(ProtectedSettingsRefused, self).__init__(
            "refusing to change %s: already set in Replicated to another value, and a new value "
            "makes the secrets CircleCI stored with the old one unreadable. Keep the old value, "
            "or set confirm_protected_changes (the collection's playbooks: "
            "circleci_secret_passphrase_change_confirm=true) to change it anyway" % ", ".join(keys))


def apply_settings(client, desired, secret_keys=(), check_mode=False, skip_validation=False,
                   protected=(), confirm_protected=False):
    """Export the app settings, import only the keys whose values differ (none in check mode).

    The one apply-settings path of replicated_app_config and github_oauth. Returns
    {changed, changed_keys[, diff]} with secret values masked in the diff; raises
    ProtectedSettingsRefused when a protected key already set would change unconfirmed.
    """
    current = client.app_config_export()
    changes = settings_changes(current, desired)
    refused = sorted(key for key in protected if key in changes and current.get(key))
    if refused and not confirm_protected:
        raise ProtectedSettingsRefused(refused)
    result = dict(changed=bool(changes), changed_keys=sorted(changes))
    if changes:
        result["diff"] = masked_settings_diff(current, changes, secret_keys)
        if not check_mode:
            client.app_config_import(changes, skip_validation=skip_validation, secret_keys=secret_keys)
    return result


class Replicatedctl:
    """Runs `replicatedctl [--host HOST] ...` and parses its JSON."""

    def __init__(self, runner, binary="replicatedctl", host=None):
        """`runner(argv, stdin_text) -> (rc, stdout, stderr)`, e.g. module_runner(module)."""
        self.binary = binary
        self.host = host
        self.runner = runner
        self._secrets = set()

    # -- plumbing -------------------------------------------------------
    def _mask(self, text):
        """Known secrets, then the value of every secret-looking key, replaced by the mask."""
        text = text or ""
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret and len(secret) >= 3:
                text = text.replace(secret, MASK)
        return SECRET_PAIR_PATTERN.sub(lambda match: match.group(1) + MASK, text)

    def _argv(self, args):
        argv = [self.binary]
        if self.host:
            argv += ["--host", self.host]
        return argv + list(args)

    def run(self, args, stdin=None, secrets=()):
        """Run one command; return stdout. `secrets` are masked from any error."""
        self._secrets.update(s for s in secrets if isinstance(s, str))
        argv = self._argv(args)
        rc, out, err = self.runner(argv, stdin)
        if rc != 0:
            message = self._mask(cli_message(err, out))
            command = " ".join(args[:2])
            lowered = message.lower()
            if "dial unix" in lowered or "connection refused" in lowered or "cannot connect" in lowered \
                    or "no such host" in lowered or "dial tcp" in lowered:
                raise ReplicatedDaemonUnavailable(
                    "cannot reach the Replicated daemon at %s (is the replicated service running?): %s"
                    % (self.host or DEFAULT_HOST, message), argv[:1] + list(args), rc, self._mask(err or ""))
            if "not found" in lowered or "no license" in lowered:
                raise ReplicatedNotFound("replicatedctl %s failed: %s" % (command, message), argv[:1] + list(args),
                                         rc, self._mask(err or ""))
            if rc == 127 or "no such file or directory" in lowered and not out:
                raise ReplicatedctlNotInstalled("cannot run %s: %s" % (self.binary, message), argv[:1], rc,
                                                self._mask(err or ""))
            raise ReplicatedctlError("replicatedctl %s failed: %s" % (command, message),
                                     argv[:1] + list(args), rc, self._mask(err or ""))
        return out

    def run_json(self, args, show_output=True):
        """Run and parse JSON. Unparsable output is shown masked and cut short, or
        (show_output=False, for output made of settings) only its size."""
        out = self.run(list(args) + ["-o", "json"])
        try:
            return json.loads(out)
        except ValueError:
            shown = ("%r" % self._mask(out)[:200]) if show_output else \
                "%d bytes, not shown: they hold the app settings" % len(out or "")
            raise ReplicatedctlError("replicatedctl %s did not print JSON: %s" % (" ".join(args), shown),
                                     [self.binary] + list(args)) from None

    # -- license ----------------------------------------------------------
    def license_inspect(self):
        """The loaded license as a dict, or None when there is none."""
        try:
            data = self.run_json(["license", "inspect"])
        except ReplicatedNotFound:
            return None
        return data or None

    def license_load(self, content, airgap_package=None):
        args = ["license-load"]
        if airgap_package:
            args += ["--airgap-package", airgap_package]
        self.run(args, stdin=content, secrets=[content])

    # -- app config -------------------------------------------------------
    def app_config_export(self):
        """Current settings as {key: "value"}."""
        data = self.run_json(["app-config", "export"], show_output=False)
        if not isinstance(data, dict):
            raise ReplicatedctlError("replicatedctl app-config export: expected a JSON object, got %s"
                                     % type(data).__name__)
        values = dict((key, (item or {}).get("value", "") if isinstance(item, dict) else to_setting_value(item))
                      for key, item in data.items())
        # Later errors (an import the CLI rejects, echoing the old values) mask these too.
        self._secrets.update(value for key, value in values.items() if is_secret_key(key) and value)
        return values

    def app_config_import(self, values, skip_validation=False, secret_keys=()):
        """Import {key: "value"} (only the keys given) through stdin; secret values are masked in errors."""
        payload = json.dumps(dict((key, {"value": value}) for key, value in values.items()), sort_keys=True)
        args = ["app-config", "import"]
        if skip_validation:
            args.append("--skip-validation")
        self.run(args, stdin=payload,
                 secrets=[value for key, value in values.items() if is_secret_key(key, secret_keys)])

    # -- app --------------------------------------------------------------
    def app_status(self):
        """The first app's status dict (AppID, State, DesiredState, Error, IsTransitioning...) or None."""
        data = self.run_json(["app", "status"])
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list):
            raise ReplicatedctlError("replicatedctl app status: expected a JSON array")
        return data[0] if data else None

    def app_start(self):
        self.run(["app", "start"])

    def app_stop(self):
        self.run(["app", "stop"])

    # -- console auth -------------------------------------------------------
    def console_auth_export(self):
        return self.run_json(["console-auth", "export"])

    def console_auth_import(self, password):
        payload = json.dumps({"Password": {"Password": password}})
        self.run(["console-auth", "import"], stdin=payload, secrets=[password])


# -- license identity -------------------------------------------------------
# A real .rli is opaque: Replicated's "What's in a license file?"
# (help.replicated.com/community/t/379) lists keys, the license ID, a registry
# token and, for airgap licenses, dates and a signature, in no documented
# readable layout. So the ID is read from the file only when the file is a
# JSON/YAML document stating it; otherwise the loaded license is identified by
# `license inspect` (LicenseID, ExpirationTime) after the load, and the file by
# its SHA-256, kept in a small record on the host next to the ID it loaded as.
LICENSE_ID_FIELDS = ("license_id", "LicenseID", "licenseID", "id")
DEFAULT_LICENSE_RECORD = "/etc/circleci/replicated-license.json"


def license_id_of(content):
    """The ID a license document states, or None when it cannot be read (a real, opaque .rli)."""
    try:
        data = json.loads(content)
    except ValueError:
        data = None
    if isinstance(data, dict):
        for field in LICENSE_ID_FIELDS:
            if data.get(field):
                return str(data[field])
        return None
    for field in LICENSE_ID_FIELDS:
        match = re.search(r"^\s*%s\s*:\s*[\"']?([A-Za-z0-9_-]+)" % field, content, re.MULTILINE)
        if match:
            return match.group(1)
    return None


def license_fingerprint(content):
    if not isinstance(content, bytes):
        content = content.encode("utf-8", "surrogateescape")
    return hashlib.sha256(content).hexdigest()


def license_decision(loaded, wanted_id, fingerprint, record, force=False):
    """(load?, why) for a license file against the loaded license and the record of the last load.

    `loaded` is `license inspect` (None when no license is loaded), `wanted_id` the ID the file or the user
    states (None when unknown), `record` the last load's {"sha256", "license_id"} (or {}).
    """
    loaded_id = (loaded or {}).get("LicenseID", "")
    if not loaded:
        return True, "no license is loaded"
    if force:
        return True, "force is set"
    if wanted_id:
        if wanted_id == loaded_id:
            return False, "license %s is loaded already" % loaded_id
        return True, "license %s is loaded, the file is license %s" % (loaded_id, wanted_id)
    if record.get("sha256") == fingerprint and record.get("license_id") == loaded_id:
        return False, "this file was loaded before as license %s, which is still loaded" % loaded_id
    if record.get("sha256") == fingerprint:
        return True, ("this file was loaded as license %s, but license %s is loaded now"
                      % (record.get("license_id"), loaded_id))
    return True, "the file differs from the one last loaded (license %s is loaded)" % loaded_id


def read_license_record(path):
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (IOError, OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_license_record(path, fingerprint, loaded):
    """Record the file's SHA-256 with what `license inspect` reported after loading it (0600, atomic)."""
    loaded = loaded or {}
    record = {"sha256": fingerprint, "license_id": loaded.get("LicenseID", ""),
              "expiration_time": loaded.get("ExpirationTime", ""),
              "recorded_by": "circleci_server.aws.replicated_license"}
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".license-record-")
    with os.fdopen(fd, "w") as handle:
        json.dump(record, handle, indent=2, sort_keys=True)
    os.chmod(tmp, 0o600)
    os.rename(tmp, path)
    return record


def days_until(expiration_time, now=None):
    """Whole days until an RFC 3339 time (negative when past), or None when empty or unreadable."""
    if not expiration_time:
        return None
    try:
        when = datetime.datetime.strptime(expiration_time[:19], "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    now = now or datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    return (when - now).days


def replicatedctl_argument_spec():
    """Options every replicatedctl module takes (doc fragment circleci_server.aws.replicatedctl)."""
    return dict(
        replicatedctl_path=dict(type="str", default="replicatedctl"),
        replicatedctl_host=dict(type="str"),
    )


def client_from_module(module):
    """A Replicatedctl over module.run_command; fails the module when the binary is missing."""
    path = module.params["replicatedctl_path"]
    if "/" in path and not os.access(path, os.X_OK):
        module.fail_json(msg="replicatedctl_path %s is not an executable file on this host" % path)
    if "/" not in path:
        path = module.get_bin_path(path, opt_dirs=["/usr/local/bin"])
        if not path:
            module.fail_json(msg="replicatedctl was not found on PATH or in /usr/local/bin: is Replicated "
                                 "installed on this host? (or set replicatedctl_path)")
    return Replicatedctl(module_runner(module), binary=path, host=module.params["replicatedctl_host"])


class AppWaiter:
    """Drives start/stop and the wait loop over a Replicatedctl client."""

    def __init__(self, client, state, timeout, poll_interval, image_retries, retry_delay, clock=time.time,
                 sleep=time.sleep):
        self.client, self.state = client, state
        self.timeout, self.poll_interval = timeout, poll_interval
        self.image_retries, self.retry_delay = image_retries, retry_delay
        self.clock, self.sleep = clock, sleep
        self.retries_used = 0

    @staticmethod
    def reached(status, state):
        return bool(status) and status.get("State") == state and not status.get("IsTransitioning")

    def _command(self):
        if self.state == "started":
            self.client.app_start()
        else:
            self.client.app_stop()

    def _retry_or_fail(self, reason, deadline):
        if self.retries_used >= self.image_retries:
            raise ReplicatedctlError("the app did not start: %s (still after %d retr%s; the images may not be "
                                     "pulled yet: check `docker images` and the Replicated logs, or raise "
                                     "image_retries/retry_delay)"
                                     % (reason, self.retries_used, "y" if self.retries_used == 1 else "ies"))
        self.retries_used += 1
        self.sleep(min(self.retry_delay, max(0.0, deadline - self.clock())))

    def run(self, wait=True):
        start = self.clock()
        deadline = start + self.timeout
        status = None
        while True:
            try:
                self._command()
            except ReplicatedctlError as exc:
                if self.state == "started" and NO_SUCH_IMAGE in exc.message:
                    self._retry_or_fail(exc.message, deadline)
                    continue
                raise
            if not wait:
                return self.client.app_status(), self.clock() - start
            restart = False
            while True:
                status = self.client.app_status()
                if status is None:
                    raise ReplicatedctlError("replicatedctl app status lists no app: is the license loaded?")
                if self.reached(status, self.state):
                    return status, self.clock() - start
                error = status.get("Error") or ""
                if not status.get("IsTransitioning") and error:
                    if self.state == "started" and NO_SUCH_IMAGE in error:
                        self._retry_or_fail(error, deadline)
                        restart = True
                        break
                    raise ReplicatedctlError("the app did not reach %s: State=%s, Error=%s"
                                             % (self.state, status.get("State"), error))
                if self.clock() >= deadline:
                    raise ReplicatedctlError("timed out after %ss waiting for the app to be %s: State=%s, "
                                             "IsTransitioning=%s, Error=%s"
                                             % (self.timeout, self.state, status.get("State"),
                                                status.get("IsTransitioning"), error or "none"))
                self.sleep(self.poll_interval)
            if not restart:
                return status, self.clock() - start
