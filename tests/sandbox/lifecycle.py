"""STAND-IN for Auto Scaling lifecycle hooks: an AWS API proxy in front of moto that holds launches and
terminations the way Amazon EC2 Auto Scaling documents it.

moto (5.2.5) records lifecycle hooks (PutLifecycleHook, DescribeLifecycleHooks) but puts every launched
instance InService at once, terminates at once, and answers CompleteLifecycleAction and
RecordLifecycleActionHeartbeat with an HTTP 500 (not implemented). Checked with moto 5.2.5 before writing
this. The documented semantics modelled here
(https://docs.aws.amazon.com/autoscaling/ec2/userguide/lifecycle-hooks.html,
https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CompleteLifecycleAction.html,
https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_RecordLifecycleActionHeartbeat.html,
https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_LifecycleHook.html):

* an instance the group launches while it has an ``autoscaling:EC2_INSTANCE_LAUNCHING`` hook is
  ``Pending:Wait`` (it runs: its user data can do the work) until CompleteLifecycleAction CONTINUE
  (``InService``) or ABANDON (terminated; the group launches a replacement), or until the heartbeat timeout
  elapses, when the hook's DefaultResult applies;
* RecordLifecycleActionHeartbeat restarts the heartbeat timeout; an instance never waits longer than the
  global timeout, min(100 x HeartbeatTimeout, 172800 s);
* with an ``autoscaling:EC2_INSTANCE_TERMINATING`` hook, TerminateInstanceInAutoScalingGroup and a lower
  SetDesiredCapacity put the chosen instances in ``Terminating:Wait`` (still running) until the action is
  completed (either result) or times out; then moto terminates them;
* DescribeAutoScalingInstances and DescribeAutoScalingGroups report those LifecycleStates;
* the hook's notification goes to its SQS NotificationTargetARN when moto holds that queue, in the
  documented message shape (https://docs.aws.amazon.com/autoscaling/ec2/userguide/prepare-for-lifecycle-notifications.html).

moto 5.2.5 also records every Auto Scaling instance as launched from the launch template version the
group had when it was created (DescribeAutoScalingGroups/Instances ``LaunchTemplate.Version``), although
it launches from the group's current version; the stand-in notes the group's version when it first sees
an instance and answers with that.

Not modelled: UpdateAutoScalingGroup lowering DesiredCapacity/MaxSize (forwarded: moto terminates at once),
scale-in picking instances by AZ balance (moto's order is used), warm pools, hooks on Detach/Standby, and
EventBridge. While instances are Terminating:Wait after a lower SetDesiredCapacity, the group reports the
old DesiredCapacity until they are gone. The hold state lives in this process: a new ``make demo`` run
starts with every existing instance as it is in moto.

    hooks = LifecycleHooksStandIn(moto.url, session, host=gateway_ip, port=4566).start()
    hooks.sync()                       # the EC2 emulator calls this each tick: new launches, timeouts
    hooks.target_state(instance_id)    # "InService" / "Terminated" for IMDS autoscaling/target-lifecycle-state
"""
import datetime
import json
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from .aws_proxy_base import AwsProxy

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
MAX_GLOBAL_TIMEOUT = 172800
AUTOSCALING_NS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"
# moto 5.2.5 answers DescribeLifecycleHooks with constants for these (a queue "my-queue", a role
# "my-auto-scaling-role") and drops the metadata; the stand-in keeps what the caller sent.
KEPT_HOOK_FIELDS = ("NotificationTargetARN", "RoleARN", "NotificationMetadata")


@dataclass
class HeldAction:
    instance_id: str
    group: str
    hook: str
    transition: str
    heartbeat_timeout: int
    default_result: str
    token: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)
    deadline: float = 0.0
    decrement: bool = False  # terminations: lower the desired capacity when the instance goes

    def __post_init__(self):
        self.deadline = self.started + self.heartbeat_timeout

    @property
    def global_deadline(self):
        return self.started + min(100 * self.heartbeat_timeout, MAX_GLOBAL_TIMEOUT)

    @property
    def lifecycle_state(self):
        return "Pending:Wait" if self.transition == LAUNCHING else "Terminating:Wait"

    @property
    def target_state(self):
        return "InService" if self.transition == LAUNCHING else "Terminated"


