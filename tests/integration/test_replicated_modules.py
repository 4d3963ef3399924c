"""The replicatedctl and GitHub OAuth modules, run through ansible-playbook on
localhost against the stand-ins (tests/standins/replicatedctl.py, github.py).

Each module: check mode changes nothing, first run changed, second unchanged,
diff right, failures carry their own explanation, and -vvv leaks no secret.
To keep wall time small, the happy path runs all five modules per
ansible-playbook run (module-scoped), failures one run each.
"""
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sandbox.ansible import run_playbook
from tests.standins.github import GitHubStandIn
from tests.standins.replicatedctl import make_license

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
        """The one task's result dict (for a single-tag run)."""
        return self.play_full(tag, **kwargs)[1]

    def play_all(self, **kwargs):
        """Every task, in one run: {task name: result dict}, plus the AnsibleResult."""
        result = self.play_text("all", callback="ansible.posix.json", **kwargs)
        tasks = json.loads(result.stdout)["plays"][0]["tasks"]
        return result, {t["task"]["name"]: t["hosts"]["localhost"] for t in tasks}


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


def all_args(github, settings_file, **extra):
    args = gh_args(github)
    args.update(license_content=license_doc("lic-001"),
                app_settings={"hostname": "ci.example.com", "aws_region": "us-east-1", "allow_cluster": True},
                app_secret_settings={"secret_passphrase": PASSPHRASE}, app_settings_file=str(settings_file),
                console_password=CONSOLE_PASSWORD)
    args.update(extra)
    return args


@pytest.fixture
def env(tmp_path):
    return Env(tmp_path)


@pytest.fixture
def loaded(env):
    proc = env.standin("license-load", stdin=license_doc())
    assert proc.returncode == 0, proc.stderr
    env.fault(start_seconds=0.3, stop_seconds=0.2)
    return env


@pytest.fixture(scope="module")
def happy(tmp_path_factory, github):
    """check mode, first run, second run, then a run changing every input: all five modules each time."""
    tmp = tmp_path_factory.mktemp("happy")
    env = Env(tmp)
    env.fault(start_seconds=0.3, stop_seconds=0.2)
    env.standin("app-config", "import", stdin=json.dumps({"hostname": {"value": "old.example.com"},
                                                          "aws_region": {"value": "us-east-1"}}))
    settings_file = tmp / "settings.json"
    settings_file.write_text(json.dumps({"storage_backend": {"value": "storage_backend_s3"}}))
    args = all_args(github, settings_file)
    runs = {"before": env.data()}
    runs["check"] = env.play_all(check=True, diff=True, **args)
    runs["after_check"] = env.data()
    runs["first"] = env.play_all(diff=True, **args)
    runs["after_first"] = env.data()
    runs["second"] = env.play_all(diff=True, **args)
    runs["after_second"] = env.data()
    runs["changed"] = env.play_all(diff=True, **dict(
        args, license_content=license_doc("lic-002"), console_password=CONSOLE_PASSWORD + "2",
        console_update_password="always", github_type="enterprise", github_enterprise_host="ghe.example.com",
        app_state="stopped"))
    runs["after_changed"] = env.data()
    return runs


def test_happy_runs_succeed(happy):
    for run in ("check", "first", "second", "changed"):
        result = happy[run][0]
        assert result.rc == 0, result


def test_check_mode_changes_nothing_but_reports_changes(happy):
    tasks = happy["check"][1]
    assert all(task["changed"] for task in tasks.values()), tasks
    for key in ("license", "app_config", "console_auth", "app"):
        assert happy["after_check"][key] == happy["before"][key]
    assert tasks["License"]["diff"]["after"]["license_id"] == "lic-001"


def test_second_run_changes_nothing(happy):
    result, tasks = happy["second"]
    assert not any(task["changed"] for task in tasks.values()), tasks
    assert happy["after_second"]["counters"] == happy["after_first"]["counters"] | {
        "app_start": happy["after_first"]["counters"]["app_start"]}


# -- replicated_license ------------------------------------------------------
def test_license_loaded_once_then_replaced(happy):
    first = happy["first"][1]["License"]
    assert first["changed"] is True
    assert (first["license_id"], first["channel"], first["expiration_time"]) == ("lic-001", "Stable",
                                                                                  "2099-12-31T00:00:00Z")
    assert happy["second"][1]["License"]["license_id"] == "lic-001"
    assert happy["after_second"]["counters"]["license_load"] == 1
    replaced = happy["changed"][1]["License"]
    assert replaced["changed"] is True and replaced["previous_license_id"] == "lic-001"
    assert replaced["license_id"] == "lic-002"


def test_license_from_a_path_on_the_host(env, tmp_path):
    lic = tmp_path / "license.rli"
    lic.write_text(license_doc("lic-path"))
    res = env.play("license", license_path=str(lic))
    assert res["changed"] is True and res["license_id"] == "lic-path"


