"""circleci-nomad-drain: drain this Nomad client before its Auto Scaling group terminates it.

Run as `python3 circleci_nomad_drain.py --config <json>` (the systemd unit names the interpreter).

Installed and configured by the circleci_server.aws.nomad_client role (one JSON file,
see DEFAULTS below). Stdlib only, Python >= 3.5 (Ubuntu 16.04's python3 is 3.5; no
f-strings, no variable annotations). The loop:

1. Poll the instance metadata item ``autoscaling/target-lifecycle-state`` with the
   IMDSv2 token flow (PUT /latest/api/token with X-aws-ec2-metadata-token-ttl-seconds,
   then X-aws-ec2-metadata-token on each read). ``Terminated`` while the instance still
   runs means a terminating lifecycle hook holds it in Terminating:Wait (AWS: "Retrieve
   the target lifecycle state through instance metadata",
   https://docs.aws.amazon.com/autoscaling/ec2/userguide/retrieving-target-lifecycle-state-through-imds.html).
2. Drain the local Nomad node through the agent's HTTP API, in the spelling of the
   installed Nomad version (https://developer.hashicorp.com/nomad/api-docs/nodes):
   before 0.8 ``POST /v1/node/<id>/drain?enable=true`` (the API form of
   ``nomad node-drain -enable -self -yes``); from 0.8 ``POST /v1/node/<id>/drain`` with
   ``{"DrainSpec": {"Deadline": <ns>, "IgnoreSystemJobs": false}}`` (``nomad node drain
   -enable -self -yes -deadline <d>``). The node id is ``stats.client.node_id`` of
   ``GET /v1/agent/self`` (Nomad client.Stats()).
3. Wait until no allocation of ``GET /v1/node/<id>/allocations`` is pending or running,
   at most ``drain_timeout`` seconds, sending RecordLifecycleActionHeartbeat every
   ``heartbeat_interval`` seconds so the hook does not time out.
   Before 0.8 a drain stops (migrates) every allocation at once, so there the order of 2 and 3
   is swapped: wait for the running builds to finish first, then drain (which then stops only
   what is left when the timeout passed). 0.5-0.7 have no scheduling-eligibility toggle, so new
   work can still be placed on the node while it waits.
4. CompleteLifecycleAction with CONTINUE, also when the timeout was exceeded (logged).

AWS calls are Query API requests (Version 2011-01-01) signed with Signature Version 4
by the small signer in circleci_aws.py (installed next to this file, shared with the
first-boot bootstrap), with the instance profile's credentials from
``iam/security-credentials/<role>``: no boto3/botocore/awscli on the host.
"""
import argparse
import json
import logging
import os
import re
import sys
import time
import urllib.error
import urllib.request

# The shared IMDSv2 / SigV4 / Auto Scaling code lives next to this file (circleci_aws.py).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import circleci_aws  # noqa: E402
from circleci_aws import (  # noqa: E402
    AutoScaling, AwsError, InstanceMetadata, load_agent_config, setup_agent_logging)

sigv4_headers = circleci_aws.sigv4_headers  # the signer, under the name the drain's unit tests use

LOG = logging.getLogger("circleci-nomad-drain")

DEFAULTS = {
    "imds_url": "http://169.254.169.254",
    "nomad_addr": "http://127.0.0.1:4646",
    # The installed Nomad version picks the drain API spelling; empty: the agent's build tag.
    "nomad_version": "",
    "autoscaling_endpoint": "",  # empty: https://autoscaling.<region>.amazonaws.com
    "asg_name": "",  # empty: the instance's aws:autoscaling:groupName tag (IMDS tags)
    "hook_name": "",  # empty: <circleci:install tag>-nomad-client-terminating
    "hook_suffix": "-nomad-client-terminating",
    "drain_timeout": 3600,
    "heartbeat_interval": 300,
    "poll_interval": 5,
    "log_file": "/var/log/circleci-nomad-drain.log",
}

ACTIVE_CLIENT_STATUSES = ("pending", "running")


# A step failed; the message says which and why (the shared AWS calls raise it too).
DrainError = AwsError


def _direct_opener():
    # IMDS and the local Nomad agent are never reached through an HTTP proxy.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _text(response):
    return response.read().decode("utf-8")


