"""scale.yml and rolling_replace.yml against an emulated fleet, with the real drain agent on every client.

One module-scoped fleet, no containers (lean: the self-configuring clients are tested elsewhere):
  * AWS: a moto server behind the sandbox's Auto Scaling lifecycle hooks stand-in
    (tests/sandbox/lifecycle.py: Terminating:Wait until CompleteLifecycleAction); a Nomad client group
    (launch template whose user data names the Nomad version, terminating hook, min 1 / max 4);
  * the "instances": for each instance the group has, the fleet stand-in below starts a Nomad
    stand-in client (tests/standins/nomad, the version its launch template version names) that
    registers with a Nomad stand-in server, and runs the drain agent the nomad_client role installs
    (roles/nomad_client/files/circleci_nomad_drain.py) with its instance metadata answered from the
    hooks stand-in's target lifecycle state; an instance moto terminated loses its processes. This
    stands in for a client that configured itself (user data; issue 13 item 1, tested with real
    cloud-init in the sandbox's EC2 emulator);
  * the playbooks run as users run them (ansible-playbook, the collection's FQCN module), the
    Services machine being the controller itself (circleci_nomad_server_url points at the server).
"""
import base64
import importlib.util
import json
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from tests.sandbox.ansible import run_playbook
from tests.sandbox.aws import MotoServer, free_port
from tests.sandbox.lifecycle import LifecycleHooksStandIn
from tests.sandbox.paths import REPO_ROOT, TMP

pytestmark = pytest.mark.slow

PREFIX = "fleetpb"
GROUP = f"{PREFIX}-nomad-clients"
HOOK = f"{PREFIX}-nomad-client-terminating"
REGION = "us-east-1"
NOMAD = REPO_ROOT / "tests" / "standins" / "nomad" / "nomad.py"
DRAIN_TIMEOUT = 8

_spec = importlib.util.spec_from_file_location(
    "circleci_nomad_drain", REPO_ROOT / "roles" / "nomad_client" / "files" / "circleci_nomad_drain.py")
drain = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(drain)


def _get(url, method="GET", payload=None):
    data = json.dumps(payload).encode() if payload is not None else None
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method), timeout=5) as response:
        return json.loads(response.read())


