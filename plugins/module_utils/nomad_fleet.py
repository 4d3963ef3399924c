# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Nomad client Auto Scaling group as the scale and rolling-replace playbooks see it.

``NomadFleet`` is the client class behind the ``circleci_server.aws.nomad_fleet`` module:
it reads the group (size limits, launch template version, each instance's lifecycle state,
launch template version and ``circleci:bootstrap`` tag), sets its desired capacity, terminates
chosen instances with a decrement (the terminating lifecycle hook holds them while the drain
agent drains them), and waits until the group has settled. While waiting, an instance that
leaves the group without being asked to (an abandoned launch: its bootstrap failed) or whose
``circleci:bootstrap`` tag says it failed stops the wait, named with that tag and its last
lifecycle state.

    fleet = NomadFleet(autoscaling_client, ec2_client, "ci-nomad-clients")
    group = fleet.describe()
    fleet.set_desired(4)
    fleet.wait_settled(4, timeout=900)

Auto Scaling API: https://docs.aws.amazon.com/autoscaling/ec2/APIReference/ (SetDesiredCapacity,
TerminateInstanceInAutoScalingGroup, DescribeAutoScalingGroups, DescribeScalingActivities);
lifecycle states: https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-lifecycle.html
"""
import time

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:  # pragma: no cover - AnsibleAWSModule reports missing botocore
    BotoCoreError = ClientError = Exception

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

BOOTSTRAP_TAG = "circleci:bootstrap"
IN_SERVICE = "InService"
# Scaling activity codes that mean a launch or termination did not happen as asked.
FAILED_ACTIVITY_CODES = ("Failed", "Cancelled")


class FleetError(Exception):
    """What went wrong, said so the user knows what to fix; ``failed`` names the instances."""

    def __init__(self, message, failed=None, group=None):
        super().__init__(message)
        self.failed = failed or []
        self.group = group


def _version_number(spec, template):
    """A launch template version spec ("3", "$Latest", "$Default") as a number, when known."""
    if spec in (None, "", "$Latest"):
        return template.get("LatestVersionNumber")
    if spec == "$Default":
        return template.get("DefaultVersionNumber")
    try:
        return int(spec)
    except (TypeError, ValueError):
        return None


def bootstrap_failed(tag_value):
    """The circleci:bootstrap tag of a client whose self-configuration failed starts with 'fail'."""
    return str(tag_value or "").strip().lower().startswith("fail")


def describe_failure(instance):
    """One line naming a failed instance: id, lifecycle state, bootstrap tag, scaling activity."""
    parts = ["%s (lifecycle state %s" % (instance["instance_id"], instance.get("lifecycle_state") or "unknown")]
    parts.append("circleci:bootstrap tag %r" % instance["bootstrap"] if instance.get("bootstrap")
                 else "no circleci:bootstrap tag")
    text = ", ".join(parts)
    if instance.get("activity"):
        text += ", scaling activity: " + instance["activity"]
    return text + ")"


class NomadFleet:
    def __init__(self, autoscaling, ec2, group_name, retry=None, clock=time.monotonic, sleep=time.sleep):
        self.autoscaling = autoscaling
        self.ec2 = ec2
        self.group_name = group_name
        self.retry = retry or AWSRetry.jittered_backoff(retries=8, delay=1, max_delay=15)
        self.clock = clock
        self.sleep = sleep
        self._templates = {}  # launch template id or name -> DescribeLaunchTemplates entry

    def _call(self, client, operation, **kwargs):
        return self.retry(getattr(client, operation))(**kwargs)

    # --- reading ----------------------------------------------------------------------
    def _group(self):
        groups = self._call(self.autoscaling, "describe_auto_scaling_groups",
                            AutoScalingGroupNames=[self.group_name])["AutoScalingGroups"]
        if not groups:
            raise FleetError("the Auto Scaling group %s does not exist (is circleci_prefix right, and the install "
                             "provisioned?)" % self.group_name)
        return groups[0]

    def _template(self, group, reuse=False):
        spec = group.get("LaunchTemplate") or (group.get("MixedInstancesPolicy") or {}).get(
            "LaunchTemplate", {}).get("LaunchTemplateSpecification") or {}
        key = spec.get("LaunchTemplateId") or spec.get("LaunchTemplateName")
        if not key:
            return spec, {}
        if reuse and key in self._templates:
            return spec, self._templates[key]
        query = ({"LaunchTemplateIds": [spec["LaunchTemplateId"]]} if spec.get("LaunchTemplateId")
                 else {"LaunchTemplateNames": [spec["LaunchTemplateName"]]})
        found = self._call(self.ec2, "describe_launch_templates", **query)["LaunchTemplates"]
        self._templates[key] = found[0] if found else {}
        return spec, self._templates[key]

    def _tags(self, instance_ids):
        tags = {}
        ids = list(instance_ids)
        for start in range(0, len(ids), 100):
            reservations = self._call(self.ec2, "describe_instances", InstanceIds=ids[start:start + 100])
            for reservation in reservations["Reservations"]:
                for instance in reservation["Instances"]:
                    tags[instance["InstanceId"]] = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
        return tags

    def describe(self, while_waiting=False):
        """The group, its launch template version and its instances (sorted by id).

        while_waiting: a look between two polls of a wait, at a third of the API cost: the launch
        template as first read (a wait does not change it), and circleci:bootstrap tags only of
        instances not InService (the ones a wait watches for failures); an InService instance's
        ``bootstrap`` is then None.
        """
        group = self._group()
        spec, template = self._template(group, reuse=while_waiting)
        target = _version_number(spec.get("Version"), template)
        latest = template.get("LatestVersionNumber")
        instances = []
        raw = group.get("Instances", [])
        tagged = [i["InstanceId"] for i in raw if not while_waiting or i.get("LifecycleState") != IN_SERVICE]
        tags = self._tags(tagged) if tagged else {}
        for item in raw:
            lt = item.get("LaunchTemplate") or {}
            version = _version_number(lt.get("Version"), template) if lt else None
            instances.append({
                "instance_id": item["InstanceId"],
                "lifecycle_state": item.get("LifecycleState", ""),
                "health_status": item.get("HealthStatus", ""),
                "protected_from_scale_in": bool(item.get("ProtectedFromScaleIn", False)),
                "launch_template_version": version,
                "up_to_date": version is not None and version == target,
                "bootstrap": tags.get(item["InstanceId"], {}).get(BOOTSTRAP_TAG, "")
                if item["InstanceId"] in tagged else None,
            })
        instances.sort(key=lambda i: i["instance_id"])
        in_service = [i for i in instances if i["lifecycle_state"] == IN_SERVICE and i["health_status"] != "Unhealthy"]
        return {
            "name": group["AutoScalingGroupName"],
            "min_size": group["MinSize"],
            "max_size": group["MaxSize"],
            "desired_capacity": group["DesiredCapacity"],
            "launch_template": {"id": spec.get("LaunchTemplateId") or template.get("LaunchTemplateId", ""),
                                "name": spec.get("LaunchTemplateName") or template.get("LaunchTemplateName", ""),
                                "version": spec.get("Version", ""), "version_number": target,
                                "latest_version_number": latest},
            "instances": instances,
            "in_service": [i["instance_id"] for i in in_service],
            "outdated": [i["instance_id"] for i in instances if not i["up_to_date"]
                         and i["lifecycle_state"] == IN_SERVICE],
        }

    def failed_activities(self, since_epoch):
        """Failed or cancelled scaling activities that started after since_epoch: {instance id: message}."""
        found = {}
        try:
            activities = self._call(self.autoscaling, "describe_scaling_activities",
                                    AutoScalingGroupName=self.group_name, MaxRecords=50)["Activities"]
        except (BotoCoreError, ClientError):  # activities only enrich the message
            return found
        for activity in activities:
            started = activity.get("StartTime")
            if started is not None and hasattr(started, "timestamp") and started.timestamp() < since_epoch:
                continue
            if activity.get("StatusCode") not in FAILED_ACTIVITY_CODES:
                continue
            description = activity.get("Description", "")
            instance_id = description.rsplit(" ", 1)[-1] if "i-" in description else ""
            found[instance_id] = "%s: %s" % (activity.get("StatusCode"), activity.get("StatusMessage")
                                             or activity.get("Cause") or description)
        return found

    # --- checks -------------------------------------------------------------------------
    @staticmethod
    def check_desired(desired, group):
        """None, or the message saying why desired cannot be set on this group."""
        if desired < group["min_size"] or desired > group["max_size"]:
            return ("circleci_nomad_desired=%d is outside the group %s's limits (min %d, max %d): choose a count "
                    "between them, or change circleci_nomad_min / circleci_nomad_max and provision first"
                    % (desired, group["name"], group["min_size"], group["max_size"]))
        return None

    # --- changing -------------------------------------------------------------------------
    def set_desired(self, desired, check_mode=False, group=None):
        """SetDesiredCapacity; returns True when it changed (or would change) the group.

        group: the caller's fresh describe() of the group, so it is not read twice.
        """
        group = group or self.describe()
        problem = self.check_desired(desired, group)
        if problem:
            raise FleetError(problem, group=group)
        if group["desired_capacity"] == desired:
            return False
        if not check_mode:
            self._call(self.autoscaling, "set_desired_capacity", AutoScalingGroupName=self.group_name,
                       DesiredCapacity=desired, HonorCooldown=False)
        return True

    def terminate(self, instance_ids, check_mode=False):
        """Terminate InService instances of the group, lowering the desired capacity with each one.

        The terminating lifecycle hook holds each in Terminating:Wait until the drain agent on it
        completes the action. Instances already leaving (or gone) are skipped; returns the ids
        terminated now.
        """
        group = self.describe()
        states = {i["instance_id"]: i["lifecycle_state"] for i in group["instances"]}
        chosen = [i for i in instance_ids if states.get(i) == IN_SERVICE]
        remaining = group["desired_capacity"] - len(chosen)
        if remaining < group["min_size"]:
            raise FleetError("terminating %d instance(s) would take the group %s below its minimum of %d (desired %d)"
                             % (len(chosen), self.group_name, group["min_size"], group["desired_capacity"]),
                             group=group)
        if not check_mode:
            for instance_id in chosen:
                self._call(self.autoscaling, "terminate_instance_in_auto_scaling_group",
                           InstanceId=instance_id, ShouldDecrementDesiredCapacity=True)
        return chosen

    # --- waiting ----------------------------------------------------------------------------
    def _fill_bootstrap_tags(self, group):
        """The circleci:bootstrap tags a look while waiting left out (None), read in one call."""
        missing = [i for i in group["instances"] if i["bootstrap"] is None]
        tags = self._tags([i["instance_id"] for i in missing]) if missing else {}
        for instance in missing:
            instance["bootstrap"] = tags.get(instance["instance_id"], {}).get(BOOTSTRAP_TAG, "")
        return group

    def wait_settled(self, desired, timeout, poll=5.0, expected_leaving=(), wall_clock=time.time, max_poll=30.0):
        """Wait until exactly `desired` healthy instances are InService and no other is in the group.

        Looks every `poll` seconds at first, then 1.5 times longer after each look up to `max_poll`:
        a client takes minutes to configure itself, and each look costs the control node CPU and the
        account's shared Describe* request rate (AWS asks for backoff when polling).

        Fails (FleetError) at the first instance that fails: one that leaves the group while it
        was launching (an abandoned launch) or whose circleci:bootstrap tag says it failed; or
        when the timeout passes, naming the instances not in service yet. The group returned, or
        carried by the FleetError, has every instance's circleci:bootstrap tag.
        """
        try:
            group = self._wait(desired, timeout, poll, expected_leaving, wall_clock, max_poll)
        except FleetError as exc:
            if exc.group:
                self._fill_bootstrap_tags(exc.group)
            raise
        return self._fill_bootstrap_tags(group)

    def _wait(self, desired, timeout, poll, expected_leaving, wall_clock, max_poll):
        started = self.clock()
        started_epoch = wall_clock() - 60  # activities' clocks are AWS's: some slack
        seen = {}  # instance id -> last description
        leaving = set(expected_leaving)
        interval = poll
        while True:
            group = self.describe(while_waiting=True)
            current = {i["instance_id"]: i for i in group["instances"]}
            for instance_id, last in seen.items():
                if instance_id in current or instance_id in leaving:
                    continue
                if not last["lifecycle_state"].startswith("Pending"):
                    continue  # it had been in service: taken out by a scale-in (drained) or a health check
                failed = dict(last, lifecycle_state="left the group while " + (last["lifecycle_state"] or "launching"))
                failed["bootstrap"] = self._tags([instance_id]).get(instance_id, {}).get(BOOTSTRAP_TAG, "") \
                    or last.get("bootstrap", "")
                failed["activity"] = self.failed_activities(started_epoch).get(instance_id, "")
                raise FleetError("Nomad client %s failed to launch" % describe_failure(failed), [failed], group)
            bad = [i for i in group["instances"] if bootstrap_failed(i["bootstrap"])
                   and i["lifecycle_state"] != IN_SERVICE and not i["lifecycle_state"].startswith("Terminating")]
            if bad:
                raise FleetError("Nomad client bootstrap failed: " + "; ".join(describe_failure(i) for i in bad),
                                 bad, group)
            seen.update(current)
            others = [i for i in group["instances"] if i["instance_id"] not in group["in_service"]]
            if len(group["in_service"]) == desired and not others and group["desired_capacity"] == desired:
                return group
            if self.clock() - started >= timeout:
                self._fill_bootstrap_tags(group)  # the message names InService ones too when none is waiting
                waiting = others or group["instances"]
                raise FleetError(
                    "the group %s did not settle at %d InService client(s) within %ds: %d InService, desired %d; "
                    "not in service: %s" % (self.group_name, desired, timeout, len(group["in_service"]),
                                            group["desired_capacity"],
                                            "; ".join(describe_failure(i) for i in waiting) or "none"),
                    others, group)
            self.sleep(interval)
            interval = min(interval * 1.5, max(poll, max_poll))
