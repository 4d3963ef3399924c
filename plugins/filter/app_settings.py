# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``circleci_server.aws.app_settings`` filter (documentation in app_settings.yml next to this file)."""
from ansible.errors import AnsibleFilterError

from ansible_collections.circleci_server.aws.plugins.plugin_utils.data import DataFileError, load_data

try:
    import yaml
except ImportError:  # pragma: no cover - ansible-core itself needs PyYAML
    yaml = None

APP_SETTINGS_DATA = "app_settings.yml"
TABLES = ("circleci_app_settings", "circleci_hand_off_files")
PARTS = ("all", "public", "secret")


def as_setting(value):
    """Replicated keeps every setting as a string; booleans are "1"/"0"."""
    if isinstance(value, bool):
        return "1" if value else "0"
    return "" if value is None else str(value)


def app_settings(inputs, table="circleci_app_settings", part="all", data=None):
    """{key: "value"} for every key of `table` whose value is fixed or whose input is in `inputs`."""
    if table not in TABLES:
        raise AnsibleFilterError("circleci_server.aws.app_settings: table must be one of %s, not %r"
                                 % (", ".join(TABLES), table))
    if part not in PARTS:
        raise AnsibleFilterError("circleci_server.aws.app_settings: part must be one of %s, not %r"
                                 % (", ".join(PARTS), part))
    if not isinstance(inputs, dict):
        raise AnsibleFilterError("circleci_server.aws.app_settings: the input must be a dict of install values")
    try:
        entries = (data if data is not None else load_data(APP_SETTINGS_DATA))[table]
    except (DataFileError, OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise AnsibleFilterError("circleci_server.aws.app_settings: cannot read %s from data/%s: %s"
                                 % (table, APP_SETTINGS_DATA, exc)) from None
    result = {}
    for key, entry in entries.items():
        secret = bool(entry.get("secret"))
        if (part == "public" and secret) or (part == "secret" and not secret):
            continue
        if "value" in entry:
            result[key] = as_setting(entry["value"])
        elif entry.get("input") in inputs:
            result[key] = as_setting(inputs[entry["input"]])
    return result


class FilterModule(object):
    def filters(self):
        return {"app_settings": app_settings}