def test_expired_and_rejected_licenses_fail_with_the_cli_reason(env):
    res = env.play("license", license_content=license_doc(expires="2021-01-01T00:00:00Z"))
    assert res.get("failed") and "License has expired (expiration time 2021-01-01T00:00:00Z)" in res["msg"]
    env.fault(reject_license="License signature is invalid")
    res = env.play("license", license_content=license_doc())
    assert res.get("failed") and res["msg"].endswith("License signature is invalid")
    assert LICENSE_SIGNATURE not in json.dumps(res)


# -- replicated_app_config ---------------------------------------------------
def test_app_config_sets_only_changed_keys_with_masked_diff(happy):
    result, tasks = happy["first"]
    res = tasks["App settings"]
    assert res["changed"] is True
    assert res["changed_keys"] == ["allow_cluster", "hostname", "secret_passphrase", "storage_backend"]
    assert res["diff"]["before"]["hostname"] == "old.example.com"
    assert res["diff"]["after"]["hostname"] == "ci.example.com"
    assert res["diff"]["after"]["allow_cluster"] == "1"
    assert "aws_region" not in res["diff"]["after"]
    assert res["diff"]["after"]["secret_passphrase"].startswith("********")
    assert PASSPHRASE not in result.stdout
    config = happy["after_first"]["app_config"]
    assert config["secret_passphrase"] == PASSPHRASE and config["storage_backend"] == "storage_backend_s3"
    assert happy["second"][1]["App settings"]["changed_keys"] == []


# -- replicated_console_auth -------------------------------------------------
def test_console_password_set_once_then_on_demand(happy):
    assert happy["first"][1]["Console password"]["previous_auth_type"] == "anonymous"
    assert happy["after_first"]["console_auth"]["Type"] == "password"
    assert happy["after_second"]["counters"]["console_auth_import"] == 1
    assert happy["changed"][1]["Console password"]["changed"] is True
    assert happy["after_changed"]["counters"]["console_auth_import"] == 2


# -- replicated_app ------------------------------------------------------------
def test_app_start_waits_until_started_then_stops(happy):
    check = happy["check"][1]["App state"]
    # No license yet in check mode, so no app: it says what would happen.
    assert check["changed"] is True and check["diff"]["after"] == {"state": "started"}
    first = happy["first"][1]["App state"]
    assert first["status"]["State"] == "started" and first["status"]["IsTransitioning"] is False
    assert first["elapsed"] >= 0.2 and first["image_retries_used"] == 0
    stopped = happy["changed"][1]["App state"]
    assert stopped["changed"] is True and stopped["status"]["State"] == "stopped"


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


def test_app_without_license_is_stopped_already_and_cannot_start(env):
    res = env.play("app", app_state="stopped")
    assert res["changed"] is False and not res.get("failed")
    res = env.play("app")
    assert res.get("failed") and "load the license first" in res["msg"]


def test_daemon_down_fails_with_a_hint(loaded):
    env = loaded
    env.fault(daemon_down=True)
    res = env.play("app")
    assert res.get("failed") and "cannot reach the Replicated daemon" in res["msg"]


# -- github_oauth --------------------------------------------------------------
def test_github_oauth_checks_then_sets_settings_once(happy):
    check = happy["check"][1]["GitHub OAuth app"]
    assert check["github_error"] == "bad_verification_code"
    result, tasks = happy["first"]
    res = tasks["GitHub OAuth app"]
    assert res["changed"] is True and res["callback_url"] == CALLBACK
    assert res["changed_keys"] == ["ghe_client_id", "ghe_client_secret", "ghe_type"]
    assert res["diff"]["after"]["ghe_type"] == "github_type_public"
    assert CLIENT_SECRET not in result.stdout
    config = happy["after_first"]["app_config"]
    assert (config["ghe_type"], config["ghe_client_id"], config["ghe_client_secret"]) == (
        "github_type_public", "Iv1.circleci", CLIENT_SECRET)
    enterprise = happy["changed"][1]["GitHub OAuth app"]
    assert enterprise["changed_keys"] == ["ghe_domain", "ghe_type"]
    assert happy["after_changed"]["app_config"]["ghe_domain"] == "ghe.example.com"


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

    # A callback whose scheme is not the install's passes GitHub's check but is warned about.
    res = env.play("github_oauth", check=True, **gh_args(github, github_client_id="Iv1.httpapp",
                                                         github_callback_url="http://ci.example.com/auth/github"))
    assert not res.get("failed") and res["github_error"] == "bad_verification_code"
    assert any("uses http but the install uses https" in w for w in res.get("warnings", [])), res


# -- secrets under -vvv ----------------------------------------------------------
def test_vvv_output_has_no_secret(env, github, tmp_path):
    env.fault(no_such_image_times=1, start_seconds=0.3)
    settings_file = tmp_path / "settings.json"
    settings_file.write_text("{}")
    result = env.play_text("all", verbosity=3, diff=True, **all_args(github, settings_file))
    assert result.rc == 0, result
    assert result.recap["localhost"]["changed"] == 5
    output = result.output()
    for secret in (LICENSE_SIGNATURE, CLIENT_SECRET, CONSOLE_PASSWORD, PASSPHRASE):
        assert secret not in output
    assert "replicatedctl.py" in output  # -vvv really showed the module arguments


