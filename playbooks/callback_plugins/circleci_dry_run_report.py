# -*- coding: utf-8 -*-
# Copyright: contributors to circleci_server.aws
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Loads circleci_server.aws.dry_run_report for the playbooks in this directory without any configuration.

The root callback_plugins/ holds a symlink to this file (for the root site.yml).
ansible-playbook adds the callback_plugins/ directory next to the playbook it runs to its plugin path,
and loads a callback there that does not need enabling. So `ansible-playbook playbooks/site.yml --check
--diff` (and an AWX job template running playbooks/*.yml from this project) prints the dry-run report.
The report itself is the collection's plugin (plugins/callback/dry_run_report.py); it does nothing outside
check mode. When the FQCN is enabled in the configuration as well, this copy stays silent.
"""
from __future__ import absolute_import, division, print_function

from ansible import constants as C
from ansible.plugins.callback import CallbackBase

FQCN = "circleci_server.aws.dry_run_report"

try:
    from ansible_collections.circleci_server.aws.plugins.callback.dry_run_report import CallbackModule as _Report
except ImportError:  # the collection is not on the collections path: nothing to report with
    _Report = None


if _Report is not None and FQCN not in (C.CALLBACKS_ENABLED or []):
    class CallbackModule(_Report):
        CALLBACK_NAME = "circleci_dry_run_report"
        CALLBACK_NEEDS_ENABLED = False
else:
    class CallbackModule(CallbackBase):
        CALLBACK_VERSION = 2.0
        CALLBACK_TYPE = "aggregate"
        CALLBACK_NAME = "circleci_dry_run_report"
        CALLBACK_NEEDS_ENABLED = False
