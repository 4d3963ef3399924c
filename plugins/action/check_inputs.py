# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The check_inputs action: the input contract (data/inputs.yml), on the controller (docs: modules/check_inputs.py)."""
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.circleci_server.aws.plugins.module_utils.input_contract import (
    GROUPS, STAGE_GROUPS, InputContract)
from ansible_collections.circleci_server.aws.plugins.plugin_utils.data import load_data

# Inputs read besides the contract's own (rules across inputs).
EXTRA_INPUTS = ("circleci_license_path", "circleci_license_content", "circleci_tls_ca_path",
                "circleci_tls_cert_path", "circleci_tls_key_path", "circleci_github_enterprise_host")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("groups",))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        groups = self._task.args.get("groups", list(GROUPS))
        if not isinstance(groups, list) or not set(groups) <= set(STAGE_GROUPS):
            raise AnsibleActionFail("check_inputs: groups must be a list of %s" % ", ".join(STAGE_GROUPS))
        rules = load_data("inputs.yml")["inputs"]
        versions = load_data("versions.yml")["circleci_server_versions"]
        ports = load_data("ports.yml")
        contract = InputContract(rules, versions=versions, external_services=ports.get("external_services", {}),
                                 sizing=load_data("sizing.yml"))
        values = {}
        for name in list(rules) + list(EXTRA_INPUTS):
            if name in task_vars:
                values[name] = self._templar.template(task_vars[name])
        problems = contract.check(values, groups=groups)
        result.update(changed=False, checked=sorted(values), groups=groups)
        if problems:
            result.update(failed=True, msg="; ".join(problems), problems=problems)
        return result
