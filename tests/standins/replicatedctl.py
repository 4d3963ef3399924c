#!/usr/bin/env python3
"""replicatedctl STAND-IN for tests: not Replicated's CLI.

Implements the subset of `replicatedctl` (Replicated 2.x) that this collection
uses, with the documented argument forms and JSON output shapes:

  license-load [--airgap-package P] [-q] [--attach] < license.rli
  license inspect [-o json|yaml]
  app-config export [--hidden] [-o json]         -> {"key": {"value": "..."}}
  app-config import [--format json] [--skip-validation] < settings.json
  app-config set NAME --value V [--skip-validation]
  app start [--attach] | app stop [--attach] | app status [-o json]
  console-auth import [--format json] < {"Password": {"Password": "..."}}
  console-auth export [-o json]
  snapshot start [--wait] [--exclude-app-data] STORE
  snapshot ls [-o json] [-q] STORE
  snapshot restore ID [--dismiss-preflight-checks] [--node-timeout N] STORE
  version

Snapshots (replicatedctl reference: help.replicated.com/api/replicatedctl/
replicatedctl_snapshot, _snapshot_start, _snapshot_ls, _snapshot_restore).
STORE is the documented store flags: `--store s3 --s3-bucket B --s3-folder F
--s3-region R [--s3-compatible-endpoint URL] [--s3-key-id K --s3-secret-key S]`
or `--store local --path DIR`. The stand-in never reaches real AWS: with
--store s3 it needs --s3-compatible-endpoint (the tests' moto), where it PUTs,
GETs and lists objects path-style, signed with AWS Signature Version 4
(docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html) with
--s3-key-id/--s3-secret-key, else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
from its environment, else the stand-in's placeholder key (moto checks no
signature; real Replicated would use the instance's credentials).
A snapshot is one object/file `<folder>/standin-snapshots/<id>.json` holding
Replicated's data (license, app config, console auth) and, unless
--exclude-app-data, the app's data (the files under the app data directory,
env REPLICATEDCTL_STANDIN_APP_DATA, default /var/lib/circleci-app-standin/data;
the CircleCI app stand-in keeps its data there). Real Replicated's layout in
the destination is not documented and is not imitated.
`snapshot ls -o json` prints a JSON array; the only documented readers of it
(HashiCorp's Terraform Enterprise recovery scripts: `sort_by(.finished) |
.[-1].id`) read `id` and `finished`, which the stand-in fills; `started` and
`appData` are the stand-in's own. `snapshot restore` puts the license,
settings, console auth and app data back and leaves the app stopped (the
restore scripts start it afterwards).

Every run prints a one-line stand-in notice on stderr. `--host URL` is
accepted anywhere, like the real CLI's global flag.

State lives in a JSON file: env REPLICATEDCTL_STANDIN_STATE (default
/var/lib/replicated-standin/state.json), created on first use. Fault switches
and timings live under "faults" in that file (edit it, or use
`replicatedctl standin-set KEY=JSON ...`, a stand-in-only helper):

  daemon_down: true            every command fails like the real CLI with no daemon
  expected_host: "unix:///x"   a --host other than this fails with the dial error
  reject_license: "reason"     license-load fails with "Error: <reason>"
  no_such_image_times: N       the first N `app start` fail with
                               "Failure reported from operator: no such image"
  start_seconds / stop_seconds how long the app is transitioning (default 1.0 / 0.5)
  known_config_keys: [...]     if set, unknown keys are rejected (unless --skip-validation)

Licenses. A real .rli is opaque to its user: Replicated's own description
("What's in a license file?", help.replicated.com/community/t/379) lists a
PGP public key, an RSA private key, the license ID and a registry token, and
for airgap licenses the channel, fields, grant and expiration dates and a
signature of the file; nothing documents a readable layout. So the stand-in's
license is opaque and signed too (make_license() below, or
`replicatedctl standin-make-license ID [EXPIRES]`):

  # Replicated license STAND-IN ... (one comment line)
  <base64 of zlib-compressed JSON payload>.<hex HMAC-SHA256 of that base64>

and only `license inspect` tells what is in it, as with the real CLI. A
tampered body fails with "License signature is invalid". The older plain JSON
document {"license_id", "channel_name", "expiration_time", ...} is still read,
for tests of the module's "ID stated in the file" path. Anything else is
rejected as unparsable.

Settings take effect on start: `app start` of a stopped app copies the
current app-config into app.RunningConfig (what the app runs with, read by
tests/standins/circleci_app.py); importing settings while the app runs changes
app_config only, until the app is stopped and started again, as with the real
app, whose containers read their settings when Replicated starts them.

Console passwords are kept only as a SHA-256 in the state file.
"""
import base64
import hmac
import datetime as _dt
import zlib
import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ElementTree

