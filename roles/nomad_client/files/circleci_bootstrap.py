"""circleci-bootstrap: bring a Nomad client the Auto Scaling group launched into the cluster, at first boot.

Run once by cloud-init (the launch template's user data writes this file, circleci_aws.py and
/etc/circleci/bootstrap.json, then runs ``python3 circleci_bootstrap.py --config <json>``).
Stdlib only, Python >= 3.5 (Ubuntu 16.04's python3). Every step is logged to
/var/log/circleci-bootstrap.log; the outcome is visible from outside as the instance tag
``circleci:bootstrap`` (``ok``, ``failed: <step>: <reason>``, ``skipped: <why>``) and as the
launching lifecycle hook's result (CONTINUE on success, ABANDON on failure: the group then
terminates the instance and launches another).

Steps (``mode`` local, the default):
 1. metadata   instance id, region and the instance profile's credentials (IMDSv2).
 2. lifecycle  the instance's LifecycleState (DescribeAutoScalingInstances). Only an instance a
               launching hook holds (``Pending:Wait``) bootstraps; one that is InService already
               was launched with the group, before the hook existed: site.yml configures those.
               From here a thread heartbeats the hook every ``heartbeat_interval`` seconds.
 3. manifest   s3://<bucket>/<prefix>manifest.json (published by site.yml).
 4. download   the pieces for this python3 (by major.minor), each checked against the
               manifest's sha256 and size before it is used.
 5. python     a venv (--without-pip) with the pinned ansible-core from the bundle's wheelhouse:
               pip runs from its wheel, --no-index --require-hashes: nothing from PyPI.
 6. collections  the collection tarballs, ``ansible-galaxy collection install --no-deps``.
 7. configure  ``ansible-playbook -c local circleci_server.aws.bootstrap_node`` with the
               bundle's node vars: the same common, docker and nomad_client roles as site.yml.
 8. registration  the local Nomad agent's node is ``ready`` in ``GET /v1/nodes`` (answered by
               the servers).
Mode ``awx``: steps 1-2, then the host_config_key from s3://<bucket>/<awx_host_config_key_object>
(never in the user data), a POST to the AWX job template's provisioning callback, and step 8
(AWX's job configures the host).
"""
import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

# The shared IMDSv2 / SigV4 / AWS API code: written next to this file by the user data.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from circleci_aws import (  # noqa: E402
    AutoScaling, AwsError, Ec2, InstanceMetadata, S3, direct_opener, load_agent_config, setup_agent_logging, text_of)

LOG = logging.getLogger("circleci-bootstrap")

DEFAULTS = {
    "mode": "local",  # or "awx"
    "bucket": "",
    "prefix": "bootstrap/",
    "region": "",  # empty: the instance identity document's
    "aws_endpoint": "",  # empty: AWS's regional endpoints (the sandbox points it at its AWS stand-in)
    "imds_url": "http://169.254.169.254",
    "asg_name": "",
    "hook_name": "",
    "heartbeat_interval": 120,
    "deadline": 1800,  # seconds for the whole bootstrap; then it fails (and abandons the launch)
    "pending_wait": 60,  # seconds to wait for the hook to hold a launch still reported Pending
    "registration_timeout": 300,
    "nomad_addr": "http://127.0.0.1:4646",
    "work_dir": "/opt/circleci-bootstrap",
    "log_file": "/var/log/circleci-bootstrap.log",
    "tag_key": "circleci:bootstrap",
    "awx_callback_url": "",  # https://<awx>/api/v2/job_templates/<id>/callback/
    "awx_host_config_key_object": "",  # the S3 key holding the job template's host_config_key
    "awx_extra_vars": {},  # passed with the callback (the job template's survey answers, e.g. circleci_prefix)
    "awx_validate_certs": True,
    "http_proxy": "",
    "https_proxy": "",
    "no_proxy": "",
}
MANIFEST_NAME = "manifest.json"
TAG_VALUE_MAX = 256  # EC2 tag values: at most 256 characters


