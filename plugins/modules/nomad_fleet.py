#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
DOCUMENTATION = r"""
module: nomad_fleet
short_description: Size the Nomad client Auto Scaling group, take clients out of it, wait until it settles
version_added: 0.2.0
description:
  - Reads the Nomad client Auto Scaling group of a CircleCI Server install (size limits, launch template version,
    each instance's lifecycle state, launch template version and C(circleci:bootstrap) tag).
  - With O(desired_capacity), sets the group's desired capacity (C(SetDesiredCapacity)) after checking it against the
    group's minimum and maximum. Scaling in relies on the group's terminating lifecycle hook and the drain agent on
    each client (docs/fleet.md); the module never terminates a client itself for a lower count.
  - With O(terminate_instances), terminates those InService instances of the group, lowering the desired capacity by
    one for each (C(TerminateInstanceInAutoScalingGroup) with C(ShouldDecrementDesiredCapacity)); the terminating
    hook holds each until its drain agent completes the lifecycle action. Used by the rolling replacement.
  - With O(wait), waits until exactly the desired number of healthy instances is C(InService) and no other instance
    is in the group. It stops at the first client that fails to launch (it left the group while pending, as an
    abandoned launch does, or its C(circleci:bootstrap) tag starts with C(fail)), naming it with that tag, its last
    lifecycle state and the failed scaling activity.
  - Without O(desired_capacity) and O(terminate_instances) it only reports the group (never changed).
author: circleci_server.aws maintainers (@circleci-server-aws)
options:
  name:
    description: The Auto Scaling group's name (Terraform output C(nomad_asg_name), C(<prefix>-nomad-clients)).
    type: str
    required: true
  desired_capacity:
    description: The number of Nomad clients the group should run; between the group's min and max size.
    type: int
  terminate_instances:
    description: Instance ids of the group to terminate with a decrement of the desired capacity.
    type: list
    elements: str
    default: []
  wait:
    description: Wait until the group has settled at the desired capacity (see the description).
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait at most. Scale-in waits for the drains, so give it more than the drain timeout.
    type: int
    default: 900
  poll_interval:
    description:
      - Seconds before the first look at the group while waiting; each next look waits 1.5 times
        longer, up to I(max_poll_interval).
    type: int
    default: 5
  max_poll_interval:
    description:
      - The longest wait between two looks at the group. A client configures itself in minutes;
        looking less often spares the control node's CPU and the account's Describe* request rate.
    type: int
    default: 30
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
notes:
  - Check mode reports what would change (with O(wait) it does not wait); C(--diff) shows the desired capacity
    before and after.
  - Needs C(autoscaling:DescribeAutoScalingGroups), C(autoscaling:DescribeScalingActivities),
    C(autoscaling:SetDesiredCapacity), C(autoscaling:TerminateInstanceInAutoScalingGroup),
    C(ec2:DescribeInstances) and C(ec2:DescribeLaunchTemplates).
"""

EXAMPLES = r"""
- name: Scale the Nomad clients to 6 and wait for them
  circleci_server.aws.nomad_fleet:
    name: ci-nomad-clients
    region: us-east-1
    desired_capacity: 6
    wait: true
    wait_timeout: 900

- name: Read the group
  circleci_server.aws.nomad_fleet:
    name: ci-nomad-clients
  register: fleet

- name: Replace two outdated clients (drained through the terminating hook)
  circleci_server.aws.nomad_fleet:
    name: ci-nomad-clients
    terminate_instances: "{{ fleet.group.outdated[:2] }}"
    wait: true
    wait_timeout: 4200
"""

RETURN = r"""
group:
  description: The group after the change (or as it is, in check mode).
  returned: always
  type: dict
  contains:
    name: {description: The group's name., type: str}
    min_size: {description: Its minimum size., type: int}
    max_size: {description: Its maximum size., type: int}
    desired_capacity: {description: Its desired capacity., type: int}
    launch_template:
      description: C(id), C(name), C(version) (as the group names it), C(version_number) (that version as a number)
        and C(latest_version_number) of its launch template.
      type: dict
    instances:
      description: >-
        One entry per instance - C(instance_id), C(lifecycle_state), C(health_status), C(protected_from_scale_in),
        C(launch_template_version), C(up_to_date) (launched from the group's version) and C(bootstrap) (its
        C(circleci:bootstrap) tag, empty when none).
      type: list
      elements: dict
    in_service:
      description: Ids of the healthy InService instances.
      type: list
      elements: str
    outdated:
      description: Ids of the InService instances launched from another launch template version than the group's.
      type: list
      elements: str
  sample:
    name: ci-nomad-clients
    min_size: 1
    max_size: 5
    desired_capacity: 2
    in_service: [i-0123456789abcdef0, i-0fedcba9876543210]
    outdated: []
terminated:
  description: The instances terminated now (with O(terminate_instances)).
  returned: always
  type: list
  elements: str
desired_capacity_before:
  description: The group's desired capacity before this task changed it.
  returned: success
  type: int
  sample: 1
failed_instances:
  description: On failure, the instances that failed to launch or to come into service, as in RV(group.instances).
  returned: failure
  type: list
  elements: dict
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule  # noqa: E402
from ansible_collections.circleci_server.aws.plugins.module_utils.nomad_fleet import (  # noqa: E402
    BotoCoreError,
    ClientError,
    FleetError,
    NomadFleet,
)


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        desired_capacity=dict(type="int"),
        terminate_instances=dict(type="list", elements="str", default=[]),
        wait=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=900),
        poll_interval=dict(type="int", default=5),
        max_poll_interval=dict(type="int", default=30),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    fleet = NomadFleet(module.client("autoscaling"), module.client("ec2"), params["name"])
    try:
        before = fleet.describe()
        terminated = []
        changed = False
        if params["terminate_instances"]:
            terminated = fleet.terminate(params["terminate_instances"], check_mode=module.check_mode)
            changed = bool(terminated)
        if params["desired_capacity"] is not None:
            changed = fleet.set_desired(params["desired_capacity"], check_mode=module.check_mode,
                                        group=None if terminated else before) or changed
        target = params["desired_capacity"]
        if target is None:
            target = before["desired_capacity"] - len(terminated)
        if params["wait"] and not module.check_mode:
            after = fleet.wait_settled(target, params["wait_timeout"], poll=params["poll_interval"],
                                       expected_leaving=terminated, max_poll=params["max_poll_interval"])
        else:
            after = fleet.describe() if changed and not module.check_mode else before
    except FleetError as exc:
        module.fail_json(msg=str(exc), failed_instances=exc.failed, group=exc.group)
    except (BotoCoreError, ClientError) as exc:
        module.fail_json_aws(exc, msg="Auto Scaling group %s: AWS call failed" % params["name"])
    result = dict(changed=changed, group=after, terminated=terminated,
                  desired_capacity_before=before["desired_capacity"])
    if module._diff:
        result["diff"] = dict(before={"desired_capacity": before["desired_capacity"], "terminated": []},
                              after={"desired_capacity": target, "terminated": terminated})
    module.exit_json(**result)


if __name__ == "__main__":
    main()
