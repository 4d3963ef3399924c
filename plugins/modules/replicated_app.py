#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to circleci_server.aws
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: replicated_app
short_description: Start or stop the CircleCI Server app in Replicated and wait for it
description:
  - Starts or stops the app with C(replicatedctl app start|stop), then polls C(replicatedctl app status) until
    C(State) is the one asked for and the app is no longer transitioning, or O(timeout) passes.
  - 'When starting fails with C(Failure reported from operator: no such image) (images still being pulled on a
    fresh install), it starts again, up to O(image_retries) times, and reports how many retries it took.'
version_added: "1.0.0"
author:
  - circleci_server.aws contributors (@circleci-server-aws)
extends_documentation_fragment:
  - circleci_server.aws.replicatedctl
  - circleci_server.aws.replicatedctl.attributes
options:
  state:
    description:
      - V(started), V(stopped) or V(restarted).
      - V(restarted) stops a started app, waits until it has stopped, then starts it again; an app that is not
        started is only started. Replicated applies changed settings (C(app-config import)) when the app starts,
        so restart a running app after its settings changed (always C(changed=true)).
    type: str
    choices: [started, stopped, restarted]
    default: started
  wait:
    description:
      - Wait until the app has reached O(state).
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for O(state) (for all attempts together).
    type: int
    default: 1200
  poll_interval:
    description:
      - Seconds between two C(app status) calls.
    type: float
    default: 5
  image_retries:
    description:
      - How many times to start again after C(no such image). V(0) fails at the first one.
    type: int
    default: 3
  retry_delay:
    description:
      - Seconds to wait before starting again after C(no such image).
    type: float
    default: 30
"""

EXAMPLES = r"""
- name: Start CircleCI and wait until it runs
  circleci_server.aws.replicated_app:
    state: started
    timeout: 1800
  register: circleci_app

- name: Stop it
  circleci_server.aws.replicated_app:
    state: stopped

- name: Restart a running app so that settings changed in this play take effect
  circleci_server.aws.replicated_app:
    state: "{{ 'restarted' if app_settings_result is changed else 'started' }}"
"""

RETURN = r"""
status:
  description: The app's entry of C(replicatedctl app status) at the end.
  returned: success
  type: dict
  sample: {"AppID": "9a1c...", "Sequence": 12, "State": "started", "DesiredState": "started", "Error": "",
           "IsTransitioning": false}
image_retries_used:
  description: How many times the app was started again after C(no such image).
  returned: always
  type: int
  sample: 1
elapsed:
  description: Seconds spent starting/stopping and waiting.
  returned: success
  type: float
  sample: 95.2
restarted:
  description: Whether a running app was stopped and started again (O(state=restarted)).
  returned: when the app was started or restarted
  type: bool
  sample: true
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.circleci_server.aws.plugins.module_utils.replicatedctl import (  # noqa: E402
    AppWaiter,
    ReplicatedctlError,
    client_from_module,
    replicatedctl_argument_spec,
)


def main():
    argument_spec = replicatedctl_argument_spec()
    argument_spec.update(
        state=dict(type="str", choices=["started", "stopped", "restarted"], default="started"),
        wait=dict(type="bool", default=True),
        timeout=dict(type="int", default=1200),
        poll_interval=dict(type="float", default=5),
        image_retries=dict(type="int", default=3),
        retry_delay=dict(type="float", default=30),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    client = client_from_module(module)
    target = "started" if params["state"] == "restarted" else params["state"]
    waiter = AppWaiter(client, target, params["timeout"], params["poll_interval"],
                       params["image_retries"], params["retry_delay"])
    try:
        before = client.app_status()
        if before is None and target == "stopped":
            module.exit_json(changed=False, status={}, image_retries_used=0, elapsed=0.0)
        if before is None and module.check_mode:
            # A license loaded earlier in this (check mode) play is not really there yet.
            module.warn("no app is installed yet (no license loaded): it would be %s once it is" % target)
            module.exit_json(changed=True, status={}, image_retries_used=0, elapsed=0.0,
                             diff=dict(before={"state": "not installed"}, after={"state": target}))
        if before is None:
            module.fail_json(msg="replicatedctl app status lists no app: load the license first "
                                 "(circleci_server.aws.replicated_license)", image_retries_used=0)
        restart = params["state"] == "restarted" and AppWaiter.reached(before, "started")
        if AppWaiter.reached(before, target) and not restart:
            module.exit_json(changed=False, status=before, image_retries_used=0, elapsed=0.0)
        diff = dict(before={"state": before.get("State")},
                    after={"state": "restarted" if restart else target})
        if module.check_mode:
            module.exit_json(changed=True, status=before, image_retries_used=0, elapsed=0.0, diff=diff)
        stop_elapsed = 0.0
        if restart:
            stopper = AppWaiter(client, "stopped", params["timeout"], params["poll_interval"], 0,
                                params["retry_delay"])
            stop_elapsed = stopper.run(wait=True)[1]
            waiter.timeout = max(1, params["timeout"] - stop_elapsed)
        status, elapsed = waiter.run(wait=params["wait"])
        elapsed += stop_elapsed
    except ReplicatedctlError as exc:
        module.fail_json(msg=exc.message, image_retries_used=waiter.retries_used)
    module.exit_json(changed=True, status=status, image_retries_used=waiter.retries_used,
                     elapsed=round(elapsed, 1), diff=diff, restarted=restart)


if __name__ == "__main__":
    main()