class StepFailed(Exception):
    def __init__(self, step, reason):
        super().__init__("{}: {}".format(step, reason))
        self.step = step
        self.reason = reason


class Skipped(Exception):
    pass


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def python_key(version_info=None):
    info = version_info or sys.version_info
    return "{}.{}".format(info[0], info[1])


def pieces_for(manifest, key):
    """The manifest's pieces this python3 needs: the common ones and its own row's."""
    rows = manifest.get("pythons", {})
    if key not in rows:
        raise StepFailed("download", "the bundle has no pins for python {} (it has {}): add the node OS's "
                                     "python to circleci_fleet_bootstrap_pythons and run site.yml".format(
                                         key, ", ".join(sorted(rows)) or "none"))
    names = list(manifest.get("common", [])) + list(rows[key].get("files", []))
    files = manifest.get("files", {})
    missing = [name for name in names if name not in files]
    if missing:
        raise StepFailed("manifest", "pieces listed but not described: " + ", ".join(missing))
    return [(name, files[name]) for name in names]


def verify_piece(path, entry):
    """Raise StepFailed unless the file at path has the manifest entry's size and sha256."""
    size = os.path.getsize(path)
    if "size" in entry and size != int(entry["size"]):
        raise StepFailed("download", "{}: {} bytes, the manifest says {}".format(
            os.path.basename(path), size, entry["size"]))
    actual = sha256_of(path)
    if actual != entry["sha256"]:
        raise StepFailed("download", "{}: sha256 {} does not match the manifest's {}".format(
            os.path.basename(path), actual, entry["sha256"]))


def failure_reason(output, returncode):
    """The message of the last failed Ansible task (its "msg"), else the output's last lines."""
    for line in reversed(output.splitlines()):
        if "FAILED!" in line or line.startswith("fatal:"):
            found = re.search(r'"msg": "((?:[^"\\]|\\.)*)"', line)
            if found:
                return found.group(1).replace('\\"', '"')
            return line.strip()[-400:]
    tail = [line for line in output.splitlines() if line.strip()][-3:]
    return "exit {}: {}".format(returncode, " / ".join(tail)[-400:])


