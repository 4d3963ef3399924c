#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to circleci_server.aws
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: replicated_app_release
short_description: Move the CircleCI Server app to the newest Replicated release of a CircleCI Server version
description:
  - Lists the app's releases with C(replicatedctl app-release ls --all -o json), picks the newest one whose
    version label belongs to O(version) (V(2.19) matches C(2.19.0), C(2.19.3), ...), and applies the pending
    releases up to it with C(replicatedctl app-release apply --sequence N --attach)
    (help.replicated.com/api/replicatedctl/replicatedctl_app-release_apply).
  - Never moves the app back to an older release; fails naming the releases the channel offers when none
    belongs to O(version).
  - Replicated restarts the app on the new release; wait for it with M(circleci_server.aws.replicated_app).
version_added: "0.1.0"
author:
  - circleci_server.aws contributors (@circleci-server-aws)
extends_documentation_fragment:
  - circleci_server.aws.replicatedctl
  - circleci_server.aws.replicatedctl.attributes
options:
  version:
    description:
      - The CircleCI Server release to run, V(major.minor) as in C(data/versions.yml) (for example V(2.19)).
      - Omitted, the module only reports the release the app runs (RV(previous), RV(release)) and changes nothing.
    type: str
notes:
  - Replicated's reference documents the commands and flags, not the JSON fields of a release; a release is read
    as a dict with C(Sequence), C(Version) and C(Active).
"""

EXAMPLES = r"""
- name: Run the newest 2.19 release of the app
  circleci_server.aws.replicated_app_release:
    version: "2.19"
  register: circleci_release

- name: Read which release the app runs
  circleci_server.aws.replicated_app_release:
  register: circleci_running
"""

RETURN = r"""
release:
  description: The release the app runs (or would run, in check mode) at the end.
  returned: success
  type: dict
  sample: {"Sequence": 4, "Version": "2.19.0"}
previous:
  description: The release the app ran before, or an empty dict when none was active.
  returned: success
  type: dict
  sample: {"Sequence": 1, "Version": "2.16.0"}
series:
  description: The CircleCI Server release (V(major.minor)) of RV(release), empty when none is active.
  returned: success
  type: str
  sample: "2.19"
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.circleci_server.aws.plugins.module_utils.replicatedctl import (  # noqa: E402
    ReleasePlan,
    ReplicatedctlError,
    client_from_module,
    release_series,
    replicatedctl_argument_spec,
)


def brief(release):
    return dict((key, release.get(key)) for key in ("Sequence", "Version")) if release else {}


def main():
    argument_spec = replicatedctl_argument_spec()
    argument_spec.update(version=dict(type="str"))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    client = client_from_module(module)
    try:
        releases = client.app_release_list()
        if not module.params["version"]:
            active = ReleasePlan(releases, "").active
            module.exit_json(changed=False, release=brief(active), previous=brief(active),
                             series=release_series((active or {}).get("Version")) if active else "")
        plan = ReleasePlan(releases, module.params["version"])
        changed, target, active = plan.decide()
        result = dict(changed=changed, release=brief(target), previous=brief(active), series=plan.series,
                      diff=dict(before={"release": (active or {}).get("Version", "none")},
                                after={"release": target.get("Version")}))
        if changed and not module.check_mode:
            client.app_release_apply(target["Sequence"])
    except ReplicatedctlError as exc:
        module.fail_json(msg=exc.message)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
