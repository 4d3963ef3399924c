# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over the result of the circleci_server.aws.host_state module (documentation in the .yml files here)."""
from ansible.errors import AnsibleFilterError

from ansible_collections.circleci_server.aws.plugins.module_utils import host_state


def _filter(function):
    def wrapped(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except host_state.HostStateError as exc:
            raise AnsibleFilterError("circleci_server.aws.%s: %s" % (function.__name__, exc)) from None
    wrapped.__name__ = function.__name__
    wrapped.__doc__ = function.__doc__
    return wrapped


class FilterModule(object):
    def filters(self):
        return {function.__name__: _filter(function)
                for function in (host_state.file_differs, host_state.unit_needs_start, host_state.packages_missing)}