class Bootstrap:
    def __init__(self, config, imds=None, clock=time.monotonic, sleep=time.sleep, aws=None, run=None):
        self.config = dict(DEFAULTS, **config)
        self.imds = imds or InstanceMetadata(self.config["imds_url"])
        self.clock = clock
        self.sleep = sleep
        self.started = clock()
        self._aws = aws  # tests: {"autoscaling": ..., "ec2": ..., "s3": ...}
        self._run = run or subprocess.run
        self.instance_id = None
        self.region = None
        self.held = False
        self._stop_heartbeat = threading.Event()
        self._heartbeat_thread = None
        self.work_dir = self.config["work_dir"]

    # --- AWS clients ------------------------------------------------------------------
    def client(self, name):
        if self._aws and name in self._aws:
            return self._aws[name]
        cls = {"autoscaling": AutoScaling, "ec2": Ec2, "s3": S3}[name]
        return cls(self.config["aws_endpoint"], self.region, self.imds.credentials)

    def remaining(self):
        return max(0.0, float(self.config["deadline"]) - (self.clock() - self.started))

    # --- the steps --------------------------------------------------------------------
    def metadata(self):
        try:
            self.instance_id = self.imds.instance_id()
            self.region = self.config["region"] or self.imds.region()
        except (AwsError, OSError, ValueError, KeyError) as exc:
            raise StepFailed("metadata", "the instance metadata service did not answer: {}".format(exc)) from None
        LOG.info("instance %s in %s; group %s, launching hook %s", self.instance_id, self.region,
                 self.config["asg_name"], self.config["hook_name"])

    def lifecycle(self):
        autoscaling = self.client("autoscaling")
        waited_until = self.clock() + float(self.config["pending_wait"])
        while True:
            try:
                state = autoscaling.lifecycle_state(self.instance_id)
            except (AwsError, OSError) as exc:
                raise StepFailed("lifecycle", str(exc)) from None
            LOG.info("lifecycle state: %s", state)
            if state == "Pending:Wait":
                self.held = True
                return
            if state in ("Pending", None) and self.clock() < waited_until:
                self.sleep(2)
                continue
            raise Skipped("lifecycle state {} (not held by a launching hook: instances launched with the group "
                          "are configured by site.yml)".format(state))

    def start_heartbeat(self):
        interval = float(self.config["heartbeat_interval"])
        autoscaling = self.client("autoscaling")

        def beat():
            while not self._stop_heartbeat.wait(interval):
                try:
                    autoscaling.heartbeat(self.config["asg_name"], self.config["hook_name"], self.instance_id)
                    LOG.info("RecordLifecycleActionHeartbeat sent (%.0fs in)", self.clock() - self.started)
                except (AwsError, OSError) as exc:
                    LOG.warning("heartbeat failed: %s", exc)

        self._heartbeat_thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
        self._heartbeat_thread.start()

    def stop_heartbeat(self):
        self._stop_heartbeat.set()

    def key(self, name):
        return self.config["prefix"] + name

    def manifest(self):
        try:
            data = self.client("s3").get(self.config["bucket"], self.key(MANIFEST_NAME))
            manifest = json.loads(data.decode("utf-8"))
        except (AwsError, OSError) as exc:
            raise StepFailed("manifest", "cannot read s3://{}/{}: {} (has site.yml published the bundle?)".format(
                self.config["bucket"], self.key(MANIFEST_NAME), exc)) from None
        except ValueError as exc:
            raise StepFailed("manifest", "not JSON: {}".format(exc)) from None
        LOG.info("bundle manifest: collection %s, published %s", manifest.get("collection"),
                 manifest.get("published"))
        return manifest

    def download(self, manifest):
        key = python_key()
        pieces = pieces_for(manifest, key)
        s3 = self.client("s3")
        paths = {}
        for name, entry in pieces:
            path = os.path.join(self.work_dir, "bundle", name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if not (os.path.exists(path) and sha256_of(path) == entry["sha256"]):
                try:
                    data = s3.get(self.config["bucket"], self.key(entry["key"]))
                except (AwsError, OSError) as exc:
                    raise StepFailed("download", "{}: {}".format(name, exc)) from None
                with open(path, "wb") as handle:
                    handle.write(data)
            verify_piece(path, entry)
            paths[name] = path
        LOG.info("%d pieces for python %s downloaded and checked against the manifest", len(paths), key)
        return key, paths

    def command(self, step, argv, env=None, timeout=None):
        """Run argv, its output into the log; StepFailed with its last lines when it fails."""
        LOG.info("%s: %s", step, " ".join(argv))
        full_env = dict(os.environ, **(env or {}))
        try:
            proc = self._run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=full_env,
                             timeout=timeout or max(1.0, self.remaining()), check=False)
        except subprocess.TimeoutExpired:
            raise StepFailed(step, "did not finish within the bootstrap deadline ({}s)".format(
                self.config["deadline"])) from None
        except OSError as exc:
            raise StepFailed(step, str(exc)) from None
        output = proc.stdout.decode("utf-8", "replace") if proc.stdout else ""
        for line in output.splitlines():
            LOG.info("  | %s", line)
        if proc.returncode != 0:
            raise StepFailed(step, failure_reason(output, proc.returncode))
        return output

    def python(self, manifest, key, paths):
        row = manifest["pythons"][key]
        venv = os.path.join(self.work_dir, "venv")
        if not os.path.exists(os.path.join(venv, "bin", "python")):
            # --without-pip: no ensurepip (python3-venv) needed; pip runs from the bundle's wheel.
            self.command("python", [sys.executable, "-m", "venv", "--without-pip"]
                         + (["--system-site-packages"] if row.get("system_site_packages") else []) + [venv])
        wheelhouse = os.path.dirname(paths[row["requirements"]])
        pip_wheel = paths[row["pip"]]
        self.command("python", [os.path.join(venv, "bin", "python"), os.path.join(pip_wheel, "pip"), "install",
                                "--no-index", "--find-links", wheelhouse, "--require-hashes", "--no-deps",
                                "--disable-pip-version-check", "--no-cache-dir",
                                "-r", paths[row["requirements"]]])
        return venv

    def collections(self, manifest, key, paths, venv):
        target = os.path.join(self.work_dir, "collections")
        for name in manifest["pythons"][key].get("collections", []):
            self.command("collections", [os.path.join(venv, "bin", "ansible-galaxy"), "collection", "install",
                                         "--no-deps", "--force", "-p", target, paths[name]],
                         env={"ANSIBLE_COLLECTIONS_PATH": target})
        return target

    def configure(self, manifest, paths, venv, collections):
        env = {"ANSIBLE_COLLECTIONS_PATH": collections, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_RETRY_FILES_ENABLED": "0", "HOME": os.environ.get("HOME") or "/root",
               "ANSIBLE_LOCAL_TEMP": os.path.join(self.work_dir, "tmp")}
        self.command("configure", [
            os.path.join(venv, "bin", "ansible-playbook"), "-c", "local", "-i", "localhost,",
            manifest.get("playbook", "circleci_server.aws.bootstrap_node"),
            "-e", "@" + paths[manifest["node_vars"]],
            # Modules run on the OS's python3 (python3-apt is there, not in the venv).
            "-e", json.dumps({"nomad_client_instance_id": self.instance_id,
                              "nomad_client_public_ip": self.public_ipv4(),
                              "ansible_python_interpreter": "/usr/bin/python3"}),
        ], env=env)

    def public_ipv4(self):
        try:
            return (self.imds.get("meta-data/public-ipv4", missing_ok=True) or "").strip()
        except (OSError, ValueError):
            return ""

    def nomad(self, path):
        with direct_opener().open(self.config["nomad_addr"].rstrip("/") + path, timeout=5) as response:
            return json.loads(text_of(response))

    def registration(self):
        timeout = min(float(self.config["registration_timeout"]), self.remaining())
        until = self.clock() + timeout
        last = "the local agent did not answer"
        while True:
            try:
                node_id = self.nomad("/v1/agent/self").get("stats", {}).get("client", {}).get("node_id")
                nodes = self.nomad("/v1/nodes") if node_id else []
                status = [n.get("Status") for n in nodes if n.get("ID") == node_id]
                if status == ["ready"]:
                    LOG.info("Nomad node %s is registered with the servers and ready", node_id)
                    return node_id
                last = "node {} is {} in the servers' node list".format(
                    node_id, status[0] if status else "not yet") if node_id else "the agent has no client node id"
            except (OSError, ValueError) as exc:
                last = "the local agent: {}".format(exc)
            if self.clock() >= until:
                raise StepFailed("registration", "{} after {:.0f}s".format(last, timeout))
            self.sleep(3)

    def awx_callback(self):
        name = self.config["awx_host_config_key_object"]
        try:
            key = self.client("s3").get(self.config["bucket"], name).decode("utf-8").strip()
        except (AwsError, OSError) as exc:
            raise StepFailed("awx-key", "cannot read s3://{}/{}: {}".format(self.config["bucket"], name, exc)) from None
        url = self.config["awx_callback_url"]
        body = json.dumps({"host_config_key": key, "extra_vars": self.config["awx_extra_vars"]}).encode("utf-8")
        context = None
        if url.startswith("https") and not self.config["awx_validate_certs"]:
            import ssl
            context = ssl._create_unverified_context()  # noqa: S323 (the user turned verification off)
        handlers = [urllib.request.HTTPSHandler(context=context)] if context else []
        opener = urllib.request.build_opener(*handlers)
        # AWX answers 202 when it launched the job, 403 for a wrong key, 400 while no host of the job
        # template's inventory has this address (an inventory update may still have to find it):
        # 400 is retried until the registration timeout (AWX API reference, "Job Template Callback").
        until = self.clock() + float(self.config["registration_timeout"])
        while True:
            request = urllib.request.Request(url, data=body, method="POST", headers={
                "Content-Type": "application/json"})
            try:
                with opener.open(request, timeout=30) as response:
                    LOG.info("AWX provisioning callback accepted (HTTP %s)", response.status)
                    return
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", "replace")[:300]
                if exc.code != 400 or self.clock() >= until:
                    raise StepFailed("awx-callback", "HTTP {}: {}".format(exc.code, detail)) from None
                LOG.info("AWX callback: HTTP 400 (%s); retrying", detail)
            except OSError as exc:
                if self.clock() >= until:
                    raise StepFailed("awx-callback", str(exc)) from None
                LOG.info("AWX callback: %s; retrying", exc)
            self.sleep(10)

    # --- outcome ----------------------------------------------------------------------
    def report(self, value, result):
        """The tag and (when a hook holds the launch) the lifecycle action result; never raises."""
        value = value[:TAG_VALUE_MAX]
        try:
            self.client("ec2").create_tags(self.instance_id, {self.config["tag_key"]: value})
            LOG.info("tag %s=%s set", self.config["tag_key"], value)
        except (AwsError, OSError) as exc:
            LOG.error("could not tag the instance: %s", exc)
        if result and self.held:
            try:
                self.client("autoscaling").complete(self.config["asg_name"], self.config["hook_name"],
                                                    self.instance_id, result)
                LOG.info("CompleteLifecycleAction %s sent", result)
            except (AwsError, OSError) as exc:
                LOG.error("CompleteLifecycleAction %s failed: %s (the hook's default result applies at its "
                          "timeout)", result, exc)

    def stop_nomad(self):
        """A failed bootstrap must not leave a half-configured node in the cluster."""
        if os.path.exists("/etc/systemd/system/nomad.service") and shutil.which("systemctl"):
            subprocess.call(["systemctl", "stop", "nomad"])
            LOG.info("stopped the local Nomad agent")

    def run(self):
        LOG.info("bootstrap (mode %s) starting", self.config["mode"])
        try:
            self.metadata()
            if self.instance_id is None:
                return "failed"
            self.lifecycle()
            self.start_heartbeat()
            if self.config["mode"] == "awx":
                self.awx_callback()
            else:
                manifest = self.manifest()
                key, paths = self.download(manifest)
                venv = self.python(manifest, key, paths)
                collections = self.collections(manifest, key, paths, venv)
                self.configure(manifest, paths, venv, collections)
            self.registration()
        except Skipped as exc:
            LOG.info("nothing to do: %s", exc)
            self.report("skipped: " + str(exc).split(" (", maxsplit=1)[0], None)
            return "skipped"
        except StepFailed as exc:
            LOG.error("bootstrap failed at step %s: %s", exc.step, exc.reason)
            self.stop_heartbeat()
            if self.instance_id:
                self.stop_nomad()
                self.report("failed: {}: {}".format(exc.step, exc.reason), "ABANDON")
            return "failed"
        except Exception as exc:  # anything unexpected still abandons the launch, with the reason
            LOG.exception("bootstrap failed unexpectedly")
            self.stop_heartbeat()
            if self.instance_id:
                self.stop_nomad()
                self.report("failed: unexpected: {}".format(exc), "ABANDON")
            return "failed"
        self.stop_heartbeat()
        LOG.info("bootstrap done in %.0fs", self.clock() - self.started)
        self.report("ok", "CONTINUE")
        return "ok"


def main(argv=None):
    parser = argparse.ArgumentParser(description="Configure this Nomad client at first boot and complete "
                                                 "its launching lifecycle hook.")
    parser.add_argument("--config", default="/etc/circleci/bootstrap.json")
    args = parser.parse_args(argv)
    config = load_agent_config(args.config, DEFAULTS)
    setup_agent_logging(LOG, dict(DEFAULTS, **config)["log_file"])
    for name in ("http_proxy", "https_proxy", "no_proxy"):  # S3, pip (unused: --no-index), AWX
        if config.get(name):
            os.environ[name] = config[name]
    outcome = Bootstrap(config).run()
    return 0 if outcome in ("ok", "skipped") else 1


if __name__ == "__main__":
    sys.exit(main())
