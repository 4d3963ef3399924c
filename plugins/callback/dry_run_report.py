# -*- coding: utf-8 -*-
# Copyright: contributors to circleci_server.aws
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
name: dry_run_report
type: aggregate
short_description: One report of what a C(--check --diff) run of the install would change
version_added: "0.1.0"
author:
  - circleci_server.aws contributors (@circleci-server-aws)
description:
  - Active only in check mode. At the end of the run it prints one report a reviewer can read
    (docs/day2.md, "Dry run")
  - the Terraform plan per resource (create, update in place, destroy), replacements called out loudly;
  - per host, the tasks that would change, with their diffs (C(--diff));
  - the app settings that would change (as the M(circleci_server.aws.replicated_app_config) diff shows them,
    secrets masked) and whether the app would be restarted;
  - notes the playbooks leave for it (for example that the hosts do not exist yet on a fresh account).
  - Results of C(no_log) tasks are named, never shown.
  - Printed on standard output, or on standard error under a JSON stdout callback (for example
    C(ansible.posix.json)) so that the callback's document stays parseable.
  - Loaded without configuration for C(ansible-playbook site.yml) and C(playbooks/*.yml) from a checkout or an
    AWX project (the C(callback_plugins/) directories next to them); for the installed collection's FQCN
    playbooks enable it with C(ANSIBLE_CALLBACKS_ENABLED=circleci_server.aws.dry_run_report).
requirements:
  - enable in configuration (only for the FQCN playbooks of the installed collection)
"""

import re  # noqa: E402

from ansible import constants as C  # noqa: E402
from ansible import context  # noqa: E402
from ansible.plugins.callback import CallbackBase  # noqa: E402

TERRAFORM_ACTIONS = ("community.general.terraform", "terraform")
# `terraform plan` (-no-color) names each resource change on a comment line:
#   # aws_instance.services will be updated in-place
#   # aws_instance.services must be replaced
#   # aws_launch_template.nomad will be created | will be destroyed
# (Terraform's human-readable plan output; internal/command/views/json and format/diff.go).
PLAN_LINE = re.compile(r"^\s*# (?P<address>\S+) (?P<what>will be created|will be destroyed|"
                       r"will be updated in-place|must be replaced|is tainted, so must be replaced|"
                       r"will be replaced, as requested)")
PLAN_ACTIONS = {"will be created": "create", "will be destroyed": "destroy",
                "will be updated in-place": "update", "must be replaced": "replace",
                "is tainted, so must be replaced": "replace", "will be replaced, as requested": "replace"}
PLAN_SUMMARY = re.compile(r"Plan: (\d+) to add, (\d+) to change, (\d+) to destroy")
NOTE_FACT = "circleci_dry_run_note"
APP_CONFIG_ACTIONS = ("circleci_server.aws.replicated_app_config", "replicated_app_config")
APP_ACTIONS = ("circleci_server.aws.replicated_app", "replicated_app")
RULE = "=" * 78


def parse_plan(stdout):
    """[{address, action}] from `terraform plan` output, in plan order."""
    changes = []
    for line in (stdout or "").splitlines():
        match = PLAN_LINE.match(line)
        if match and match.group("address") not in [c["address"] for c in changes]:
            changes.append({"address": match.group("address"), "action": PLAN_ACTIONS[match.group("what")]})
    return changes


def plan_lines(result):
    """The report's Terraform section from a community.general.terraform result."""
    stdout = result.get("stdout", "")
    changes = parse_plan(stdout)
    summary = PLAN_SUMMARY.search(stdout or "")
    counts = {k: len([c for c in changes if c["action"] == k]) for k in ("create", "update", "replace", "destroy")}
    lines = ["Terraform plan: %d to create, %d to update in place, %d to REPLACE, %d to destroy%s"
             % (counts["create"], counts["update"], counts["replace"], counts["destroy"],
                " (Terraform: %s to add, %s to change, %s to destroy)" % summary.groups() if summary else "")]
    if not changes:
        lines.append("  no change to any AWS resource")
    symbols = {"create": "+ create ", "update": "~ update ", "destroy": "- DESTROY", "replace": "!! REPLACE"}
    for change in changes:
        line = "  %s %s" % (symbols[change["action"]], change["address"])
        if change["action"] == "replace":
            line += ("   <== REPLACEMENT: Terraform destroys this resource and creates a new one "
                     "(a replaced instance loses what is on its disks)")
        elif change["action"] == "destroy":
            line += "   <== DESTROYED"
        lines.append(line)
    return lines


def settings_lines(diff):
    """`key: before -> after` for each app setting in a replicated_app_config diff (already masked)."""
    diff = diff if isinstance(diff, dict) else {}
    before, after = diff.get("before") or {}, diff.get("after") or {}
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    return ["  %s: %r -> %r" % (key, before.get(key), after.get(key)) for key in sorted(set(before) | set(after))]


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "circleci_server.aws.dry_run_report"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self.plans = []
        self.changes = {}  # host -> [(task name, diff text or note)]
        self.hosts_seen = []
        self.settings = []
        self.app = []  # (host, before state, after state)
        self.notes = []
        self.failures = []
        self._check_mode = None

    @property
    def _diff_mode(self):
        return bool((context.CLIARGS or {}).get("diff"))

    @property
    def active(self):
        if self._check_mode is None:
            self._check_mode = bool((context.CLIARGS or {}).get("check"))
        return self._check_mode

    def _host(self, result):
        return result._host.get_name()

    def _seen(self, result):
        host = self._host(result)
        if host not in self.hosts_seen:
            self.hosts_seen.append(host)
        return host

    def v2_runner_on_ok(self, result):
        if not self.active:
            return
        host = self._seen(result)
        res = result._result
        action = result._task.action
        note = (res.get("ansible_facts") or {}).get(NOTE_FACT)
        if note and note not in self.notes:
            self.notes.append(note)
        if action in TERRAFORM_ACTIONS:
            self.plans.append(plan_lines(res))
            return
        changed = res.get("changed") or any(r.get("changed") for r in res.get("results", []) if isinstance(r, dict))
        if not changed:
            return
        name = result._task.get_name()
        if action in APP_CONFIG_ACTIONS:
            self.settings.extend(settings_lines(res.get("diff")))
        if action in APP_ACTIONS:
            diff = res.get("diff") or {}
            self.app.append((host, (diff.get("before") or {}).get("state"), (diff.get("after") or {}).get("state")))
        detail = "(details hidden: no_log)" if res.get("censored") else self._diff_text(res)
        self.changes.setdefault(host, []).append((name, detail))

    def _diff_text(self, res):
        diffs = []
        for item in [res] + [r for r in res.get("results", []) if isinstance(r, dict) and r.get("changed")]:
            diff = item.get("diff")
            if diff:
                try:
                    diffs.append(self._get_diff(diff))
                except Exception:  # a module's odd diff shape must not break the report
                    diffs.append(str(diff))
        text = "".join(d for d in diffs if d).rstrip()
        return text or "(the module shows no diff%s)" % ("" if self._diff_mode else "; run with --diff to see diffs")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if not self.active or ignore_errors:
            return
        host = self._seen(result)
        message = result._result.get("msg") or result._result.get("stderr") or "failed"
        if result._result.get("censored"):
            message = "(details hidden: no_log)"
        self.failures.append("%s: %s: %s" % (host, result._task.get_name(), str(message).strip()[:600]))

    def v2_runner_on_unreachable(self, result):
        if not self.active:
            return
        self.failures.append("%s: unreachable: %s" % (self._seen(result), result._result.get("msg", "")))

    def v2_runner_on_skipped(self, result):
        if self.active:
            self._seen(result)

    def report(self):
        lines = [RULE, "DRY RUN REPORT (--check): nothing was changed; this is what a real run would do", RULE]
        if self.plans:
            lines += self.plans[-1]
        else:
            lines.append("Terraform plan: not run in this dry run (a run limited by --tags, or a host stage alone)")
        lines.append("")
        hosts = [h for h in self.hosts_seen if h != "localhost"]
        if hosts:
            lines.append("Hosts (%d): %s" % (len(hosts), ", ".join(
                "%s: %d task(s) would change" % (h, len(self.changes.get(h, []))) if self.changes.get(h)
                else "%s: nothing to change" % h for h in hosts)))
        else:
            lines.append("Hosts: none reached in this dry run")
        for host in hosts + (["localhost"] if self.changes.get("localhost") else []):
            for name, detail in self.changes.get(host, []):
                lines.append("  [%s] %s" % ("controller" if host == "localhost" else host, name))
                lines += ["      " + line for line in detail.splitlines()]
        lines.append("")
        if self.settings:
            lines.append("App settings that would change (secrets masked):")
            lines += self.settings
        else:
            lines.append("App settings: no change")
        restarts = [host for host, before, after in self.app if after == "restarted"]
        starts = [(host, before) for host, before, after in self.app if after == "started"]
        if restarts:
            lines.append("App restart: YES, the app would be restarted on %s (changed settings take effect on start)"
                         % ", ".join(restarts))
        elif starts:
            lines.append("App restart: no; the app would be started on %s (it is %s)"
                         % (", ".join(host for host, before in starts),
                            ", ".join(str(before) for host, before in starts)))
        else:
            lines.append("App restart: no")
        for note in self.notes:
            lines.append("NOTE: %s" % note)
        if self.failures:
            lines.append("")
            lines.append("The dry run itself failed, so the report is incomplete:")
            lines += ["  " + failure for failure in self.failures]
        lines.append(RULE)
        return "\n".join(lines)

    def v2_playbook_on_stats(self, stats):
        if self.active:
            # Under a machine-readable stdout callback (ansible.posix.json, jsonl) the report
            # goes to stderr, so stdout stays one parseable document.
            self._display.display(self.report(), stderr=self._stdout_is_machine_readable())

    @staticmethod
    def _stdout_is_machine_readable():
        return "json" in str(C.DEFAULT_STDOUT_CALLBACK or "").lower()
