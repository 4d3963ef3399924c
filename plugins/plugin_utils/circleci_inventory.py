# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure helpers for the circleci_ec2 inventory plugin (no Ansible state, no AWS calls).

They turn DescribeInstances output into small host records, validate the
user's filters and resolve simple variable references without Jinja, so the
plugin stays fast for thousands of hosts and the logic is unit-testable.
"""

import re

INSTALL_TAG = "circleci:install"
ROLE_TAG = "circleci:role"
ROLE_SERVICES = "services"
ROLE_NOMAD_CLIENT = "nomad_client"
DEFAULT_STATES = ("pending", "running")
ALL_STATES = ("pending", "running", "shutting-down", "terminated", "stopping", "stopped")
# Filters the plugin builds from its own options; setting them in `filters` would conflict.
RESERVED_FILTERS = ("tag:" + INSTALL_TAG, "instance-state-name")
HOSTNAME_SOURCES = (
    "instance_id",
    "private_ip_address",
    "private_dns_name",
    "public_ip_address",
    "public_dns_name",
    "name_tag",
)

_FILTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._\-/@+= ]*$")
_UNSAFE_GROUP_CHARS = re.compile(r"[^A-Za-z0-9_]")


class InventoryConfigError(ValueError):
    """The inventory configuration is unusable; the message says what to fix."""


def install_group_name(prefix, install):
    """circleci_install_<install> with every character Ansible dislikes as '_' (contract.md)."""
    return prefix + _UNSAFE_GROUP_CHARS.sub("_", install)


def validate_installs(installs):
    """The install prefixes to look for; fails when the configuration names none."""
    if installs is None:
        installs = []
    if isinstance(installs, str):
        installs = [installs]
    if not isinstance(installs, (list, tuple)):
        raise InventoryConfigError(
            "'installs' must be a list of install prefixes (values of the circleci:install tag), got %s"
            % type(installs).__name__
        )
    cleaned = []
    for item in installs:
        if not isinstance(item, str) or not item.strip():
            raise InventoryConfigError(
                "'installs' must hold non-empty strings (install prefixes), got %r" % (item,)
            )
        if item.strip() not in cleaned:
            cleaned.append(item.strip())
    if not cleaned:
        raise InventoryConfigError(
            "the configuration names no install: set 'installs' to the install prefixes to look for "
            "(the circleci:install tag values, i.e. circleci_prefix)"
        )
    return cleaned


def validate_states(states):
    if not states:
        raise InventoryConfigError("'instance_states' is empty: list at least one EC2 state, e.g. [running]")
    unknown = [s for s in states if s not in ALL_STATES]
    if unknown:
        raise InventoryConfigError(
            "'instance_states' has unknown EC2 state(s) %s; valid: %s"
            % (", ".join(map(str, unknown)), ", ".join(ALL_STATES))
        )
    return list(states)


def build_filters(installs, states, extra_filters):
    """The EC2 Filters list: installs and states from options plus the user's extra server-side filters."""
    if extra_filters is None:
        extra_filters = {}
    if not isinstance(extra_filters, dict):
        raise InventoryConfigError(
            "malformed filter: 'filters' must be a mapping of EC2 filter name to value(s), got %s"
            % type(extra_filters).__name__
        )
    filters = [
        {"Name": "tag:" + INSTALL_TAG, "Values": list(installs)},
        {"Name": "instance-state-name", "Values": list(states)},
    ]
    for name, value in extra_filters.items():
        if not isinstance(name, str) or not _FILTER_NAME.match(name):
            raise InventoryConfigError(
                "malformed filter: name %r is not an EC2 filter name (e.g. 'vpc-id', 'tag:Name')" % (name,)
            )
        if name in RESERVED_FILTERS:
            raise InventoryConfigError(
                "malformed filter: %r is set by the plugin; use the 'installs' / 'instance_states' options instead"
                % name
            )
        values = value if isinstance(value, (list, tuple)) else [value]
        if not values:
            raise InventoryConfigError("malformed filter: %r has an empty list of values" % name)
        for item in values:
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                raise InventoryConfigError(
                    "malformed filter: %r must be a string or a list of strings, got %s" % (name, type(item).__name__)
                )
        filters.append({"Name": name, "Values": [str(v) for v in values]})
    return filters


def host_record(instance, region):
    """The hostvars the plugin publishes for one DescribeInstances entry (flat, JSON-safe, cacheable)."""
    tags = {t["Key"]: t.get("Value", "") for t in instance.get("Tags") or ()}
    placement = instance.get("Placement") or {}
    launch_time = instance.get("LaunchTime")
    if launch_time is not None and not isinstance(launch_time, str):
        launch_time = launch_time.isoformat()
    return {
        "instance_id": instance["InstanceId"],
        "instance_type": instance.get("InstanceType"),
        "instance_state": (instance.get("State") or {}).get("Name"),
        "launch_time": launch_time,
        "region": region,
        "availability_zone": placement.get("AvailabilityZone"),
        "subnet_id": instance.get("SubnetId"),
        "private_ip_address": instance.get("PrivateIpAddress") or None,
        "public_ip_address": instance.get("PublicIpAddress") or None,
        "private_dns_name": instance.get("PrivateDnsName") or None,
        "public_dns_name": instance.get("PublicDnsName") or None,
        "ec2_tags": tags,
        "circleci_install": tags.get(INSTALL_TAG),
        "circleci_role": tags.get(ROLE_TAG),
    }


def preferred_hostname(record, source):
    value = record["ec2_tags"].get("Name") if source == "name_tag" else record.get(source)
    return value or record["instance_id"]


# A bare variable reference: name, then .attr / ['key'] / ["key"] / [index] steps.
_SIMPLE_ROOT = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)")
_SIMPLE_STEP = re.compile(r"""\s*(?:\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*(?:'([^'\\]*)'|"([^"\\]*)"|(-?\d+))\s*\])""")
_JINJA_LITERALS = frozenset(("true", "false", "none", "True", "False", "None"))
_MISSING = object()


def parse_simple_reference(expression):
    """Split 'ec2_tags["circleci:role"]' into ('ec2_tags', ['circleci:role']); None when it is anything more."""
    if not isinstance(expression, str):
        return None
    match = _SIMPLE_ROOT.match(expression)
    if not match or match.group(1) in _JINJA_LITERALS:
        return None
    steps = []
    pos = match.end()
    while True:
        step = _SIMPLE_STEP.match(expression, pos)
        if not step:
            break
        attr, single, double, index = step.groups()
        if attr is not None:
            steps.append(("attr", attr))
        elif index is not None:
            steps.append(("item", int(index)))
        else:
            steps.append(("item", single if single is not None else double))
        pos = step.end()
    if expression[pos:].strip():
        return None
    return match.group(1), steps


def resolve_simple_reference(parsed, variables):
    """Resolve a parsed reference like Jinja would; _MISSING where Jinja's answer could differ."""
    root, steps = parsed
    value = variables.get(root, _MISSING)
    if value is _MISSING:
        return _MISSING
    for kind, key in steps:
        if isinstance(value, dict):
            # Jinja prefers attributes for '.name' (dict methods such as .items); leave those to Jinja.
            if kind == "attr" and hasattr(dict, key):
                return _MISSING
            if not isinstance(key, str) or key not in value:
                return _MISSING
            value = value[key]
        elif isinstance(value, list) and isinstance(key, int) and kind == "item":
            if not -len(value) <= key < len(value):
                return _MISSING
            value = value[key]
        else:
            return _MISSING
    return value


MISSING = _MISSING
