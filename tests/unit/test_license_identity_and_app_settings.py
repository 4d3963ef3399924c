"""License identity without a readable ID (real, opaque .rli), the stand-in's
signed license format, and the app settings data file through its filter."""
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.circleci_server.aws.plugins.filter import app_settings as app_settings_filter
from ansible_collections.circleci_server.aws.plugins.module_utils import replicatedctl as rc
from tests.standins import replicatedctl as standin

ROOT = Path(__file__).resolve().parents[2]
STANDIN = ROOT / "tests" / "standins" / "replicatedctl.py"
LOADED = {"LicenseID": "lic-A", "ExpirationTime": "2099-01-01T00:00:00Z"}


def test_an_opaque_license_states_no_id():
    assert rc.license_id_of(standin.make_license("lic-A", "2099-01-01T00:00:00Z")) is None


def test_first_load_and_same_file_again():
    body = standin.make_license("lic-A")
    sha = rc.license_fingerprint(body)
    assert rc.license_decision(None, None, sha, {}) == (True, "no license is loaded")
    record = {"sha256": sha, "license_id": "lic-A"}
    load, why = rc.license_decision(LOADED, None, sha, record)
    assert load is False and "loaded before as license lic-A" in why


def test_another_file_or_another_loaded_license_loads():
    first, second = standin.make_license("lic-A"), standin.make_license("lic-B")
    record = {"sha256": rc.license_fingerprint(first), "license_id": "lic-A"}
    assert rc.license_decision(LOADED, None, rc.license_fingerprint(second), record)[0] is True
    # Same file, but someone loaded another license in the console since.
    other = {"LicenseID": "lic-Z"}
    load, why = rc.license_decision(other, None, rc.license_fingerprint(first), record)
    assert load is True and "lic-Z is loaded now" in why
    # No record (first run of this version on an existing install): loaded once more, harmless.
    assert rc.license_decision(LOADED, None, rc.license_fingerprint(first), {})[0] is True


def test_a_stated_id_wins_over_the_record():
    assert rc.license_decision(LOADED, "lic-A", "x", {})[0] is False
    assert rc.license_decision(LOADED, "lic-B", "x", {"sha256": "x", "license_id": "lic-A"})[0] is True
    assert rc.license_decision(LOADED, "lic-A", "x", {}, force=True) == (True, "force is set")


def test_record_is_written_0600_without_the_license(tmp_path):
    path = tmp_path / "sub" / "record.json"
    body = standin.make_license("lic-A")
    rc.write_license_record(str(path), rc.license_fingerprint(body), LOADED)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    record = rc.read_license_record(str(path))
    assert record["license_id"] == "lic-A" and record["sha256"] == rc.license_fingerprint(body)
    assert body.splitlines()[1] not in path.read_text()
    assert rc.read_license_record(str(tmp_path / "missing.json")) == {}


def test_days_until():
    now = datetime.datetime(2030, 1, 1)
    assert rc.days_until("2030-01-31T00:00:00Z", now) == 30
    assert rc.days_until("2029-12-31T00:00:00Z", now) == -1
    assert rc.days_until("", now) is None and rc.days_until("never", now) is None


def run_standin(state, *args, stdin=""):
    return subprocess.run([sys.executable, str(STANDIN), *args], input=stdin, capture_output=True, text=True,
                          env={"REPLICATEDCTL_STANDIN_STATE": str(state), "PATH": os.environ["PATH"]}, check=False)


def test_standin_loads_the_signed_format_and_rejects_tampering(tmp_path):
    state = tmp_path / "state.json"
    body = run_standin(state, "standin-make-license", "lic-S", "2099-01-01T00:00:00Z").stdout
    assert run_standin(state, "license-load", stdin=body).returncode == 0
    inspect = json.loads(run_standin(state, "license", "inspect", "-o", "json").stdout)
    assert (inspect["LicenseID"], inspect["ExpirationTime"]) == ("lic-S", "2099-01-01T00:00:00Z")
    header, blob = body.splitlines()
    tampered = header + "\n" + ("A" if blob[0] != "A" else "B") + blob[1:] + "\n"
    proc = run_standin(state, "license-load", stdin=tampered)
    assert proc.returncode == 1 and "Error: License signature is invalid" in proc.stderr


def test_standin_applies_settings_on_start_only(tmp_path):
    state = tmp_path / "state.json"
    run_standin(state, "license-load", stdin=standin.make_license("lic-S"))
    run_standin(state, "standin-set", "faults.start_seconds=0", "faults.stop_seconds=0")
    run_standin(state, "app-config", "import", stdin=json.dumps({"hostname": {"value": "one.example.com"}}))
    run_standin(state, "app", "start")
    run_standin(state, "app-config", "import", stdin=json.dumps({"hostname": {"value": "two.example.com"}}))
    run_standin(state, "app", "start")  # already started: nothing re-read
    assert json.loads(state.read_text())["app"]["RunningConfig"]["hostname"] == "one.example.com"
    run_standin(state, "app", "stop")
    run_standin(state, "app", "start")
    assert json.loads(state.read_text())["app"]["RunningConfig"]["hostname"] == "two.example.com"


# -- data/app_settings.yml -----------------------------------------------------
DATA = yaml.safe_load((ROOT / "data" / "app_settings.yml").read_text())


def test_every_key_cites_a_source_and_has_a_value_or_an_input():
    for table in ("circleci_app_settings", "circleci_hand_off_files"):
        for key, entry in DATA[table].items():
            assert entry.get("source", "").startswith("["), key
            assert ("value" in entry) != ("input" in entry), key


def test_vendor_values_and_no_keys_from_memory():
    settings = app_settings_filter.app_settings({"hostname": "ci.example.com", "secret_passphrase": "p"})
    assert settings["license_agreement"] == "license_agreement_agree"
    assert settings["allow_cluster"] == "1" and settings["storage_backend"] == "storage_backend_s3"
    assert not [key for key in DATA["circleci_app_settings"] if key.startswith("vm_")]
    assert "iam_auth_type" not in DATA["circleci_app_settings"]
    # GitHub keys only once the GitHub inputs are known.
    assert "ghe_client_id" not in settings
    with_github = app_settings_filter.app_settings({"github_client_id": "Iv1.x", "github_type": "github_type_public"})
    assert with_github["ghe_client_id"] == "Iv1.x" and with_github["ghe_type"] == "github_type_public"


def test_secret_split_and_hand_off_names():
    inputs = {"secret_passphrase": "p", "github_client_secret": "s", "hostname": "h", "queue_url": "q"}
    assert set(app_settings_filter.app_settings(inputs, part="secret")) == {"secret_passphrase", "ghe_client_secret"}
    assert "secret_passphrase" not in app_settings_filter.app_settings(inputs, part="public")
    hand_off = app_settings_filter.app_settings(inputs, table="circleci_hand_off_files")
    assert hand_off == {"circle_secret_passphrase": "p", "sqs_queue_url": "q"}
    assert set(DATA["circleci_hand_off_files"]) == {"circle_secret_passphrase", "sqs_queue_url", "s3_bucket",
                                                    "aws_region", "subnet_id", "vm_sg_id", "http_proxy",
                                                    "https_proxy", "no_proxy"}


def test_filter_errors_name_the_problem():
    with pytest.raises(AnsibleFilterError, match="table must be one of"):
        app_settings_filter.app_settings({}, table="nope")
    with pytest.raises(AnsibleFilterError, match="part must be one of"):
        app_settings_filter.app_settings({}, part="nope")
    assert app_settings_filter.app_settings({"x": True}, data={"circleci_app_settings": {
        "k": {"input": "x"}}}) == {"k": "1"}
