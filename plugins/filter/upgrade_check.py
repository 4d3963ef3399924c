# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``circleci_server.aws.upgrade_check`` filter (documentation in upgrade_check.yml next to this file)."""
from ansible.errors import AnsibleFilterError

COLUMNS = (("replicated", "Replicated"), ("services_docker", "Services Docker"), ("nomad", "Nomad"),
           ("nomad_client_docker", "client Docker"), ("nomad_datacenter", "datacenter"))


def _key(version):
    try:
        return tuple(int(part) for part in str(version).split("."))
    except ValueError:
        return None


def version_table(rows, current=None):
    """The version matrix as fixed-width text, one line per release, the running one marked."""
    header = ["release"] + [title for column, title in COLUMNS]
    lines = [header]
    for release in sorted(rows, key=lambda v: _key(v) or ()):
        mark = " (running)" if current and release == current else ""
        lines.append([release + mark] + [str(rows[release].get(column, "")) for column, title in COLUMNS])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines)


def upgrade_check(target, current, versions):
    """{ok, reason, msg (reason and table), allowed, table, target, current} for an upgrade from `current` to `target`.

    `versions` is data/versions.yml (its circleci_server_versions mapping, or the whole file).
    Allowed: a release of the matrix that is the running one (a re-run finishes an upgrade that
    stopped half way) or later. Anything else is refused with the table of allowed releases.
    """
    rows = versions.get("circleci_server_versions", versions) if isinstance(versions, dict) else None
    if not isinstance(rows, dict) or not rows:
        raise AnsibleFilterError("circleci_server.aws.upgrade_check: the version matrix is empty or not a mapping")
    target, current = str(target or "").strip(), str(current or "").strip()
    if not current:  # the running release is not known yet: every release is allowed
        allowed = sorted([v for v in rows if _key(v) is not None], key=_key)
        table = version_table(dict((v, rows[v]) for v in allowed))
        ok = target in rows
        reason = "" if ok else ("circleci_version=%s is not a CircleCI Server release this collection knows "
                                "(data/versions.yml)" % (target or "''"))
        return dict(target=target, current="", allowed=allowed, table=table, ok=ok, reason=reason,
                    msg=reason and "%s. Known releases:\n%s" % (reason, table))
    if _key(current) is None or current not in rows:
        raise AnsibleFilterError("circleci_server.aws.upgrade_check: the running release %r is not a row of the "
                                 "version matrix (%s)" % (current, ", ".join(sorted(rows, key=_key))))
    allowed = sorted([v for v in rows if _key(v) is not None and _key(v) >= _key(current)], key=_key)
    table = version_table(dict((v, rows[v]) for v in allowed), current)
    result = dict(target=target, current=current, allowed=allowed, table=table, ok=True, msg="", reason="")
    if target not in rows:
        result.update(ok=False, reason="circleci_version=%s is not a CircleCI Server release this collection knows "
                                       "(data/versions.yml); running: %s" % (target or "''", current))
    elif _key(target) < _key(current):
        result.update(ok=False, reason="circleci_version=%s is older than the running %s: a downgrade is refused "
                                       "(restore a backup instead, docs/day2.md)" % (target, current))
    if not result["ok"]:
        result["msg"] = "%s. Allowed:\n%s" % (result["reason"], table)
    return result


class FilterModule(object):
    def filters(self):
        return {"upgrade_check": upgrade_check}
