"""Self-configuring Nomad clients (issue 13, items 1-2), in the demo sandbox (tests/sandbox/demo.py).

One module-scoped install (site.yml once, one client), then only the AWS API and the instances themselves:
real cloud-init runs each new instance's user data (the launch template's), which bootstraps it from the
bundle site.yml published and completes the launching hook (the lifecycle hooks stand-in holds the launch
in Pending:Wait as AWS does). No playbook runs against the new instances except validate.yml at the end.
"""
import gzip
import json
import time
import uuid

import pytest

from tests.sandbox.hosts import free_subnet
from tests.sandbox import hosts as sandbox_hosts
from tests.sandbox.aws import DUMMY_SECRET_KEY
from tests.sandbox.demo import Demo

pytestmark = pytest.mark.slow

TAG = "circleci:bootstrap"


@pytest.fixture(scope="module")
def demo(base_image):
    name = "fb" + uuid.uuid4().hex[:4]
    env = Demo(name=name, subnet=free_subnet("10.215"), nomad_clients=1, nomad_max=4)
    yield env
    env.stop_emulator()
    env.clean()


@pytest.fixture(scope="module")
def installed(demo):
    rc, output, seconds = demo.run_site(stream=False, log_name="site")
    assert rc == 0, f"site.yml failed (rc={rc}); log {demo.dir / 'site.log'}\n{output[-6000:]}"
    demo.start_emulator()
    return output


def aws(demo, service):
    return demo.moto.session().client(service, endpoint_url=demo.hooks.url)


def container_exec(demo, instance_id, *argv):
    proc = sandbox_hosts.docker("exec", demo.container_name(instance_id), *argv, check=False)
    return proc.stdout.decode(errors="replace")


def group_name(demo):
    return f"{demo.prefix}-nomad-clients"


def clients(demo):
    return [i for i in demo.instances() if i["role"] == "nomad_client"]


