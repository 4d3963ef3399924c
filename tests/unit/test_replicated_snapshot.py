"""ReplicatedSnapshots (plugins/module_utils/replicated_snapshot.py), driven directly: against the
replicatedctl stand-in as a real subprocess (local store), and against canned CLI answers for the
shapes the stand-in does not produce."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.circleci_server.aws.plugins.module_utils import replicatedctl as rc
from ansible_collections.circleci_server.aws.plugins.module_utils.replicated_snapshot import (
    ReplicatedSnapshots,
    SnapshotError,
    choose_snapshot,
    install_is_live,
)

STANDIN = Path(__file__).resolve().parents[1] / "standins" / "replicatedctl.py"
SECRET = "s3-Secret-Key-0b9d8c7a6f5e4d3c"


class StandIn:
    """Runs the stand-in for real; remembers every argv."""

    def __init__(self, tmp_path):
        self.env = {"REPLICATEDCTL_STANDIN_STATE": str(tmp_path / "state.json"),
                    "REPLICATEDCTL_STANDIN_APP_DATA": str(tmp_path / "appdata"), "PATH": "/usr/bin:/bin"}
        self.app_data = tmp_path / "appdata"
        self.calls = []

    def __call__(self, argv, data=None):
        self.calls.append(list(argv))
        proc = subprocess.run([sys.executable, str(STANDIN)] + argv[1:], input=data or "", capture_output=True,
                              text=True, env=self.env, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    def cli(self, *args, stdin=""):
        return self(["replicatedctl", *args], stdin)


class Canned:
    """Answers each argv prefix with a fixed (rc, stdout, stderr)."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, argv, data=None):
        self.calls.append(list(argv))
        for prefix, answer in self.answers:
            if argv[1:1 + len(prefix)] == prefix:
                return answer(argv) if callable(answer) else answer
        return 1, "", "Error: unexpected command %s" % argv


@pytest.fixture
def standin(tmp_path):
    runner = StandIn(tmp_path)
    lic = runner.cli("standin-make-license", "lic-a")[1]
    assert runner.cli("license-load", stdin=lic)[0] == 0
    assert runner.cli("app-config", "set", "hostname", "--value", "ci.example.com")[0] == 0
    runner.app_data.mkdir()
    (runner.app_data / "app.json").write_text('{"builds": 42}')
    return runner


def local_snapshots(runner, tmp_path):
    return ReplicatedSnapshots(rc.Replicatedctl(runner), store="local", path=str(tmp_path / "snaps"))


def test_start_returns_the_new_snapshot_and_restore_brings_settings_and_data_back(standin, tmp_path):
    snapshots = local_snapshots(standin, tmp_path)
    assert snapshots.list() == []
    first = snapshots.start()
    second = snapshots.start()
    assert first["id"] != second["id"] and first["finished"] and second["finished"]
    assert [s["id"] for s in snapshots.list()] == [first["id"], second["id"]]  # oldest first
    start_calls = [argv for argv in standin.calls if argv[1:3] == ["snapshot", "start"]]
    assert start_calls[0][1:] == ["snapshot", "start", "--wait", "--store", "local", "--path", str(tmp_path / "snaps")]

    # The data goes: a replaced machine has neither license, settings nor app data.
    Path(standin.env["REPLICATEDCTL_STANDIN_STATE"]).unlink()
    (standin.app_data / "app.json").unlink()
    client = rc.Replicatedctl(standin)
    assert client.license_inspect() is None
    snapshots.restore(first["id"])
    assert client.license_inspect()["LicenseID"] == "lic-a"
    assert client.app_config_export()["hostname"] == "ci.example.com"
    assert json.loads((standin.app_data / "app.json").read_text()) == {"builds": 42}
    assert client.app_status()["State"] == "stopped"  # the playbook starts it
    restore = [argv for argv in standin.calls if argv[1:3] == ["snapshot", "restore"]][0]
    assert restore[1:5] == ["snapshot", "restore", first["id"], "--dismiss-preflight-checks"]


def test_exclude_app_data_leaves_the_app_data_out(standin, tmp_path):
    snapshots = local_snapshots(standin, tmp_path)
    taken = snapshots.start(exclude_app_data=True)
    assert taken["appData"] is False
    (standin.app_data / "app.json").unlink()
    snapshots.restore(taken["id"])
    assert not (standin.app_data / "app.json").exists()


