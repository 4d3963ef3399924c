"""Bad inputs stop provision.yml before Terraform runs: a one-line reason,
no AWS resource, not even a working directory. The input contract
(data/inputs.yml) catches them, before the infrastructure role, which trusts it."""
import pytest

from tests.integration import infrastructure_support
from tests.sandbox.ansible import run_playbook

# Well-formed but never created: validation must not need AWS at all.
ACCOUNT = {
    "vpc_id": "vpc-0123456789abcdef0",
    "subnet_id": "subnet-0123456789abcdef0",
    "ami_id": "ami-12c6146b",
}
PASSPHRASE_RULE = "circleci_secret_passphrase must be a non-empty string of letters and digits only"
S3_LOCK_RULE = "the S3 backend needs bucket, key, region and a lock"


def install_vars(prefix, install_dir, account, **extra):
    """A complete, valid set of inputs (the role-level ones and the app's): only the change under test is bad."""
    values = infrastructure_support.install_vars(prefix, install_dir, account)
    values.pop("circleci_checks_done")
    license_file = install_dir.parent / "license.rli"
    license_file.parent.mkdir(parents=True, exist_ok=True)
    license_file.write_text('{"license_id": "infrastructure-validation"}')
    values.update({
        "circleci_user_cidrs": ["10.0.0.0/8"],
        "circleci_hostname": "circleci.example.test",
        "circleci_license_path": str(license_file),
        "circleci_console_password": "console-password-123",
        "circleci_github_client_id": "Iv1.0123456789abcdef",
        "circleci_github_client_secret": "0123456789abcdef0123456789abcdef01234567",
        # The OAuth app is not looked at (no GitHub here); its inputs are still checked.
        "circleci_github_check_early": False,
    })
    values.update(extra)
    return values


BAD_INPUTS = {
    "empty passphrase": ({"circleci_secret_passphrase": ""}, PASSPHRASE_RULE),
    "passphrase with symbols": ({"circleci_secret_passphrase": "abc-123!"}, PASSPHRASE_RULE),
    "malformed vpc": ({"circleci_vpc_id": "vpc-xyz"}, "circleci_vpc_id must be the id of an existing VPC"),
    "malformed subnet": ({"circleci_subnet_id": "subnet-123"},
                         "circleci_subnet_id must be the id of an existing subnet"),
    "unknown region": ({"circleci_region": "us-moon-1"}, "circleci_region must be an AWS region name"),
    "min above max": (
        {"circleci_nomad_min": 5, "circleci_nomad_max": 2, "circleci_nomad_desired": 3},
        "circleci_nomad_min (5) <= circleci_nomad_desired (3) <= circleci_nomad_max (2) must hold",
    ),
    "missing key pair": ({"circleci_key_name": ""}, "circleci_key_name must be the name of an existing EC2 key pair"),
    "admin cidr does not parse": ({"circleci_admin_cidrs": ["10.0.0.300/24"]},
                                  "circleci_admin_cidrs must be a list of IPv4 networks"),
    "user cidr with host bits": ({"circleci_user_cidrs": ["10.1.2.3/16"]},
                                 "circleci_user_cidrs must be a non-empty list of IPv4 networks"),
    "s3 backend without lock": (
        {
            "circleci_terraform_backend": "s3",
            "circleci_terraform_backend_config": {"bucket": "b", "key": "k", "region": "us-east-1"},
        },
        S3_LOCK_RULE,
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_input_fails_before_any_resource(aws, tmp_path, case):
    overrides, reason = BAD_INPUTS[case]
    install_dir = tmp_path / "install"
    extra = install_vars("ci-bad", install_dir, ACCOUNT, **overrides)
    result = run_playbook("playbooks/provision.yml", extra_vars=extra, env=aws.env())
    assert result.rc != 0
    assert reason in result.stdout, result.stdout[-3000:]
    assert aws.is_empty()
    # Nothing rendered or applied: at most provision's claim of the directory for the prefix.
    assert not install_dir.exists() or sorted(p.name for p in install_dir.iterdir()) == ["circleci_install.json"]


def test_missing_passphrase_fails_naming_the_rule(aws, tmp_path):
    extra = install_vars("ci-bad", tmp_path / "install", ACCOUNT)
    del extra["circleci_secret_passphrase"]
    result = run_playbook("playbooks/provision.yml", extra_vars=extra, env=aws.env())
    assert result.rc != 0
    assert "circleci_secret_passphrase must be set" in result.stdout
    assert aws.is_empty()


BAD_PASSPHRASE = "Leak-Me-7Kq!passphrase"
BACKEND_SECRET = "BackendSecretKey7Kq0123456789"


@pytest.mark.parametrize("overrides,reason", [
    ({"circleci_secret_passphrase": BAD_PASSPHRASE}, PASSPHRASE_RULE),
    # The backend configuration may hold access keys: refused here (no lock), and never logged
    # when the infrastructure role takes it (through its defaults: no set_fact copies it).
    ({"circleci_terraform_backend": "s3",
      "circleci_terraform_backend_config": {"bucket": "b", "key": "k", "region": "us-east-1",
                                            "access_key": "AKIAEXAMPLE7KQ", "secret_key": BACKEND_SECRET}},
     S3_LOCK_RULE),
], ids=["bad passphrase", "backend config with keys"])
def test_rejected_secret_is_never_echoed(aws, tmp_path, overrides, reason):
    extra = install_vars("ci-bad", tmp_path / "install", ACCOUNT, **overrides)
    result = run_playbook("playbooks/provision.yml", extra_vars=extra, env=aws.env(), verbosity=3)
    assert result.rc != 0
    assert reason in result.stdout, result.stdout[-3000:]
    for secret in (BAD_PASSPHRASE, BACKEND_SECRET):
        assert secret not in result.output()
    assert aws.is_empty()
