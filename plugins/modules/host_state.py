#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to circleci_server.aws
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: host_state
short_description: Read many files, systemd units and Debian packages in one module run
description:
  - Returns, for each path in O(files), whether it exists, its type, mode, owner, group and, for a regular file,
    the SHA-1 checksum that M(ansible.builtin.copy) and M(ansible.builtin.template) compare.
  - Returns whether each systemd unit in O(units) is active and enabled, and the installed version of each Debian
    package in O(packages).
  - The roles of this collection read everything they manage with one run of this module, then run a write task
    only where the host differs (filters P(circleci_server.aws.file_differs#filter),
    P(circleci_server.aws.unit_needs_start#filter) and P(circleci_server.aws.packages_missing#filter)).
    On a converged host that is one module run per role instead of one or two per file, unit and package list.
  - Never changes the host.
version_added: "0.1.0"
author:
  - circleci_server.aws contributors (@circleci-server-aws)
options:
  files:
    description:
      - Paths to look at. A path that does not exist is reported with RV(files.exists=false).
    type: list
    elements: path
    default: []
  read:
    description:
      - Paths whose content is returned too (text, UTF-8), for files a role merges rather than replaces
        (for example C(/etc/docker/daemon.json)). Up to 1 MiB each. Never list a file that holds a secret.
      - These paths are looked at as in O(files); they need not be listed twice.
    type: list
    elements: path
    default: []
  units:
    description:
      - systemd unit names, asked with C(systemctl is-active) and C(systemctl is-enabled).
    type: list
    elements: str
    default: []
  packages:
    description:
      - Debian package names; the C(name=version) form of M(ansible.builtin.apt) is accepted (the version is ignored
        here and compared by the P(circleci_server.aws.packages_missing#filter) filter).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    description: Reads only, so it runs the same in check mode.
    support: full
  diff_mode:
    description: Changes nothing, so there is no difference to show.
    support: none
notes:
  - Reading files owned by root needs C(become).
"""

EXAMPLES = r"""
- name: Read what the role manages
  circleci_server.aws.host_state:
    files:
      - /etc/chrony/chrony.conf
      - /etc/systemd/system/chrony.service.d
    units: [chrony]
    packages: [chrony, curl]
  register: common__state

- name: Write the chrony configuration where it differs
  ansible.builtin.copy:
    dest: /etc/chrony/chrony.conf
    content: "{{ common__chrony_conf }}"
    owner: root
    group: root
    mode: "0644"
  when: >-
    common__state | circleci_server.aws.file_differs('/etc/chrony/chrony.conf', common__chrony_conf,
    '0644', 'root', 'root')
"""

RETURN = r"""
files:
  description: One entry per path of O(files) and O(read).
  returned: always
  type: dict
  sample:
    /etc/chrony/chrony.conf:
      exists: true
      type: file
      mode: "0644"
      owner: root
      group: root
      checksum: 2aae6c35c94fcfb415dbe95f408b9ce91ee846ed
    /etc/circleci:
      exists: false
  contains:
    exists:
      description: Whether the path exists (a symbolic link is not followed).
      type: bool
    type:
      description: C(file), C(directory), C(link) or C(other).
      type: str
    mode:
      description: Permission bits in octal, four digits.
      type: str
    owner:
      description: Owner name (the uid when it has no name).
      type: str
    group:
      description: Group name (the gid when it has no name).
      type: str
    checksum:
      description: SHA-1 of the content, for regular files.
      type: str
    content:
      description: The content, for paths listed in O(read).
      type: str
units:
  description: One entry per unit of O(units).
  returned: always
  type: dict
  sample: {"chrony": {"active": "active", "enabled": "enabled"}}
packages:
  description: The installed version of each package of O(packages), or null when it is not installed.
  returned: always
  type: dict
  sample: {"chrony": "4.3-2+deb12u1", "curl": null}
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.circleci_server.aws.plugins.module_utils.host_state import (  # noqa: E402
    HostStateError,
    HostStateReader,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(type="list", elements="path", default=[]),
            read=dict(type="list", elements="path", default=[]),
            units=dict(type="list", elements="str", default=[]),
            packages=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    reader = HostStateReader(
        run_command=module.run_command,
        systemctl=module.get_bin_path("systemctl") if params["units"] else None,
        dpkg_query=module.get_bin_path("dpkg-query") if params["packages"] else None,
    )
    if params["packages"] and not reader.dpkg_query:
        module.fail_json(msg="packages were asked for but dpkg-query is not on this host: "
                             "the collection's roles target Debian and Ubuntu")
    try:
        state = reader.collect(files=params["files"], read=params["read"], units=params["units"],
                               packages=params["packages"])
    except HostStateError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **state)


if __name__ == "__main__":
    main()