def _xml(action, inner=""):
    return (f'<{action}Response xmlns="{AUTOSCALING_NS}"><{action}Result>{inner}</{action}Result>'
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
            f"</{action}Response>").encode()


def _error(code, message, status=400):
    return status, "text/xml", (
        f'<ErrorResponse xmlns="{AUTOSCALING_NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{message}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>").encode()


class LifecycleHooksStandIn(AwsProxy):
    def __init__(self, upstream_url, session, host="127.0.0.1", port=0, log=print, tick=0.5, details_file=None):
        super().__init__(upstream_url, host=host, port=port)
        self.details_file = details_file  # hook fields moto does not keep, kept across demo runs
        self.hook_details = self._load_details()
        self.autoscaling = session.client("autoscaling", endpoint_url=upstream_url)
        self.sqs = session.client("sqs", endpoint_url=upstream_url)
        self.ec2 = session.client("ec2", endpoint_url=upstream_url)
        self.held = {}  # instance id -> HeldAction
        self.known = set()  # Auto Scaling instances seen (an instance is held only when first seen)
        self.launched_version = {}  # instance id -> the group's launch template version when first seen
        self.events = []  # (time, instance id, what happened): tests and logs read it
        self.log = log
        self._tick = tick
        self._stop = threading.Event()
        self._timer = None
        self._sync_lock = threading.RLock()

    # --- life of the proxy ---------------------------------------------------------------
    def start(self):
        self.sync(hold_new=False)  # what exists already was launched before this stand-in: it is InService
        super().start()
        self._timer = threading.Thread(target=self._run_timer, name="lifecycle-hooks", daemon=True)
        self._timer.start()
        return self

    def stop(self):
        self._stop.set()
        if self._timer:
            self._timer.join(timeout=10)
        super().stop()

    def _run_timer(self):
        while not self._stop.wait(self._tick):
            try:
                self.sync()
            except Exception as exc:  # keep holding; the next tick retries
                self.log(f"lifecycle hooks stand-in: {exc}")

    # --- what the emulator and IMDS read --------------------------------------------------
    def target_state(self, instance_id):
        with self._sync_lock:
            action = self.held.get(instance_id)
        if action:
            return action.target_state
        return "InService" if instance_id in self.known else None

    def lifecycle_state(self, instance_id):
        with self._sync_lock:
            action = self.held.get(instance_id)
        return action.lifecycle_state if action else None

    # --- the model ----------------------------------------------------------------------------
    def _hooks(self, group, transition):
        hooks = self.autoscaling.describe_lifecycle_hooks(AutoScalingGroupName=group)["LifecycleHooks"]
        return [{**h, **self.hook_details.get(f"{group}/{h['LifecycleHookName']}", {})} for h in hooks
                if h["LifecycleTransition"] == transition]

    def _load_details(self):
        try:
            return json.loads(self.details_file.read_text()) if self.details_file else {}
        except (OSError, ValueError):
            return {}

    def _remember_hooks(self, params):
        """PutLifecycleHook / CreateAutoScalingGroup's hook specifications: what moto replaces by constants."""
        specs = []
        if "LifecycleHookName" in params:
            specs.append(("", params))
        prefix = "LifecycleHookSpecificationList.member."
        numbers = {k[len(prefix):].split(".")[0] for k in params if k.startswith(prefix)}
        for number in numbers:
            specs.append((f"{prefix}{number}.", params))
        for key_prefix, values in specs:
            name = values.get(key_prefix + "LifecycleHookName")
            details = {k: values[key_prefix + k] for k in KEPT_HOOK_FIELDS if key_prefix + k in values}
            if name and details:
                self.hook_details[f"{params.get('AutoScalingGroupName')}/{name}"] = details
        if specs and self.details_file:
            self.details_file.write_text(json.dumps(self.hook_details, indent=2))

    def _record(self, instance_id, what):
        self.events.append((time.time(), instance_id, what))
        self.log(f"lifecycle hooks stand-in: {instance_id} {what}")

    def sync(self, hold_new=True):
        """New launches into Pending:Wait, timeouts to their default result."""
        with self._sync_lock:
            self._adopt(hold_new)
            now = time.monotonic()
            for action in list(self.held.values()):
                if now >= min(action.deadline, action.global_deadline):
                    self._record(action.instance_id, f"{action.hook}: timed out, default result "
                                                     f"{action.default_result}")
                    self._finish(action, action.default_result)

    def _adopt(self, hold_new=True):
        """Instances the group launched since the last look: Pending:Wait when a launching hook exists."""
        with self._sync_lock:
            instances = self.autoscaling.describe_auto_scaling_instances()["AutoScalingInstances"]
            live = {i["InstanceId"] for i in instances}
            versions = {}
            for instance in instances:
                iid = instance["InstanceId"]
                if iid in self.known:
                    continue
                self.known.add(iid)
                group_name = instance["AutoScalingGroupName"]
                if group_name not in versions:
                    versions[group_name] = self._group_template_version(group_name)
                if versions[group_name]:
                    self.launched_version[iid] = versions[group_name]
                if not hold_new:
                    continue
                for hook in self._hooks(instance["AutoScalingGroupName"], LAUNCHING)[:1]:
                    self._hold(iid, instance["AutoScalingGroupName"], hook)
            for iid in [i for i in self.held if i not in live]:
                self._record(iid, "left the group while waiting")
                del self.held[iid]

    def _group_template_version(self, group_name):
        """The version number the group launches from now (its LaunchTemplate Version, resolved)."""
        groups = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])
        spec = (groups["AutoScalingGroups"] or [{}])[0].get("LaunchTemplate") or {}
        version = spec.get("Version") or "$Default"
        if version.isdigit() or not spec.get("LaunchTemplateId"):
            return version if version.isdigit() else None
        templates = self.ec2.describe_launch_templates(LaunchTemplateIds=[spec["LaunchTemplateId"]])
        template = (templates["LaunchTemplates"] or [{}])[0]
        number = template.get("LatestVersionNumber" if version == "$Latest" else "DefaultVersionNumber")
        return str(number) if number else None

    def _hold(self, instance_id, group, hook, decrement=False):
        action = HeldAction(instance_id, group, hook["LifecycleHookName"], hook["LifecycleTransition"],
                            int(hook.get("HeartbeatTimeout") or 3600), hook.get("DefaultResult") or "ABANDON",
                            decrement=decrement)
        self.held[instance_id] = action
        self._record(instance_id, f"{action.lifecycle_state} ({action.hook}, heartbeat timeout "
                                  f"{action.heartbeat_timeout}s)")
        self._notify(action, hook)

    def _notify(self, action, hook):
        target = hook.get("NotificationTargetARN") or ""
        if not target.startswith("arn:aws:sqs:"):
            return
        message = {
            "Origin": "EC2" if action.transition == LAUNCHING else "AutoScalingGroup",
            "Destination": "AutoScalingGroup" if action.transition == LAUNCHING else "EC2",
            "Service": "AWS Auto Scaling",
            "Time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "AccountId": target.split(":")[4], "RequestId": str(uuid.uuid4()),
            "LifecycleTransition": action.transition, "AutoScalingGroupName": action.group,
            "EC2InstanceId": action.instance_id, "LifecycleActionToken": action.token,
            "LifecycleHookName": action.hook,
        }
        if hook.get("NotificationMetadata"):
            message["NotificationMetadata"] = hook["NotificationMetadata"]
        try:
            url = self.sqs.get_queue_url(QueueName=target.split(":")[5])["QueueUrl"]
            self.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(message))
        except Exception as exc:  # a hook whose queue does not exist: AWS would have refused the hook
            self.log(f"lifecycle hooks stand-in: no notification to {target}: {exc}")

    def _finish(self, action, result):
        """Apply a lifecycle action result (caller holds the sync lock)."""
        self.held.pop(action.instance_id, None)
        if action.transition == LAUNCHING and result == "CONTINUE":
            self._record(action.instance_id, "InService")
            return
        # ABANDON of a launch, or any result of a termination: the instance goes. A launch that is
        # abandoned is replaced (the desired capacity stays); moto launches the replacement.
        decrement = action.decrement if action.transition == TERMINATING else False
        self.autoscaling.terminate_instance_in_auto_scaling_group(
            InstanceId=action.instance_id, ShouldDecrementDesiredCapacity=decrement)
        self._record(action.instance_id, f"terminated ({result})")
        self._adopt()  # moto launched a replacement at once: it waits too

    def _find(self, params):
        token, iid = params.get("LifecycleActionToken"), params.get("InstanceId")
        for action in self.held.values():
            same_instance = (iid and action.instance_id == iid) or (token and action.token == token)
            same_hook = (action.group, action.hook) == (params.get("AutoScalingGroupName"),
                                                        params.get("LifecycleHookName"))
            if same_instance and same_hook:
                return action
        return None

    # --- the proxy ------------------------------------------------------------------------
    def intercept(self, request):
        if request.service != "autoscaling":
            return None
        if request.action in ("PutLifecycleHook", "CreateAutoScalingGroup"):
            with self._sync_lock:
                self._remember_hooks(request.params)
            return None
        handler = {
            "CompleteLifecycleAction": self._complete,
            "RecordLifecycleActionHeartbeat": self._heartbeat,
            "TerminateInstanceInAutoScalingGroup": self._terminate_one,
            "SetDesiredCapacity": self._set_desired,
        }.get(request.action)
        if handler is None:
            return None
        with self._sync_lock:
            return handler(request.params)

    def _missing(self, params):
        what = params.get("InstanceId") or params.get("LifecycleActionToken")
        return _error("ValidationError", f"No active Lifecycle Action found with instance ID {what}")

    def _complete(self, params):
        action = self._find(params)
        if action is None:
            return self._missing(params)
        result = params.get("LifecycleActionResult", "")
        if result not in ("CONTINUE", "ABANDON"):
            return _error("ValidationError", "LifecycleActionResult must be CONTINUE or ABANDON")
        self._record(action.instance_id, f"{action.hook}: CompleteLifecycleAction {result}")
        self._finish(action, result)
        return 200, "text/xml", _xml("CompleteLifecycleAction")

    def _heartbeat(self, params):
        action = self._find(params)
        if action is None:
            return self._missing(params)
        action.deadline = min(time.monotonic() + action.heartbeat_timeout, action.global_deadline)
        self._record(action.instance_id, f"{action.hook}: heartbeat")
        return 200, "text/xml", _xml("RecordLifecycleActionHeartbeat")

    def _terminate_one(self, params):
        iid = params.get("InstanceId")
        if iid in self.held:
            return None  # already waiting: let moto answer (AWS reports the instance's state)
        found = self.autoscaling.describe_auto_scaling_instances(InstanceIds=[iid])["AutoScalingInstances"]
        if not found:
            return None
        group = found[0]["AutoScalingGroupName"]
        hooks = self._hooks(group, TERMINATING)
        if not hooks:
            return None
        self._hold(iid, group, hooks[0], decrement=params.get("ShouldDecrementDesiredCapacity") == "true")
        activity = (f"<Activity><ActivityId>{uuid.uuid4()}</ActivityId><AutoScalingGroupName>{group}"
                    f"</AutoScalingGroupName><Description>Terminating EC2 instance: {iid}</Description>"
                    f"<Cause>instance {iid} was taken out of service in response to a user request.</Cause>"
                    f"<StatusCode>InProgress</StatusCode><Progress>0</Progress>"
                    f"<StartTime>{datetime.datetime.now(datetime.timezone.utc).isoformat()}</StartTime></Activity>")
        return 200, "text/xml", _xml("TerminateInstanceInAutoScalingGroup", activity)

    def _set_desired(self, params):
        group_name = params.get("AutoScalingGroupName")
        desired = int(params.get("DesiredCapacity", "0"))
        groups = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])
        if not groups["AutoScalingGroups"]:
            return None
        group = groups["AutoScalingGroups"][0]
        leaving = [a for a in self.held.values() if a.group == group_name and a.transition == TERMINATING]
        staying = [i for i in group["Instances"] if i["InstanceId"] not in self.held
                   and not i.get("ProtectedFromScaleIn")]
        surplus = len(group["Instances"]) - len(leaving) - desired
        hooks = self._hooks(group_name, TERMINATING)
        if surplus <= 0 or not hooks:
            return None  # scale-out, or no terminating hook: moto does it
        if not group["MinSize"] <= desired <= group["MaxSize"]:
            return None  # moto reports the validation error
        for instance in staying[:surplus]:
            self._hold(instance["InstanceId"], group_name, hooks[0], decrement=True)
        return 200, "text/xml", _xml("SetDesiredCapacity")

    def rewrite(self, request, status, body):
        if request.service != "autoscaling" or status != 200:
            return body
        if request.action in ("SetDesiredCapacity", "UpdateAutoScalingGroup", "CreateAutoScalingGroup",
                              "TerminateInstanceInAutoScalingGroup", "AttachInstances"):
            self.sync()  # launches moto just made are Pending:Wait before the caller can look
            return body
        if request.action == "DescribeLifecycleHooks":
            return self._rewrite_hooks(body)
        if request.action not in ("DescribeAutoScalingInstances", "DescribeAutoScalingGroups") or not (
                self.held or self.launched_version):
            return body
        with self._sync_lock:
            states = {iid: a.lifecycle_state for iid, a in self.held.items()}
        ET.register_namespace("", AUTOSCALING_NS)
        root = ET.fromstring(body)
        changed = False
        for element in root.iter():
            iid = element.find(f"{{{AUTOSCALING_NS}}}InstanceId")
            state = element.find(f"{{{AUTOSCALING_NS}}}LifecycleState")
            if iid is not None and state is not None and iid.text in states:
                state.text = states[iid.text]
                changed = True
            version = element.find(f"{{{AUTOSCALING_NS}}}LaunchTemplate/{{{AUTOSCALING_NS}}}Version")
            if iid is not None and version is not None and iid.text in self.launched_version \
                    and version.text != self.launched_version[iid.text]:
                version.text = self.launched_version[iid.text]
                changed = True
        return ET.tostring(root, encoding="utf-8", xml_declaration=True) if changed else body

    def _rewrite_hooks(self, body):
        ET.register_namespace("", AUTOSCALING_NS)
        root = ET.fromstring(body)
        for element in root.iter(f"{{{AUTOSCALING_NS}}}member"):
            group = element.findtext(f"{{{AUTOSCALING_NS}}}AutoScalingGroupName")
            name = element.findtext(f"{{{AUTOSCALING_NS}}}LifecycleHookName")
            heartbeat = element.find(f"{{{AUTOSCALING_NS}}}HeartbeatTimeout")
            global_timeout = element.find(f"{{{AUTOSCALING_NS}}}GlobalTimeout")
            if heartbeat is not None and global_timeout is not None:  # moto: always 172800
                global_timeout.text = str(min(100 * int(heartbeat.text), MAX_GLOBAL_TIMEOUT))
            for key, value in self.hook_details.get(f"{group}/{name}", {}).items():
                child = element.find(f"{{{AUTOSCALING_NS}}}{key}")
                if child is None:
                    child = ET.SubElement(element, f"{{{AUTOSCALING_NS}}}{key}")
                child.text = value
        return ET.tostring(root, encoding="utf-8", xml_declaration=True)
