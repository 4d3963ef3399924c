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
import uuid

import pytest

from tests.sandbox.demo import Demo
from tests.sandbox.fault_proxy import FaultProxy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(base_image):
    env = Demo(name="flt" + uuid.uuid4().hex[:4], subnet="10.215.%d.0/24" % (uuid.uuid4().int % 200 + 20),
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
