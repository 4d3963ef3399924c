"""The replicatedctl and GitHub OAuth modules, run through ansible-playbook on
localhost against the stand-ins (tests/standins/replicatedctl.py, github.py).

Each module: first run changed, second unchanged, check mode changes nothing,
diff right, failures carry their own explanation, and -vvv leaks no secret.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sandbox.ansible import run_playbook
from tests.standins.github import GitHubStandIn

HERE = Path(__file__).resolve().parent
PLAYBOOK = HERE / "playbooks" / "replicated_modules.yml"
STANDIN = HERE.parent / "standins" / "replicatedctl.py"

LICENSE_SIGNATURE = "LICENSE-BODY-d41d8cd98f00b204e980"
CLIENT_SECRET = "gh-client-secret-5f4dcc3b5aa765d61d83"
CONSOLE_PASSWORD = "Console-Password-7c6a180b36896a0a"
PASSPHRASE = "Passphrase0e9212587d373ca58e9b"
CALLBACK = "https://ci.example.com/auth/github"


def license_doc(license_id="lic-001", expires="2099-12-31T00:00:00Z"):
    return json.dumps({"license_id": license_id, "channel_name": "Stable", "expiration_time": expires,
                       "license_type": "prod", "signature": LICENSE_SIGNATURE})


class Env:
    def __init__(self, tmp_path):
        self.state = tmp_path / "state.json"
        self.base = {"replicatedctl": str(STANDIN), "standin_state": str(self.state),
                     "ansible_python_interpreter": sys.executable}

    def standin(self, *args, stdin=""):
        return subprocess.run([sys.executable, str(STANDIN), *args], input=stdin, capture_output=True, text=True,
                              env={"REPLICATEDCTL_STANDIN_STATE": str(self.state)}, check=False)

    def fault(self, **values):
        self.standin("standin-set", *["faults.%s=%s" % (k, json.dumps(v)) for k, v in values.items()])

    def data(self):
        return json.loads(self.state.read_text())

    def play_text(self, tag, check=False, diff=False, verbosity=0, callback=None, **extra):
        """ansible-playbook with only the tasks tagged `tag`; the AnsibleResult."""
        env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK=callback) if callback else None
        return run_playbook(PLAYBOOK, extra_vars=dict(self.base, **extra), env=env, check=check, diff=diff,
                            verbosity=verbosity, tags=[tag], timeout=300)

    def play_full(self, tag, **kwargs):
        """(AnsibleResult, the task's result dict) through the json callback."""
        result = self.play_text(tag, callback="ansible.posix.json", **kwargs)
        task = json.loads(result.stdout)["plays"][0]["tasks"][0]
        return result, task["hosts"]["localhost"]

    def play(self, tag, **kwargs):
        return self.play_full(tag, **kwargs)[1]


@pytest.fixture
def env(tmp_path):
    return Env(tmp_path)


@pytest.fixture
def loaded(env):
    proc = env.standin("license-load", stdin=license_doc())
    assert proc.returncode == 0, proc.stderr
    env.fault(start_seconds=0.3, stop_seconds=0.2)
    return env


# -- replicated_license ------------------------------------------------------
def test_license_loads_once_and_check_mode_changes_nothing(env, tmp_path):
    lic = tmp_path / "license.rli"
    lic.write_text(license_doc("lic-001"))
    res = env.play("license", check=True, diff=True, license_path=str(lic))
    assert res["changed"] is True and res["diff"]["after"]["license_id"] == "lic-001"
    assert env.data()["license"] is None

    res = env.play("license", license_path=str(lic))
    assert res["changed"] is True
    assert (res["license_id"], res["channel"], res["expiration_time"]) == ("lic-001", "Stable",
                                                                            "2099-12-31T00:00:00Z")
    res = env.play("license", license_path=str(lic))
    assert res["changed"] is False and res["license_id"] == "lic-001"
    assert env.data()["counters"]["license_load"] == 1

    res = env.play("license", license_content=license_doc("lic-002"))
    assert res["changed"] is True and res["previous_license_id"] == "lic-001" and res["license_id"] == "lic-002"


def test_expired_and_rejected_licenses_fail_with_the_cli_reason(env):
    res = env.play("license", license_content=license_doc(expires="2021-01-01T00:00:00Z"))
    assert res.get("failed") and "License has expired (expiration time 2021-01-01T00:00:00Z)" in res["msg"]
    env.fault(reject_license="License signature is invalid")
    res = env.play("license", license_content=license_doc())
    assert res.get("failed") and res["msg"].endswith("License signature is invalid")
    assert LICENSE_SIGNATURE not in json.dumps(res)


# -- replicated_app_config ---------------------------------------------------
def test_app_config_sets_only_changed_keys_with_masked_diff(loaded, tmp_path):
    env = loaded
    env.standin("app-config", "import", stdin=json.dumps({"hostname": {"value": "old.example.com"},
                                                          "aws_region": {"value": "us-east-1"}}))
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps({"storage_backend": {"value": "storage_backend_s3"}}))
    args = dict(app_settings={"hostname": "ci.example.com", "aws_region": "us-east-1", "allow_cluster": True},
                app_secret_settings={"secret_passphrase": PASSPHRASE}, app_settings_file=str(settings_file))

    res = env.play("app_config", check=True, diff=True, **args)
    assert res["changed"] is True
    assert env.data()["app_config"] == {"hostname": "old.example.com", "aws_region": "us-east-1"}

    result, res = env.play_full("app_config", diff=True, **args)
    assert res["changed"] is True
    assert res["changed_keys"] == ["allow_cluster", "hostname", "secret_passphrase", "storage_backend"]
    assert res["diff"]["before"]["hostname"] == "old.example.com"
    assert res["diff"]["after"]["hostname"] == "ci.example.com"
    assert res["diff"]["after"]["allow_cluster"] == "1"
    assert "aws_region" not in res["diff"]["after"]
    assert res["diff"]["after"]["secret_passphrase"].startswith("********")
    assert PASSPHRASE not in result.stdout
    assert env.data()["app_config"]["secret_passphrase"] == PASSPHRASE
    assert env.data()["app_config"]["storage_backend"] == "storage_backend_s3"

    res = env.play("app_config", diff=True, **args)
    assert res["changed"] is False and res["changed_keys"] == []


