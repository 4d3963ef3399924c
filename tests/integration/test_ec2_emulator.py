"""The demo's EC2 emulator behaves like EC2 where the fleet depends on it (tests/sandbox/demo.py).

One emulated account and network, no site.yml: launch templates and Auto Scaling groups are created
through the AWS API, as Terraform would, and the emulator boots a systemd container per instance.
  * user data from a launch template runs through the real cloud-init in the booted container, both a
    #!/bin/bash script (which reads IMDS on its way) and a #cloud-config;
  * the IMDS stand-in at 169.254.169.254 answers per instance, and enforces IMDSv2 when the launch
    template says HttpTokens=required;
  * the lifecycle hooks stand-in holds launches in Pending:Wait until CompleteLifecycleAction CONTINUE,
    ABANDON terminates (the container goes, the group replaces the instance), heartbeats keep an
    instance waiting past the heartbeat timeout, and the timeout applies the default result; a
    terminating hook holds a termination (Terminating:Wait, IMDS target state Terminated) until the
    instance itself completes the action through the instances' AWS endpoint.
Run it under the shared lock: flock /tmp/circleci-heavy.lock .venv/bin/pytest tests/integration/test_ec2_emulator.py
"""
import base64
import json
import time
import uuid

import pytest

from tests.sandbox.hosts import free_subnet
from tests.sandbox import hosts as sandbox_hosts
from tests.sandbox.demo import Demo
from tests.sandbox.imds_server import MetadataService
from tests.sandbox.lifecycle import LifecycleHooksStandIn

pytestmark = pytest.mark.slow

SCRIPT_USER_DATA = """#!/bin/bash
# IMDSv2, as an instance's bootstrap would read it
TOKEN=$(curl -sf -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60')
ID=$(curl -sf -H "X-aws-ec2-metadata-token: $TOKEN" http://169.254.169.254/latest/meta-data/instance-id)
echo "user data ran on $ID" > /var/tmp/user-data-ran
"""
CLOUD_CONFIG_USER_DATA = """#cloud-config
write_files:
  - path: /var/tmp/cloud-config-ran
    content: "written by cloud-init's write_files\\n"
runcmd:
  - [sh, -c, "echo runcmd ran >> /var/tmp/cloud-config-ran"]
"""


