"""The drain agent the nomad_client role installs (roles/nomad_client/files/circleci_nomad_drain.py),
driven against the instance metadata + Auto Scaling stand-in (tests/standins/aws_lifecycle.py, in-process) and the
Nomad stand-in (a subprocess reporting the Nomad version under test)."""
import ast
import datetime
import importlib.util
import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AGENT_PATH = ROOT / "roles" / "nomad_client" / "files" / "circleci_nomad_drain.py"
STANDIN = ROOT / "tests" / "standins" / "nomad" / "nomad.py"

_spec = importlib.util.spec_from_file_location("circleci_nomad_drain", AGENT_PATH)
drain = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(drain)

sys.path.insert(0, str(ROOT / "tests" / "standins"))
from aws_lifecycle import INSTANCE_ID, LifecycleStandin  # noqa: E402


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def aws():
    standin = LifecycleStandin().start()
    yield standin
    standin.stop()


def _request(url, method="GET", payload=None):
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture
def nomad_agent(tmp_path):
    """Start the Nomad stand-in client agent reporting a given version; yields its address."""
    procs = []

    def start(version):
        port = _free_port()
        config = tmp_path / "client.hcl"
        config.write_text('name = "%s"\nbind_addr = "127.0.0.1"\ndata_dir = "%s"\nports { http = %d }\n'
                          'client { enabled = true }\n' % (INSTANCE_ID, tmp_path / "data", port))
        env = dict(os.environ, NOMAD_STANDIN_VERSION=version)
        procs.append(subprocess.Popen([sys.executable, str(STANDIN), "agent", "-config", str(config)], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        addr = "http://127.0.0.1:%d" % port
        deadline = time.time() + 10
        while True:
            try:
                _request(addr + "/v1/agent/self")
                return addr
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=5)


def _agent(aws, addr, version, **config):
    settings = {"imds_url": aws.url, "nomad_addr": addr, "nomad_version": version,
                "autoscaling_endpoint": aws.url + "/", "poll_interval": 0.1, "heartbeat_interval": 0.4,
                "drain_timeout": 30, "log_file": ""}
    settings.update(config)
    return drain.DrainAgent(settings)


def _node(addr):
    node_id = _request(addr + "/v1/agent/self")["stats"]["client"]["node_id"]
    return _request(addr + "/v1/node/" + node_id)


def test_no_drain_while_in_service(aws, nomad_agent):
    addr = nomad_agent("0.9.3")
    aws.state = "InService"
    assert _agent(aws, addr, "0.9.3").run(once=True) is None
    assert _node(addr)["Drain"] is False
    assert aws.calls == []


def test_not_in_a_group_is_quiet(aws, nomad_agent):
    addr = nomad_agent("0.5.6")
    aws.state = None  # the metadata item is absent outside an Auto Scaling group (404)
    assert _agent(aws, addr, "0.5.6").run(once=True) is None
    assert _node(addr)["Drain"] is False and aws.calls == []


@pytest.mark.parametrize("version", [
    # Before 0.8 a drain would stop every allocation at once: the agent waits for the build, then drains.
    "0.5.6",
    # From 0.8 the drain lets a batch allocation run on until it finishes (or the drain deadline).
    "0.9.3",
])
def test_terminating_drains_waits_heartbeats_then_continues(aws, nomad_agent, caplog, version):
    addr = nomad_agent(version)
    alloc = _request(addr + "/v1/standin/allocations", "POST",
                     {"JobID": "circleci-build", "Type": "batch", "RunsFor": 1.5})
    aws.state = "Terminated"
    caplog.set_level(logging.INFO, logger="circleci-nomad-drain")
    started = time.monotonic()

    assert _agent(aws, addr, version, drain_timeout=30).run(once=True) == "drained"

    node = _node(addr)
    assert node["Drain"] is True
    if version == "0.9.3":
        assert node["DrainStrategy"]["Deadline"] == 30 * 10**9
        assert "nomad node drain -enable -self -yes -deadline 30s" in caplog.text
    else:
        assert "DrainStrategy" not in node
        assert "nomad node-drain -enable -self -yes" in caplog.text
    allocs = _request(addr + "/v1/node/%s/allocations" % node["ID"])
    # The build ran to its end: the drain never stopped it.
    assert [(a["ID"], a["ClientStatus"], a["DesiredStatus"]) for a in allocs] == [(alloc["ID"], "complete", "run")]

    actions = aws.actions()
    assert actions[-1] == "CompleteLifecycleAction" and actions.count("CompleteLifecycleAction") == 1
    assert actions.count("RecordLifecycleActionHeartbeat") >= 2  # every 0.4 s of the 1.5 s wait
    finished_at, params, headers = aws.calls[-1][0], aws.calls[-1][2], aws.calls[-1][3]
    assert params == {"AutoScalingGroupName": "ci-nomad-clients", "LifecycleHookName": "ci-nomad-client-terminating",
                      "InstanceId": INSTANCE_ID, "LifecycleActionResult": "CONTINUE", "Version": "2011-01-01"}
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=ASIASTANDINEXAMPLE/")
    assert "/eu-west-1/autoscaling/aws4_request" in headers["Authorization"]
    assert headers["X-Amz-Security-Token"] == "standin-session-token"
    # The heartbeats came while the allocation ran; completion only after it ended.
    assert all(call[0] < finished_at for call in aws.calls if call[1] == "RecordLifecycleActionHeartbeat")
    assert finished_at - started >= 1.4
    assert "(drained)" in caplog.text


def test_timeout_exceeded_completes_anyway_and_logs_it(aws, nomad_agent, caplog):
    addr = nomad_agent("0.5.6")
    # A task that ignores the stop: the node never empties.
    _request(addr + "/v1/standin/allocations", "POST", {"JobID": "stuck-build", "KillTimeout": None})
    aws.state = "Terminated"
    caplog.set_level(logging.INFO, logger="circleci-nomad-drain")
    started = time.monotonic()

    assert _agent(aws, addr, "0.5.6", drain_timeout=1).run(once=True) == "timeout"

    assert 1.0 <= time.monotonic() - started < 5
    assert aws.actions()[-1] == "CompleteLifecycleAction"
    assert aws.calls[-1][2]["LifecycleActionResult"] == "CONTINUE"
    assert "drain timeout of 1s exceeded with allocations still running" in caplog.text
    assert "1 allocation(s) still pending or running" in caplog.text and "stuck-build" in caplog.text
    # Nomad < 0.8: the drain came after the wait, and stopped what was left.
    node = _node(addr)
    assert node["Drain"] is True
    assert [a["DesiredStatus"] for a in _request(addr + "/v1/node/%s/allocations" % node["ID"])] == ["stop"]
    assert caplog.text.index("still pending or running") < caplog.text.index("drain enabled on node")


def test_before_0_8_no_drain_while_a_build_runs(aws, nomad_agent, caplog):
    addr = nomad_agent("0.5.6")
    _request(addr + "/v1/standin/allocations", "POST", {"JobID": "circleci-build", "Type": "batch", "RunsFor": 1.0})
    aws.state = "Terminated"
    caplog.set_level(logging.INFO, logger="circleci-nomad-drain")
    agent = _agent(aws, addr, "0.5.6", drain_timeout=30)
    seen = []
    original_sleep = agent.sleep

    def watch(seconds):  # between polls: the node must not be draining yet while the build runs
        seen.append(_node(addr)["Drain"])
        original_sleep(seconds)

    agent.sleep = watch
    assert agent.run(once=True) == "drained"
    assert seen and not any(seen)
    assert _node(addr)["Drain"] is True
    assert "new work can still be placed on this node" in caplog.text


def test_names_come_from_configuration_before_tags(aws):
    agent = drain.DrainAgent({"imds_url": aws.url, "asg_name": "my-asg", "hook_name": "my-hook"})
    assert agent.resolve_names() == ("my-asg", "my-hook")
    assert drain.DrainAgent({"imds_url": aws.url}).resolve_names() == ("ci-nomad-clients",
                                                                       "ci-nomad-client-terminating")


def test_unknown_names_say_what_to_set(aws):
    aws.tags = {}  # instance tags not allowed in metadata
    with pytest.raises(drain.DrainError, match="nomad_client_drain_asg_name and nomad_client_drain_hook_name"):
        drain.DrainAgent({"imds_url": aws.url}).resolve_names()


def test_imds_v2_token_is_reused(aws):
    imds = drain.InstanceMetadata(aws.url)
    assert imds.instance_id() == INSTANCE_ID and imds.region() == "eu-west-1"
    assert imds.target_lifecycle_state() == "InService"
    assert aws.token_requests == 1


@pytest.mark.parametrize("version, spec", [("0.5.6", False), ("0.7.1", False), ("0.8.0", True),
                                           ("0.9.3", True), ("1.6.2", True), ("0.8.0-rc1", True)])
def test_drain_spelling_follows_the_version(version, spec):
    assert drain.uses_drain_spec(version) is spec


def test_signature_matches_botocore():
    botocore_auth = pytest.importorskip("botocore.auth")
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = "https://autoscaling.eu-west-1.amazonaws.com/"
    body = b"Action=CompleteLifecycleAction&AutoScalingGroupName=ci-nomad-clients&Version=2011-01-01"
    creds = {"access_key": "AKIDEXAMPLE", "secret_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "token": "tok"}
    when = datetime.datetime(2026, 12, 3, 12, 0, 0)
    ours = drain.sigv4_headers("POST", url, body, "eu-west-1", "autoscaling", creds, now=when)

    request = AWSRequest(method="POST", url=url, data=body,
                         headers={k: v for k, v in ours.items() if k != "Authorization"})
    signer = botocore_auth.SigV4Auth(Credentials("AKIDEXAMPLE", creds["secret_key"], "tok"), "autoscaling",
                                     "eu-west-1")
    request.context["timestamp"] = "20261203T120000Z"
    canonical = signer.canonical_request(request)
    string_to_sign = signer.string_to_sign(request, canonical)
    expected = signer.signature(string_to_sign, request)
    assert ours["Authorization"].endswith("Signature=" + expected)
    assert "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token," in ours["Authorization"]


def test_runs_on_python_3_5():
    # Ubuntu 16.04's python3 is 3.5: no f-strings, no variable annotations.
    ast.parse(AGENT_PATH.read_text(), feature_version=(3, 5))


def test_unknown_setting_is_refused(tmp_path):
    config = tmp_path / "drain.json"
    config.write_text(json.dumps({"drain_timout": 5}))
    with pytest.raises(SystemExit, match="unknown setting.*drain_timout"):
        drain.main(["--config", str(config), "--once"])


def test_an_unwritable_log_file_costs_only_the_file(tmp_path, capsys):
    # The agent must still drain when its log directory cannot be created (a read-only /var/log).
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    logger = logging.getLogger("circleci-nomad-drain-test")
    drain.setup_agent_logging(logger, str(blocker / "drain.log"))
    logger.info("still logging")
    err = capsys.readouterr().err
    assert "cannot write" in err and "still logging" in err
