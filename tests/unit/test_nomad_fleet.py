"""NomadFleet (plugins/module_utils/nomad_fleet.py), the class behind the nomad_fleet module: against moto
(the group, its launch template versions, sizing and terminations) and botocore's Stubber (launch
failures moto cannot produce: an abandoned launch, a bootstrap tag saying it failed)."""
import datetime

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from ansible_collections.circleci_server.aws.plugins.module_utils import nomad_fleet as nf

GROUP = "ci-nomad-clients"


def _no_retry(function):
    return function


@pytest.fixture
def moto_group():
    """A group of 2 clients from launch template version 1, then a version 2 (a new Nomad version, say)."""
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="us-east-1")
        autoscaling = boto3.client("autoscaling", region_name="us-east-1")
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]
        template = ec2.create_launch_template(LaunchTemplateName="ci-nomad-clients", LaunchTemplateData={
            "ImageId": "ami-12c6146b", "InstanceType": "m5.xlarge"})["LaunchTemplate"]
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=GROUP, MinSize=1, MaxSize=5, DesiredCapacity=2,
            LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": "1"},
            VPCZoneIdentifier=subnet["SubnetId"],
            Tags=[{"Key": "circleci:role", "Value": "nomad_client", "PropagateAtLaunch": True}])
        yield {"ec2": ec2, "autoscaling": autoscaling, "template": template,
               "fleet": nf.NomadFleet(autoscaling, ec2, GROUP, retry=_no_retry, sleep=lambda s: None)}


