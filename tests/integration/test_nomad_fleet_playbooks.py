"""scale.yml and rolling_replace.yml against an emulated fleet, with the real drain agent on every client.

One module-scoped fleet, no containers (tests/sandbox/fleet_standin.py): moto behind the sandbox's Auto
Scaling lifecycle hooks stand-in (Terminating:Wait until CompleteLifecycleAction), a Nomad client group
(min 1, max 4, a terminating hook), and for each instance a Nomad stand-in client that registers with a
Nomad stand-in server plus the nomad_client role's drain agent. The playbooks run as users run them
(ansible-playbook circleci_server.aws.<name>). Self-configuration (user data, cloud-init, the roles) is
tested in the sandbox's EC2 emulator; here a client "joins" the moment the group has it.
"""
import time

import pytest

from tests.sandbox.fleet_standin import StandInFleet, user_data

pytestmark = pytest.mark.slow

DRAIN_TIMEOUT = 8


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    with StandInFleet(tmp_path_factory.mktemp("fleet"), prefix="fleetpb", min_size=1, max_size=4, desired=1,
                      drain_timeout=DRAIN_TIMEOUT) as env:
        yield env


def _wait_until(condition, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def test_scale_refuses_a_count_outside_min_max(fleet):
    result = fleet.play("scale", circleci_nomad_desired=5)
    assert result.rc != 0
    assert f"circleci_nomad_desired=5 is outside the group {fleet.group}'s limits (min 1, max 4)" in result.output()
    assert fleet.describe_group()["DesiredCapacity"] == 1


def test_scale_count_rules_are_the_input_contracts(fleet):
    # data/inputs.yml group scale: the count is required, and stays inside the sizing band of the install's
    # users (1000 users: 10 clients or more, data/sizing.yml) unless allowed; refused before the group is touched.
    missing = fleet.play("scale")
    assert missing.rc != 0
    assert "circleci_nomad_desired must be set: a whole number of Nomad clients" in missing.output()
    outside = fleet.play("scale", circleci_nomad_desired=4, circleci_daily_active_users=1000)
    assert outside.rc != 0
    assert "circleci_nomad_desired=4 is outside the install guide's" in outside.output()
    assert "circleci_nomad_allow_outside_sizing=true" in outside.output()
    assert fleet.describe_group()["DesiredCapacity"] == 1


def test_scale_up_waits_until_every_client_is_ready_in_nomad(fleet):
    result = fleet.play("scale", circleci_nomad_desired=3)
    assert result.rc == 0, str(result)
    in_service = fleet.in_service()
    assert len(in_service) == 3
    assert set(in_service) <= set(fleet.ready_nodes())  # ready when the play ended, not later
    assert "1 -> 3 Nomad client(s), all InService and ready in Nomad" in result.stdout


def test_scale_to_the_current_size_changes_nothing(fleet):
    result = fleet.play("scale", circleci_nomad_desired=3)
    assert result.rc == 0, str(result)
    assert result.changed == 0, result.recap


def test_scale_in_drains_the_running_build_before_the_instance_goes(fleet):
    stand_in = fleet.fleet
    before = fleet.in_service()
    builds = {iid: stand_in.place(iid, JobID="circleci-build", Type="batch", RunsFor=4) for iid in before}
    started = time.time()
    result = fleet.play("scale", circleci_nomad_desired=2)
    assert result.rc == 0, str(result)
    gone = [iid for iid in before if iid not in fleet.in_service()]
    assert len(gone) == 1 and len(fleet.in_service()) == 2
    victim = gone[0]
    snapshot = stand_in.gone[victim]
    # The build ran to its end (never stopped by the drain), the node was drained, only then terminated.
    allocation = next(a for a in snapshot["allocations"] if a["ID"] == builds[victim]["ID"])
    assert (allocation["ClientStatus"], allocation["DesiredStatus"]) == ("complete", "run")
    assert snapshot["node"]["Drain"] is True
    assert snapshot["terminated_at"] - started >= 4
    log = stand_in.clients[victim]["log"]
    assert ("outcome", "drained") in log, log
    events = [what for _, iid, what in fleet.hooks.events if iid == victim]
    assert f"{fleet.hook}: CompleteLifecycleAction CONTINUE" in events and events[-1].startswith("terminated")


def test_drain_timeout_exceeded_completes_anyway_and_is_logged(fleet):
    stand_in = fleet.fleet
    victim = fleet.in_service()[0]
    stand_in.place(victim, JobID="stuck-build", Type="batch", KillTimeout=0)  # runs forever
    fleet.autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=victim,
                                                                   ShouldDecrementDesiredCapacity=True)
    deadline = time.monotonic() + DRAIN_TIMEOUT + 30
    while victim not in stand_in.gone and time.monotonic() < deadline:
        time.sleep(0.3)
    assert victim in stand_in.gone, stand_in.clients[victim]["log"]
    log = stand_in.clients[victim]["log"]
    assert ("outcome", "timeout") in log
    assert any(level == "WARNING" and f"drain timeout of {DRAIN_TIMEOUT}s exceeded" in message
               for level, message in log if level != "outcome"), log
    events = [what for _, iid, what in fleet.hooks.events if iid == victim]
    assert f"{fleet.hook}: CompleteLifecycleAction CONTINUE" in events  # completed by the agent, not the hook's timeout
    assert fleet.describe_group()["DesiredCapacity"] == 1


def test_rolling_replace_moves_the_fleet_to_another_nomad_version_without_killing_a_build(fleet):
    stand_in, ec2 = fleet.fleet, fleet.ec2
    # Two clients on Nomad 0.5.6 (two batches of one), then provisioning makes launch template version 2.
    fleet.autoscaling.set_desired_capacity(AutoScalingGroupName=fleet.group, DesiredCapacity=2)
    _wait_until(lambda: len(fleet.in_service()) == 2 and set(fleet.in_service()) <= set(fleet.ready_nodes()))
    ec2.create_launch_template_version(
        LaunchTemplateId=fleet.template["LaunchTemplateId"], SourceVersion="1",
        LaunchTemplateData={"UserData": user_data("0.9.3")})
    fleet.autoscaling.update_auto_scaling_group(AutoScalingGroupName=fleet.group, LaunchTemplate={
        "LaunchTemplateId": fleet.template["LaunchTemplateId"], "Version": "2"})
    old = fleet.in_service()
    assert {stand_in.clients[i]["version"] for i in old} == {"0.5.6"} and len(old) == 2
    builds = {iid: stand_in.place(iid, JobID="circleci-build", Type="batch", RunsFor=3) for iid in old}

    result = fleet.play("rolling_replace", circleci_rolling_batch_size=1, circleci_rolling_min_ready=2)
    assert result.rc == 0, str(result)
    now = fleet.in_service()
    assert len(now) == 2 and not set(now) & set(old)
    assert {stand_in.clients[i]["version"] for i in now} == {"0.9.3"}
    assert set(now) <= set(fleet.ready_nodes())
    for iid in old:  # every old client's build finished; none was stopped
        allocation = next(a for a in stand_in.gone[iid]["allocations"] if a["ID"] == builds[iid]["ID"])
        assert (allocation["ClientStatus"], allocation["DesiredStatus"]) == ("complete", "run")
    assert "2 client(s) replaced onto launch template version 2" in result.stdout

    again = fleet.play("rolling_replace", circleci_rolling_batch_size=1)
    assert again.rc == 0 and again.changed == 0, str(again)
    assert "none needed" in again.stdout
