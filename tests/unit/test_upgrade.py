"""Upgrade building blocks: the version check (filter upgrade_check), the app release choice
(module_utils ReleasePlan) driven against the replicatedctl stand-in, and the stand-in's
Replicated version after a re-install."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.circleci_server.aws.plugins.filter.upgrade_check import upgrade_check
from ansible_collections.circleci_server.aws.plugins.module_utils import replicatedctl as rc
from tests.unit.awx_data import rendered_survey

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = yaml.safe_load((ROOT / "data" / "versions.yml").read_text())
STANDIN = ROOT / "tests" / "standins" / "replicatedctl.py"
LICENSE = json.dumps({"license_id": "lic-up", "channel_name": "Stable"})


def test_later_release_is_allowed_and_tabled():
    check = upgrade_check("2.19", "2.16", VERSIONS)
    assert check["ok"] and check["allowed"] == ["2.16", "2.17", "2.18", "2.19"]
    # The table carries each row's component versions, the running release marked.
    assert "2.16 (running)" in check["table"] and "2.38.6" in check["table"] and "0.9.3" in check["table"]


def test_same_release_is_allowed_to_finish_a_stopped_upgrade():
    assert upgrade_check("2.19", "2.19", VERSIONS)["ok"]


def test_downgrade_is_refused_with_the_allowed_releases_only():
    check = upgrade_check("2.16", "2.18", VERSIONS)
    assert not check["ok"]
    assert "downgrade is refused" in check["msg"] and "older than the running 2.18" in check["msg"]
    assert check["allowed"] == ["2.18", "2.19"]
    assert "2.18 (running)" in check["msg"] and "\n2.16 " not in check["msg"]


@pytest.mark.parametrize("target", ["2.20", "3.0", "", "2.19.1"])
def test_unknown_release_is_refused_with_the_table(target):
    check = upgrade_check(target, "2.16", VERSIONS)
    assert not check["ok"] and "is not a CircleCI Server release this collection knows" in check["msg"]
    assert "2.19" in check["msg"] and "Replicated" in check["msg"]


def test_running_release_outside_the_matrix_is_an_error():
    with pytest.raises(AnsibleFilterError, match="running release '2.15'"):
        upgrade_check("2.19", "2.15", VERSIONS)


def run_standin(state_file, *args, stdin="", env=None):
    proc = subprocess.run([sys.executable, str(STANDIN), *args], input=stdin, capture_output=True, text=True,
                          env={"REPLICATEDCTL_STANDIN_STATE": str(state_file), "PATH": "/usr/bin:/bin", **(env or {})},
                          check=False)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def client(tmp_path):
    state = tmp_path / "state.json"

    def runner(argv, data=None):
        return run_standin(state, *argv[1:], stdin=data or "")

    cli = rc.Replicatedctl(runner)
    cli.license_load(LICENSE)
    cli.app_start()
    return cli, state


def test_release_plan_moves_forward_to_the_newest_release_of_the_series(client):
    cli, state = client
    plan = rc.ReleasePlan(cli.app_release_list(), "2.19")
    changed, target, active = plan.decide()
    assert changed and target["Version"] == "2.19.0" and active["Version"] == "2.16.0"
    cli.app_release_apply(target["Sequence"])
    # Replicated restarts the app on the new release; the settings it runs with are kept.
    status = cli.app_status()
    assert status["Sequence"] == target["Sequence"]
    again = rc.ReleasePlan(cli.app_release_list(), "2.19").decide()
    assert again[0] is False and again[2]["Version"] == "2.19.0"


def test_release_plan_refuses_older_and_unknown_series(client):
    cli, state = client
    cli.app_release_apply(3)  # 2.18
    with pytest.raises(rc.ReplicatedctlError, match="forward only"):
        rc.ReleasePlan(cli.app_release_list(), "2.17").decide()
    with pytest.raises(rc.ReplicatedctlError, match="no release of CircleCI Server 2.21; it offers: 2.16.0"):
        rc.ReleasePlan(cli.app_release_list(), "2.21").decide()


def test_release_apply_failure_is_reported(client):
    cli, state = client
    run_standin(state, "standin-set", 'faults.release_apply_error="Failed to pull image quay.io/circleci/x"')
    with pytest.raises(rc.ReplicatedctlError, match="Failed to pull image"):
        cli.app_release_apply(4)
    assert cli.app_status()["Sequence"] == 1


def test_standin_version_follows_the_installed_tag(tmp_path):
    defaults = tmp_path / "replicated"
    defaults.write_text("REPLICATED_TAG=2.38.6\n")
    rc_, out, err = run_standin(tmp_path / "s.json", "version", env={"REPLICATED_STANDIN_DEFAULTS": str(defaults)})
    assert rc_ == 0 and "2.38.6" in out and "STAND-IN" in err


def test_awx_upgrade_survey_offers_the_releases_after_the_first():
    question = next(q for q in rendered_survey("upgrade")["spec"] if q["variable"] == "circleci_version")
    releases = sorted(VERSIONS["circleci_server_versions"], key=lambda v: tuple(int(p) for p in v.split(".")))
    assert question["choices"] == releases[1:] and question["default"] == releases[-1]


def test_awx_templates_for_dry_run_and_upgrade():
    templates = {t["id"]: t for t in yaml.safe_load((ROOT / "awx" / "job_templates.yml").read_text())
                 ["circleci_awx_job_templates"]}
    assert templates["dry_run"]["job_type"] == "check" and templates["dry_run"]["diff_mode"] is True
    assert templates["dry_run"]["playbook"] == "playbooks/site.yml"
    # The report loads without configuration next to the playbooks AWX runs.
    assert (ROOT / "playbooks" / "callback_plugins" / "circleci_dry_run_report.py").exists()
    assert templates["upgrade"]["playbook"] == "playbooks/upgrade.yml" and templates["upgrade"]["survey"] == "upgrade"