# -- replicated_console_auth -------------------------------------------------
def test_console_password_set_once(loaded):
    env = loaded
    res = env.play("console_auth", check=True, console_password=CONSOLE_PASSWORD)
    assert res["changed"] is True and env.data()["console_auth"]["Type"] == "anonymous"
    res = env.play("console_auth", console_password=CONSOLE_PASSWORD)
    assert res["changed"] is True and res["previous_auth_type"] == "anonymous"
    assert env.data()["console_auth"]["Type"] == "password"
    res = env.play("console_auth", console_password=CONSOLE_PASSWORD)
    assert res["changed"] is False
    res = env.play("console_auth", console_password=CONSOLE_PASSWORD + "2", console_update_password="always")
    assert res["changed"] is True
    assert env.data()["counters"]["console_auth_import"] == 2


# -- replicated_app ------------------------------------------------------------
def test_app_start_waits_until_started_then_is_idempotent(loaded):
    env = loaded
    res = env.play("app", check=True, diff=True)
    assert res["changed"] is True and res["diff"] == {"before": {"state": "stopped"}, "after": {"state": "started"}}
    assert env.data()["app"]["DesiredState"] == "stopped"
    res = env.play("app")
    assert res["changed"] is True
    assert res["status"]["State"] == "started" and res["status"]["IsTransitioning"] is False
    assert res["elapsed"] >= 0.2 and res["image_retries_used"] == 0
    res = env.play("app")
    assert res["changed"] is False
    res = env.play("app", app_state="stopped")
    assert res["changed"] is True and res["status"]["State"] == "stopped"


def test_no_such_image_is_retried_then_succeeds(loaded):
    env = loaded
    env.fault(no_such_image_times=2)
    res = env.play("app", app_image_retries=3)
    assert res["changed"] is True and res["status"]["State"] == "started"
    assert res["image_retries_used"] == 2
    assert env.data()["counters"]["app_start"] == 3


