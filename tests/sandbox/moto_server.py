"""moto_server with two gaps filled: lifecycle hooks keep their notification target, and launch
template versions made after the first keep their user data.

moto 5.2.5 records PutLifecycleHook's name, transition, heartbeat timeout and default result, but
answers DescribeLifecycleHooks with constants for the rest (a queue "my-queue", a role
"my-auto-scaling-role": a TODO in moto/autoscaling/models.py LifecycleHook) and drops the metadata.
Terraform reads those back, so every run would plan to change an
aws_autoscaling_lifecycle_hook. Here the hook keeps NotificationTargetARN, RoleARN and
NotificationMetadata as sent (AWS API reference: PutLifecycleHook, LifecycleHook).

moto 5.2.5's CreateLaunchTemplateVersion stores LaunchTemplateData.UserData as the plain string it
got (CreateLaunchTemplate wraps it as moto's Base64EncodedString), so the first launch from such a
version fails with HTTP 500 (an assertion in LaunchTemplateVersion.user_data); it also ignores
SourceVersion. Here a new version takes its source version's data with the given fields over it
(AWS API reference: CreateLaunchTemplateVersion) and its user data as CreateLaunchTemplate keeps it.
Nothing else differs from `moto_server`; run it the same way:

    python tests/sandbox/moto_server.py -H 127.0.0.1 -p 5000
"""
from moto.autoscaling.models import AutoScalingBackend
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.types import Base64EncodedString
from moto.ec2.responses.launch_templates import LaunchTemplates
from moto.ec2.utils import parse_user_data
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
_create_launch_template_version = LaunchTemplates.create_launch_template_version


def create_launch_template_version(self):
    name, template_id = self._get_param("LaunchTemplateName"), self._get_param("LaunchTemplateId")
    template = (self.ec2_backend.get_launch_template(template_id) if template_id
                else self.ec2_backend.get_launch_template_by_name(name))
    source = self._get_param("SourceVersion")
    create_version = template.create_version

    def create_version_kept(data, description):
        if source:
            data = {**template.get_version(source).data, **data}
        if data.get("UserData") is not None and not isinstance(data["UserData"], Base64EncodedString):
            data["UserData"] = parse_user_data(data["UserData"])
        return create_version(data, description)

    template.create_version = create_version_kept
    try:
        return _create_launch_template_version(self)
    finally:
        del template.create_version


LaunchTemplates.create_launch_template_version = create_launch_template_version
assert hasattr(AutoScalingBackend, "create_lifecycle_hook")  # the key format above is moto 5.x's

if __name__ == "__main__":
    main()
