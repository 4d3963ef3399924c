# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sizing from daily active users, over the tables in data/sizing.yml.

Pure Python on purpose: the caller (the ``circleci_server.aws.sizing`` filter)
loads the YAML and passes the parsed tables in, so this file has no
dependencies and unit tests drive it directly.

    result = compute_sizing(tables, 120, services_instance_type="m5.xlarge")
    result["services"]["instance_type"]      # recommended type
    result["warnings"]                       # gaps of the chosen types

Band edges follow the guide: "<50" is 0-49, "50-250", "251-1000",
"1001-5000" (5000 itself is in this band) and "5000+" is 5001 and up.
The Nomad table's "250-1000" overlaps "50-250" at 250; we keep 250 in the
lower band so both tables change at the same user counts.
"""
import math

SPEC_KEYS = ("cpus", "ram_gb", "disk_gb", "nic_gbps")
# Beyond the last bounded band the guide only says "15+". We keep the ratio of
# the band below it (20 clients at 5000 users: one client per 250 users).
USERS_PER_CLIENT_BEYOND_TABLE = 250


class SizingError(ValueError):
    """Bad input, bad table, or (strict) a chosen instance type that is too small."""


def _band(rows, users):
    for row in rows:
        if row.get("max_users") is None or users <= row["max_users"]:
            return row
    raise SizingError("the sizing table has no band for %d daily active users "
                      "(its last row needs max_users: null)" % users)


def band_label(rows, users):
    """The guide's wording of the band that holds ``users``, e.g. '50-250'."""
    lower = 0
    for row in rows:
        upper = row.get("max_users")
        if upper is None or users <= upper:
            if lower == 0:
                return "<%d" % (upper + 1) if upper is not None else "any"
            if upper is None:
                return "%d+" % lower
            return "%d-%d" % (lower, upper)
        lower = upper + 1
    return "?"


def _users(value):
    if isinstance(value, bool):
        raise SizingError("daily active users must be a whole number, got %r" % (value,))
    try:
        users = int(value)
    except (TypeError, ValueError):
        raise SizingError("daily active users must be a whole number, got %r" % (value,)) from None
    if users != value and str(users) != str(value).strip():
        raise SizingError("daily active users must be a whole number, got %r" % (value,))
    if users < 0:
        raise SizingError("daily active users cannot be negative, got %d" % users)
    return users


def fits(instance, spec):
    """True when an instance type row meets a spec (cpus, ram_gb and, when both say, nic_gbps)."""
    if instance["cpus"] < spec["cpus"] or instance["ram_gb"] < spec["ram_gb"]:
        return False
    if spec.get("nic_gbps") and instance.get("nic_gbps") is not None:
        return instance["nic_gbps"] >= spec["nic_gbps"]
    return True


def family_of(instance_type):
    return instance_type.split(".", 1)[0]


def recommend_instance_type(instance_types, spec, family):
    """Smallest type of ``family`` that fits ``spec``; if none there, smallest fitting type of any family."""
    ordered = sorted(instance_types.items(), key=lambda kv: (kv[1]["cpus"], kv[1]["ram_gb"], kv[0]))
    for name, row in ordered:
        if family_of(name) == family and fits(row, spec):
            return name
    for name, row in ordered:
        if fits(row, spec):
            return name
    raise SizingError("no instance type in the sizing table has %(cpus)s vCPU and %(ram_gb)s GB RAM; "
                      "add one to data/sizing.yml instance_types" % spec)


def describe_gap(instance, spec):
    """Human words for what ``instance`` lacks against ``spec`` ('' when it fits)."""
    gaps = []
    if instance["cpus"] < spec["cpus"]:
        gaps.append("%s vCPU (needs %s)" % (instance["cpus"], spec["cpus"]))
    if instance["ram_gb"] < spec["ram_gb"]:
        gaps.append("%s GB RAM (needs %s)" % (instance["ram_gb"], spec["ram_gb"]))
    if spec.get("nic_gbps") and instance.get("nic_gbps") is not None and instance["nic_gbps"] < spec["nic_gbps"]:
        gaps.append("%s Gbps network (needs %s)" % (instance["nic_gbps"], spec["nic_gbps"]))
    return ", ".join(gaps)


