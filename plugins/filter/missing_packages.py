# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``circleci_server.aws.missing_packages`` filter (documentation in missing_packages.yml next to this file)."""
import fnmatch

from ansible.errors import AnsibleFilterError

# The dpkg-query format the filter reads: status, name, version.
DPKG_QUERY_FORMAT = "${db:Status-Abbrev} ${Package} ${Version}\n"


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
        return {"missing_packages": missing_packages}