def _new_version(moto_group):
    """Provisioning made launch template version 2 and pointed the group at it (as Terraform's latest_version)."""
    ec2, template = moto_group["ec2"], moto_group["template"]
    ec2.create_launch_template_version(LaunchTemplateId=template["LaunchTemplateId"], SourceVersion="1",
                                       LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "m5.2xlarge"})
    moto_group["autoscaling"].update_auto_scaling_group(
        AutoScalingGroupName=GROUP, LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": "2"})


def test_describe_reports_limits_versions_and_instances(moto_group):
    group = moto_group["fleet"].describe()
    assert (group["name"], group["min_size"], group["max_size"], group["desired_capacity"]) == (GROUP, 1, 5, 2)
    assert group["launch_template"]["version_number"] == 1
    assert len(group["in_service"]) == 2 and group["outdated"] == []
    assert all(i["launch_template_version"] == 1 and i["up_to_date"] for i in group["instances"])


def test_a_new_template_version_makes_every_running_client_outdated(moto_group):
    _new_version(moto_group)
    group = moto_group["fleet"].describe()
    assert group["launch_template"]["version_number"] == 2
    assert group["launch_template"]["latest_version_number"] == 2
    assert sorted(group["outdated"]) == sorted(group["in_service"])
    assert {i["launch_template_version"] for i in group["instances"]} == {1}
    # (moto 5.2.5 records version 1 for clients launched after the change too: the sandbox's lifecycle
    # hooks stand-in corrects that; the Stubber tests below cover an up-to-date client.)


@pytest.mark.parametrize("desired", [0, 6])
def test_a_count_outside_min_max_is_refused_naming_the_limits(moto_group, desired):
    with pytest.raises(nf.FleetError) as raised:
        moto_group["fleet"].set_desired(desired)
    message = str(raised.value)
    assert f"circleci_nomad_desired={desired} is outside" in message and "(min 1, max 5)" in message
    assert moto_group["fleet"].describe()["desired_capacity"] == 2


def test_set_desired_changes_once_and_check_mode_changes_nothing(moto_group):
    fleet = moto_group["fleet"]
    assert fleet.set_desired(2) is False  # the current size: nothing to do
    assert fleet.set_desired(4, check_mode=True) is True
    assert fleet.describe()["desired_capacity"] == 2
    assert fleet.set_desired(4) is True
    group = fleet.wait_settled(4, timeout=5)
    assert group["desired_capacity"] == 4 and len(group["in_service"]) == 4
    assert fleet.set_desired(4) is False


def test_terminate_decrements_and_skips_instances_not_in_service(moto_group):
    fleet = moto_group["fleet"]
    fleet.set_desired(3)
    victim = fleet.describe()["in_service"][0]
    assert fleet.terminate([victim, "i-00000000000000000"], check_mode=True) == [victim]
    assert fleet.describe()["desired_capacity"] == 3
    assert fleet.terminate([victim]) == [victim]
    group = fleet.wait_settled(2, timeout=5, expected_leaving=[victim])
    assert group["desired_capacity"] == 2 and victim not in group["in_service"]


def test_terminate_refuses_to_go_below_the_minimum(moto_group):
    fleet = moto_group["fleet"]
    with pytest.raises(nf.FleetError, match="below its minimum of 1"):
        fleet.terminate(fleet.describe()["in_service"])


def test_wait_times_out_naming_what_is_not_in_service(moto_group):
    fleet = moto_group["fleet"]
    clock = iter(range(0, 1000, 10))
    fleet.clock = lambda: next(clock)
    with pytest.raises(nf.FleetError) as raised:
        fleet.wait_settled(3, timeout=30)  # desired stays 2: never settles at 3
    assert "did not settle at 3 InService client(s) within 30s" in str(raised.value)


# --- launch failures (Stubber) ----------------------------------------------------------------

def _asg_page(instances, desired=2):
    return {"AutoScalingGroups": [{
        "AutoScalingGroupName": GROUP, "MinSize": 1, "MaxSize": 5, "DesiredCapacity": desired,
        "DefaultCooldown": 300, "AvailabilityZones": ["us-east-1a"], "HealthCheckType": "EC2",
        "CreatedTime": datetime.datetime(2026, 1, 1),
        "LaunchTemplate": {"LaunchTemplateId": "lt-0123456789abcdef0", "Version": "2"},
        "Instances": [{"InstanceId": iid, "AvailabilityZone": "us-east-1a", "LifecycleState": state,
                       "HealthStatus": "Healthy", "ProtectedFromScaleIn": False,
                       "LaunchTemplate": {"LaunchTemplateId": "lt-0123456789abcdef0", "Version": "2"}}
                      for iid, state in instances]}]}


TEMPLATES = {"LaunchTemplates": [{"LaunchTemplateId": "lt-0123456789abcdef0", "LaunchTemplateName": "ci-nomad-clients",
                                  "LatestVersionNumber": 2, "DefaultVersionNumber": 1}]}


def _instances(tags_by_id):
    reservations = []
    for iid, tags in tags_by_id.items():
        tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
        reservations.append({"Instances": [{"InstanceId": iid, "Tags": tag_list}]})
    return {"Reservations": reservations}


def _stubbed():
    autoscaling = boto3.client("autoscaling", region_name="us-east-1", aws_access_key_id="x",
                               aws_secret_access_key="x")
    ec2 = boto3.client("ec2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return autoscaling, ec2, Stubber(autoscaling), Stubber(ec2)


def _look(asg_stub, ec2_stub, instances, tags, desired=2, first=True):
    """The calls of one look at the group while waiting. The Stubber fails the test on any other call:
    after the first look a wait reads neither the launch template again nor the tags of InService clients."""
    asg_stub.add_response("describe_auto_scaling_groups", _asg_page(instances, desired))
    if first:
        ec2_stub.add_response("describe_launch_templates", TEMPLATES)
    ids = [iid for iid, state in instances if state != "InService"]
    if ids:
        ec2_stub.add_response("describe_instances", _instances({iid: tags.get(iid, {}) for iid in ids}),
                              {"InstanceIds": ids})


def test_an_abandoned_launch_stops_the_wait_naming_the_instance_tag_and_activity():
    autoscaling, ec2, asg_stub, ec2_stub = _stubbed()
    ok, bad = "i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb"
    _look(asg_stub, ec2_stub, [(ok, "InService"), (bad, "Pending:Wait")], {bad: {"circleci:bootstrap": "running"}})
    _look(asg_stub, ec2_stub, [(ok, "InService")], {}, first=False)  # the launch was abandoned: it left the group
    ec2_stub.add_response("describe_instances", _instances({bad: {
        "circleci:bootstrap": "failed: nomad_0.5.6_linux_amd64.zip checksum mismatch"}}))
    asg_stub.add_response("describe_scaling_activities", {"Activities": [{
        "ActivityId": "a", "AutoScalingGroupName": GROUP, "Cause": "c",
        "StartTime": datetime.datetime.now(datetime.timezone.utc), "StatusCode": "Cancelled",
        "Description": "Launching a new EC2 instance: " + bad,
        "StatusMessage": "Instance failed to complete user's Lifecycle Action: Lifecycle Action Completed with "
                         "ABANDON Result"}]})
    # The error's group gets the InService client's tag the looks left out.
    ec2_stub.add_response("describe_instances", _instances({ok: {}}), {"InstanceIds": [ok]})
    fleet = nf.NomadFleet(autoscaling, ec2, GROUP, retry=_no_retry, sleep=lambda s: None)
    with asg_stub, ec2_stub, pytest.raises(nf.FleetError) as raised:
        fleet.wait_settled(2, timeout=60)
    message = str(raised.value)
    assert message.startswith("Nomad client " + bad + " (lifecycle state left the group while Pending:Wait")
    assert "checksum mismatch" in message and "ABANDON Result" in message
    assert [i["instance_id"] for i in raised.value.failed] == [bad]
    assert [i["bootstrap"] for i in raised.value.group["instances"]] == [""]  # read, not left out (None)


def test_a_bootstrap_tag_saying_failed_stops_the_wait_before_the_launch_is_abandoned():
    autoscaling, ec2, asg_stub, ec2_stub = _stubbed()
    bad = "i-0ccccccccccccccccc"[:19]
    _look(asg_stub, ec2_stub, [("i-0aaaaaaaaaaaaaaaa", "InService"), (bad, "Pending:Wait")],
          {bad: {"circleci:bootstrap": "failed: apt-get install docker.io exited 100"}})
    ec2_stub.add_response("describe_instances", _instances({"i-0aaaaaaaaaaaaaaaa": {}}),
                          {"InstanceIds": ["i-0aaaaaaaaaaaaaaaa"]})
    fleet = nf.NomadFleet(autoscaling, ec2, GROUP, retry=_no_retry, sleep=lambda s: None)
    with asg_stub, ec2_stub, pytest.raises(nf.FleetError, match="bootstrap failed: .*docker.io exited 100"):
        fleet.wait_settled(2, timeout=60)


def test_a_client_taken_out_by_scale_in_is_no_failure():
    autoscaling, ec2, asg_stub, ec2_stub = _stubbed()
    a, b = "i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb"
    _look(asg_stub, ec2_stub, [(a, "InService"), (b, "Terminating:Wait")], {}, desired=2)
    _look(asg_stub, ec2_stub, [(a, "InService"), (b, "Terminating:Proceed")], {}, desired=2, first=False)
    _look(asg_stub, ec2_stub, [(a, "InService")], {}, desired=1, first=False)
    # Settled: the InService clients' tags the looks left out, in one call, for the result.
    ec2_stub.add_response("describe_instances", _instances({a: {"circleci:bootstrap": "ok"}}), {"InstanceIds": [a]})
    sleeps = []
    fleet = nf.NomadFleet(autoscaling, ec2, GROUP, retry=_no_retry, sleep=sleeps.append)
    with asg_stub, ec2_stub:
        group = fleet.wait_settled(1, timeout=60, poll=5, max_poll=6)
    assert group["in_service"] == [a] and group["instances"][0]["bootstrap"] == "ok"
    assert sleeps == [5, 6]  # 1.5 times longer each look, up to max_poll


def test_a_long_wait_looks_less_often_up_to_the_longest_interval(moto_group):
    fleet = moto_group["fleet"]
    clock = iter(range(0, 10000, 10))
    fleet.clock = lambda: next(clock)
    sleeps = []
    fleet.sleep = sleeps.append
    with pytest.raises(nf.FleetError):
        fleet.wait_settled(3, timeout=100)
    assert sleeps[:5] == [5, 7.5, 11.25, 16.875, 25.3125] and set(sleeps[5:]) == {30}


def test_failure_line_names_the_missing_tag():
    line = nf.describe_failure({"instance_id": "i-1", "lifecycle_state": "Pending", "bootstrap": ""})
    assert line == "i-1 (lifecycle state Pending, no circleci:bootstrap tag)"
    assert nf.bootstrap_failed("FAILED: x") and not nf.bootstrap_failed("ok") and not nf.bootstrap_failed(None)
