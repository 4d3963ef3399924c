# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``circleci_server.aws.dpkg_query_argv`` and ``missing_packages`` filters: ask dpkg, then run apt only for
what is missing (documentation in dpkg_query_argv.yml and missing_packages.yml next to this file)."""
import fnmatch

from ansible.errors import AnsibleFilterError

# The dpkg-query format the filter reads: status, name, version.
DPKG_QUERY_FORMAT = "${db:Status-Abbrev} ${Package} ${Version}\n"


def dpkg_query_argv(wanted):
    """The dpkg-query command whose output missing_packages reads, for wanted (apt's names, pins dropped)."""
    if not isinstance(wanted, (list, tuple)):
        raise AnsibleFilterError("dpkg_query_argv: the wanted packages must be a list, got %r" % (wanted,))
    return ["dpkg-query", "-W", "-f", DPKG_QUERY_FORMAT] + [str(entry).partition("=")[0] for entry in wanted]


def installed_versions(dpkg_lines):
    """{package: version} of the packages dpkg reports as installed ('ii')."""
    installed = {}
    for line in dpkg_lines or []:
        fields = str(line).split()
        if len(fields) >= 2 and fields[0] == "ii":
            installed[fields[1]] = fields[2] if len(fields) > 2 else ""
    return installed


def missing_packages(dpkg_lines, wanted):
    """The entries of wanted (apt's 'name' or 'name=version' with apt's glob) that dpkg does not have installed."""
    if not isinstance(wanted, (list, tuple)):
        raise AnsibleFilterError("missing_packages: the wanted packages must be a list, got %r" % (wanted,))
    installed = installed_versions(dpkg_lines)
    missing = []
    for entry in wanted:
        name, _sep, version = str(entry).partition("=")
        if name not in installed or (version and not fnmatch.fnmatchcase(installed[name], version)):
            missing.append(entry)
    return missing


class FilterModule(object):
    def filters(self):
        return {"dpkg_query_argv": dpkg_query_argv, "missing_packages": missing_packages}
