"""moto_server with one gap filled: lifecycle hooks keep their notification target.

moto 5.2.5 records PutLifecycleHook's name, transition, heartbeat timeout and default result, but
answers DescribeLifecycleHooks with constants for the rest (a queue "my-queue", a role
"my-auto-scaling-role": a TODO in moto/autoscaling/models.py LifecycleHook) and drops the metadata.
Terraform reads those back, so every run would plan to change an
aws_autoscaling_lifecycle_hook. Here the hook keeps NotificationTargetARN, RoleARN and
NotificationMetadata as sent (AWS API reference: PutLifecycleHook, LifecycleHook). Nothing else
differs from `moto_server`; run it the same way:

    python tests/sandbox/moto_server.py -H 127.0.0.1 -p 5000
"""
from moto.autoscaling.models import AutoScalingBackend
from moto.autoscaling.responses import AutoScalingResponse
from moto.server import main

KEPT_FIELDS = {"NotificationTargetARN": "notification_target_arn", "RoleARN": "role_arn",
               "NotificationMetadata": "notification_metadata"}
_put_lifecycle_hook = AutoScalingResponse.put_lifecycle_hook


def put_lifecycle_hook(self):
    result = _put_lifecycle_hook(self)
    key = f"{self._get_param('AutoScalingGroupName')}_{self._get_param('LifecycleHookName')}"
    hook = self.autoscaling_backend.lifecycle_hooks[key]
    for param, attribute in KEPT_FIELDS.items():
        setattr(hook, attribute, self._get_param(param))
    return result


AutoScalingResponse.put_lifecycle_hook = put_lifecycle_hook
assert hasattr(AutoScalingBackend, "create_lifecycle_hook")  # the key format above is moto 5.x's

if __name__ == "__main__":
    main()