DEFAULT_HOST = "unix:///var/run/replicated/replicated-cli.sock"
DEFAULT_STATE = "/var/lib/replicated-standin/state.json"
DEFAULT_APP_DATA = "/var/lib/circleci-app-standin/data"
APP_ID = "standin-circleci-app-id"
NOTICE = "replicatedctl STAND-IN (tests/standins/replicatedctl.py): not Replicated's CLI"


# Stand-in only, not a secret: the "vendor key" the stand-in's licenses are signed with.
LICENSE_SIGNING_KEY = b"replicated-license-standin-signing-key"
LICENSE_HEADER = "# Replicated license STAND-IN (tests/standins/replicatedctl.py): opaque and signed like a real .rli"


class CliError(Exception):
    pass


def make_license(license_id, expiration_time=None, channel_name="Stable", license_type="prod", assignee=""):
    """An opaque, signed stand-in license (text)."""
    payload = json.dumps({"license_id": license_id, "channel_name": channel_name, "license_type": license_type,
                          "expiration_time": expiration_time, "assignee": assignee}, sort_keys=True)
    body = base64.b64encode(zlib.compress(payload.encode())).decode()
    signature = hmac.new(LICENSE_SIGNING_KEY, body.encode(), hashlib.sha256).hexdigest()
    return "%s\n%s.%s\n" % (LICENSE_HEADER, body, signature)


