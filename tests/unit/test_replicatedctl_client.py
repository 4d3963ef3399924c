"""The replicatedctl client (plugins/module_utils/replicatedctl.py), driven
against the replicatedctl stand-in as a real subprocess."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.circleci_server.aws.plugins.module_utils import replicatedctl as rc
from ansible_collections.circleci_server.aws.plugins.module_utils.replicatedctl import AppWaiter

STANDIN = Path(__file__).resolve().parents[1] / "standins" / "replicatedctl.py"
LICENSE = {"license_id": "lic-123", "channel_name": "Stable", "expiration_time": "2099-01-01T00:00:00Z",
           "signature": "SIGNATURE-DO-NOT-LEAK-9f8e7d"}


class Recorder:
    """Runs the stand-in for real and remembers every argv and stdin."""

    def __init__(self, state_file):
        self.state_file = state_file
        self.calls = []

    def __call__(self, argv, data=None):
        self.calls.append((list(argv), data))
        proc = subprocess.run([sys.executable, str(STANDIN)] + argv[1:], input=data or "", capture_output=True,
                              text=True, env={"REPLICATEDCTL_STANDIN_STATE": str(self.state_file),
                                              "PATH": "/usr/bin:/bin"}, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    def argv_text(self):
        return "\n".join(" ".join(argv) for argv, _data in self.calls)


def faults(state_file, **values):
    subprocess.run([sys.executable, str(STANDIN), "standin-set"]
                   + ["faults.%s=%s" % (k, json.dumps(v)) for k, v in values.items()],
                   env={"REPLICATEDCTL_STANDIN_STATE": str(state_file)}, check=True, capture_output=True)


@pytest.fixture
def cli(tmp_path):
    recorder = Recorder(tmp_path / "state.json")
    return rc.Replicatedctl(recorder, binary="replicatedctl"), recorder


def test_license_round_trip_and_content_only_on_stdin(cli):
    client, recorder = cli
    assert client.license_inspect() is None
    content = json.dumps(LICENSE)
    client.license_load(content)
    loaded = client.license_inspect()
    assert loaded["LicenseID"] == "lic-123"
    assert loaded["ChannelName"] == "Stable"
    assert loaded["ExpirationTime"] == "2099-01-01T00:00:00Z"
    assert ["replicatedctl", "license-load"] in [argv for argv, _data in recorder.calls]
    assert any(data == content for _argv, data in recorder.calls)
    assert "SIGNATURE-DO-NOT-LEAK" not in recorder.argv_text()


def test_expired_license_fails_with_the_cli_reason(cli):
    client = cli[0]
    expired = dict(LICENSE, expiration_time="2020-01-01T00:00:00Z")
    with pytest.raises(rc.ReplicatedctlError) as err:
        client.license_load(json.dumps(expired))
    assert "License has expired" in err.value.message
    assert "SIGNATURE-DO-NOT-LEAK" not in err.value.message


def test_rejected_license_reason_is_kept(cli, tmp_path):
    client = cli[0]
    faults(tmp_path / "state.json", reject_license="License signature is invalid")
    with pytest.raises(rc.ReplicatedctlError) as err:
        client.license_load(json.dumps(LICENSE))
    assert err.value.message == "replicatedctl license-load failed: License signature is invalid"


def test_secret_echoed_by_the_cli_is_masked_in_errors():
    secret = "super-secret-license-body"

    def runner(argv, data=None):
        return 1, "", "Error: cannot parse %s\n" % data

    client = rc.Replicatedctl(runner)
    with pytest.raises(rc.ReplicatedctlError) as err:
        client.license_load(secret)
    assert secret not in err.value.message and secret not in err.value.stderr
    assert rc.MASK in err.value.message


def test_daemon_down_is_a_typed_error_naming_the_host(cli, tmp_path):
    client = cli[0]
    faults(tmp_path / "state.json", daemon_down=True)
    with pytest.raises(rc.ReplicatedDaemonUnavailable) as err:
        client.app_status()
    assert rc.DEFAULT_HOST in err.value.message
    assert "replicated service running" in err.value.message


def test_host_flag_is_passed(tmp_path):
    recorder = Recorder(tmp_path / "state.json")
    faults(tmp_path / "state.json", expected_host="unix:///tmp/other.sock")
    assert rc.Replicatedctl(recorder, host="unix:///tmp/other.sock").app_status() is None
    assert recorder.calls[0][0][:3] == ["replicatedctl", "--host", "unix:///tmp/other.sock"]
    with pytest.raises(rc.ReplicatedDaemonUnavailable):
        rc.Replicatedctl(recorder).app_status()


def test_app_config_export_import_keeps_secrets_off_argv(cli):
    client, recorder = cli
    assert client.app_config_export() == {}
    client.app_config_import({"hostname": "ci.example.com", "secret_passphrase": "Passphrase12345"})
    assert client.app_config_export() == {"hostname": "ci.example.com", "secret_passphrase": "Passphrase12345"}
    assert "Passphrase12345" not in recorder.argv_text()
    payload = json.loads([data for argv, data in recorder.calls if "import" in argv][0])
    assert payload == {"hostname": {"value": "ci.example.com"}, "secret_passphrase": {"value": "Passphrase12345"}}


def test_only_secret_setting_values_are_masked_in_errors():
    def runner(argv, data=None):
        return 1, "", "Error: rejected %s\n" % data

    client = rc.Replicatedctl(runner)
    with pytest.raises(rc.ReplicatedctlError) as err:
        client.app_config_import({"hostname": "ci.example.com", "secret_passphrase": "Passphrase12345",
                                  "ldap_bind_pw": "tok-abcdef"}, secret_keys=["ldap_bind_pw"])
    assert "ci.example.com" in err.value.message
    assert "Passphrase12345" not in err.value.message and "tok-abcdef" not in err.value.message


def test_unknown_setting_fails_with_the_cli_message(cli, tmp_path):
    client = cli[0]
    faults(tmp_path / "state.json", known_config_keys=["hostname"])
    with pytest.raises(rc.ReplicatedctlError) as err:
        client.app_config_import({"hostnme": "x"})
    assert "config item hostnme not found" in err.value.message
    client.app_config_import({"hostnme": "x"}, skip_validation=True)


def test_console_password_goes_on_stdin_only(cli):
    client, recorder = cli
    assert client.console_auth_export()["Type"] == "anonymous"
    client.console_auth_import("Console-Pass-42")
    assert client.console_auth_export()["Type"] == "password"
    assert "Console-Pass-42" not in recorder.argv_text()
    stdin = [data for argv, data in recorder.calls if "import" in argv][0]
    assert json.loads(stdin) == {"Password": {"Password": "Console-Pass-42"}}
    assert "Console-Pass-42" not in Path(recorder.state_file).read_text()


def test_app_status_parsing(cli):
    client = cli[0]
    assert client.app_status() is None
    client.license_load(json.dumps(LICENSE))
    status = client.app_status()
    assert status["State"] == "stopped" and status["IsTransitioning"] is False


def test_not_json_output_is_an_error():
    client = rc.Replicatedctl(lambda argv, data=None: (0, "App is running\n", ""))
    with pytest.raises(rc.ReplicatedctlError, match="did not print JSON"):
        client.app_status()


def test_cli_message_prefers_error_lines():
    stderr = "replicatedctl STAND-IN (...)\nError: license not found\n"
    assert rc.cli_message(stderr) == "license not found"
    assert rc.cli_message("something odd happened\n") == "something odd happened"


def test_setting_values_are_strings():
    assert rc.to_setting_value(True) == "1" and rc.to_setting_value(False) == "0"
    assert rc.to_setting_value(5) == "5" and rc.to_setting_value(None) == ""


def test_changes_and_masked_diff():
    current = {"hostname": "old.example.com", "ghe_client_secret": "old-secret", "aws_region": "us-east-1"}
    desired = {"hostname": "new.example.com", "ghe_client_secret": "new-secret", "aws_region": "us-east-1",
               "s3_bucket": "b"}
    changes = rc.settings_changes(current, desired)
    assert changes == {"hostname": "new.example.com", "ghe_client_secret": "new-secret", "s3_bucket": "b"}
    diff = rc.masked_settings_diff(current, changes)
    assert diff["before"] == {"hostname": "old.example.com", "ghe_client_secret": rc.MASK, "s3_bucket": None}
    assert diff["after"]["hostname"] == "new.example.com"
    assert "secret" not in json.dumps(diff).replace("ghe_client_secret", "")


class FakeApp:
    """A scripted replicatedctl for the wait loop: start fails `no_such_image` times, then starts."""

    def __init__(self, no_such_image=0, status_error=False, never_settles=False):
        self.no_such_image = no_such_image
        self.status_error = status_error
        self.never_settles = never_settles
        self.starts = 0
        self.polls = 0

    def app_start(self):
        self.starts += 1
        if self.starts <= self.no_such_image and not self.status_error:
            raise rc.ReplicatedctlError("replicatedctl app start failed: Failure reported from operator: "
                                        "no such image")

    def app_stop(self):
        pass

    def app_status(self):
        self.polls += 1
        if self.status_error and self.starts <= self.no_such_image:
            return {"State": "stopped", "IsTransitioning": False,
                    "Error": "Failure reported from operator: no such image"}
        if self.never_settles or self.polls < 3:
            return {"State": "starting", "IsTransitioning": True, "Error": ""}
        return {"State": "started", "IsTransitioning": False, "Error": ""}


class Clock:
    def __init__(self):
        self.now = 0.0

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@pytest.mark.parametrize("status_error", [False, True], ids=["start-fails", "status-reports"])
def test_no_such_image_is_retried_within_the_bound(status_error):
    app, clock = FakeApp(no_such_image=2, status_error=status_error), Clock()
    waiter = AppWaiter(app, "started", 600, 1, 2, 10, clock=clock.time, sleep=clock.sleep)
    status = waiter.run()[0]
    assert status["State"] == "started"
    assert waiter.retries_used == 2 and app.starts == 3


def test_no_such_image_past_the_bound_fails_clearly():
    app, clock = FakeApp(no_such_image=5), Clock()
    waiter = AppWaiter(app, "started", 600, 1, 2, 10, clock=clock.time, sleep=clock.sleep)
    with pytest.raises(rc.ReplicatedctlError) as err:
        waiter.run()
    assert "no such image" in err.value.message and "after 2 retries" in err.value.message
    assert app.starts == 3


def test_wait_times_out_with_the_last_state():
    app, clock = FakeApp(never_settles=True), Clock()
    waiter = AppWaiter(app, "started", 30, 5, 0, 0, clock=clock.time, sleep=clock.sleep)
    with pytest.raises(rc.ReplicatedctlError, match="timed out after 30s .* State=starting"):
        waiter.run()


# -- secrets in output the client could not parse (issue 17) -------------------
EXPORT_SECRETS = ("Passphrase12345", "gh-client-secret-0a1b2c", "console-pw-xyz")
UNPARSED_EXPORT = ('WARNING: config cache stale\n{"hostname": {"value": "ci.example.com"}, '
                   '"secret_passphrase": {"value": "Passphrase12345"}, '
                   '"ghe_client_secret": {"value": "gh-client-secret-0a1b2c"}, '
                   '"admin_password": "console-pw-xyz"')


def _error_of(call):
    with pytest.raises(rc.ReplicatedctlError) as err:
        call()
    return err.value


def _assert_no_secret(error):
    shown = " ".join([error.message, error.stderr, " ".join(error.command)])
    for secret in EXPORT_SECRETS:
        assert secret not in shown, shown


def test_unparsed_app_config_export_is_never_echoed():
    client = rc.Replicatedctl(lambda argv, data=None: (0, UNPARSED_EXPORT, ""))
    error = _error_of(client.app_config_export)
    _assert_no_secret(error)
    assert "did not print JSON" in error.message and "bytes" in error.message


@pytest.mark.parametrize("stdout,stderr", [
    (UNPARSED_EXPORT, ""),                                 # failed, reason only on stdout
    ("", "Error: bad config " + UNPARSED_EXPORT.replace("\n", " ")),  # reason echoing the settings
    ("", 'level=error msg="secret_passphrase=Passphrase12345 ghe_client_secret: gh-client-secret-0a1b2c '
         'admin_password=\'console-pw-xyz\'"'),
])
def test_failed_export_masks_secret_values_in_every_error_path(stdout, stderr):
    client = rc.Replicatedctl(lambda argv, data=None: (1, stdout, stderr))
    error = _error_of(client.app_config_export)
    _assert_no_secret(error)
    assert rc.MASK in error.message + error.stderr


@pytest.mark.parametrize("stderr", ["Error: dial unix /var/run/replicated/replicated-cli.sock: %s",
                                    "Error: config item %s not found", "%s: no such file or directory"])
def test_secrets_read_by_export_are_masked_in_later_errors(stderr):
    # The export succeeds; a later import fails and echoes a value (any key).
    exported = json.dumps({"secret_passphrase": {"value": "Passphrase12345"}, "hostname": {"value": "h"}})
    calls = []

    def runner(argv, data=None):
        calls.append(argv)
        if "export" in argv:
            return 0, exported, ""
        return 1, "", stderr % "value Passphrase12345 rejected"

    client = rc.Replicatedctl(runner)
    client.app_config_export()
    error = _error_of(lambda: client.app_config_import({"hostname": "h2"}))
    _assert_no_secret(error)


def test_unparsed_output_of_other_commands_is_shown_masked():
    client = rc.Replicatedctl(lambda argv, data=None: (0, "oops token=tok-abcdef1234 state=started", ""))
    error = _error_of(client.app_status)
    assert "tok-abcdef1234" not in error.message
    assert "state=started" in error.message


class FakeSettingsClient:
    """app_config_export / app_config_import over a dict, as the Replicatedctl client offers them."""

    def __init__(self, current):
        self.current, self.imported = dict(current), []

    def app_config_export(self):
        return dict(self.current)

    def app_config_import(self, values, skip_validation=False, secret_keys=()):
        self.imported.append(dict(values))
        self.current.update(values)


def test_apply_settings_imports_only_what_differs_and_masks_secrets():
    from ansible_collections.circleci_server.aws.plugins.module_utils.replicatedctl import apply_settings
    client = FakeSettingsClient({"hostname": "ci.example.com", "ghe_client_secret": "old-secret-7Kq"})
    result = apply_settings(client, {"hostname": "ci.example.com", "ghe_client_secret": "new-secret-7Kq"},
                            secret_keys=["ghe_client_secret"])
    assert result["changed"] and result["changed_keys"] == ["ghe_client_secret"]
    assert client.imported == [{"ghe_client_secret": "new-secret-7Kq"}]
    assert "new-secret-7Kq" not in repr(result["diff"]) and "old-secret-7Kq" not in repr(result["diff"])
    assert apply_settings(client, {"hostname": "ci.example.com"}) == {"changed": False, "changed_keys": []}


def test_apply_settings_check_mode_and_protected_keys():
    from ansible_collections.circleci_server.aws.plugins.module_utils.replicatedctl import (
        ProtectedSettingsRefused,
        apply_settings,
    )
    client = FakeSettingsClient({"secret_passphrase": "Old1"})
    assert apply_settings(client, {"secret_passphrase": "New2"}, check_mode=True, protected=[],
                          secret_keys=["secret_passphrase"])["changed"]
    assert client.imported == []
    with pytest.raises(ProtectedSettingsRefused, match="secret_passphrase"):
        apply_settings(client, {"secret_passphrase": "New2"}, protected=["secret_passphrase"])
    assert apply_settings(client, {"secret_passphrase": "New2"}, protected=["secret_passphrase"],
                          confirm_protected=True)["changed"]