def test_no_such_image_past_the_bound_fails_clearly(loaded):
    env = loaded
    env.fault(no_such_image_times=5)
    res = env.play("app", app_image_retries=2)
    assert res.get("failed") and res["image_retries_used"] == 2
    assert "Failure reported from operator: no such image" in res["msg"] and "after 2 retries" in res["msg"]
    assert env.data()["counters"]["app_start"] == 3


def test_daemon_down_fails_with_a_hint(loaded):
    env = loaded
    env.fault(daemon_down=True)
    res = env.play("app")
    assert res.get("failed") and "cannot reach the Replicated daemon" in res["msg"]


# -- github_oauth --------------------------------------------------------------
@pytest.fixture(scope="module")
def github():
    server = GitHubStandIn([
        {"client_id": "Iv1.circleci", "client_secret": CLIENT_SECRET, "callback_url": CALLBACK},
        {"client_id": "Iv1.httpapp", "client_secret": CLIENT_SECRET,
         "callback_url": "http://ci.example.com/auth/github"},
    ]).start()
    yield server
    server.stop()


def gh_args(github, **extra):
    args = dict(github_url=github.url, github_client_id="Iv1.circleci", github_client_secret=CLIENT_SECRET,
                circleci_hostname="ci.example.com")
    args.update(extra)
    return args


def test_github_oauth_checks_then_sets_settings_once(loaded, github):
    env = loaded
    res = env.play("github_oauth", check=True, diff=True, **gh_args(github))
    assert res["changed"] is True and res["github_error"] == "bad_verification_code"
    assert env.data()["app_config"] == {}
    result, res = env.play_full("github_oauth", diff=True, **gh_args(github))
    assert res["changed"] is True and res["callback_url"] == CALLBACK
    assert res["changed_keys"] == ["ghe_client_id", "ghe_client_secret", "ghe_type"]
    assert res["diff"]["after"]["ghe_type"] == "github_type_public"
    assert CLIENT_SECRET not in result.stdout
    assert env.data()["app_config"] == {"ghe_type": "github_type_public", "ghe_client_id": "Iv1.circleci",
                                        "ghe_client_secret": CLIENT_SECRET}
    res = env.play("github_oauth", **gh_args(github))
    assert res["changed"] is False
    res = env.play("github_oauth", **gh_args(github, github_type="enterprise",
                                                 github_enterprise_host="ghe.example.com"))
    assert res["changed"] is True and res["changed_keys"] == ["ghe_domain", "ghe_type"]
    assert env.data()["app_config"]["ghe_domain"] == "ghe.example.com"


def test_github_bad_credentials_and_callback_mismatch_explain_themselves(loaded, github):
    env = loaded
    res = env.play("github_oauth", **gh_args(github, github_client_secret="wrong-secret"))
    assert res.get("failed") and res["github_error"] == "incorrect_client_credentials"
    assert "client id Iv1.circleci or its client secret is wrong" in res["msg"]

    res = env.play("github_oauth", **gh_args(github, circleci_hostname="circleci.other.example"))
    assert res.get("failed") and res["github_error"] == "redirect_uri_mismatch"
    assert "set the OAuth app's 'Authorization callback URL' on GitHub to " \
           "https://circleci.other.example/auth/github" in res["msg"]

    res = env.play("github_oauth", **gh_args(github, github_client_id="Iv1.httpapp"))
    assert res.get("failed") and "only the scheme differs" in res["msg"]
    assert env.data()["app_config"] == {}


# -- secrets under -vvv ----------------------------------------------------------
def test_vvv_output_has_no_secret(loaded, github):
    env = loaded
    env.fault(no_such_image_times=1)
    result = env.play_text(
        "all", verbosity=3, diff=True,
        license_content=license_doc("lic-vvv"), app_settings={"hostname": "ci.example.com"},
        app_secret_settings={"secret_passphrase": PASSPHRASE}, console_password=CONSOLE_PASSWORD,
        **gh_args(github))
    assert result.rc == 0, result
    assert result.recap["localhost"]["changed"] == 5
    output = result.output()
    for secret in (LICENSE_SIGNATURE, CLIENT_SECRET, CONSOLE_PASSWORD, PASSPHRASE):
        assert secret not in output
    assert "replicatedctl.py" in output  # -vvv really showed the module arguments