def _wait_http(url, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _get(url)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class InstanceMetadata:
    """The drain agent's view of the instance metadata: the hooks stand-in's target lifecycle state."""

    def __init__(self, hooks, instance_id):
        self.hooks, self.instance_id_value = hooks, instance_id

    def target_lifecycle_state(self):
        return self.hooks.target_state(self.instance_id_value)

    def instance_id(self):
        return self.instance_id_value

    def region(self):
        return REGION

    def tag(self, key):
        return None

    def credentials(self):
        return {"access_key": "testing", "secret_key": "testing", "token": ""}


class FleetStandIn:
    """Each instance of the group: a Nomad stand-in client and the role's drain agent."""

    def __init__(self, moto, hooks, server_port, workdir):
        self.moto, self.hooks, self.server_port, self.workdir = moto, hooks, server_port, workdir
        self.clients = {}  # instance id -> {"proc", "addr", "version", "log", "gone": snapshot}
        self.gone = {}  # instance id -> what its node held when the instance went
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self._stop.set()
        self.thread.join(timeout=10)
        for client in self.clients.values():
            client["proc"].terminate()

    def _version_of(self, instance_id):
        template_version = self.hooks.launched_version.get(instance_id, "1")
        ec2 = self.moto.client("ec2")
        template = ec2.describe_launch_templates(LaunchTemplateNames=[GROUP])["LaunchTemplates"][0]
        data = ec2.describe_launch_template_versions(LaunchTemplateId=template["LaunchTemplateId"],
                                                     Versions=[template_version])["LaunchTemplateVersions"][0]
        user_data = base64.b64decode(data["LaunchTemplateData"]["UserData"]).decode()
        return user_data.split("nomad_version:", 1)[1].split()[0]

    def _boot(self, instance_id):
        version = self._version_of(instance_id)
        port = free_port()
        data_dir = self.workdir / instance_id
        data_dir.mkdir(parents=True, exist_ok=True)
        config = data_dir / "client.hcl"
        config.write_text(f'name = "{instance_id}"\nbind_addr = "127.0.0.1"\ndata_dir = "{data_dir}"\n'
                          f'ports {{ http = {port} }}\nclient {{\n  enabled = true\n'
                          f'  servers = ["127.0.0.1:{self.server_port + 1}"]\n}}\n')
        env = dict(os.environ, NOMAD_STANDIN_VERSION=version, NOMAD_STANDIN_SERVER_HTTP_PORT=str(self.server_port),
                   NOMAD_STANDIN_REGISTER_INTERVAL="1")
        proc = subprocess.Popen([sys.executable, str(NOMAD), "agent", "-config", str(config)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        addr = f"http://127.0.0.1:{port}"
        _wait_http(addr + "/v1/agent/self")
        log = []
        self.clients[instance_id] = {"proc": proc, "addr": addr, "version": version, "log": log}
        agent = drain.DrainAgent({"nomad_addr": addr, "autoscaling_endpoint": self.hooks.url + "/",
                                  "asg_name": GROUP, "hook_name": HOOK, "drain_timeout": DRAIN_TIMEOUT,
                                  "heartbeat_interval": 2, "poll_interval": 0.3, "log_file": ""},
                                 imds=InstanceMetadata(self.hooks, instance_id))
        threading.Thread(target=self._run_agent, args=(agent, log), daemon=True).start()

    @staticmethod
    def _run_agent(agent, log):
        handler = _ListHandler(log)
        drain.LOG.addHandler(handler)
        drain.LOG.setLevel(logging.INFO)
        try:
            log.append(("outcome", agent.run()))
        except Exception as exc:  # shown in the test's failure message
            log.append(("error", repr(exc)))

    def _loop(self):
        while not self._stop.is_set():
            try:
                live = {i["InstanceId"] for i in self.moto.client("autoscaling").describe_auto_scaling_instances()[
                    "AutoScalingInstances"]}
                for instance_id in sorted(live - set(self.clients)):
                    self._boot(instance_id)
                for instance_id in [i for i in self.clients if i not in live and i not in self.gone]:
                    self._terminate(instance_id)
            except Exception as exc:  # keep emulating; the tests fail on what they see
                print(f"fleet stand-in: {exc}", flush=True)
            self._stop.wait(0.3)

    def _terminate(self, instance_id):
        client = self.clients[instance_id]
        try:
            node_id = _get(client["addr"] + "/v1/agent/self")["stats"]["client"]["node_id"]
            snapshot = {"node": _get(client["addr"] + f"/v1/node/{node_id}"),
                        "allocations": _get(client["addr"] + f"/v1/node/{node_id}/allocations")}
        except OSError as exc:
            snapshot = {"error": str(exc)}
        snapshot["terminated_at"] = time.time()
        self.gone[instance_id] = snapshot
        client["proc"].terminate()

    def place(self, instance_id, **spec):
        return _get(self.clients[instance_id]["addr"] + "/v1/standin/allocations", "POST", spec)


class _ListHandler(logging.Handler):
    """Each agent thread's log lines (the agents share one logger: keep the lines naming this thread)."""

    def __init__(self, sink):
        super().__init__()
        self.sink, self.thread = sink, threading.get_ident()

    def emit(self, record):
        if threading.get_ident() == self.thread:
            self.sink.append((record.levelname, record.getMessage()))


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("fleet")
    moto = MotoServer().start()
    hooks = LifecycleHooksStandIn(moto.url, moto.session(), tick=0.3, log=lambda m: None).start()
    server_port = free_port()
    server_config = workdir / "server.hcl"
    server_config.write_text(f'bind_addr = "127.0.0.1"\ndata_dir = "{workdir / "server"}"\n'
                             f'ports {{\n  http = {server_port}\n  rpc = {server_port + 1}\n}}\n'
                             'server { enabled = true }\n')
    server = subprocess.Popen([sys.executable, str(NOMAD), "agent", "-config", str(server_config)],
                              env=dict(os.environ, NOMAD_STANDIN_REGISTER_INTERVAL="1"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_http(f"http://127.0.0.1:{server_port}/v1/nodes")

    session = moto.session()
    ec2 = session.client("ec2", endpoint_url=hooks.url)
    autoscaling = session.client("autoscaling", endpoint_url=hooks.url)
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.1.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]
    queue_arn = session.client("sqs", endpoint_url=moto.url).get_queue_attributes(
        QueueUrl=session.client("sqs", endpoint_url=moto.url).create_queue(QueueName=f"{PREFIX}-shutdown-queue")[
            "QueueUrl"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    template = ec2.create_launch_template(LaunchTemplateName=GROUP, LaunchTemplateData={
        "ImageId": "ami-12c6146b", "InstanceType": "m5.xlarge",
        "UserData": base64.b64encode(b"#cloud-config\n# nomad_version: 0.5.6\n").decode()})["LaunchTemplate"]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=GROUP, MinSize=1, MaxSize=4, DesiredCapacity=1,
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": "1"},
        VPCZoneIdentifier=subnet["SubnetId"])
    autoscaling.put_lifecycle_hook(LifecycleHookName=HOOK, AutoScalingGroupName=GROUP,
                                   LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
                                   HeartbeatTimeout=60, DefaultResult="CONTINUE",
                                   NotificationTargetARN=queue_arn, RoleARN="arn:aws:iam::123456789012:role/x")
    hooks.sync(hold_new=False)
    fleet = FleetStandIn(moto, hooks, server_port, workdir).start()
    inventory = workdir / "inventory.yml"
    inventory.write_text(json.dumps({"all": {"children": {
        "circleci_services": {"hosts": {"services": {"ansible_connection": "local",
                                                     "ansible_python_interpreter": sys.executable}}},
        f"circleci_install_{PREFIX}": {"hosts": {"services": {}}}}}}))
    env = moto.env()
    env.update(AWS_URL=hooks.url, AWS_ENDPOINT_URL=hooks.url)
    install_dir = TMP / f"fleet-install-{os.getpid()}"

    def play(name, **extra):
        extra_vars = {"circleci_prefix": PREFIX, "circleci_region": REGION, "circleci_install_dir": str(install_dir),
                      "circleci_nomad_server_url": f"http://127.0.0.1:{server_port}", "circleci_scale_timeout": 120,
                      "circleci_scale_nomad_timeout": 60, "circleci_rolling_launch_timeout": 120,
                      "circleci_rolling_drain_timeout": 120, **extra}
        started = time.monotonic()
        result = run_playbook(f"circleci_server.aws.{name}", inventory=inventory, extra_vars=extra_vars, env=env,
                              timeout=600)
        result.seconds = time.monotonic() - started
        return result

    yield {"moto": moto, "hooks": hooks, "fleet": fleet, "play": play, "autoscaling": autoscaling, "ec2": ec2,
           "template": template, "server": f"http://127.0.0.1:{server_port}"}
    fleet.stop()
    server.terminate()
    hooks.stop()
    moto.stop()


def _group(fleet):
    return fleet["autoscaling"].describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]


def _ready_nodes(fleet):
    return sorted(n["Name"] for n in _get(fleet["server"] + "/v1/nodes") if n["Status"] == "ready")


def _in_service(fleet):
    return sorted(i["InstanceId"] for i in _group(fleet)["Instances"] if i["LifecycleState"] == "InService")


def _wait_until(condition, timeout=60):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def test_scale_refuses_a_count_outside_min_max(fleet):
    result = fleet["play"]("scale", circleci_nomad_desired=5)
    assert result.rc != 0
    assert f"circleci_nomad_desired=5 is outside the group {GROUP}'s limits (min 1, max 4)" in result.output()
    assert _group(fleet)["DesiredCapacity"] == 1


def test_scale_up_waits_until_every_client_is_ready_in_nomad(fleet):
    result = fleet["play"]("scale", circleci_nomad_desired=3)
    assert result.rc == 0, str(result)
    in_service = _in_service(fleet)
    assert len(in_service) == 3
    assert set(in_service) <= set(_ready_nodes(fleet))  # ready when the play ended, not later
    assert "1 -> 3 Nomad client(s), all InService and ready in Nomad" in result.stdout


def test_scale_to_the_current_size_changes_nothing(fleet):
    result = fleet["play"]("scale", circleci_nomad_desired=3)
    assert result.rc == 0, str(result)
    assert result.changed == 0, result.recap


def test_scale_in_drains_the_running_build_before_the_instance_goes(fleet):
    stand_in = fleet["fleet"]
    before = _in_service(fleet)
    builds = {iid: stand_in.place(iid, JobID="circleci-build", Type="batch", RunsFor=4) for iid in before}
    started = time.time()
    result = fleet["play"]("scale", circleci_nomad_desired=2)
    assert result.rc == 0, str(result)
    gone = [iid for iid in before if iid not in _in_service(fleet)]
    assert len(gone) == 1 and len(_in_service(fleet)) == 2
    victim = gone[0]
    snapshot = stand_in.gone[victim]
    # The build ran to its end (never stopped by the drain), the node was drained, only then terminated.
    allocation = next(a for a in snapshot["allocations"] if a["ID"] == builds[victim]["ID"])
    assert (allocation["ClientStatus"], allocation["DesiredStatus"]) == ("complete", "run")
    assert snapshot["node"]["Drain"] is True
    assert snapshot["terminated_at"] - started >= 4
    log = stand_in.clients[victim]["log"]
    assert ("outcome", "drained") in log, log
    events = [what for _, iid, what in fleet["hooks"].events if iid == victim]
    assert f"{HOOK}: CompleteLifecycleAction CONTINUE" in events and events[-1].startswith("terminated")


def test_drain_timeout_exceeded_completes_anyway_and_is_logged(fleet):
    stand_in = fleet["fleet"]
    victim = _in_service(fleet)[0]
    stand_in.place(victim, JobID="stuck-build", Type="batch", KillTimeout=0)  # runs forever
    fleet["autoscaling"].terminate_instance_in_auto_scaling_group(InstanceId=victim,
                                                                   ShouldDecrementDesiredCapacity=True)
    deadline = time.monotonic() + DRAIN_TIMEOUT + 30
    while victim not in stand_in.gone and time.monotonic() < deadline:
        time.sleep(0.3)
    assert victim in stand_in.gone, stand_in.clients[victim]["log"]
    log = stand_in.clients[victim]["log"]
    assert ("outcome", "timeout") in log
    assert any(level == "WARNING" and f"drain timeout of {DRAIN_TIMEOUT}s exceeded" in message
               for level, message in log if level != "outcome"), log
    events = [what for _, iid, what in fleet["hooks"].events if iid == victim]
    assert f"{HOOK}: CompleteLifecycleAction CONTINUE" in events  # completed by the agent, not the hook's timeout
    assert _group(fleet)["DesiredCapacity"] == 1


def test_rolling_replace_moves_the_fleet_to_another_nomad_version_without_killing_a_build(fleet):
    stand_in, ec2 = fleet["fleet"], fleet["ec2"]
    # Two clients on Nomad 0.5.6 (two batches of one), then provisioning makes launch template version 2.
    fleet["autoscaling"].set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=2)
    _wait_until(lambda: len(_in_service(fleet)) == 2 and set(_in_service(fleet)) <= set(_ready_nodes(fleet)))
    ec2.create_launch_template_version(
        LaunchTemplateId=fleet["template"]["LaunchTemplateId"], SourceVersion="1",
        LaunchTemplateData={"UserData": base64.b64encode(b"#cloud-config\n# nomad_version: 0.9.3\n").decode()})
    fleet["autoscaling"].update_auto_scaling_group(AutoScalingGroupName=GROUP, LaunchTemplate={
        "LaunchTemplateId": fleet["template"]["LaunchTemplateId"], "Version": "2"})
    old = _in_service(fleet)
    assert {stand_in.clients[i]["version"] for i in old} == {"0.5.6"} and len(old) == 2
    builds = {iid: stand_in.place(iid, JobID="circleci-build", Type="batch", RunsFor=3) for iid in old}

    result = fleet["play"]("rolling_replace", circleci_rolling_batch_size=1, circleci_rolling_min_ready=2)
    assert result.rc == 0, str(result)
    now = _in_service(fleet)
    assert len(now) == 2 and not set(now) & set(old)
    assert {stand_in.clients[i]["version"] for i in now} == {"0.9.3"}
    assert set(now) <= set(_ready_nodes(fleet))
    for iid in old:  # every old client's build finished; none was stopped
        allocation = next(a for a in stand_in.gone[iid]["allocations"] if a["ID"] == builds[iid]["ID"])
        assert (allocation["ClientStatus"], allocation["DesiredStatus"]) == ("complete", "run")
    assert "2 client(s) replaced onto launch template version 2" in result.stdout

    again = fleet["play"]("rolling_replace", circleci_rolling_batch_size=1)
    assert again.rc == 0 and again.changed == 0, str(again)
    assert "none needed" in again.stdout
