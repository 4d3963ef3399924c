# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The install's input contract: each rule once (issue 14).

The per-input rules are data (data/inputs.yml); the rules across inputs and the
controller-side file checks are the methods below. ``InputContract.check``
returns one problem per bad input, each a line that names the variable and says
what to fix; a secret's value is never in it. Used by the check_inputs action
(plugins/action/check_inputs.py), which every entry point runs first.
"""
import ipaddress
import os
import re

from ansible.module_utils.parsing.convert_bool import BOOLEANS_FALSE, BOOLEANS_TRUE

from ansible_collections.circleci_server.aws.plugins.module_utils.regions import is_region_name
from ansible_collections.circleci_server.aws.plugins.module_utils.sizing import SizingError, compute_sizing

# The stages' groups checked when a stage names none; "scale" (scale.yml) only when named.
GROUPS = ("aws", "app", "github")
STAGE_GROUPS = GROUPS + ("scale",)
_DNS_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_PROXY_CREDENTIALS = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*@")
_PATH_LIKE = re.compile(r"(~|\.{0,2}/)\S*")
RESERVED_TAGS = ("circleci:install", "circleci:role")


def is_cidr(value):
    if not isinstance(value, str) or "/" not in value:
        return False
    try:
        ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        return False
    return True


def is_dns_name(value):
    if not isinstance(value, str) or not value or len(value) > 253:
        return False
    return all(_DNS_LABEL.fullmatch(label) for label in value.rstrip(".").split("."))


def as_bool(value):
    """True or False from a boolean or the strings Ansible's bool filter takes ("true", "yes", "1", ...),
    as `-e name=true` and AWX surveys give them; None otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in BOOLEANS_TRUE:
        return True
    if isinstance(value, str) and value.lower() in BOOLEANS_FALSE:
        return False
    return None


