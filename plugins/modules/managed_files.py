#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to circleci_server.aws
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: managed_files
short_description: Write many files and directories in one module run, only where they differ, and start their units
description:
  - Brings each entry of O(files) to the wanted state in order, comparing what M(ansible.builtin.copy) and
    M(ansible.builtin.file) compare (existence, type, content, mode, owner, group) and changing only what differs.
    A converged host costs one module run for the whole list instead of one or two per file.
  - A file's content comes from O(files[].content), or from O(files[].src) (a file of the role's C(files/)) or
    O(files[].template) (a template of the role's C(templates/)), which the action plugin reads or renders on the
    controller, as M(ansible.builtin.copy) and M(ansible.builtin.template) do.
  - The task reports changed when any entry changed; RV(changed_paths) lists them. Give entries that should restart
    different services their own task, so each task's C(notify) fires only for its files.
  - Content is sent to the host as a module argument. For files that hold secrets, set C(no_log) on the task.
  - O(services) then brings the systemd units these files belong to to their wanted state in the same run, as
    M(ansible.builtin.systemd_service) with O(ansible.builtin.systemd_service#module:enabled) and
    O(ansible.builtin.systemd_service#module:state) would, without a module run of its own. A converged host
    costs one C(systemctl show) for all of them. Restarting a unit because its files changed stays the job of
    the task's C(notify) and a handler.
version_added: "0.1.0"
author:
  - circleci_server.aws contributors (@circleci-server-aws)
options:
  files:
    description:
      - The files and directories, handled in this order (list a directory before the files in it).
    type: list
    elements: dict
    required: true
    suboptions:
      dest:
        description: Absolute path on the host.
        type: path
        required: true
      state:
        description:
          - V(file) writes the content; V(directory) creates the directory (and its parents); V(absent) removes a file,
            a link or an empty directory.
        type: str
        choices: [file, directory, absent]
        default: file
      content:
        description:
          - The file's content (text). Exactly one of O(files[].content), O(files[].src), O(files[].template) and
            O(files[].json_merge) for a file; all are ignored for the other states, so one entry can switch between
            a file and V(absent).
        type: str
      src:
        description:
          - A file on the controller, looked up like M(ansible.builtin.copy)'s O(ansible.builtin.copy#module:src)
            (the role's C(files/) first).
        type: path
      template:
        description:
          - A Jinja template on the controller, looked up and rendered like M(ansible.builtin.template)'s
            O(ansible.builtin.template#module:src).
        type: path
      json_merge:
        description:
          - For a file that holds a JSON object. The file becomes the object the host's file has (an empty or
            missing file counts as an empty object) with these keys merged in, nested objects key by key, as
            C(combine(recursive=True)) merges. Keys set outside this task stay. Written as
            C(to_nice_json(indent=2)) writes it, with a final newline. Read and compared on the host in the same
            run, so merging costs no extra round trip.
          - Counts as the file's source, instead of O(files[].content), O(files[].src) or O(files[].template).
        type: dict
      mode:
        description: The permissions, as an octal string such as V('0644'). Left as it is when omitted.
        type: raw
      owner:
        description: Owner name. Left as it is when omitted.
        type: str
      group:
        description: Group name. Left as it is when omitted.
        type: str
      backup:
        description: Keep a timestamped copy of a file before replacing its content.
        type: bool
        default: false
      protected:
        description:
          - For content that must not be replaced without a decision, such as a secret that other data was
            encrypted with. When the host's file exists with other content, the task fails with this message
            (after the path) before any entry of O(files) is written; nothing of the content is shown.
          - Unset or empty, the content is replaced as usual. A missing file is written either way.
            Applies to O(files[].content), O(files[].src) and O(files[].template), not to O(files[].json_merge).
        type: str
  services:
    description:
      - systemd units handled after O(files), in this order.
      - A C(systemctl daemon-reload) comes first when a file of O(files) under a systemd unit directory changed,
        when systemd reports that a unit's files changed since it loaded them (C(NeedDaemonReload), as after an
        earlier run that wrote a unit file and failed), or when a unit is not loaded yet.
      - A masked unit, or one systemd does not know after the reload, fails the task naming it. In check mode a
        unit that is not installed yet is reported as a change.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The unit, such as V(nomad) or V(docker.service).
        type: str
        required: true
      enabled:
        description:
          - Whether the unit starts at boot. Enabled counts as C(systemctl is-enabled) counts it (V(static) and
            V(indirect) units too).
        type: bool
        default: true
      state:
        description: V(started) starts a unit that is not running, V(stopped) stops one that is.
        type: str
        choices: [started, stopped]
        default: started
attributes:
  check_mode:
    description: Reports what would change and changes nothing.
    support: full
  diff_mode:
    description:
      - Shows each changed file's old and new content, and changed attributes (mode, owner, group, state), and each
        changed unit's enabled and active states.
    support: full
notes:
  - Writes are atomic (a temporary file in the same directory, then a rename), as M(ansible.builtin.copy) does.
  - SELinux contexts and file attributes are not managed.
"""

EXAMPLES = r"""
- name: Write the chrony configuration and its unit drop-in
  circleci_server.aws.managed_files:
    files:
      - dest: /etc/chrony/chrony.conf
        template: chrony.conf.j2
        owner: root
        group: root
        mode: "0644"
      - dest: /etc/systemd/system/chrony.service.d
        state: directory
        mode: "0755"
      - dest: /etc/systemd/system/chrony.service.d/circleci-no-clock-control.conf
        state: absent
  notify: Restart chrony

- name: Write the agent's configuration and unit, then enable and start it
  circleci_server.aws.managed_files:
    files:
      - dest: /etc/nomad.d/client.hcl
        template: client.hcl.j2
        mode: "0644"
      - dest: /etc/systemd/system/nomad.service
        template: nomad.service.j2
        mode: "0644"
    services:
      - name: nomad
  notify: Restart nomad

- name: Write the secret hand-off file, refusing to replace another passphrase unless confirmed
  circleci_server.aws.managed_files:
    files:
      - dest: /etc/circle-config/secret_passphrase
        content: "{{ services_secret_passphrase }}\n"
        mode: "0600"
        protected: >-
          {{ '' if services_secret_passphrase_change_confirm | bool else
             'holds another secret passphrase; set services_secret_passphrase_change_confirm to change it' }}
  no_log: true
"""

RETURN = r"""
changed_paths:
  description: The entries that changed (content, attributes, created or removed), in the order given.
  returned: always
  type: list
  elements: str
  sample: ["/etc/chrony/chrony.conf"]
results:
  description: One entry per item of O(files).
  returned: always
  type: list
  elements: dict
  contains:
    dest:
      description: The path.
      type: str
    state:
      description: The wanted state.
      type: str
    changed:
      description: Whether this entry changed.
      type: bool
    backup_file:
      description: The backup made before the content was replaced (O(files[].backup)).
      type: str
      returned: when a backup was made
changed_services:
  description: The units of O(services) that were enabled, disabled, started or stopped.
  returned: always
  type: list
  elements: str
  sample: ["nomad"]
daemon_reloaded:
  description: Whether a C(systemctl daemon-reload) was made.
  returned: always
  type: bool
services:
  description: One entry per item of O(services), with the unit's states after the task.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The unit.
      type: str
    changed:
      description: Whether the unit was enabled, disabled, started or stopped.
      type: bool
    enabled:
      description: The unit file state (C(UnitFileState)), such as V(enabled) or V(disabled).
      type: str
    state:
      description: The unit's C(ActiveState), such as V(active) or V(inactive).
      type: str
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.circleci_server.aws.plugins.module_utils.managed_files import (  # noqa: E402
    ManagedFiles,
    ManagedFilesError,
    ManagedServices,
    touches_units,
)

FILE_OPTIONS = dict(
    dest=dict(type="path", required=True),
    state=dict(type="str", choices=["file", "directory", "absent"], default="file"),
    content=dict(type="str"),
    # src and template are read by the action plugin; the module only ever receives content.
    src=dict(type="path"),
    template=dict(type="path"),
    json_merge=dict(type="dict"),
    mode=dict(type="raw"),
    owner=dict(type="str"),
    group=dict(type="str"),
    backup=dict(type="bool", default=False),
    protected=dict(type="str"),
)
SERVICE_OPTIONS = dict(
    name=dict(type="str", required=True),
    enabled=dict(type="bool", default=True),
    state=dict(type="str", choices=["started", "stopped"], default="started"),
)
ARGUMENT_SPEC = dict(
    files=dict(type="list", elements="dict", required=True, options=FILE_OPTIONS),
    services=dict(type="list", elements="dict", default=[], options=SERVICE_OPTIONS),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    for entry in module.params["files"]:
        if entry["src"] or entry["template"]:
            module.fail_json(msg="%s: src and template are read on the controller by the managed_files action; "
                                 "run this module through the action (the task name circleci_server.aws.managed_files)"
                                 % entry["dest"])
    try:
        result = ManagedFiles(module).apply(module.params["files"])
    except (ManagedFilesError, OSError) as exc:
        module.fail_json(msg=str(exc))
    result.update(changed_services=[], daemon_reloaded=False, services=[])
    if module.params["services"]:
        try:
            services = ManagedServices(module).apply(module.params["services"],
                                                     reload_needed=touches_units(result["changed_paths"]))
        except ManagedFilesError as exc:
            # The files are written: say so, as the next run will not report them again.
            module.fail_json(msg=str(exc), changed=result["changed"], changed_paths=result["changed_paths"])
        result["diff"].extend(services.pop("diff"))
        result.update(services, changed=result["changed"] or services["changed"])
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