# -- a changed console password is applied (update_password=on_change) --------
def test_changed_console_password_is_applied_once_then_idempotent(env, tmp_path):
    fingerprint = tmp_path / "circleci" / "console_password.fingerprint"
    # A console protected by the first install (replicated.conf), no fingerprint yet: set once.
    env.standin("console-auth", "import", stdin=json.dumps({"Password": {"Password": "first-install-pw"}}))
    args = dict(console_password=CONSOLE_PASSWORD, console_update_password="on_change",
                console_fingerprint_path=str(fingerprint))
    first = env.play("console_auth", **args)
    assert first["changed"] is True and env.data()["counters"]["console_auth_import"] == 2
    assert oct(fingerprint.stat().st_mode & 0o777) == "0o600"
    assert CONSOLE_PASSWORD not in fingerprint.read_text()
    assert env.play("console_auth", **args)["changed"] is False
    # The user changes the password: applied, not silently ignored.
    result = env.play_text("console_auth", verbosity=3, **dict(args, console_password=CONSOLE_PASSWORD + "-new"))
    assert result.rc == 0 and result.recap["localhost"]["changed"] == 1, result
    assert env.data()["counters"]["console_auth_import"] == 3
    assert CONSOLE_PASSWORD not in result.stdout
    assert env.play("console_auth", **dict(args, console_password=CONSOLE_PASSWORD + "-new"))["changed"] is False


# -- a changed passphrase is refused unless confirmed --------------------------
def test_changed_passphrase_is_refused_unless_confirmed(env):
    env.standin("app-config", "import", stdin=json.dumps({"secret_passphrase": {"value": PASSPHRASE}}))
    args = dict(app_secret_settings={"secret_passphrase": PASSPHRASE + "X"},
                app_protected_settings=["secret_passphrase"])
    result, refused = env.play_full("app_config", **args)
    assert refused.get("failed") is True
    assert "refusing to change secret_passphrase" in refused["msg"]
    assert "circleci_secret_passphrase_change_confirm" in refused["msg"]
    assert PASSPHRASE not in result.stdout
    assert env.data()["app_config"]["secret_passphrase"] == PASSPHRASE
    confirmed = env.play("app_config", app_confirm_protected_changes=True, **args)
    assert confirmed["changed"] is True and env.data()["app_config"]["secret_passphrase"] == PASSPHRASE + "X"
    # The same value, or a first value on an empty setting, needs no confirmation.
    assert env.play("app_config", **args)["changed"] is False


# -- real-format (opaque, signed) licenses -------------------------------------
def test_opaque_license_second_run_unchanged_another_license_changed(env, tmp_path):
    """A license the module cannot read an ID from (like a real .rli): identity comes from `license inspect`."""
    first_license = make_license("lic-opaque-1", "2099-12-31T00:00:00Z")
    first = env.play("license", license_content=first_license)
    assert first["changed"] is True
    assert (first["license_id"], first["expiration_time"]) == ("lic-opaque-1", "2099-12-31T00:00:00Z")
    again = env.play("license", license_content=first_license)
    assert again["changed"] is False and again["license_id"] == "lic-opaque-1", again
    assert "loaded before as license lic-opaque-1" in again["reason"]
    assert env.data()["counters"]["license_load"] == 1
    other = env.play("license", license_content=make_license("lic-opaque-2", "2099-12-31T00:00:00Z"))
    assert other["changed"] is True and other["previous_license_id"] == "lic-opaque-1"
    assert other["license_id"] == "lic-opaque-2"
    assert env.data()["counters"]["license_load"] == 2
    lic = tmp_path / "license.rli"
    lic.write_text(make_license("lic-opaque-2", "2099-12-31T00:00:00Z"))
    from_path = env.play("license", license_path=str(lic))
    assert from_path["changed"] is False, from_path
    body = first_license.splitlines()[1]
    assert body not in (env.state.parent / "state.json.license-record.json").read_text()


def test_license_expiring_soon_warns(env):
    soon = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    res = env.play("license", license_content=make_license("lic-soon", soon))
    assert res["changed"] is True and res["expires_in_days"] in (9, 10)
    assert any("expires on %s" % soon in warning for warning in res.get("warnings", [])), res


# -- settings take effect on (re)start -----------------------------------------
def test_running_app_picks_up_changed_settings_only_through_restart(loaded):
    env = loaded
    assert env.play("app_config", app_settings={"hostname": "one.example.com"})["changed"] is True
    assert env.play("app")["changed"] is True
    assert env.data()["app"]["RunningConfig"]["hostname"] == "one.example.com"
    assert env.play("app_config", app_settings={"hostname": "two.example.com"})["changed"] is True
    # started: an already started app is left as it is and keeps running the old settings
    assert env.play("app")["changed"] is False
    assert env.data()["app"]["RunningConfig"]["hostname"] == "one.example.com"
    restarted = env.play("app", app_state="restarted")
    assert restarted["changed"] is True and restarted["restarted"] is True
    assert restarted["status"]["State"] == "started"
    assert env.data()["app"]["RunningConfig"]["hostname"] == "two.example.com"
    assert env.data()["counters"]["app_start"] == 2