def wait_for(what, check, timeout=120, interval=1.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@pytest.fixture(scope="module")
def emulator(base_image):
    name = "ec2" + uuid.uuid4().hex[:4]
    demo = Demo(name=name, subnet=free_subnet("10.218"), nomad_clients=0)
    try:
        demo.start_emulator()
        yield demo
    finally:
        demo.stop_emulator()
        demo.clean()


@pytest.fixture(scope="module")
def api(emulator):
    """Clients through the endpoint site.yml and the instances use: the lifecycle hooks stand-in."""
    session = emulator.moto.session()
    return {service: session.client(service, endpoint_url=emulator.endpoint_url())
            for service in ("ec2", "autoscaling", "iam", "sqs")}


def make_group(emulator, api, name, user_data, desired, http_tokens="optional"):
    profile = f"{name}-profile"
    api["iam"].create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")
    api["iam"].create_instance_profile(InstanceProfileName=profile)
    api["iam"].add_role_to_instance_profile(InstanceProfileName=profile, RoleName=f"{name}-role")
    template = api["ec2"].create_launch_template(LaunchTemplateName=name, LaunchTemplateData={
        "ImageId": emulator.state["ami_id"], "InstanceType": "m5.xlarge",
        "UserData": base64.b64encode(user_data.encode()).decode(),
        "IamInstanceProfile": {"Name": profile},
        "MetadataOptions": {"HttpTokens": http_tokens, "HttpEndpoint": "enabled"},
    })["LaunchTemplate"]
    api["autoscaling"].create_auto_scaling_group(
        AutoScalingGroupName=name, MinSize=0, MaxSize=4, DesiredCapacity=desired,
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": "$Latest"},
        VPCZoneIdentifier=emulator.state["subnet_id"],
        Tags=[{"Key": "circleci:install", "Value": emulator.prefix, "PropagateAtLaunch": True},
              {"Key": "circleci:role", "Value": "nomad_client", "PropagateAtLaunch": True}])


def states(api, group):
    found = api["autoscaling"].describe_auto_scaling_instances()["AutoScalingInstances"]
    return {i["InstanceId"]: i["LifecycleState"] for i in found if i["AutoScalingGroupName"] == group}


def host(emulator, instance_id):
    return sandbox_hosts.SystemdHost(emulator.container_name(instance_id))


def container_running(emulator, instance_id):
    proc = sandbox_hosts.docker("inspect", "-f", "{{.State.Running}}", emulator.container_name(instance_id),
                                check=False)
    return proc.returncode == 0 and proc.stdout.decode().strip() == "true"


def cloud_init_done(emulator, instance_id):
    """cloud-init's own verdict once it has finished (status --wait), after the container exists."""
    wait_for(f"the container of {instance_id}", lambda: container_running(emulator, instance_id))
    node = host(emulator, instance_id)
    node.wait_running(120)
    return node.exec("cloud-init", "status", "--wait", "--long", check=False, timeout=180).stdout.decode()


def imds(node, path, token=None, method="GET", headers=()):
    """(HTTP status, body) of an IMDS request made inside the instance's container."""
    argv = ["curl", "-s", "-m", "5", "-X", method, "-w", "\n%{http_code}"]
    if token:
        argv += ["-H", f"X-aws-ec2-metadata-token: {token}"]
    for header in headers:
        argv += ["-H", header]
    out = node.output(*argv, f"http://169.254.169.254{path}", check=False)
    body, _, status = out.rpartition("\n")
    return int(status or 0), body


def imds_token(node, ttl=60):
    status, token = imds(node, "/latest/api/token", method="PUT",
                         headers=[f"X-aws-ec2-metadata-token-ttl-seconds: {ttl}"])
    assert status == 200, token
    return token


@pytest.fixture(scope="module")
def script_instance(emulator, api):
    make_group(emulator, api, "scripts", SCRIPT_USER_DATA, desired=1, http_tokens="required")
    (instance_id,) = states(api, "scripts")
    return instance_id


def test_bash_user_data_runs_through_cloud_init(emulator, script_instance):
    status = cloud_init_done(emulator, script_instance)
    assert "status: done" in status and "DataSourceNoCloud" in status, status
    node = host(emulator, script_instance)
    # The script ran once, in cloud-final, and reached IMDS with an IMDSv2 token on its way.
    assert node.output("cat", "/var/tmp/user-data-ran") == f"user data ran on {script_instance}"
    assert node.output("cloud-init", "query", "instance_id") == script_instance


def test_cloud_init_stays_off_without_a_seed(systemd_host):
    # Molecule's and the other tests' containers have no seed: cloud-init must not run in them.
    node = systemd_host("noseed")
    node.wait_running()
    assert "status: disabled" in node.output("cloud-init", "status", check=False)


def test_imds_answers_for_the_instance_and_enforces_imdsv2(emulator, script_instance):
    wait_for("the container", lambda: container_running(emulator, script_instance))
    node = host(emulator, script_instance)
    node.wait_running(120)
    described = emulator.moto.client("ec2").describe_instances(
        InstanceIds=[script_instance])["Reservations"][0]["Instances"][0]

    # HttpTokens=required (from the launch template): IMDSv1 and a forged token are refused.
    assert imds(node, "/latest/meta-data/instance-id")[0] == 401
    assert imds(node, "/latest/meta-data/instance-id", token="forged")[0] == 401
    assert imds(node, "/latest/api/token", method="PUT")[0] == 400  # no TTL header
    token = imds_token(node)
    assert imds(node, "/latest/meta-data/instance-id", token) == (200, script_instance)
    assert imds(node, "/latest/meta-data/local-ipv4", token) == (200, described["PrivateIpAddress"])
    assert imds(node, "/latest/meta-data/placement/region", token) == (200, "us-east-1")
    assert imds(node, "/latest/meta-data/autoscaling/target-lifecycle-state", token) == (200, "InService")
    assert imds(node, "/latest/meta-data/iam/security-credentials/", token) == (200, "scripts-role")
    status, body = imds(node, "/latest/meta-data/iam/security-credentials/scripts-role", token)
    credentials = json.loads(body)
    assert status == 200 and credentials["Code"] == "Success" and credentials["Type"] == "AWS-HMAC"
    assert {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"} <= set(credentials)
    status, user_data = imds(node, "/latest/user-data", token)
    assert status == 200 and user_data.startswith("#!/bin/bash")


def test_hooks_hold_launches_and_terminations(emulator, api):
    autoscaling = api["autoscaling"]
    make_group(emulator, api, "hooked", CLOUD_CONFIG_USER_DATA, desired=0)
    autoscaling.put_lifecycle_hook(AutoScalingGroupName="hooked", LifecycleHookName="bootstrap",
                                   LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING",
                                   HeartbeatTimeout=300, DefaultResult="ABANDON")
    autoscaling.put_lifecycle_hook(AutoScalingGroupName="hooked", LifecycleHookName="drain",
                                   LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
                                   HeartbeatTimeout=300, DefaultResult="CONTINUE")

    # Raising the desired capacity through the API launches two instances, held in Pending:Wait,
    # each booted as a container that runs its #cloud-config.
    autoscaling.set_desired_capacity(AutoScalingGroupName="hooked", DesiredCapacity=2)
    launched = states(api, "hooked")
    assert sorted(launched.values()) == ["Pending:Wait", "Pending:Wait"], launched
    first, second = sorted(launched)
    for instance_id in (first, second):
        status = cloud_init_done(emulator, instance_id)
        assert "status: done" in status, status
        assert host(emulator, instance_id).output("cat", "/var/tmp/cloud-config-ran") == \
            "written by cloud-init's write_files\nruncmd ran"
        # While Pending:Wait the instance is on its way to InService (AWS's target-lifecycle-state).
        assert imds(host(emulator, instance_id), "/latest/meta-data/autoscaling/target-lifecycle-state") == \
            (200, "InService")
    assert states(api, "hooked") == {first: "Pending:Wait", second: "Pending:Wait"}

    # CONTINUE: InService.
    autoscaling.complete_lifecycle_action(AutoScalingGroupName="hooked", LifecycleHookName="bootstrap",
                                          InstanceId=first, LifecycleActionResult="CONTINUE")
    assert states(api, "hooked")[first] == "InService"

    # From here on a launch waits 6 s unless heartbeats keep it waiting; the default result is CONTINUE.
    autoscaling.put_lifecycle_hook(AutoScalingGroupName="hooked", LifecycleHookName="bootstrap",
                                   LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING",
                                   HeartbeatTimeout=6, DefaultResult="CONTINUE")

    # ABANDON: the instance is terminated, its container goes, the group launches a replacement.
    autoscaling.complete_lifecycle_action(AutoScalingGroupName="hooked", LifecycleHookName="bootstrap",
                                          InstanceId=second, LifecycleActionResult="ABANDON")
    now = states(api, "hooked")
    assert second not in now
    (replacement,) = set(now) - {first}
    assert now[replacement] == "Pending:Wait"

    # Heartbeats keep the replacement waiting past its 6 s heartbeat timeout ...
    held_since = time.monotonic()
    while time.monotonic() - held_since < 10:
        autoscaling.record_lifecycle_action_heartbeat(AutoScalingGroupName="hooked", LifecycleHookName="bootstrap",
                                                      InstanceId=replacement)
        time.sleep(2)
    assert states(api, "hooked")[replacement] == "Pending:Wait"
    assert not container_running(emulator, second), f"the container of abandoned {second} still runs"
    # ... and without them the timeout applies the default result (CONTINUE).
    wait_for("the heartbeat timeout", lambda: states(api, "hooked").get(replacement) == "InService", 15, 0.5)
    assert time.monotonic() - held_since >= 13

    # Scale-in with a terminating hook: Terminating:Wait, the instance keeps running and reads its target
    # state from IMDS; it completes the action itself through the instances' AWS endpoint; then it goes.
    autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=first, ShouldDecrementDesiredCapacity=True)
    assert states(api, "hooked")[first] == "Terminating:Wait"
    node = host(emulator, first)
    wait_for("IMDS target-lifecycle-state Terminated", lambda: imds(
        node, "/latest/meta-data/autoscaling/target-lifecycle-state", imds_token(node)) == (200, "Terminated"), 10)
    assert container_running(emulator, first)
    form = ("Action=CompleteLifecycleAction&Version=2011-01-01&AutoScalingGroupName=hooked"
            f"&LifecycleHookName=drain&InstanceId={first}&LifecycleActionResult=CONTINUE")
    # moto checks no signature: a SigV4-shaped header names the service, as an SDK's would.
    authorization = ("Authorization: AWS4-HMAC-SHA256 Credential=test-key/20260101/us-east-1/autoscaling/"
                     "aws4_request, SignedHeaders=host, Signature=0")
    answer = node.output("curl", "-s", "-m", "10", "-w", "\n%{http_code}", "-X", "POST", "-H", authorization,
                         "-d", form, emulator.instance_aws_endpoint + "/")
    assert answer.endswith("\n200"), answer
    assert first not in states(api, "hooked")
    wait_for(f"the container of terminated {first} to go", lambda: not container_running(emulator, first), 30)
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["hooked"])["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 1


# --- the two stand-ins on their own (no containers) ---------------------------------------------------

def test_imds_tokens_are_bound_to_caller_and_ttl(tmp_path):
    record = {"instance_id": "i-0abc", "image_id": "ami-1", "instance_type": "m5.xlarge", "local_ipv4": "10.1.0.5",
              "local_hostname": "ip-10-1-0-5.ec2.internal", "availability_zone": "us-east-1a",
              "region": "us-east-1", "metadata_options": {"HttpTokens": "optional"}, "iam_role": ""}
    (tmp_path / "10.1.0.5.json").write_text(json.dumps(record))
    (tmp_path / "10.1.0.6.json").write_text(json.dumps({**record, "instance_id": "i-0def", "local_ipv4": "10.1.0.6",
                                                        "metadata_options": {"HttpEndpoint": "disabled"}}))
    service = MetadataService(tmp_path)
    ttl = {"X-aws-ec2-metadata-token-ttl-seconds": "1"}
    assert service.answer("GET", "/latest/meta-data/instance-id", {}, "10.1.0.5") == (200, "i-0abc")  # IMDSv1
    assert service.answer("PUT", "/latest/api/token", {**ttl, "X-Forwarded-For": "1.2.3.4"}, "10.1.0.5")[0] == 403
    assert service.answer("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "21601"},
                          "10.1.0.5")[0] == 400
    status, token = service.answer("PUT", "/latest/api/token", ttl, "10.1.0.5")
    assert status == 200
    with_token = {"X-aws-ec2-metadata-token": token}
    assert service.answer("GET", "/latest/meta-data/instance-id", with_token, "10.1.0.5") == (200, "i-0abc")
    assert service.answer("GET", "/latest/meta-data/iam/security-credentials/", with_token, "10.1.0.5")[0] == 404
    # Another instance cannot use it; it expires with its TTL; an unknown caller gets nothing.
    assert service.answer("GET", "/latest/meta-data/instance-id", with_token, "10.1.0.6")[0] == 403  # disabled
    time.sleep(1.1)
    assert service.answer("GET", "/latest/meta-data/instance-id", with_token, "10.1.0.5")[0] == 401
    assert service.answer("GET", "/latest/meta-data/instance-id", {}, "10.1.0.99")[0] == 404


def test_lifecycle_standin_timeouts_and_notifications(aws):
    ec2, raw = aws.client("ec2"), aws.client("autoscaling")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.0.0/24")["Subnet"]["SubnetId"]
    template = ec2.create_launch_template(LaunchTemplateName="t", LaunchTemplateData={
        "ImageId": ec2.describe_images()["Images"][0]["ImageId"], "InstanceType": "t3.micro"})["LaunchTemplate"]
    raw.create_auto_scaling_group(AutoScalingGroupName="g", MinSize=0, MaxSize=4, DesiredCapacity=1,
                                  LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"]},
                                  VPCZoneIdentifier=subnet)
    queue = aws.client("sqs").create_queue(QueueName="shutdown")["QueueUrl"]
    hooks = LifecycleHooksStandIn(aws.url, aws.session(), log=lambda _: None, tick=0.2).start()
    try:
        autoscaling = aws.session().client("autoscaling", endpoint_url=hooks.url)
        (existing,) = states(autoscaling_api := {"autoscaling": autoscaling}, "g")
        autoscaling.put_lifecycle_hook(AutoScalingGroupName="g", LifecycleHookName="join",
                                       LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING",
                                       HeartbeatTimeout=1, DefaultResult="ABANDON")
        autoscaling.put_lifecycle_hook(AutoScalingGroupName="g", LifecycleHookName="drain",
                                       LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
                                       HeartbeatTimeout=60, DefaultResult="CONTINUE",
                                       NotificationTargetARN="arn:aws:sqs:us-east-1:123456789012:shutdown",
                                       RoleARN="arn:aws:iam::123456789012:role/hooks", NotificationMetadata="m")
        # What the caller set reads back (moto alone answers constants), and the documented global timeout.
        drain = [h for h in autoscaling.describe_lifecycle_hooks(AutoScalingGroupName="g")["LifecycleHooks"]
                 if h["LifecycleHookName"] == "drain"][0]
        assert drain["NotificationTargetARN"] == "arn:aws:sqs:us-east-1:123456789012:shutdown"
        assert drain["RoleARN"] == "arn:aws:iam::123456789012:role/hooks"
        assert drain["GlobalTimeout"] == 6000
        # The instance that was there before the hooks stays InService.
        assert states(autoscaling_api, "g") == {existing: "InService"}
        # Launch held; the 1 s timeout's default result ABANDON terminates it; the replacement waits too.
        autoscaling.set_desired_capacity(AutoScalingGroupName="g", DesiredCapacity=2)
        (held,) = set(states(autoscaling_api, "g")) - {existing}
        assert states(autoscaling_api, "g")[held] == "Pending:Wait"
        wait_for("the timeout", lambda: held not in states(autoscaling_api, "g"), 10, 0.2)
        (replacement,) = set(states(autoscaling_api, "g")) - {existing}
        assert states(autoscaling_api, "g")[replacement] == "Pending:Wait"
        autoscaling.complete_lifecycle_action(AutoScalingGroupName="g", LifecycleHookName="join",
                                              InstanceId=replacement, LifecycleActionResult="CONTINUE")
        # Completing twice, or an unknown hook, is refused as AWS does.
        with pytest.raises(autoscaling.exceptions.ClientError, match="No active Lifecycle Action"):
            autoscaling.complete_lifecycle_action(AutoScalingGroupName="g", LifecycleHookName="join",
                                                  InstanceId=replacement, LifecycleActionResult="CONTINUE")
        # Scale in by one: one instance Terminating:Wait, the hook's notification on the queue.
        autoscaling.set_desired_capacity(AutoScalingGroupName="g", DesiredCapacity=1)
        now = states(autoscaling_api, "g")
        (leaving,) = [i for i, state in now.items() if state == "Terminating:Wait"]
        assert hooks.target_state(leaving) == "Terminated"
        message = json.loads(aws.client("sqs").receive_message(QueueUrl=queue)["Messages"][0]["Body"])
        assert message["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
        assert message["EC2InstanceId"] == leaving and message["NotificationMetadata"] == "m"
        # Completing by token works as by instance id; the group then has one instance and desired 1.
        autoscaling.complete_lifecycle_action(AutoScalingGroupName="g", LifecycleHookName="drain",
                                              LifecycleActionToken=message["LifecycleActionToken"],
                                              LifecycleActionResult="CONTINUE")
        assert leaving not in states(autoscaling_api, "g") and len(states(autoscaling_api, "g")) == 1
        group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["g"])["AutoScalingGroups"][0]
        assert group["DesiredCapacity"] == 1
    finally:
        hooks.stop()
