# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``circleci_server.aws.sizing`` filter (documentation in sizing.yml next to this file)."""
import os

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display

from ansible_collections.circleci_server.aws.plugins.module_utils.sizing import SizingError, compute_sizing

try:
    import yaml
except ImportError:  # pragma: no cover - ansible-core itself needs PyYAML
    yaml = None

display = Display()

# plugins/filter/sizing.py -> the collection root
COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZING_DATA = os.path.join(COLLECTION_ROOT, "data", "sizing.yml")


def load_tables(path=SIZING_DATA):
    with open(path) as handle:
        return yaml.safe_load(handle)


def sizing(daily_active_users, services_instance_type=None, nomad_instance_type=None, strict=False,
           family=None, tables=None):
    try:
        data = tables if tables is not None else load_tables()
        result = compute_sizing(data, daily_active_users, services_instance_type=services_instance_type or None,
                                nomad_instance_type=nomad_instance_type or None, strict=bool(strict),
                                family=family or None)
    except SizingError as exc:
        raise AnsibleFilterError("circleci_server.aws.sizing: %s" % exc) from None
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise AnsibleFilterError("circleci_server.aws.sizing: cannot use the sizing tables (%s): %s"
                                 % (SIZING_DATA if tables is None else "tables argument", exc)) from None
    for warning in result["warnings"]:
        display.warning(warning)
    return result


class FilterModule(object):
    def filters(self):
        return {"sizing": sizing}
