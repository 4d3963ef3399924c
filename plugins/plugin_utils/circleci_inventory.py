# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure helpers for the circleci_ec2 inventory plugin (no Ansible state, no AWS calls).

They turn DescribeInstances output into small host records, validate the
user's filters, decide which tagged instances really belong to their install
(tags alone prove nothing: anyone allowed ec2:CreateTags can set them) and
resolve simple variable references without Jinja, so the plugin stays fast for
thousands of hosts and the logic is unit-testable.
"""

import json
import os
import re

INSTALL_TAG = "circleci:install"
ROLE_TAG = "circleci:role"
ROLE_SERVICES = "services"
ROLE_NOMAD_CLIENT = "nomad_client"
# Set by EC2 Auto Scaling on the instances it launches. Tag keys starting with
# "aws:" are reserved: EC2 refuses them in CreateTags/RunInstances, so nobody
# can put a foreign instance into the install's group by tagging it.
ASG_TAG = "aws:autoscaling:groupName"
# What one install's Terraform names its resources (roles/infrastructure/files/terraform:
# compute.tf aws_autoscaling_group.nomad_clients, iam.tf aws_iam_instance_profile.circleci).
DEFAULT_ASG_NAME = "{install}-nomad-clients"
DEFAULT_INSTANCE_PROFILE = "{install}-circleci"
DEFAULT_INSTALL_DIR = "~/.circleci_server/{install}"
TRUST_KEYS = ("install_dir", "services_instance_id", "vpc_id", "subnet_ids", "nomad_asg_name", "instance_profile_name")
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

_FILTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9:._\-/@+= ]*")
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
        if not isinstance(name, str) or not _FILTER_NAME.fullmatch(name):
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
    profile_arn = (instance.get("IamInstanceProfile") or {}).get("Arn") or ""
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
        "vpc_id": instance.get("VpcId"),
        # arn:aws:iam::<account>:instance-profile[/path]/<name> -> <name>
        "iam_instance_profile": profile_arn.rsplit("/", 1)[-1] if profile_arn else None,
        "private_ip_address": instance.get("PrivateIpAddress") or None,
        "public_ip_address": instance.get("PublicIpAddress") or None,
        "private_dns_name": instance.get("PrivateDnsName") or None,
        "public_dns_name": instance.get("PublicDnsName") or None,
        "ec2_tags": tags,
        "circleci_install": tags.get(INSTALL_TAG),
        "circleci_role": tags.get(ROLE_TAG),
    }


def _id_list(value, key, install):
    if value is None:
        return []
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in values):
        raise InventoryConfigError("trust.%s.%s must be a string or a list of strings, got %r" % (install, key, value))
    return [v.strip() for v in values]


def validate_trust(trust, installs):
    """The `trust` option, checked: install -> {key: value} with only known keys and installs."""
    if trust is None:
        trust = {}
    if not isinstance(trust, dict):
        raise InventoryConfigError("'trust' must be a mapping of install prefix to its trust anchors, got %s"
                                   % type(trust).__name__)
    cleaned = {}
    for install, anchors in trust.items():
        if install not in installs:
            raise InventoryConfigError("trust names install %r, which is not in 'installs' (%s)"
                                       % (install, ", ".join(installs)))
        if anchors is None:
            anchors = {}
        if not isinstance(anchors, dict):
            raise InventoryConfigError("trust.%s must be a mapping (keys: %s)" % (install, ", ".join(TRUST_KEYS)))
        unknown = sorted(set(anchors) - set(TRUST_KEYS))
        if unknown:
            raise InventoryConfigError("trust.%s has unknown key(s) %s; known: %s"
                                       % (install, ", ".join(map(str, unknown)), ", ".join(TRUST_KEYS)))
        entry = {}
        for key, value in anchors.items():
            if value is None or value == "":
                continue
            if key == "subnet_ids":
                entry[key] = _id_list(value, key, install)
            elif not isinstance(value, str):
                raise InventoryConfigError("trust.%s.%s must be a string, got %r" % (install, key, value))
            else:
                entry[key] = value.strip()
        cleaned[install] = entry
    return cleaned


def read_install_record(path):
    """The trust anchors in an install record (the provision stage's outputs.json); {} when there is none.

    Raises InventoryConfigError when the file exists but is not the flat JSON
    object the provision stage writes (docs/dev/contract.md).
    """
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            outputs = json.load(handle)
    except (OSError, ValueError) as exc:
        raise InventoryConfigError("cannot read the install record %s: %s" % (path, exc)) from None
    if not isinstance(outputs, dict):
        raise InventoryConfigError("the install record %s is not a JSON object of Terraform outputs" % path)
    anchors = {}
    for key, output in (("services_instance_id", "services_instance_id"), ("nomad_asg_name", "nomad_asg_name"),
                        ("instance_profile_name", "instance_profile_name"), ("subnet_ids", "subnet_id")):
        value = outputs.get(output)
        if isinstance(value, str) and value:
            anchors[key] = [value] if key == "subnet_ids" else value
    return anchors


def install_anchors(install, configured, record_reader=read_install_record):
    """What an instance of `install` must match: defaults < install record < the `trust` option.

    Returns a dict with every TRUST_KEYS entry plus `sources` (key -> where the value came from).
    """
    configured = configured or {}
    install_dir = configured.get("install_dir") or DEFAULT_INSTALL_DIR.format(install=install)
    anchors = {
        "install_dir": install_dir,
        "services_instance_id": None,
        "vpc_id": None,
        "subnet_ids": [],
        "nomad_asg_name": DEFAULT_ASG_NAME.format(install=install),
        "instance_profile_name": DEFAULT_INSTANCE_PROFILE.format(install=install),
    }
    sources = {"nomad_asg_name": "Terraform's naming", "instance_profile_name": "Terraform's naming"}
    record_path = os.path.join(install_dir, "outputs.json")
    for key, value in record_reader(record_path).items():
        anchors[key] = value
        sources[key] = "install record " + record_path
    for key, value in configured.items():
        if key != "install_dir":
            anchors[key] = value
            sources[key] = "trust option"
    anchors["sources"] = sources
    return anchors


def _describe(record):
    return "%s (circleci:install=%s, circleci:role=%s)" % (
        record["instance_id"], record["circleci_install"], record["circleci_role"] or "<none>")


def _common_refusal(record, anchors):
    if anchors["vpc_id"] and record.get("vpc_id") != anchors["vpc_id"]:
        return "it is in VPC %s, not in the install's VPC %s (%s)" % (
            record.get("vpc_id") or "<none>", anchors["vpc_id"], anchors["sources"].get("vpc_id", ""))
    if anchors["subnet_ids"] and record.get("subnet_id") not in anchors["subnet_ids"]:
        return "it is in subnet %s, not in the install's subnet %s (%s)" % (
            record.get("subnet_id") or "<none>", ", ".join(anchors["subnet_ids"]),
            anchors["sources"].get("subnet_ids", ""))
    return None


def trusted_records(records, installs, anchors_by_install):
    """Split DescribeInstances records into (trusted, refused); refused is a list of (record, reason).

    An instance is trusted only when it belongs to its install, not because of its tags:
      - Services machine: the instance id Terraform created when known (install
        record or trust option); always the install's instance profile; when the
        id is not known, it must be the only candidate left.
      - Nomad client: launched by the install's Auto Scaling group (the reserved
        aws:autoscaling:groupName tag).
      - both: in the install's VPC and subnet when those are known (the VPC of
        the trusted Services machine otherwise).
      - any other circleci:role (or none): Terraform makes no such instance.
    """
    trusted, refused = [], []
    services_candidates = {install: [] for install in installs}
    clients = []
    for record in records:
        install = record["circleci_install"]
        if install not in services_candidates:
            continue  # a tag value that only matched case-insensitively elsewhere; not ours
        anchors = anchors_by_install[install]
        role = record["circleci_role"]
        if role == ROLE_SERVICES:
            expected_id = anchors["services_instance_id"]
            if expected_id and record["instance_id"] != expected_id:
                refused.append((record, "it is not the Services instance Terraform created for %s (%s, from the %s)"
                                % (install, expected_id, anchors["sources"]["services_instance_id"])))
                continue
            profile = anchors["instance_profile_name"]
            if profile and record.get("iam_instance_profile") != profile:
                refused.append((record, "its instance profile is %s, not the install's %s (%s)" % (
                    record.get("iam_instance_profile") or "<none>", profile,
                    anchors["sources"]["instance_profile_name"])))
                continue
            reason = _common_refusal(record, anchors)
            if reason:
                refused.append((record, reason))
                continue
            services_candidates[install].append(record)
        elif role == ROLE_NOMAD_CLIENT:
            clients.append(record)
        else:
            refused.append((record, "the install's Terraform makes only instances of role %s or %s"
                            % (ROLE_SERVICES, ROLE_NOMAD_CLIENT)))

    vpc_of_services = {}
    for install, candidates in services_candidates.items():
        if len(candidates) > 1:
            ids = ", ".join(r["instance_id"] for r in candidates)
            for record in candidates:
                refused.append((record, "%d instances claim to be the Services machine of %s (%s) and the "
                                "Terraform-known instance id is not available: set trust.%s.services_instance_id "
                                "(or keep the install record %s/outputs.json)"
                                % (len(candidates), install, ids, install, anchors_by_install[install]["install_dir"])))
        elif candidates:
            trusted.append(candidates[0])
            vpc_of_services[install] = candidates[0].get("vpc_id")

    for record in clients:
        install = record["circleci_install"]
        anchors = anchors_by_install[install]
        group = record["ec2_tags"].get(ASG_TAG)
        if group != anchors["nomad_asg_name"]:
            refused.append((record, "it was not launched by the install's Auto Scaling group %s (%s is %s)"
                            % (anchors["nomad_asg_name"], ASG_TAG, group or "not set")))
            continue
        reason = _common_refusal(record, anchors)
        services_vpc = vpc_of_services.get(install)
        if not reason and not anchors["vpc_id"] and services_vpc and record.get("vpc_id") != services_vpc:
            reason = "it is in VPC %s, not in the VPC of the install's Services machine (%s)" % (
                record.get("vpc_id") or "<none>", services_vpc)
        if reason:
            refused.append((record, reason))
            continue
        trusted.append(record)

    order = {id(r): n for n, r in enumerate(records)}
    trusted.sort(key=lambda r: order[id(r)])
    refused.sort(key=lambda item: order[id(item[0])])
    return trusted, refused


def refusal_message(record, reason):
    return "circleci_ec2: refused %s: %s; it is in no group" % (_describe(record), reason)


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