def client_counts(rows, users):
    row = _band(rows, users)
    low = row["min"]
    high = row.get("max")
    if high is None:
        high = max(low, int(math.ceil(users / float(USERS_PER_CLIENT_BEYOND_TABLE))))
    return {"min": low, "max": high, "desired": low}


def _check_chosen(role_label, chosen, instance_types, spec, users):
    """(info, warning) for a user-chosen instance type."""
    if not chosen:
        return None, None
    row = instance_types.get(chosen)
    if row is None:
        return ({"instance_type": chosen, "known": False, "fits": None},
                "%s instance type %s is not in the sizing table (data/sizing.yml instance_types), so it was "
                "not checked against %s vCPU / %s GB RAM; preflight checks it against the EC2 API"
                % (role_label, chosen, spec["cpus"], spec["ram_gb"]))
    gap = describe_gap(row, spec)
    info = {"instance_type": chosen, "known": True, "fits": not gap, "cpus": row["cpus"], "ram_gb": row["ram_gb"]}
    if not gap:
        return info, None
    return info, ("%s instance type %s is below the requirement for %d daily active users: %s"
                  % (role_label, chosen, users, gap))


def compute_sizing(tables, daily_active_users, services_instance_type=None, nomad_instance_type=None,
                   strict=False, family=None):
    """The sizing for ``daily_active_users``.

    Returns a dict:
      users, band                     input and the guide's band label
      services: cpus, ram_gb, disk_gb, nic_gbps, instance_type (recommended),
                root_volume_gb (disk_gb, at least services_root_volume_minimum_gb)
      nomad:    cpus, ram_gb, disk_gb, nic_gbps (per-client minimum), instance_type (recommended),
                root_volume_gb, min, max, desired (Auto Scaling group sizes)
      chosen:   services / nomad: what was checked of the user's types (None when not given)
      warnings: list of sentences naming each gap

    Raises SizingError on bad input, or when ``strict`` and a chosen type is below the requirement.
    """
    users = _users(daily_active_users)
    instance_types = tables["instance_types"]
    family = family or tables.get("default_instance_family", "m5")

    services_row = _band(tables["services"], users)
    services = {key: services_row[key] for key in SPEC_KEYS}
    services["instance_type"] = recommend_instance_type(instance_types, services, family)
    # The guide's disk requirement, but never below the vendor's own root
    # volume (tables' services_root_volume_minimum_gb): the data lives there.
    services["root_volume_gb"] = max(services["disk_gb"], tables.get("services_root_volume_minimum_gb") or 0)

    nomad = {key: tables["nomad_client_minimum"][key] for key in SPEC_KEYS}
    nomad["instance_type"] = recommend_instance_type(instance_types, nomad, family)
    nomad["root_volume_gb"] = nomad["disk_gb"]
    nomad.update(client_counts(tables["nomad_clients"], users))

    warnings = []
    too_small = []
    chosen = {}
    for key, label, choice, spec in (("services", "Services machine", services_instance_type, services),
                                     ("nomad", "Nomad client", nomad_instance_type, nomad)):
        chosen[key], warning = _check_chosen(label, choice, instance_types, spec, users)
        if warning:
            warnings.append(warning)
            if chosen[key]["fits"] is False:
                too_small.append(warning)

    if strict and too_small:
        raise SizingError("; ".join(too_small) + " (strict sizing: choose a larger type or turn strict off)")

    return {
        "users": users,
        "band": band_label(tables["services"], users),
        "services": services,
        "nomad": nomad,
        "chosen": chosen,
        "warnings": warnings,
    }
