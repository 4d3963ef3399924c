"""Bad input ends the run early, with one line naming the variable, and leaves AWS untouched.

Each case starts from a complete, valid set of inputs (the control case proves
it passes the input checks), changes one thing, and runs the real site.yml
against an empty moto account. The run must fail in the input checks — before
preflight, Terraform or any host — with a one-line reason that names the
variable, never echo a secret, and leave no resource in moto.
"""
import functools
import json
import re
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.sandbox.ansible import run_playbook
from tests.sandbox.paths import REPO_ROOT
from tests.standins.github import GitHubStandIn

SECRET_VALUES = {
    "circleci_secret_passphrase": "Abc123Passphrase",
    "circleci_console_password": "console-password-123",
    "circleci_github_client_secret": "0123456789abcdef0123456789abcdef01234567",
}
UNSET = object()


@pytest.fixture(scope="module")
def license_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("license") / "license.rli"
    path.write_text(json.dumps({"license_id": "bad-inputs-test"}))
    path.chmod(0o600)
    return path


GITHUB_CLIENT_ID = "Iv1.0123456789abcdef"
HOSTNAME = "circleci.example.test"


@pytest.fixture(scope="module")
def github():
    """The OAuth app the valid inputs name, on the GitHub stand-in (preflight checks it before provisioning)."""
    server = GitHubStandIn(apps=[{"client_id": GITHUB_CLIENT_ID,
                                  "client_secret": SECRET_VALUES["circleci_github_client_secret"],
                                  "callback_url": f"https://{HOSTNAME}/auth/github"}])
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def nomad_releases(tmp_path_factory):
    """A release mirror (HashiCorp's layout) that has 0.5.6 only: what the input checks look at for Nomad."""
    root = tmp_path_factory.mktemp("releases")
    sums = root / "nomad" / "0.5.6" / "nomad_0.5.6_SHA256SUMS"
    sums.parent.mkdir(parents=True)
    sums.write_text("%s  nomad_0.5.6_linux_amd64.zip\n%s  nomad_0.5.6_linux_arm.zip\n" % ("a" * 64, "b" * 64))
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def valid_inputs(license_file, tmp_path, github, nomad_releases):
    return {
        "circleci_prefix": "cci-bad-inputs",
        "circleci_region": "us-east-1",
        "circleci_vpc_id": "vpc-0123456789abcdef0",
        "circleci_subnet_id": "subnet-0123abcd",
        "circleci_key_name": "admin-key",
        "circleci_ami_id": "",
        "circleci_daily_active_users": 40,
        "circleci_services_instance_type": "m5.2xlarge",
        "circleci_nomad_min": 1,
        "circleci_nomad_desired": 1,
        "circleci_nomad_max": 2,
        "circleci_admin_cidrs": ["203.0.113.0/24"],
        "circleci_user_cidrs": ["10.0.0.0/8"],
        "circleci_hostname": HOSTNAME,
        "circleci_scheme": "https",
        "circleci_version": "2.16",
        "circleci_license_path": str(license_file),
        "circleci_github_type": "public",
        "circleci_github_client_id": GITHUB_CLIENT_ID,
        "circleci_github_url": github.url,
        "nomad_client_download_base_url": nomad_releases,
        "circleci_http_proxy": "",
        "circleci_https_proxy": "",
        "circleci_no_proxy": "",
        "circleci_install_dir": str(tmp_path / "install"),
        "circleci_tags": {"team": "platform"},
        **SECRET_VALUES,
    }