def test_s3_store_flags_and_secret_masked_in_errors():
    runner = Canned([(["snapshot", "ls"], (1, "", "Error: AccessDenied for key %s in bucket b" % SECRET))])
    snapshots = ReplicatedSnapshots(rc.Replicatedctl(runner), s3_bucket="b", s3_folder="/circleci-backups/ci/1/",
                                    s3_region="us-east-1", s3_key_id="AKIAEXAMPLE", s3_secret_key=SECRET,
                                    s3_endpoint="http://s3.local:9000")
    assert snapshots.destination == "s3://b/circleci-backups/ci/1"
    with pytest.raises(rc.ReplicatedctlError) as error:
        snapshots.list()
    assert SECRET not in error.value.message and "AccessDenied" in error.value.message
    argv = runner.calls[0]
    assert argv[1:] == ["snapshot", "ls", "--store", "s3", "--s3-bucket", "b", "--s3-folder", "circleci-backups/ci/1",
                        "--s3-region", "us-east-1", "--s3-compatible-endpoint", "http://s3.local:9000",
                        "--s3-key-id", "AKIAEXAMPLE", "--s3-secret-key", SECRET, "-o", "json"]


def test_incomplete_store_settings_are_refused_before_any_call():
    with pytest.raises(SnapshotError, match="s3_folder"):
        ReplicatedSnapshots(rc.Replicatedctl(Canned([])), s3_bucket="b", s3_region="r")
    with pytest.raises(SnapshotError, match="both s3_key_id and s3_secret_key"):
        ReplicatedSnapshots(rc.Replicatedctl(Canned([])), s3_bucket="b", s3_folder="f", s3_region="r",
                            s3_key_id="AKIA")
    with pytest.raises(SnapshotError, match="absolute path"):
        ReplicatedSnapshots(rc.Replicatedctl(Canned([])), store="local", path="relative/dir")


def test_start_fails_when_no_new_snapshot_appears():
    listing = json.dumps([{"id": "old", "finished": "2026-01-01T00:00:00Z"}])
    runner = Canned([(["snapshot", "ls"], (0, listing, "")), (["snapshot", "start"], (0, "", ""))])
    snapshots = ReplicatedSnapshots(rc.Replicatedctl(runner), s3_bucket="b", s3_folder="f", s3_region="r")
    with pytest.raises(SnapshotError, match="no new snapshot is listed in s3://b/f"):
        snapshots.start()


def test_ls_output_that_is_not_a_list_of_snapshots_is_an_error():
    runner = Canned([(["snapshot", "ls"], (0, '{"id": "x"}', ""))])
    snapshots = ReplicatedSnapshots(rc.Replicatedctl(runner), s3_bucket="b", s3_folder="f", s3_region="r")
    with pytest.raises(SnapshotError, match="expected a JSON array"):
        snapshots.list()
    runner = Canned([(["snapshot", "ls"], (0, "null\n", ""))])  # an empty destination
    assert ReplicatedSnapshots(rc.Replicatedctl(runner), s3_bucket="b", s3_folder="f", s3_region="r").list() == []


def test_choose_snapshot_newest_finished_or_the_one_asked_for():
    listed = [{"id": "b", "finished": "2026-12-02T00:00:00Z"}, {"id": "a", "finished": "2026-12-03T00:00:00Z"},
              {"id": "running", "finished": ""}]
    assert choose_snapshot(listed)["id"] == "a"
    assert choose_snapshot(listed, "b")["id"] == "b"
    with pytest.raises(SnapshotError, match="snapshot zzz is not in this destination; it holds: b, a, running"):
        choose_snapshot(listed, "zzz")
    with pytest.raises(SnapshotError, match="no finished snapshot"):
        choose_snapshot([{"id": "running", "finished": ""}])


@pytest.mark.parametrize("license_info,status,live", [
    (None, None, False),
    ({"LicenseID": "l"}, {"State": "started", "DesiredState": "started"}, True),
    ({"LicenseID": "l"}, {"State": "starting", "DesiredState": "started"}, True),
    ({"LicenseID": "l"}, {"State": "stopped", "DesiredState": "started"}, True),
    ({"LicenseID": "l"}, {"State": "stopped", "DesiredState": "stopped"}, False),
    ({"LicenseID": "l"}, None, False),
])
def test_install_is_live(license_info, status, live):
    assert install_is_live(license_info, status)[0] is live
