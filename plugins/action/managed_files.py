# -*- coding: utf-8 -*-
# Copyright: contributors to circleci_server.aws
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of circleci_server.aws.managed_files (documentation in plugins/modules/managed_files.py).

Reads each entry's src or renders its template here, as copy and template do,
then runs the module once with every file's content and the units to start:
one round trip to the host for the whole list.
"""

from __future__ import absolute_import, division, print_function

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

_SOURCES = ("content", "src", "template", "json_merge")


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("files", "services"))

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        files = self._task.args.get("files")
        if not isinstance(files, list) or not all(isinstance(entry, dict) for entry in files):
            raise AnsibleActionFail("files must be a list of dicts with dest and content, src or template")
        module_args = {"files": [self._resolve(entry, task_vars) for entry in files]}
        if "services" in self._task.args:
            module_args["services"] = self._task.args["services"]  # checked by the module's argument spec
        result.update(self._execute_module(module_name="circleci_server.aws.managed_files",
                                           module_args=module_args, task_vars=task_vars))
        # The module's arguments carry every file's content: keep them out of the result (shown at -vvv).
        result.pop("invocation", None)
        return result

    def _resolve(self, entry, task_vars):
        dest = entry.get("dest")
        if not dest:
            raise AnsibleActionFail("every entry of files needs a dest")
        given = [key for key in _SOURCES if entry.get(key) is not None]
        state = entry.get("state") or "file"
        if state == "file" and len(given) != 1:
            raise AnsibleActionFail("%s: give exactly one of content, src, template and json_merge (got %s)"
                                    % (dest, ", ".join(given) or "none"))
        if state != "file":
            # Ignored, so that one entry can switch between a file and absent.
            return {key: value for key, value in entry.items() if key not in _SOURCES}
        resolved = {key: value for key, value in entry.items() if key not in ("src", "template")}
        if entry.get("src") is not None:
            resolved["content"] = self._read_src(dest, entry["src"])
        elif entry.get("template") is not None:
            resolved["content"] = self._render(dest, entry["template"], task_vars)
        elif entry.get("json_merge") is not None and not isinstance(entry["json_merge"], dict):
            raise AnsibleActionFail("%s: json_merge must be a dict" % dest)
        elif "content" in resolved and not isinstance(resolved["content"], str):
            raise AnsibleActionFail("%s: content must be text (use to_nice_json for data)" % dest)
        return resolved

    def _read_src(self, dest, src):
        try:
            path = self._find_needle("files", src)
            with open(path, "rb") as handle:
                data = handle.read()
        except (AnsibleError, OSError) as exc:
            raise AnsibleActionFail("%s: cannot read src %s: %s" % (dest, src, to_text(exc))) from None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise AnsibleActionFail("%s: src %s is not UTF-8 text; managed_files writes text files only"
                                    % (dest, src)) from None

    def _render(self, dest, template, task_vars):
        # The template lookup finds the file in the role's templates/ (ansible_search_path) and renders it
        # with the task's variables: the same search and rendering as the template module.
        lookups = self._shared_loader_obj.lookup_loader
        lookup = lookups.get("ansible.builtin.template", loader=self._loader, templar=self._templar)
        try:
            return to_text(lookup.run([template], variables=task_vars)[0])
        except AnsibleError as exc:
            raise AnsibleActionFail("%s: cannot render template %s: %s" % (dest, template, to_text(exc))) from None