def parse_license(text):
    """The license's fields from either stand-in format; CliError when it is neither."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if len(lines) == 1 and "." in lines[0] and not lines[0].startswith("{"):
        body, _, signature = lines[0].rpartition(".")
        expected = hmac.new(LICENSE_SIGNING_KEY, body.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise CliError("License signature is invalid")
        try:
            lic = json.loads(zlib.decompress(base64.b64decode(body, validate=True)))
        except (ValueError, zlib.error):
            raise CliError("License signature is invalid") from None
    else:
        try:
            lic = json.loads(text)
        except ValueError:
            lic = None
    if not isinstance(lic, dict) or not lic.get("license_id"):
        raise CliError("failed to parse license: not a valid license file")
    return lic


def state_path():
    return os.environ.get("REPLICATEDCTL_STANDIN_STATE") or DEFAULT_STATE


def new_state():
    return {
        "standin": NOTICE,
        "license": None,
        "app_config": {},
        "console_auth": {"Type": "anonymous"},
        "app": {
            "State": "stopped",
            "DesiredState": "stopped",
            "Sequence": 0,
            "Error": "",
            "TransitionUntil": 0,
            "RunningConfig": {},
        },
        "faults": {
            "daemon_down": False,
            "expected_host": None,
            "reject_license": None,
            "no_such_image_times": 0,
            "start_seconds": 1.0,
            "stop_seconds": 0.5,
            "known_config_keys": None,
        },
        "counters": {"app_start": 0, "license_load": 0, "app_config_import": 0, "console_auth_import": 0},
        "calls": [],
    }


@contextlib.contextmanager
def locked_state():
    path = state_path()
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with open(path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(path) as handle:
                text = handle.read()
            state = json.loads(text) if text.strip() else new_state()
        except FileNotFoundError:
            state = new_state()
        defaults = new_state()
        for key, value in defaults.items():
            state.setdefault(key, value)
        for key, value in defaults["faults"].items():
            state["faults"].setdefault(key, value)
        for key, value in defaults["counters"].items():
            state["counters"].setdefault(key, value)
        try:
            yield state
        finally:
            # Saved on errors too: counters and app errors must persist.
            _save(state, path, directory)


def _save(state, path, directory):
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".state-")
    with os.fdopen(fd, "w") as handle:
        json.dump(state, handle, indent=2, sort_keys=True)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def parse_args(argv):
    """Split global --host from the rest; return (host, words, flags)."""
    host = DEFAULT_HOST
    words, flags = [], {}
    i = 0
    value_flags = {"--host", "-o", "--output", "--format", "--value", "--data", "--airgap-package", "--template",
                   "--type", "--store", "--path", "--s3-bucket", "--s3-folder", "--s3-region", "--s3-key-id",
                   "--s3-secret-key", "--s3-compatible-endpoint", "--s3-server-side-encryption",
                   "--s3-sse-kms-key-id", "--node-timeout"}
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("-"):
            name, eq, val = arg.partition("=")
            if name in value_flags:
                if not eq:
                    i += 1
                    if i >= len(argv):
                        raise CliError("flag needs an argument: %s" % name)
                    val = argv[i]
                if name == "--host":
                    host = val
                else:
                    flags.setdefault(name, []).append(val)
            else:
                flags[name] = True
        else:
            words.append(arg)
        i += 1
    return host, words, flags


def output_format(flags):
    fmt = (flags.get("-o") or flags.get("--output") or ["json"])[-1]
    if fmt not in ("json", "yaml"):
        raise CliError('invalid output format "%s": one of json|yaml' % fmt)
    return fmt


def emit(data, flags):
    if "--template" in flags:
        raise CliError("--template is not supported by the stand-in")
    fmt = output_format(flags)
    if fmt == "yaml":
        # Flat enough for our shapes; yaml is a superset of json.
        print(json.dumps(data, indent=2))
    else:
        print(json.dumps(data, indent=2))


def read_stdin_json(what):
    text = sys.stdin.read()
    if not text.strip():
        raise CliError("%s: no input on stdin" % what)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CliError("%s: failed to decode json: %s" % (what, exc)) from None


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


def refresh_app(state):
    app = state["app"]
    if app.get("TransitionUntil") and time.time() >= app["TransitionUntil"]:
        app["TransitionUntil"] = 0
        app["State"] = app["DesiredState"]


def app_status(state):
    refresh_app(state)
    if not state["license"]:
        return []
    app = state["app"]
    transitioning = bool(app.get("TransitionUntil"))
    return [{
        "AppID": APP_ID,
        "Sequence": app["Sequence"],
        "PatchSequence": 0,
        "State": app["State"],
        "DesiredState": app["DesiredState"],
        "Error": app.get("Error", ""),
        "IsCancellable": transitioning,
        "IsTransitioning": transitioning,
        "LastModifiedAt": app.get("LastModifiedAt", ""),
    }]


def cmd_license_load(state, flags):
    text = sys.stdin.read()
    if not text.strip():
        raise CliError("license file is empty")
    state["counters"]["license_load"] += 1
    reason = state["faults"].get("reject_license")
    if reason:
        raise CliError(reason)
    lic = parse_license(text)
    expiry = lic.get("expiration_time")
    if expiry:
        when = datetime.datetime.fromisoformat(expiry.replace("Z", "+00:00"))
        if when < now_utc():
            raise CliError("License has expired (expiration time %s)" % expiry)
    if state["license"] and state["license"]["LicenseID"] == lic["license_id"]:
        pass  # the real daemon re-syncs the same license; nothing new
    state["license"] = {
        "LicenseID": lic["license_id"],
        "Assignee": lic.get("assignee", ""),
        "ChannelID": lic.get("channel_id", "standin-channel-id"),
        "ChannelName": lic.get("channel_name", "Stable"),
        "LicenseType": lic.get("license_type", "prod"),
        "ExpirationTime": expiry or "",
        "ExpirationPolicy": "ignore" if not expiry else "noupdate-norestart",
        "IsAirgapEnabled": bool(flags.get("--airgap-package")),
        "LastSyncedAt": now_utc().strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if not flags.get("-q") and not flags.get("--quiet"):
        print("License loaded")


def cmd_license_inspect(state, flags):
    if not state["license"]:
        raise CliError("license not found")
    emit(state["license"], flags)


def check_keys(state, keys, flags):
    known = state["faults"].get("known_config_keys")
    if known and not flags.get("--skip-validation"):
        unknown = sorted(set(keys) - set(known))
        if unknown:
            raise CliError("config item %s not found" % unknown[0])


def cmd_app_config(state, words, flags):
    sub = words[0] if words else ""
    if sub == "export":
        emit({k: {"value": v} for k, v in sorted(state["app_config"].items())}, flags)
    elif sub == "import":
        fmt = (flags.get("--format") or ["json"])[-1]
        if fmt != "json":
            raise CliError("the stand-in only imports json")
        data = read_stdin_json("app-config import")
        if not isinstance(data, dict):
            raise CliError('app-config import: expected an object of {"key": {"value": "..."}}')
        values = {}
        for key, item in data.items():
            if not isinstance(item, dict) or not isinstance(item.get("value", ""), str):
                raise CliError('app-config import: item %s: expected {"value": "<string>"}' % key)
            values[key] = item.get("value", "")
        check_keys(state, values, flags)
        state["app_config"].update(values)
        state["counters"]["app_config_import"] += 1
    elif sub == "set":
        if len(words) < 2:
            raise CliError("app-config set: NAME is required")
        value = (flags.get("--value") or [None])[-1]
        if value is None:
            raise CliError("app-config set: --value is required")
        check_keys(state, [words[1]], flags)
        state["app_config"][words[1]] = value
    else:
        raise CliError('unknown command "%s" for "replicatedctl app-config"' % sub)


def cmd_app(state, words, flags):
    sub = words[0] if words else ""
    if sub == "status":
        emit(app_status(state), flags)
        return
    if sub not in ("start", "stop"):
        raise CliError('unknown command "%s" for "replicatedctl app"' % sub)
    if not state["license"]:
        raise CliError("app not found: load a license first")
    refresh_app(state)
    app = state["app"]
    faults = state["faults"]
    stamp = now_utc().strftime("%Y-%m-%dT%H:%M:%SZ")
    if sub == "start":
        state["counters"]["app_start"] += 1
        if state["counters"]["app_start"] <= int(faults.get("no_such_image_times") or 0):
            app.update(State="stopped", DesiredState="started", TransitionUntil=0, LastModifiedAt=stamp,
                       Error="Failure reported from operator: no such image")
            raise CliError("Failure reported from operator: no such image")
        if app["State"] == "started" and not app.get("TransitionUntil"):
            return  # already running: settings imported since then are not applied
        # The app starts with the settings of this moment.
        app["RunningConfig"] = dict(state["app_config"])
        app.update(State="starting", DesiredState="started", Error="", LastModifiedAt=stamp,
                   TransitionUntil=time.time() + float(faults.get("start_seconds") or 0))
        app["Sequence"] = max(app["Sequence"], 1)
    else:
        if app["State"] == "stopped" and not app.get("TransitionUntil"):
            app["DesiredState"] = "stopped"
            return
        app.update(State="stopping", DesiredState="stopped", Error="", LastModifiedAt=stamp,
                   TransitionUntil=time.time() + float(faults.get("stop_seconds") or 0))
    refresh_app(state)


def cmd_console_auth(state, words, flags):
    sub = words[0] if words else ""
    if sub == "import":
        data = read_stdin_json("console-auth import")
        password = (data.get("Password") or {}).get("Password") if isinstance(data, dict) else None
        if not isinstance(password, str) or not password:
            raise CliError('console-auth import: expected {"Password": {"Password": "..."}}')
        state["console_auth"] = {"Type": "password",
                                 "PasswordSHA256": hashlib.sha256(password.encode()).hexdigest()}
        state["counters"]["console_auth_import"] += 1
    elif sub == "export":
        auth = state["console_auth"]
        if auth.get("Type") == "password":
            # The password is never echoed back.
            emit({"Type": "password", "Password": {"Password": ""}}, flags)
        else:
            emit({"Type": auth.get("Type", "anonymous")}, flags)
    else:
        raise CliError('unknown command "%s" for "replicatedctl console-auth"' % sub)


def flag(flags, name, default=None):
    return (flags.get(name) or [default])[-1]


def sigv4_headers(method, url, body, region, key_id, secret):
    """AWS Signature Version 4 headers for one S3 request (payload hashed, path-style URL)."""
    parts = urllib.parse.urlsplit(url)
    now = _dt.datetime.now(_dt.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(body or b"").hexdigest()
    headers = {"host": parts.netloc, "x-amz-content-sha256": payload, "x-amz-date": amz_date}
    query = "&".join("%s=%s" % (urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~"))
                     for k, v in sorted(urllib.parse.parse_qsl(parts.query, keep_blank_values=True)))
    signed = ";".join(sorted(headers))
    canonical = "\n".join([method, parts.path or "/", query,
                           "".join("%s:%s\n" % (k, headers[k]) for k in sorted(headers)), signed, payload])
    scope = "%s/%s/s3/aws4_request" % (day, region)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
                                % (key_id, scope, signed, signature))
    del headers["host"]  # urllib sends it
    return headers


class SnapshotStore:
    """Where snapshots go: an S3-compatible endpoint (path-style, unsigned) or a local directory."""

    def __init__(self, flags):
        self.kind = flag(flags, "--store")
        if self.kind == "s3":
            self.bucket = flag(flags, "--s3-bucket")
            self.folder = (flag(flags, "--s3-folder") or "").strip("/")
            self.endpoint = flag(flags, "--s3-compatible-endpoint")
            if not self.bucket or not flag(flags, "--s3-region"):
                raise CliError("s3 store needs --s3-bucket and --s3-region")
            if not self.endpoint:
                raise CliError("the stand-in reaches no real AWS: give --s3-compatible-endpoint")
            self.endpoint = self.endpoint.rstrip("/")
            self.region = flag(flags, "--s3-region")
            self.key_id = flag(flags, "--s3-key-id") or os.environ.get("AWS_ACCESS_KEY_ID") or "STANDINKEY"
            self.secret = flag(flags, "--s3-secret-key") or os.environ.get("AWS_SECRET_ACCESS_KEY") or "standin"
        elif self.kind == "local":
            self.path = flag(flags, "--path")
            if not self.path or not self.path.startswith("/"):
                raise CliError("local store needs an absolute --path")
        else:
            raise CliError("--store must be one of s3, sftp, local (the stand-in does s3 and local)")

    def _key(self, name):
        return "/".join(part for part in (self.folder, "standin-snapshots", name) if part)

    def _url(self, key="", query=""):
        url = "%s/%s" % (self.endpoint, urllib.parse.quote(self.bucket))
        if key:
            url += "/" + urllib.parse.quote(key)
        return url + (("?" + query) if query else "")

    def _request(self, method, url, body=None):
        headers = sigv4_headers(method, url, body, self.region, self.key_id, self.secret)
        if body is not None:
            # Without it urllib sends a form content type, whose body a WSGI server (moto) reads as a form.
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            raise CliError("snapshot store %s %s: HTTP %s %s" % (method, url, exc.code, exc.read()[:200])) from None
        except OSError as exc:
            raise CliError("snapshot store %s: %s" % (url, exc)) from None

    def put(self, name, data):
        body = json.dumps(data, sort_keys=True).encode()
        if self.kind == "local":
            directory = os.path.join(self.path, "standin-snapshots")
            os.makedirs(directory, exist_ok=True)
            with open(os.path.join(directory, name), "wb") as handle:
                handle.write(body)
            return
        self._request("PUT", self._url(self._key(name)), body)

    def get(self, name):
        if self.kind == "local":
            try:
                with open(os.path.join(self.path, "standin-snapshots", name), "rb") as handle:
                    return json.loads(handle.read())
            except FileNotFoundError:
                raise CliError("snapshot %s not found" % name[:-5]) from None
        try:
            return json.loads(self._request("GET", self._url(self._key(name))))
        except CliError as exc:
            if "HTTP 404" in str(exc):
                raise CliError("snapshot %s not found" % name[:-5]) from None
            raise

    def names(self):
        if self.kind == "local":
            directory = os.path.join(self.path, "standin-snapshots")
            return sorted(n for n in os.listdir(directory) if n.endswith(".json")) if os.path.isdir(directory) else []
        prefix = self._key("x")[:-1]
        text = self._request("GET", self._url(query="list-type=2&prefix=" + urllib.parse.quote(prefix)))
        names = []
        for element in ElementTree.fromstring(text).iter():
            if element.tag.endswith("Key") and element.text and element.text.endswith(".json"):
                names.append(element.text[len(prefix):])
        return sorted(names)


def app_data_dir():
    return os.environ.get("REPLICATEDCTL_STANDIN_APP_DATA") or DEFAULT_APP_DATA


def read_app_data():
    files = {}
    root = app_data_dir()
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                files[os.path.relpath(path, root)] = base64.b64encode(handle.read()).decode()
    return files


def write_app_data(files):
    root = app_data_dir()
    os.makedirs(root, exist_ok=True)
    for relative, content in files.items():
        path = os.path.join(root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(base64.b64decode(content))


def snapshot_summary(snapshot):
    return {key: snapshot[key] for key in ("id", "started", "finished", "appData")}


def cmd_snapshot(state, words, flags):
    sub = words[0] if words else ""
    store = SnapshotStore(flags)
    if sub == "ls":
        listed = [snapshot_summary(store.get(name)) for name in store.names()]
        if flags.get("-q") or flags.get("--quiet"):
            print("\n".join(s["id"] for s in listed))
        else:
            emit(listed, flags)
    elif sub == "start":
        if not state["license"]:
            raise CliError("app not found: load a license first")
        started = now_utc().strftime("%Y-%m-%dT%H:%M:%SZ")
        snapshot_id = uuid.uuid4().hex[:16]
        exclude = bool(flags.get("--exclude-app-data"))
        snapshot = {
            "id": snapshot_id, "started": started, "appData": not exclude,
            "standin": NOTICE,
            "replicated": {"license": state["license"], "app_config": state["app_config"],
                           "console_auth": state["console_auth"], "sequence": state["app"]["Sequence"]},
            "app_data": {} if exclude else read_app_data(),
        }
        snapshot["finished"] = now_utc().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        store.put(snapshot_id + ".json", snapshot)
        state["counters"]["snapshot_start"] = state["counters"].get("snapshot_start", 0) + 1
    elif sub == "restore":
        if len(words) < 2:
            raise CliError("snapshot restore: ID is required")
        snapshot = store.get(words[1] + ".json")
        saved = snapshot["replicated"]
        state["license"] = saved["license"]
        state["app_config"] = dict(saved["app_config"])
        state["console_auth"] = saved["console_auth"]
        state["app"].update(State="stopped", DesiredState="stopped", TransitionUntil=0, Error="",
                            Sequence=saved.get("sequence", 1), RunningConfig={})
        write_app_data(snapshot.get("app_data") or {})
        state["counters"]["snapshot_restore"] = state["counters"].get("snapshot_restore", 0) + 1
        print("Restored snapshot %s" % words[1])
    else:
        raise CliError('unknown command "%s" for "replicatedctl snapshot"' % sub)


def cmd_standin_set(state, words):
    """Stand-in only: standin-set faults.no_such_image_times=2 ..."""
    for assignment in words:
        dotted, _, raw = assignment.partition("=")
        target = state
        parts = dotted.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = json.loads(raw)


def run(argv):
    host, words, flags = parse_args(argv)
    if not words or flags.get("-h") or flags.get("--help"):
        print(__doc__)
        return 0
    if words[0] == "version":
        print("replicatedctl stand-in 2.29.0-standin")
        return 0
    if words[0] == "standin-make-license" and len(words) > 1:
        print(make_license(words[1], words[2] if len(words) > 2 else None), end="")
        return 0
    with locked_state() as state:
        state["calls"] = (state["calls"] + [argv])[-200:]
        if words[0] == "standin-set":
            cmd_standin_set(state, words[1:])
            return 0
        expected = state["faults"].get("expected_host") or DEFAULT_HOST
        if state["faults"].get("daemon_down") or host != expected:
            sock = host[len("unix://"):] if host.startswith("unix://") else host
            raise CliError("Get http://unix/license/v1/license: dial unix %s: connect: no such file or directory"
                           % sock if host.startswith("unix://") else
                           "Get %s: dial tcp: connect: connection refused" % host)
        command, rest = words[0], words[1:]
        if command == "license-load":
            cmd_license_load(state, flags)
        elif command == "license" and rest[:1] == ["inspect"]:
            cmd_license_inspect(state, flags)
        elif command == "app-config":
            cmd_app_config(state, rest, flags)
        elif command == "app":
            cmd_app(state, rest, flags)
        elif command == "console-auth":
            cmd_console_auth(state, rest, flags)
        elif command == "snapshot":
            cmd_snapshot(state, rest, flags)
        else:
            raise CliError('unknown command "%s" for "replicatedctl"' % " ".join(words))
    return 0


def main():
    sys.stderr.write(NOTICE + "\n")
    try:
        code = run(sys.argv[1:])
    except CliError as exc:
        sys.stderr.write("Error: %s\n" % exc)
        code = 1
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
