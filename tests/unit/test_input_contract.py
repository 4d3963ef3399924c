"""The input contract (data/inputs.yml + module_utils/input_contract.py): each rule once."""
import pytest
import yaml

from ansible_collections.circleci_server.aws.plugins.module_utils.input_contract import InputContract
from tests.sandbox.paths import REPO_ROOT

RULES = yaml.safe_load((REPO_ROOT / "data" / "inputs.yml").read_text())["inputs"]
VERSIONS = yaml.safe_load((REPO_ROOT / "data" / "versions.yml").read_text())["circleci_server_versions"]
PORTS = yaml.safe_load((REPO_ROOT / "data" / "ports.yml").read_text())
SECRET = "Abc123Passphrase"


@pytest.fixture
def valid(tmp_path):
    license_file = tmp_path / "license.rli"
    license_file.write_text('{"license_id": "unit"}')
    return {
        "circleci_prefix": "ci-prod", "circleci_region": "us-east-1", "circleci_vpc_id": "vpc-0123456789abcdef0",
        "circleci_subnet_id": "subnet-0123abcd", "circleci_key_name": "admin", "circleci_user_cidrs": ["10.0.0.0/8"],
        "circleci_hostname": "ci.example.com", "circleci_secret_passphrase": SECRET, "circleci_version": "2.16",
        "circleci_license_path": str(license_file), "circleci_console_password": "console-password-1",
        "circleci_github_client_id": "Iv1.0123456789abcdef", "circleci_github_client_secret": "s" * 40,
    }


def check(values, groups=("aws", "app", "github")):
    return InputContract(RULES, versions=VERSIONS, external_services=PORTS["external_services"]).check(values, groups)


def test_valid_inputs_pass(valid):
    assert check(valid) == []


@pytest.mark.parametrize("name,value", [
    ("circleci_prefix", "a" * 37), ("circleci_prefix", "ci-prod\n"), ("circleci_prefix", "Prod"),
    ("circleci_region", "us-moon-1"), ("circleci_vpc_id", "vpc-xyz"), ("circleci_nomad_min", -1),
    ("circleci_nomad_max", "many"), ("circleci_daily_active_users", 0), ("circleci_admin_cidrs", "10.0.0.0/8"),
    ("circleci_user_cidrs", []), ("circleci_hostname", "https://ci.example.com"), ("circleci_version", "3.0"),
    ("circleci_http_proxy", "proxy:3128"), ("circleci_github_client_id", "not an id"),
])
def test_one_bad_input_one_line_naming_it(valid, name, value):
    problems = check(dict(valid, **{name: value}))
    assert len(problems) == 1 and problems[0].startswith(name), problems
    assert "\n" not in problems[0]


@pytest.mark.parametrize("prefix", ["a", "a" * 21, "a" * 24, "a" * 36])
def test_a_prefix_of_up_to_36_characters_passes(valid, prefix):
    assert check(dict(valid, circleci_prefix=prefix)) == []


@pytest.mark.parametrize("name,value", [
    ("circleci_secret_passphrase", "Bad phrase!7Kq"), ("circleci_console_password", "Sh rt7Kq"),
    ("circleci_github_client_secret", "cs7Kq"), ("circleci_https_proxy", "http://user:Pr0xyPw7Kq@proxy:3128"),
])
def test_secrets_are_never_shown(valid, name, value):
    problems = check(dict(valid, **{name: value}))
    assert len(problems) == 1 and name in problems[0]
    assert value not in problems[0] and "Pr0xyPw7Kq" not in problems[0]


def test_rules_across_inputs(valid):
    assert check(dict(valid, circleci_nomad_min=5, circleci_nomad_desired=3, circleci_nomad_max=2))[0].startswith(
        "circleci_nomad_min (5) <= circleci_nomad_desired (3) <= circleci_nomad_max (2)")
    assert "set exactly one" in check(dict(valid, circleci_license_content="x"))[0]
    assert "circleci_license_content must hold the .rli license itself" in check(
        {**{k: v for k, v in valid.items() if k != "circleci_license_path"}, "circleci_license_content": "~/x.rli"})[0]
    tls_key_alone = dict(valid, circleci_tls_key_path="/etc/hostname")
    assert "circleci_tls_cert_path and circleci_tls_key_path" in check(tls_key_alone)[0]
    assert check(dict(valid, circleci_github_type="enterprise"))[0].startswith("circleci_github_enterprise_host")
    assert check(dict(valid, circleci_tags={"circleci:role": "x"}))[0].startswith("circleci_tags")
    assert "needs bucket, key, region and a lock" in check(dict(
        valid, circleci_terraform_backend="s3", circleci_terraform_backend_config={"bucket": "b"}))[0]
    assert check(dict(valid, circleci_external_service_cidrs={"nosuch": ["10.0.0.0/8"]}))[0].startswith(
        "circleci_external_service_cidrs names unknown")


