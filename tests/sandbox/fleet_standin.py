"""STAND-IN fleet for the Nomad client group: what a client that configured itself does, without a container.

For each instance the group has (moto, behind the sandbox's Auto Scaling lifecycle hooks stand-in,
tests/sandbox/lifecycle.py) it starts a Nomad stand-in client (tests/standins/nomad, the version its
launch template version's user data names: ``nomad_version: X``) that registers with a Nomad stand-in
server, and runs the drain agent the nomad_client role installs (roles/nomad_client/files/
circleci_nomad_drain.py, in a thread) whose instance metadata answers from the hooks stand-in's target
lifecycle state; an instance moto terminated loses its processes (their last state is kept in
``gone``). Self-configuration itself (user data, cloud-init, the roles) is the sandbox EC2 emulator's
part (demo.py); this stand-in lets the scale and rolling playbooks, the module, the hooks and the drain
agent be tested and measured in seconds. The playbooks run as users run them; the "Services machine"
is the controller (``circleci_nomad_server_url`` points at the stand-in server).

    with StandInFleet(prefix="fleetpb", min_size=1, max_size=4, desired=1) as fleet:
        fleet.play("scale", circleci_nomad_desired=3)
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

from .ansible import run_playbook
from .aws import MotoServer, free_port
from .lifecycle import LifecycleHooksStandIn
from .paths import REPO_ROOT, TMP

REGION = "us-east-1"
NOMAD = REPO_ROOT / "tests" / "standins" / "nomad" / "nomad.py"

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

    def __init__(self, env, server_port):
        self.env, self.moto, self.hooks, self.server_port = env, env.moto, env.hooks, server_port
        self.workdir = env.workdir
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
        template = ec2.describe_launch_templates(LaunchTemplateNames=[self.env.group])["LaunchTemplates"][0]
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
                                  "asg_name": self.env.group, "hook_name": self.env.hook,
                                  "drain_timeout": self.env.drain_timeout,
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


def user_data(nomad_version):
    """Launch template user data naming the Nomad version the stand-in client reports (base64)."""
    return base64.b64encode(f"#cloud-config\n# nomad_version: {nomad_version}\n".encode()).decode()


class StandInFleet:
    """moto + hooks stand-in + Nomad stand-in server + a Nomad client group + the fleet stand-in."""

    def __init__(self, workdir, prefix="fleetpb", min_size=1, max_size=4, desired=1, drain_timeout=8,
                 nomad_version="0.5.6"):
        self.workdir, self.prefix = workdir, prefix
        self.group, self.hook = f"{prefix}-nomad-clients", f"{prefix}-nomad-client-terminating"
        self.sizes = (min_size, max_size, desired)
        self.drain_timeout, self.nomad_version = drain_timeout, nomad_version

    def start(self):
        workdir = self.workdir
        self.moto = MotoServer().start()
        self.hooks = LifecycleHooksStandIn(self.moto.url, self.moto.session(), tick=0.3, log=lambda m: None).start()
        port = free_port()
        config = workdir / "server.hcl"
        config.write_text(f'bind_addr = "127.0.0.1"\ndata_dir = "{workdir / "server"}"\n'
                          f'ports {{\n  http = {port}\n  rpc = {port + 1}\n}}\nserver {{ enabled = true }}\n')
        self.server = subprocess.Popen([sys.executable, str(NOMAD), "agent", "-config", str(config)],
                                       env=dict(os.environ, NOMAD_STANDIN_REGISTER_INTERVAL="1"),
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.server_url = f"http://127.0.0.1:{port}"
        _wait_http(self.server_url + "/v1/nodes")
        session = self.moto.session()
        self.ec2 = session.client("ec2", endpoint_url=self.hooks.url)
        self.autoscaling = session.client("autoscaling", endpoint_url=self.hooks.url)
        sqs = session.client("sqs", endpoint_url=self.moto.url)
        vpc = self.ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
        subnet = self.ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.1.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]
        queue_url = sqs.create_queue(QueueName=f"{self.prefix}-shutdown-queue")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.template = self.ec2.create_launch_template(LaunchTemplateName=self.group, LaunchTemplateData={
            "ImageId": "ami-12c6146b", "InstanceType": "m5.xlarge",
            "UserData": user_data(self.nomad_version)})["LaunchTemplate"]
        min_size, max_size, desired = self.sizes
        self.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=self.group, MinSize=min_size, MaxSize=max_size, DesiredCapacity=desired,
            LaunchTemplate={"LaunchTemplateId": self.template["LaunchTemplateId"], "Version": "1"},
            VPCZoneIdentifier=subnet["SubnetId"])
        self.autoscaling.put_lifecycle_hook(
            LifecycleHookName=self.hook, AutoScalingGroupName=self.group,
            LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING", HeartbeatTimeout=60,
            DefaultResult="CONTINUE", NotificationTargetARN=queue_arn, RoleARN="arn:aws:iam::123456789012:role/x")
        self.hooks.sync(hold_new=False)
        self.fleet = FleetStandIn(self, port).start()
        self.inventory = workdir / "inventory.yml"
        self.inventory.write_text(json.dumps({"all": {"children": {
            "circleci_services": {"hosts": {"services": {"ansible_connection": "local",
                                                         "ansible_python_interpreter": sys.executable}}},
            f"circleci_install_{self.prefix}": {"hosts": {"services": {}}}}}}))
        self.env = self.moto.env()
        self.env.update(AWS_URL=self.hooks.url, AWS_ENDPOINT_URL=self.hooks.url)
        return self

    def stop(self):
        self.fleet.stop()
        self.server.terminate()
        self.hooks.stop()
        self.moto.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def play(self, name, measure=None, **extra):
        """ansible-playbook circleci_server.aws.<name>; the result carries .seconds."""
        extra_vars = {"circleci_prefix": self.prefix, "circleci_region": REGION,
                      "circleci_install_dir": str(TMP / f"fleet-install-{self.prefix}-{os.getpid()}"),
                      "circleci_nomad_server_url": self.server_url, "circleci_scale_timeout": 120,
                      "circleci_scale_nomad_timeout": 60, "circleci_rolling_launch_timeout": 120,
                      "circleci_rolling_drain_timeout": 120, **extra}
        started = time.monotonic()
        result = run_playbook(f"circleci_server.aws.{name}", inventory=self.inventory, extra_vars=extra_vars,
                              env=self.env, timeout=600)
        result.seconds = time.monotonic() - started
        return result

    # --- what tests look at ------------------------------------------------------------
    def describe_group(self):
        return self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[self.group])[
            "AutoScalingGroups"][0]

    def in_service(self):
        return sorted(i["InstanceId"] for i in self.describe_group()["Instances"] if i["LifecycleState"] == "InService")

    def ready_nodes(self):
        return sorted(n["Name"] for n in _get(self.server_url + "/v1/nodes") if n["Status"] == "ready")