# (id, variable the message must name, changes to the valid inputs)
BAD_INPUTS = [
    ("prefix-missing", "circleci_prefix", {"circleci_prefix": UNSET}),
    ("prefix-uppercase", "circleci_prefix", {"circleci_prefix": "Prod_CI"}),
    # 37: one more than the S3 bucket <prefix>-circleci-<17 hex digits> allows (63).
    ("prefix-too-long", "circleci_prefix", {"circleci_prefix": "a" * 37}),
    ("prefix-trailing-hyphen", "circleci_prefix", {"circleci_prefix": "ci-prod-"}),
    ("region-incomplete", "circleci_region", {"circleci_region": "us-east"}),
    ("region-uppercase", "circleci_region", {"circleci_region": "US-EAST-1"}),
    ("vpc-malformed", "circleci_vpc_id", {"circleci_vpc_id": "vpc_123"}),
    ("subnet-malformed", "circleci_subnet_id", {"circleci_subnet_id": "sub-1234"}),
    ("key-name-empty", "circleci_key_name", {"circleci_key_name": ""}),
    ("ami-not-an-id", "circleci_ami_id", {"circleci_ami_id": "ubuntu-22.04"}),
    ("users-zero", "circleci_daily_active_users", {"circleci_daily_active_users": 0}),
    ("users-text", "circleci_daily_active_users", {"circleci_daily_active_users": "many"}),
    ("instance-type-bogus", "circleci_services_instance_type", {"circleci_services_instance_type": "huge"}),
    ("nomad-min-above-max", "circleci_nomad_min", {"circleci_nomad_min": 5, "circleci_nomad_desired": 5}),
    ("nomad-negative", "circleci_nomad_min", {"circleci_nomad_min": -1}),
    ("admin-cidr-host-bits", "circleci_admin_cidrs", {"circleci_admin_cidrs": ["10.0.0.1/8"]}),
    ("admin-cidrs-not-a-list", "circleci_admin_cidrs", {"circleci_admin_cidrs": "10.0.0.0/8"}),
    ("user-cidrs-empty", "circleci_user_cidrs", {"circleci_user_cidrs": []}),
    ("hostname-with-scheme", "circleci_hostname", {"circleci_hostname": "https://ci.example.com"}),
    ("hostname-with-space", "circleci_hostname", {"circleci_hostname": "ci example.com"}),
    ("scheme-ftp", "circleci_scheme", {"circleci_scheme": "ftp"}),
    ("version-unknown", "circleci_version", {"circleci_version": "3.0"}),
    ("version-before-the-matrix", "circleci_version", {"circleci_version": "2.15"}),
    ("imds-tokens-bogus", "circleci_services_http_tokens", {"circleci_services_http_tokens": "v1"}),
    ("passphrase-symbols", "circleci_secret_passphrase", {"circleci_secret_passphrase": "Bad phrase!7Kq"}),
    ("passphrase-empty", "circleci_secret_passphrase", {"circleci_secret_passphrase": ""}),
    ("license-unset", "circleci_license_path", {"circleci_license_path": UNSET}),
    ("license-missing-file", "circleci_license_path", {"circleci_license_path": "/nonexistent/license.rli"}),
    ("console-password-short", "circleci_console_password", {"circleci_console_password": "Shrt7Kq"}),
    ("github-type-gitlab", "circleci_github_type", {"circleci_github_type": "gitlab"}),
    ("ghe-host-missing", "circleci_github_enterprise_host", {"circleci_github_type": "enterprise"}),
    ("client-id-space", "circleci_github_client_id", {"circleci_github_client_id": "not an id"}),
    ("client-secret-short", "circleci_github_client_secret", {"circleci_github_client_secret": "cs7Kq"}),
    ("proxy-without-scheme", "circleci_http_proxy", {"circleci_http_proxy": "proxy.example.com:3128"}),
    ("proxy-with-credentials", "circleci_https_proxy",
     {"circleci_https_proxy": "http://proxyuser:Pr0xyPw7Kq@proxy.example.com:3128"}),
    ("tags-reserved-key", "circleci_tags", {"circleci_tags": {"circleci:install": "other"}}),
    ("route53-zone-malformed", "circleci_route53_zone_id", {"circleci_route53_zone_id": "zone1"}),
    ("install-dir-relative", "circleci_install_dir", {"circleci_install_dir": "relative/dir"}),
    ("installer-checksum-no-algorithm", "services_replicated_installer_checksum",
     {"services_replicated_installer_checksum": "0" * 64}),
    ("installer-checksum-short", "services_replicated_installer_checksum",
     {"services_replicated_installer_checksum": "sha256:abc123"}),
    ("tls-ca-missing", "circleci_tls_ca_path", {"circleci_tls_ca_path": "/nonexistent/ca-bundle.pem"}),
    ("tls-key-without-cert", "circleci_tls_cert_path", {"circleci_tls_key_path": "/etc/hostname"}),
    # issue 17: every entry point, and more checked before any resource exists
    ("prefix-trailing-newline", "circleci_prefix", {"circleci_prefix": "cci-bad-inputs\n"}),
    ("subnet-trailing-newline", "circleci_subnet_id", {"circleci_subnet_id": "subnet-0123abcd\n"}),
    ("passphrase-trailing-newline", "circleci_secret_passphrase",
     {"circleci_secret_passphrase": "Abc123Passphrase\n"}),
    ("hostname-trailing-newline", "circleci_hostname", {"circleci_hostname": "circleci.example.test\n"}),
    ("github-url-without-scheme", "circleci_github_url", {"circleci_github_url": "github.example.com"}),
    ("github-secret-wrong", "circleci_github_client_secret",
     {"circleci_github_client_secret": "ffffffffffffffffffffffffffffffffffffffff"}),
    ("github-callback-not-registered", "circleci_hostname", {"circleci_hostname": "other.example.test"}),
    ("license-content-whitespace", "circleci_license_content",
     {"circleci_license_path": UNSET, "circleci_license_content": " \n\t \n"}),
    ("license-content-is-a-path", "circleci_license_content",
     {"circleci_license_path": UNSET, "circleci_license_content": "~/Downloads/circleci.rli"}),
    ("nomad-version-malformed", "nomad_client_version", {"nomad_client_version": "latest"}),
    ("nomad-version-not-released", "nomad_client_version", {"nomad_client_version": "0.9.99"}),
]