def version_tuple(version):
    """'0.5.6' -> (0, 5, 6); '0.9.3-rc1' -> (0, 9, 3)."""
    parts = []
    for piece in str(version).split(".")[:3]:
        match = re.match(r"\d+", piece)
        parts.append(int(match.group(0)) if match else 0)
    while len(parts) < 3:
        parts.append(0)
    return tuple(parts)


def uses_drain_spec(version):
    """Nomad 0.8 replaced ?enable=true with a DrainSpec body (and node-drain with node drain)."""
    return version_tuple(version) >= (0, 8, 0)


# --- Nomad -------------------------------------------------------------------------


class Nomad:
    def __init__(self, addr, version="", timeout=10):
        self.addr = addr.rstrip("/")
        self.version = version
        self.timeout = timeout
        self.opener = _direct_opener()

    def request(self, method, path, payload=None):
        data = json.dumps(payload).encode("utf-8") if payload is not None else None
        request = urllib.request.Request(self.addr + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                text = _text(response)
        except urllib.error.HTTPError as exc:
            raise DrainError("Nomad {} {} answered HTTP {}: {}".format(
                method, path, exc.code, exc.read().decode("utf-8", "replace")[:300])) from None
        return json.loads(text) if text.strip() else None

    def agent_version(self):
        if not self.version:
            member = self.request("GET", "/v1/agent/self").get("member", {})
            self.version = member.get("Tags", {}).get("build", "")
        return self.version

    def node_id(self):
        stats = self.request("GET", "/v1/agent/self").get("stats", {})
        node_id = stats.get("client", {}).get("node_id")
        if not node_id:
            raise DrainError("the local Nomad agent reports no client node_id (is it running as a client?)")
        return node_id

    def drain(self, node_id, deadline_seconds):
        """Enable drain in this version's spelling; returns the equivalent CLI command for the log."""
        if uses_drain_spec(self.agent_version()):
            self.request("POST", "/v1/node/{}/drain".format(node_id),
                         {"DrainSpec": {"Deadline": int(deadline_seconds) * 1000000000,
                                        "IgnoreSystemJobs": False}})
            return "nomad node drain -enable -self -yes -deadline {}s".format(int(deadline_seconds))
        self.request("POST", "/v1/node/{}/drain?enable=true".format(node_id))
        return "nomad node-drain -enable -self -yes"

    def active_allocations(self, node_id):
        allocations = self.request("GET", "/v1/node/{}/allocations".format(node_id)) or []
        return [a for a in allocations if a.get("ClientStatus") in ACTIVE_CLIENT_STATUSES]


# --- the drain ---------------------------------------------------------------------


class DrainAgent:
    def __init__(self, config, imds=None, nomad=None, clock=time.monotonic, sleep=time.sleep):
        self.config = dict(DEFAULTS, **config)
        self.imds = imds or InstanceMetadata(self.config["imds_url"])
        self.nomad = nomad or Nomad(self.config["nomad_addr"], self.config["nomad_version"])
        self.clock = clock
        self.sleep = sleep
        self._last_state = object()

    def termination_pending(self):
        """True when the group is terminating this instance (target state Terminated)."""
        try:
            state = self.imds.target_lifecycle_state()
        except (OSError, ValueError) as exc:
            self._note_state("unreachable ({})".format(exc))
            return False
        self._note_state(state or "not in an Auto Scaling group")
        return state == "Terminated"

    def _note_state(self, state):
        if state != self._last_state:  # log changes, not every poll
            LOG.info("target lifecycle state: %s", state)
            self._last_state = state

    def resolve_names(self):
        asg_name = self.config["asg_name"] or self.imds.tag("aws:autoscaling:groupName")
        hook_name = self.config["hook_name"]
        if not hook_name:
            install = self.imds.tag("circleci:install")
            hook_name = install + self.config["hook_suffix"] if install else ""
        if not asg_name or not hook_name:
            raise DrainError(
                "the Auto Scaling group or lifecycle hook name is unknown (asg_name={!r}, hook_name={!r}): set "
                "nomad_client_drain_asg_name and nomad_client_drain_hook_name, or allow instance tags in the "
                "instance metadata".format(asg_name, hook_name))
        return asg_name, hook_name

    def drain_and_complete(self):
        """Drain, wait, heartbeat, complete. Returns 'drained' or 'timeout'."""
        instance_id = self.imds.instance_id()
        region = self.imds.region()
        asg_name, hook_name = self.resolve_names()
        autoscaling = AutoScaling(self.config["autoscaling_endpoint"], region, self.imds.credentials)
        timeout = float(self.config["drain_timeout"])
        LOG.info("instance %s is terminating (group %s, hook %s): draining its Nomad node, waiting up to %ss",
                 instance_id, asg_name, hook_name, int(timeout))
        started = self.clock()
        outcome = "timeout"
        try:
            node_id = self.nomad.node_id()
            if uses_drain_spec(self.nomad.agent_version()):
                # From 0.8 the drain itself lets batch allocations (builds) run to their end or the deadline.
                self._drain(node_id, timeout)
                outcome = self._wait(node_id, started, timeout, autoscaling, asg_name, hook_name, instance_id)
            else:
                # Before 0.8 a drain stops every allocation at once: let the builds finish first.
                LOG.info("Nomad %s stops every allocation when draining: waiting up to %ss for the running "
                         "ones to finish before the drain (no eligibility toggle before 0.8: new work can "
                         "still be placed on this node meanwhile)", self.nomad.agent_version(), int(timeout))
                outcome = self._wait(node_id, started, timeout, autoscaling, asg_name, hook_name, instance_id)
                self._drain(node_id, timeout)
        except (DrainError, OSError, ValueError) as exc:
            LOG.error("drain failed: %s; completing the lifecycle action anyway", exc)
            outcome = "failed"
        if outcome == "timeout":
            LOG.warning("drain timeout of %ss exceeded with allocations still running; "
                        "completing the lifecycle action anyway", int(timeout))
        autoscaling.complete(asg_name, hook_name, instance_id, "CONTINUE")
        LOG.info("CompleteLifecycleAction CONTINUE sent for %s after %.0fs (%s)",
                 instance_id, self.clock() - started, outcome)
        return outcome

    def _drain(self, node_id, timeout):
        command = self.nomad.drain(node_id, timeout)
        LOG.info("drain enabled on node %s (Nomad %s; as `%s`)", node_id, self.nomad.agent_version(), command)

    def _wait(self, node_id, started, timeout, autoscaling, asg_name, hook_name, instance_id):
        interval = float(self.config["poll_interval"])
        heartbeat_every = float(self.config["heartbeat_interval"])
        last_heartbeat = started
        last_count = None
        while True:
            active = self.nomad.active_allocations(node_id)
            if len(active) != last_count:
                LOG.info("%d allocation(s) still pending or running on node %s%s", len(active), node_id,
                         (": " + ", ".join(a.get("ID", "?")[:8] + " (" + str(a.get("JobID", "?")) + ")"
                                           for a in active)) if active else "")
                last_count = len(active)
            if not active:
                return "drained"
            now = self.clock()
            if now - started >= timeout:
                return "timeout"
            if now - last_heartbeat >= heartbeat_every:
                try:
                    autoscaling.heartbeat(asg_name, hook_name, instance_id)
                    LOG.info("RecordLifecycleActionHeartbeat sent (%.0fs into the drain)", now - started)
                except (DrainError, OSError) as exc:
                    LOG.warning("heartbeat failed: %s", exc)
                last_heartbeat = now
            self.sleep(min(interval, max(0.0, timeout - (now - started))) or interval)

    def run(self, once=False):
        LOG.info("watching %s for this instance's termination (Nomad at %s)",
                 self.config["imds_url"], self.config["nomad_addr"])
        while True:
            if self.termination_pending():
                try:
                    return self.drain_and_complete()
                except (DrainError, OSError, ValueError) as exc:
                    LOG.error("could not complete the lifecycle action: %s; retrying", exc)
            if once:
                return None
            self.sleep(float(self.config["poll_interval"]))


def main(argv=None):
    parser = argparse.ArgumentParser(description="Drain this Nomad client when its Auto Scaling group "
                                                 "terminates it, then complete the lifecycle action.")
    parser.add_argument("--config", default="/etc/circleci/nomad-drain.json")
    parser.add_argument("--once", action="store_true", help="check once (drain if terminating) and exit")
    args = parser.parse_args(argv)
    config = load_agent_config(args.config if os.path.exists(args.config) else None, DEFAULTS)
    setup_agent_logging(LOG, dict(DEFAULTS, **config)["log_file"])
    agent = DrainAgent(config)
    outcome = agent.run(once=args.once)
    if outcome is not None and not args.once:
        # Done: stay up (idle) until the instance shuts down, so systemd does not start another drain.
        while True:
            time.sleep(3600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
