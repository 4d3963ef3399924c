"""Emulated AWS: a moto server on a free 127.0.0.1 port.

    server = MotoServer().start()
    server.env()          # AWS_URL, region and dummy credentials for amazon.aws
    server.session()      # a boto3 session pointed at moto
    server.client("ec2")
    server.reset()        # POST /moto-api/reset
    server.stop()
"""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3

from .paths import TMP

DEFAULT_REGION = "us-east-1"
# moto accepts any credentials; these are obviously fake on purpose.
DUMMY_ACCESS_KEY = "testing-access-key"
DUMMY_SECRET_KEY = "testing-secret-key-not-real"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MotoServer:
    def __init__(self, port=None, region=DEFAULT_REGION):
        self.port = port or free_port()
        self.region = region
        self.process = None
        self.log_path = TMP / f"moto-{self.port}.log"

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=30):
        TMP.mkdir(parents=True, exist_ok=True)
        # moto_server, with lifecycle hooks that keep their notification target (moto_server.py).
        cmd = [sys.executable, str(Path(__file__).with_name("moto_server.py")), "-H", "127.0.0.1", "-p", str(self.port)]
        log = open(self.log_path, "wb")  # noqa: SIM115 - kept open for the process' life
        self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + "/moto-api/", timeout=2):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"moto_server did not answer on {self.url} within {timeout}s; see {self.log_path}")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None

    def reset(self):
        req = urllib.request.Request(self.url + "/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=30) as resp:
            if resp.status != 200:
                raise RuntimeError(f"moto reset answered {resp.status}")

    def env(self, base=None):
        """Environment for amazon.aws modules/plugins, boto3 and Terraform."""
        env = dict(os.environ if base is None else base)
        env.update(
            AWS_URL=self.url,
            AWS_ENDPOINT_URL=self.url,
            AWS_ACCESS_KEY_ID=DUMMY_ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=DUMMY_SECRET_KEY,
            AWS_DEFAULT_REGION=self.region,
            AWS_REGION=self.region,
        )
        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            env.pop(var, None)
        return env

    def session(self, region=None):
        return boto3.session.Session(
            aws_access_key_id=DUMMY_ACCESS_KEY,
            aws_secret_access_key=DUMMY_SECRET_KEY,
            region_name=region or self.region,
        )

    def client(self, service, region=None):
        return self.session(region).client(service, endpoint_url=self.url)

    def resource_counts(self, region=None):
        """What exists now, per resource kind (used to assert 'nothing created')."""
        ec2 = self.client("ec2", region)
        reservations = ec2.describe_instances()["Reservations"]
        instances = [
            i for r in reservations for i in r["Instances"] if i["State"]["Name"] not in ("terminated", "shutting-down")
        ]
        default_vpcs = {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if v.get("IsDefault")}
        return {
            "instances": len(instances),
            "vpcs": len([v for v in ec2.describe_vpcs()["Vpcs"] if v["VpcId"] not in default_vpcs]),
            "security_groups": len(
                [g for g in ec2.describe_security_groups()["SecurityGroups"] if g["GroupName"] != "default"]
            ),
            "launch_templates": len(ec2.describe_launch_templates()["LaunchTemplates"]),
            "buckets": len(self.client("s3", region).list_buckets()["Buckets"]),
            "queues": len(self.client("sqs", region).list_queues().get("QueueUrls", [])),
            "iam_roles": len(self.client("iam", region).list_roles()["Roles"]),
            "autoscaling_groups": len(
                self.client("autoscaling", region).describe_auto_scaling_groups()["AutoScalingGroups"]
            ),
        }

    def is_empty(self, region=None):
        return not any(self.resource_counts(region).values())


def log_tail(path: Path, lines=40):
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