def test_groups_narrow_the_checks(valid):
    other_groups = ("circleci_github", "circleci_vpc", "circleci_region")
    app_only = {k: v for k, v in valid.items() if not k.startswith(other_groups)}
    assert check(app_only, groups=["app"]) == []
    assert check({"circleci_prefix": "ci"}, groups=[]) == []
    assert check({}, groups=[])[0].startswith("circleci_prefix must be set")


def test_every_rule_says_what_to_fix_and_has_a_known_group():
    for name, rule in RULES.items():
        assert rule.get("why"), name
        groups = [rule.get("group", "always")] if isinstance(rule.get("group", "always"), str) else rule["group"]
        assert set(groups) <= {"always", "aws", "app", "github", "scale"}, name


SIZING = yaml.safe_load((REPO_ROOT / "data" / "sizing.yml").read_text())


def check_sized(values, groups):
    return InputContract(RULES, versions=VERSIONS, external_services=PORTS["external_services"],
                         sizing=SIZING).check(values, groups)


def test_client_counts_are_checked_with_the_sizing_defaults(valid):
    # A max below the sizing band's min (49 users: at least one client) fails up front, before Terraform
    # (the infrastructure role once checked this itself).
    assert check_sized(dict(valid, circleci_daily_active_users=1000, circleci_nomad_max=50), ["aws"]) == []
    assert check_sized(dict(valid, circleci_daily_active_users=1000, circleci_nomad_max=1), ["aws"]) == [
        "circleci_nomad_min (sizing default %d) <= circleci_nomad_desired (sizing default %d) <= "
        "circleci_nomad_max (1) must hold" % ((SIZING_COUNTS(1000)["min"],) * 2)]


def SIZING_COUNTS(users):
    from ansible_collections.circleci_server.aws.plugins.module_utils.sizing import compute_sizing
    return compute_sizing(SIZING, users)["nomad"]


def test_scale_requires_the_count_and_keeps_it_in_the_sizing_band():
    base = {"circleci_prefix": "ci"}
    assert check_sized(base, ["scale"])[0].startswith("circleci_nomad_desired must be set")
    assert check_sized(dict(base, circleci_nomad_desired="six"), ["scale"])[0].startswith(
        "circleci_nomad_desired must be a whole number")
    assert check_sized(dict(base, circleci_nomad_desired=6), ["scale"]) == []
    band = SIZING_COUNTS(1000)
    inside = dict(base, circleci_daily_active_users=1000, circleci_nomad_desired=band["min"])
    assert check_sized(inside, ["scale"]) == []
    outside = dict(inside, circleci_nomad_desired=band["max"] + 1)
    assert "circleci_nomad_allow_outside_sizing=true" in check_sized(outside, ["scale"])[0]
    assert check_sized(dict(outside, circleci_nomad_allow_outside_sizing=True), ["scale"]) == []
    # As `-e circleci_nomad_allow_outside_sizing=true` and AWX surveys give it: a string.
    assert check_sized(dict(outside, circleci_nomad_allow_outside_sizing="true"), ["scale"]) == []
    assert "circleci_nomad_allow_outside_sizing=true" in check_sized(
        dict(outside, circleci_nomad_allow_outside_sizing="false"), ["scale"])[0]
    assert any("circleci_nomad_allow_outside_sizing must be" in message for message in check_sized(
        dict(outside, circleci_nomad_allow_outside_sizing="maybe"), ["scale"]))
    # Other stages do not require it.
    assert check_sized(base, []) == []


def test_no_copy_of_a_contract_rule_outside_it():
    # The passphrase and prefix rules were once written in four and three places (issue 14).
    for path in ("playbooks/tasks/check_inputs.yml", "roles/infrastructure/tasks/validate.yml",
                 "roles/services/tasks/main.yml"):
        text = (REPO_ROOT / path).read_text()
        assert "A-Za-z0-9]+" not in text and "prefix is match" not in text and "vpc-[0-9a-f]" not in text, path