def as_int(value):
    """An int from an int or a string of digits (with an optional minus); None otherwise (booleans too)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
        return int(value)
    return None


class InputContract:
    def __init__(self, rules, versions=(), external_services=(), read_file=None, sizing=None):
        self.rules = rules
        self.sizing = sizing
        self.versions = [str(v) for v in versions]
        self.external_services = list(external_services)
        self.read_file = read_file or _read_text

    def applies(self, rule, groups):
        wanted = rule.get("group", "always")
        wanted = [wanted] if isinstance(wanted, str) else list(wanted)
        return "always" in wanted or any(g in groups for g in wanted)

    def check(self, values, groups=GROUPS):
        """Problems (one line each) for ``values`` ({name: value}, unset inputs absent)."""
        problems = []
        for name, rule in self.rules.items():
            if self.applies(rule, groups):
                problem = self.check_one(name, rule, values, groups)
                if problem:
                    problems.append(problem)
        bad = {p.split(" ", 1)[0] for p in problems}
        for check in (self.nomad_counts, self.tags, self.external_service_cidrs, self.s3_backend):
            if "aws" in groups:
                problems.extend(check(values, bad))
        if "app" in groups:
            problems.extend(self.license(values))
            problems.extend(self.tls_files(values))
        if "github" in groups:
            problems.extend(self.github_enterprise_host(values))
        if "scale" in groups and not bad & {"circleci_nomad_desired", "circleci_daily_active_users"}:
            problems.extend(self.scale_count(values))
        return problems

    def check_one(self, name, rule, values, groups=GROUPS):
        if name not in values or values[name] is None:
            required = rule.get("required")
            if isinstance(required, list):  # required by these stages only
                required = any(g in groups for g in required)
            return "%s must be set: %s" % (name, rule["why"]) if required else None
        value = values[name]
        secret = bool(rule.get("secret"))
        if name in ("circleci_http_proxy", "circleci_https_proxy") and isinstance(value, str) \
                and _PROXY_CREDENTIALS.match(value):
            return ("%s holds credentials (user:password@): they would be written to world-readable files on every "
                    "host and show in the process list. Use a proxy that admits the install's subnet without "
                    "credentials (see docs/secrets.md); the value is not shown here." % name)
        if not self.valid(name, rule, value):
            got = "(value not shown)" if secret else "got %s" % _one_line(value)
            return "%s must be %s; %s" % (name, " ".join(str(rule["why"]).split()), got)
        return None

    def valid(self, name, rule, value):
        kind = rule.get("type", "str")
        if kind == "int":
            number = as_int(value)
            return number is not None and number >= rule.get("min", number) and number <= rule.get("max", number)
        if kind == "list" or (kind == "str_or_list" and not isinstance(value, str)):
            if not isinstance(value, list) or len(value) < rule.get("min", 0):
                return False
            if rule.get("elements") == "cidr":
                return all(is_cidr(v) for v in value)
            if kind == "str_or_list":
                return all(isinstance(v, str) and re.fullmatch(rule.get("pattern", ".*"), v) for v in value)
            return True
        if kind == "dict":
            return isinstance(value, dict)
        if kind == "bool":
            return as_bool(value) is not None
        if name == "circleci_version" and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            return False
        if len(value) < rule.get("min", 0) or len(value) > rule.get("max", len(value)):
            return False
        choices = rule.get("choices")
        if choices == "versions":
            choices = self.versions
        if choices is not None and value not in [str(c) for c in choices]:
            return False
        if "pattern" in rule and not re.fullmatch(rule["pattern"], value):
            return False
        if rule.get("region") and not is_region_name(value):
            return False
        return not (rule.get("dns_name") and not is_dns_name(value))

    # Rules across inputs: each names the variable(s) to fix.
    def nomad_counts(self, values, bad):
        names = ("circleci_nomad_min", "circleci_nomad_desired", "circleci_nomad_max")
        if any(n in bad for n in names):
            return []
        counts = {n: as_int(values[n]) for n in names if values.get(n) is not None}
        # An unset count is the sizing default the infrastructure role gives Terraform.
        defaults = self.sizing_counts(values)
        low, want, high = (counts.get(n, defaults.get(n.rsplit("_", 1)[1])) for n in names)
        ordered = [(a, b) for a, b in ((low, high), (low, want), (want, high)) if a is not None and b is not None]
        if all(a <= b for a, b in ordered):
            return []
        return ["circleci_nomad_min (%s) <= circleci_nomad_desired (%s) <= circleci_nomad_max (%s) must hold"
                % tuple(values.get(n, "sizing default %s" % defaults.get(n.rsplit("_", 1)[1])) for n in names)]

    def daily_active_users(self, values):
        users = values.get("circleci_daily_active_users")
        return self.rules["circleci_daily_active_users"].get("default") if users is None else as_int(users)

    def sizing_counts(self, values):
        """{min, max, desired} of data/sizing.yml for the install's users ({} without the tables)."""
        users = self.daily_active_users(values)
        if not self.sizing or users is None:
            return {}
        try:
            return compute_sizing(self.sizing, users)["nomad"]
        except SizingError:
            return {}

    def scale_count(self, values):
        """scale.yml: the new count within the sizing band of the install's users (when they are given)."""
        desired = as_int(values.get("circleci_nomad_desired"))
        if desired is None or values.get("circleci_daily_active_users") is None \
                or as_bool(values.get("circleci_nomad_allow_outside_sizing")) is True:
            return []
        band = compute_sizing(self.sizing, self.daily_active_users(values))
        low, high = band["nomad"]["min"], band["nomad"]["max"]
        if desired >= low and (high is None or desired <= high):
            return []
        return ["circleci_nomad_desired=%d is outside the install guide's %d-%s Nomad clients for %s daily active "
                "users (band %s, data/sizing.yml). Set circleci_nomad_allow_outside_sizing=true to scale outside "
                "it anyway." % (desired, low, "any" if high is None else high, values["circleci_daily_active_users"],
                                band["band"])]

    def tags(self, values, bad):
        tags = values.get("circleci_tags")
        if "circleci_tags" in bad or not isinstance(tags, dict):
            return []
        reserved = [k for k in tags if k in RESERVED_TAGS]
        return ["circleci_tags must not set the reserved keys %s (the inventory finds hosts by them); got %s"
                % (", ".join(RESERVED_TAGS), _one_line(tags))] if reserved else []

    def external_service_cidrs(self, values, bad):
        services = values.get("circleci_external_service_cidrs")
        if "circleci_external_service_cidrs" in bad or not isinstance(services, dict):
            return []
        unknown = sorted(k for k in services if k not in self.external_services)
        cidrs = [c for v in services.values() for c in (v if isinstance(v, list) else [v])]
        problems = []
        if unknown:
            problems.append("circleci_external_service_cidrs names unknown externalised services %s: choose from %s"
                            % (", ".join(map(str, unknown)), ", ".join(self.external_services)))
        if not all(is_cidr(c) for c in cidrs):
            problems.append("circleci_external_service_cidrs must map services to lists of IPv4 networks such as "
                            "10.0.0.0/16; not valid: %s" % ", ".join(str(c) for c in cidrs if not is_cidr(c)))
        return problems

    def s3_backend(self, values, bad):
        if values.get("circleci_terraform_backend") != "s3" or "circleci_terraform_backend_config" in bad:
            return []
        config = values.get("circleci_terraform_backend_config") or {}
        locked = str(config.get("use_lockfile", False)).lower() in ("true", "yes", "1") or "dynamodb_table" in config
        if all(k in config for k in ("bucket", "key", "region")) and locked:
            return []
        return ["circleci_terraform_backend_config: the S3 backend needs bucket, key, region and a lock "
                "(use_lockfile: true or dynamodb_table) (value not shown)"]

    def license(self, values):
        path, content = values.get("circleci_license_path") or "", values.get("circleci_license_content") or ""
        if bool(path) == bool(content):
            return ["circleci_license_path or circleci_license_content: set exactly one of them "
                    "(the .rli license file, or its content from a vault)"]
        if path:
            if not (isinstance(path, str) and os.path.isfile(path) and os.access(path, os.R_OK)
                    and os.path.getsize(path) > 0):
                return ["circleci_license_path %s must be a readable, non-empty license (.rli) file on the controller"
                        % _one_line(path)]
            text, what = self.read_file(path), "circleci_license_path %s" % path
        else:
            text, what = content, "circleci_license_content"
        if not isinstance(text, str) or not text.strip() or "\x00" in text or _PATH_LIKE.fullmatch(text.strip()):
            return ["%s must hold the .rli license itself: it is empty, whitespace only, binary or a file path "
                    "(value not shown)" % what]
        return []

    def tls_files(self, values):
        problems = []
        for name in ("circleci_tls_ca_path", "circleci_tls_cert_path", "circleci_tls_key_path"):
            path = values.get(name) or ""
            if path and not (isinstance(path, str) and os.path.isfile(path) and os.access(path, os.R_OK)):
                problems.append("%s %s must be a readable PEM file on the controller (it does not exist or cannot be "
                                "read)" % (name, _one_line(path)))
        if bool(values.get("circleci_tls_cert_path")) != bool(values.get("circleci_tls_key_path")):
            problems.append("circleci_tls_cert_path and circleci_tls_key_path: set both (the certificate and its "
                            "private key, PEM) or neither")
        return problems

    def github_enterprise_host(self, values):
        if values.get("circleci_github_type", "public") != "enterprise":
            return []
        host = values.get("circleci_github_enterprise_host")
        if is_dns_name(host):
            return []
        return ["circleci_github_enterprise_host must be the GitHub Enterprise host name (no scheme or path) when "
                "circleci_github_type is enterprise; got %s" % ("<unset>" if host is None else _one_line(host))]


def _read_text(path):
    with open(path, "rb") as handle:
        return handle.read().decode("utf-8", errors="replace")


def _one_line(value):
    return " ".join(str(value).split()) if "\n" in str(value) else str(value)