def tags_of(demo, instance_id):
    reservations = aws(demo, "ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    return {t["Key"]: t["Value"] for t in reservations[0]["Instances"][0].get("Tags", [])}


def registered_nodes(demo):
    services = [i for i in demo.instances() if i["role"] == "services"][0]
    proc = container_exec(demo, services["id"], "curl", "-s", "http://127.0.0.1:4646/v1/nodes")
    return {n["Name"]: n["Status"] for n in json.loads(proc or "[]")}


def wait_for(what, check, timeout, interval=3):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def bootstrapped(demo, ids):
    """The ids whose bootstrap finished ok, InService and registered (all of them), else None."""
    nodes = registered_nodes(demo)
    states = {i["InstanceId"]: i["LifecycleState"] for i in aws(demo, "autoscaling").describe_auto_scaling_instances(
        InstanceIds=list(ids))["AutoScalingInstances"]}
    done = [i for i in ids if tags_of(demo, i).get(TAG) == "ok" and states.get(i) == "InService"
            and nodes.get(i) == "ready"]
    return done if len(done) == len(ids) else None


@pytest.fixture(scope="module")
def scaled_out(demo, installed):
    before = {i["id"] for i in clients(demo)}
    group = aws(demo, "autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group_name(demo)])
    desired = group["AutoScalingGroups"][0]["DesiredCapacity"]
    started = time.monotonic()
    aws(demo, "autoscaling").set_desired_capacity(AutoScalingGroupName=group_name(demo), DesiredCapacity=desired + 2)
    new = wait_for("two new instances", lambda: [i["id"] for i in clients(demo) if i["id"] not in before]
                   if len(clients(demo)) >= len(before) + 2 else None, 60, interval=1)
    held = {i["InstanceId"]: i["LifecycleState"] for i in aws(demo, "autoscaling").describe_auto_scaling_instances(
        InstanceIds=new)["AutoScalingInstances"]}
    wait_for("both new clients to bootstrap and register", lambda: bootstrapped(demo, new), 600)
    seconds = time.monotonic() - started
    print(f"\n[fleet bootstrap] desired +2 -> both nodes registered and InService: {seconds:.0f}s")
    return {"new": new, "held": held, "desired": desired + 2, "seconds": seconds}


def test_new_clients_wait_for_their_bootstrap_then_join(demo, scaled_out):
    assert set(scaled_out["held"].values()) <= {"Pending:Wait"}, scaled_out["held"]
    events = [what for _t, iid, what in demo.hooks.events if iid in scaled_out["new"]]
    assert any("CompleteLifecycleAction CONTINUE" in e for e in events), events
    for instance_id in scaled_out["new"]:
        log = container_exec(demo, instance_id, "cat", "/var/log/circleci-bootstrap.log")
        assert "Nomad node" in log and "registered with the servers and ready" in log, log[-3000:]
        assert "CompleteLifecycleAction CONTINUE sent" in log


def test_validate_passes_for_every_client(demo, scaled_out):
    demo.stop_emulator()
    try:
        rc, output, _ = demo.run_site(extra=["--tags", "validate"], stream=False, log_name="validate")
    finally:
        demo.start_emulator()
    assert rc == 0, output[-6000:]
    for instance_id in scaled_out["new"]:
        assert instance_id in output


def test_a_terminated_client_is_replaced_and_the_replacement_joins(demo, scaled_out):
    victim = scaled_out["new"][0]
    before = {i["id"] for i in clients(demo)}
    aws(demo, "autoscaling").terminate_instance_in_auto_scaling_group(
        InstanceId=victim, ShouldDecrementDesiredCapacity=False)
    replacement = wait_for("a replacement instance", lambda: [i["id"] for i in clients(demo)
                                                              if i["id"] not in before], 300)
    wait_for("the replacement to bootstrap and register", lambda: bootstrapped(demo, replacement), 600)
    wait_for("the terminated client to be gone", lambda: victim not in {i["id"] for i in clients(demo)}, 300)


def test_second_site_run_keeps_the_scaled_capacity_and_changes_nothing(demo, scaled_out):
    desired = aws(demo, "autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[group_name(demo)])["AutoScalingGroups"][0]["DesiredCapacity"]
    demo.stop_emulator()
    try:
        rc, output, _ = demo.run_site(stream=False, log_name="site2")
    finally:
        demo.start_emulator()
    assert rc == 0, output[-6000:]
    recap = output[output.rfind("PLAY RECAP"):]
    # The host lines only: the task timing summary after the recap has colons too.
    hosts = [line for line in recap.splitlines() if " ok=" in line]
    assert hosts and all("changed=0" in line for line in hosts), recap
    after = aws(demo, "autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[group_name(demo)])["AutoScalingGroups"][0]["DesiredCapacity"]
    assert after == desired


def test_a_failed_bootstrap_abandons_the_launch_and_says_why(demo, scaled_out):
    version = "0.5.6"
    zip_path = demo.dir / "www" / "nomad" / version / f"nomad_{version}_linux_amd64.zip"
    original = zip_path.read_bytes()
    before = {i["id"] for i in clients(demo)}
    group = aws(demo, "autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group_name(demo)])
    desired = group["AutoScalingGroups"][0]["DesiredCapacity"]
    zip_path.write_bytes(original + b"tampered")  # the checksum in SHA256SUMS no longer matches
    try:
        aws(demo, "autoscaling").set_desired_capacity(AutoScalingGroupName=group_name(demo),
                                                      DesiredCapacity=desired + 1)
        failed = wait_for("an abandoned launch", lambda: [
            e for e in demo.hooks.events if e[1] not in before and "terminated (ABANDON)" in e[2]], 600)
    finally:
        zip_path.write_bytes(original)
    instance_id = failed[0][1]
    tag = tags_of(demo, instance_id).get(TAG, "")
    assert tag.startswith("failed: configure"), tag
    assert "SHA256" in tag or "checksum" in tag, tag
    assert instance_id not in registered_nodes(demo)
    events = [what for _t, iid, what in demo.hooks.events if iid == instance_id]
    assert any("CompleteLifecycleAction ABANDON" in e for e in events), events


def test_no_secret_in_bundle_user_data_cloud_init_logs_or_tags(demo, scaled_out):
    secrets = dict(demo.secret_values(), aws_secret_key=DUMMY_SECRET_KEY)
    secrets["license"] = (demo.dir / "license.rli").read_text()
    s3 = demo.moto.client("s3")
    bucket = json.loads((demo.install_dir / "outputs.json").read_text())["bucket_name"]
    manifest = json.loads(s3.get_object(Bucket=bucket, Key="bootstrap/manifest.json")["Body"].read())
    blobs = {"manifest": json.dumps(manifest).encode()}
    for name, entry in manifest["files"].items():
        blob = s3.get_object(Bucket=bucket, Key="bootstrap/" + entry["key"])["Body"].read()
        blobs[name] = gzip.decompress(blob) if name.endswith(".tar.gz") else blob
    instance_id = scaled_out["new"][-1]
    blobs["user data"] = demo.user_data({"id": instance_id, "described": {"Tags": [
        {"Key": k, "Value": v} for k, v in tags_of(demo, instance_id).items()]}})
    assert len(blobs["user data"]) < 16384  # EC2's limit, raw (here: gzipped by Terraform)
    blobs["user data"] = gzip.decompress(blobs["user data"])
    assert b"#cloud-config" in blobs["user data"]
    for log in ("/var/log/cloud-init.log", "/var/log/cloud-init-output.log", "/var/log/circleci-bootstrap.log"):
        blobs[log] = container_exec(demo, instance_id, "cat", log).encode()
    blobs["tags"] = json.dumps(tags_of(demo, instance_id)).encode()
    for where, blob in blobs.items():
        for name, value in secrets.items():
            if len(value) >= 8:
                assert value.encode() not in blob, f"{name} found in {where}"