# "fatal: [host]: FAILED! => {...}" or, in a loop, "failed: [host] (item=...) => {...}"
FATAL = re.compile(r"^(?:fatal: \[[^\]]+\]: FAILED!|failed: \[[^\]]+\] \(item=[^)]*\)) => (\{.*\})$", re.M)


def fed_secrets(inputs):
    """{variable: secret value} for every secret input of this run, valid or not."""
    secrets = {name: inputs[name] for name in SECRET_VALUES if isinstance(inputs.get(name), str) and inputs[name]}
    for name in ("circleci_http_proxy", "circleci_https_proxy"):
        credentials = re.match(r"^[a-z]+://([^/@]*)@", str(inputs.get(name) or ""))
        if credentials:
            secrets[name + " password"] = credentials[1].split(":", 1)[-1]
    return secrets


def test_the_leak_check_covers_the_bad_secret_values_fed_in(valid_inputs):
    # Each bad secret value must be looked for, and be distinctive enough that
    # finding it in the output means it leaked.
    for case_id, _variable, changes in BAD_INPUTS:
        fed = fed_secrets(apply_changes(valid_inputs, changes))
        for name, value in changes.items():
            if isinstance(value, str) and value and (name in SECRET_VALUES or "@" in value):
                shown = [v for k, v in fed.items() if k.startswith(name)]
                assert shown and all(len(v) >= 5 for v in shown), (case_id, fed)


def apply_changes(inputs, changes):
    result = dict(inputs)
    for key, value in changes.items():
        if value is UNSET:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def test_valid_inputs_pass_the_checks(aws, valid_inputs):
    result = run_playbook(REPO_ROOT / "playbooks" / "inputs.yml", extra_vars=valid_inputs, env=aws.env())
    assert result.rc == 0, str(result)


def test_a_prefix_of_21_to_36_characters_passes_the_checks(aws, valid_inputs):
    # Once refused later by the infrastructure role (1-20); now one rule everywhere (tests/unit/test_prefix_rule.py).
    for prefix in ("a" * 21, "ci-" + "x" * 33):
        result = run_playbook(REPO_ROOT / "playbooks" / "inputs.yml",
                              extra_vars=dict(valid_inputs, circleci_prefix=prefix), env=aws.env())
        assert result.rc == 0, str(result)


def test_there_are_at_least_25_distinct_bad_inputs():
    assert len({case[0] for case in BAD_INPUTS}) >= 25
    assert len({json.dumps(case[2], sort_keys=True, default=repr) for case in BAD_INPUTS}) == len(BAD_INPUTS)


@pytest.mark.parametrize("variable,changes", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_stops_the_run_naming_the_variable(aws, valid_inputs, variable, changes):
    inputs = apply_changes(valid_inputs, changes)
    result = run_playbook(REPO_ROOT / "site.yml", extra_vars=inputs, env=aws.env(), timeout=300)
    assert result.rc != 0, str(result)
    fatals = FATAL.findall(result.stdout)
    assert len(fatals) == 1, f"expected one failed task:\n{result}"
    message = json.loads(fatals[0])["msg"]
    assert variable in message, f"the reason does not name {variable}: {message}"
    assert "\n" not in message.strip()
    # It stopped in the input checks, before preflight, Terraform or any host.
    assert "PLAY [Preflight]" not in result.stdout
    assert "TASK [circleci_server.aws.infrastructure" not in result.stdout
    # Every secret the run was given, the bad ones it was fed included, and a proxy's password.
    for name, value in fed_secrets(inputs).items():
        assert value not in result.output(), f"{name} leaked into the output"
    assert aws.is_empty(), aws.resource_counts()


def test_admin_ports_open_to_everyone_pass_with_a_loud_warning(aws, valid_inputs):
    inputs = dict(valid_inputs, circleci_admin_cidrs=["0.0.0.0/0"])
    result = run_playbook(REPO_ROOT / "playbooks" / "inputs.yml", extra_vars=inputs, env=aws.env())
    assert result.rc == 0, str(result)
    assert "WARNING: circleci_admin_cidrs includes 0.0.0.0/0" in result.stdout, result.stdout


@pytest.mark.parametrize("entry_point,extra", [
    ("playbooks/provision.yml", []),
    ("site.yml", ["--tags", "provision"]),
], ids=["provision.yml", "site-tags-provision"])
def test_every_entry_point_checks_its_inputs(aws, valid_inputs, entry_point, extra):
    """A DAU of "many" used to become 0 in provision.yml alone and with --tags provision."""
    inputs = dict(valid_inputs, circleci_daily_active_users="many")
    result = run_playbook(REPO_ROOT / entry_point, extra_vars=inputs, env=aws.env(), timeout=300, extra_args=extra)
    assert result.rc != 0, str(result)
    fatals = FATAL.findall(result.stdout)
    assert len(fatals) == 1, f"expected one failed task:\n{result}"
    assert "circleci_daily_active_users" in json.loads(fatals[0])["msg"]
    assert "TASK [circleci_server.aws.infrastructure" not in result.stdout
    assert aws.is_empty(), aws.resource_counts()
