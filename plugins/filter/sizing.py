# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``circleci_server.aws.sizing`` filter (documentation in sizing.yml next to this file)."""
from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display

from ansible_collections.circleci_server.aws.plugins.module_utils.sizing import SizingError, compute_sizing
from ansible_collections.circleci_server.aws.plugins.plugin_utils.data import DataFileError, load_data

try:
    import yaml
except ImportError:  # pragma: no cover - ansible-core itself needs PyYAML
    yaml = None

display = Display()

SIZING_DATA = "sizing.yml"


def load_tables():
    return load_data(SIZING_DATA)


def sizing(daily_active_users, services_instance_type=None, nomad_instance_type=None, strict=False,
           family=None, tables=None):
    try:
        data = tables if tables is not None else load_tables()
        result = compute_sizing(data, daily_active_users, services_instance_type=services_instance_type or None,
                                nomad_instance_type=nomad_instance_type or None, strict=bool(strict),
                                family=family or None)
    except SizingError as exc:
        raise AnsibleFilterError("circleci_server.aws.sizing: %s" % exc) from None
    except (DataFileError, OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise AnsibleFilterError("circleci_server.aws.sizing: cannot use the sizing tables (%s): %s"
                                 % ("data/" + SIZING_DATA if tables is None else "tables argument", exc)) from None
    for warning in result["warnings"]:
        display.warning(warning)
    return result


class FilterModule(object):
    def filters(self):
        return {"sizing": sizing}
