"""Day 2 in the demo sandbox: backup, restore, retention, license renewal (playbooks/backup.yml,
restore.yml, renew_license.yml) on one install made by the real site.yml (tests/sandbox/demo.py).

One module-scoped install (a Services machine, no Nomad client: the fleet plays no part here), then,
in this order (each test builds on the one before):
  backup -> the snapshot, the Terraform copies and the manifest are in the install's bucket;
  restore over the live install -> refused, nothing restored;
  the Services machine's data destroyed (Replicated's state: license, settings; the app's data) ->
  restore -> validation passes, the settings and the app data are the backed-up ones;
  a second backup with retention 1 -> the first backup is pruned;
  renewal with the same license (changed=false), then with another one (old and new ids reported).
The Services machine runs the replicatedctl and CircleCI app stand-ins (tests/standins/), which
reach the bucket through the sandbox's AWS endpoint as an S3-compatible endpoint.
"""
import json
import re
import subprocess
import uuid

import pytest

from tests.sandbox.hosts import free_subnet
from tests.sandbox.ansible import ansible_env
from tests.sandbox.demo import REPO_ROOT, VENV_BIN, Demo
from tests.sandbox.hosts import SystemdHost
from tests.standins.replicatedctl import make_license

pytestmark = pytest.mark.slow

STATE = "/var/lib/replicated-standin/state.json"
APP_DATA = "/var/lib/circleci-app-standin/data/app.json"


class DayTwoDemo(Demo):
    """The demo, running any playbook of the collection instead of site.yml."""

    playbook = "site.yml"

    def playbook_argv(self, inventory, vars_file, secrets_file, vault_pass, extra=()):
        argv = super().playbook_argv(inventory, vars_file, secrets_file, vault_pass, extra)
        argv[argv.index(str(REPO_ROOT / "site.yml"))] = str(REPO_ROOT / self.playbook)
        return argv

    def run(self, playbook, *extra, log_name):
        self.playbook = playbook
        try:
            # The Services machine reaches the bucket through the sandbox's AWS endpoint.
            return self.run_site(extra=["-e", f"circleci_backup_s3_endpoint={self.instance_aws_endpoint}", *extra],
                                 stream=False, log_name=log_name, boot_hosts=False)
        finally:
            self.playbook = "site.yml"


@pytest.fixture(scope="module")
def demo(base_image):
    env = DayTwoDemo(name="d2" + uuid.uuid4().hex[:4], subnet=free_subnet("10.216"),
                     nomad_clients=0)
    rc, output, _ = env.run_site(stream=False, log_name="install")
    assert rc == 0, f"site.yml failed (rc={rc}); log {env.dir / 'install.log'}\n{output[-6000:]}"
    yield env
    env.clean()


@pytest.fixture(scope="module")
def services(demo):
    instance = next(i for i in demo.instances() if i["role"] == "services")
    return SystemdHost(demo.container_name(instance["id"]))


@pytest.fixture(scope="module")
def bucket(demo):
    return json.loads((demo.install_dir / "outputs.json").read_text())["bucket_name"]


def keys(demo, bucket, prefix):
    listed = demo.moto.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def standin_state(host):
    return json.loads(host.output("cat", STATE))


def reported(output, key):
    """A value of the debug report, e.g. the backup id from 'BACKUP <id> of install'."""
    match = re.search(key, output)
    assert match, f"{key!r} not in the output:\n{output[-3000:]}"
    return match[1]


@pytest.fixture(scope="module")
def first_backup(demo, services, bucket):
    before = standin_state(services)
    rc, output, seconds = demo.run("playbooks/backup.yml", log_name="backup1")
    assert rc == 0, output[-6000:]
    print(f"backup.yml: {seconds:.1f}s")
    return {"id": reported(output, r"BACKUP (\w+) of install"), "output": output, "state": before,
            "app_data": services.output("cat", APP_DATA)}


def test_backup_puts_snapshot_terraform_copies_and_manifest_in_the_bucket(demo, bucket, first_backup):
    backup_id = first_backup["id"]
    prefix = f"circleci-backups/{demo.prefix}/{backup_id}/"
    stored = keys(demo, bucket, prefix)
    assert prefix + "manifest.json" in stored
    assert prefix + "terraform/terraform.tfstate" in stored and prefix + "terraform/terraform.tfvars" in stored
    assert [k for k in stored if k.startswith(prefix + "replicated/")], stored
    s3 = demo.moto.client("s3")
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "manifest.json")["Body"].read())
    assert manifest["prefix"] == demo.prefix and manifest["backup_id"] == backup_id
    assert manifest["replicated_snapshot"]["id"] and manifest["outputs"]["bucket_name"] == bucket
    state = s3.get_object(Bucket=bucket, Key=prefix + "terraform/terraform.tfstate")
    assert state["ServerSideEncryption"] == "AES256"
    local_state = (demo.install_dir / "terraform" / "terraform.tfstate").read_bytes()
    assert state["Body"].read() == local_state
    # The snapshot holds the settings of the moment (the stand-in's object: tests/standins/replicatedctl.py).
    snapshot_key = next(k for k in stored if k.startswith(prefix + "replicated/"))
    snapshot = json.loads(s3.get_object(Bucket=bucket, Key=snapshot_key)["Body"].read())
    assert snapshot["replicated"]["app_config"]["hostname"] == demo.hostname


def test_no_secret_in_the_backup_output_or_terraform_copies(demo, bucket, first_backup):
    secrets = demo.secret_values()
    prefix = f"circleci-backups/{demo.prefix}/{first_backup['id']}/"
    s3 = demo.moto.client("s3")
    copies = {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
              for key in keys(demo, bucket, prefix) if "/terraform/" in key or key.endswith("manifest.json")}
    for name, value in secrets.items():
        assert value not in first_backup["output"], f"{name} in the backup's output"
        for key, text in copies.items():
            assert value not in text, f"{name} in {key}"


def test_restore_over_the_live_install_is_refused(demo, services, first_backup):
    counters_before = standin_state(services)["counters"]
    rc, output, _ = demo.run("playbooks/restore.yml", log_name="restore-live")
    assert rc != 0
    assert "refusing to restore snapshot" in output and "circleci_restore_over_live=true" in output, output[-3000:]
    assert standin_state(services)["counters"].get("snapshot_restore", 0) == \
        counters_before.get("snapshot_restore", 0)


@pytest.fixture(scope="module")
def restored(demo, services, first_backup):
    # The Services machine loses its data: Replicated's (license, settings, console auth) and the app's.
    services.exec("systemctl", "stop", "circleci-app-standin")
    services.exec("rm", "-rf", "/var/lib/replicated-standin", "/var/lib/circleci-app-standin")
    services.exec("systemctl", "start", "circleci-app-standin")
    assert services.exec("replicatedctl", "license", "inspect", check=False).returncode != 0
    rc, output, seconds = demo.run("playbooks/restore.yml", log_name="restore")
    print(f"restore.yml (with validation): {seconds:.1f}s")
    return rc, output


def test_restore_brings_the_app_back_and_validation_passes(restored, first_backup):
    rc, output = restored
    assert rc == 0, output[-6000:]
    assert f"RESTORED backup {first_backup['id']}" in output
    assert "no license is loaded" in output  # what the restore found before
    assert "All checks passed" in output


def test_restored_settings_license_and_app_data_are_the_backed_up_ones(services, restored, first_backup):
    state = standin_state(services)
    assert state["app_config"] == first_backup["state"]["app_config"]
    assert state["license"]["LicenseID"] == first_backup["state"]["license"]["LicenseID"]
    assert state["app"]["State"] == "started" and state["app"]["RunningConfig"] == first_backup["state"]["app_config"]
    # The app's data is the old one (its creation stamp), not recreated.
    assert services.output("cat", APP_DATA) == first_backup["app_data"]


def test_second_backup_with_retention_one_prunes_the_first(demo, bucket, first_backup, restored):
    rc, output, _ = demo.run("playbooks/backup.yml", "-e", "circleci_backup_retention=1", log_name="backup2")
    assert rc == 0, output[-6000:]
    second = reported(output, r"BACKUP (\w+) of install")
    assert second > first_backup["id"]
    assert f"pruned: {first_backup['id']}" in output
    remaining = keys(demo, bucket, f"circleci-backups/{demo.prefix}/")
    assert remaining and all(k.startswith(f"circleci-backups/{demo.prefix}/{second}/") for k in remaining), remaining


def write_license(demo, license_id):
    path = demo.dir / f"{license_id}.rli"
    path.write_text(make_license(license_id, "2099-06-30T00:00:00Z"))
    return path


def test_renewal_with_the_same_license_changes_nothing(demo, services, restored):
    loaded = standin_state(services)["license"]["LicenseID"]
    loads = standin_state(services)["counters"]["license_load"]
    rc, output, seconds = demo.run("playbooks/renew_license.yml", log_name="renew-same")
    assert rc == 0, output[-4000:]
    print(f"renew_license.yml (same): {seconds:.1f}s")
    assert "LICENSE UNCHANGED" in output and f"license {loaded}" in output
    assert standin_state(services)["counters"]["license_load"] == loads
    assert re.search(r"ok: \[[^\]]+\]", output[output.find("TASK [Load the license"):])


def test_renewal_with_another_license_reports_old_and_new(demo, services, restored):
    old = standin_state(services)["license"]["LicenseID"]
    new_license = write_license(demo, "lic-renewed-2099")
    rc, output, _ = demo.run("playbooks/renew_license.yml", "-e", f"circleci_license_path={new_license}",
                             log_name="renew-new")
    assert rc == 0, output[-4000:]
    assert "LICENSE RENEWED" in output
    assert re.search(rf"before: license {old},\s+expires", output), output[-2000:]
    assert re.search(r"after:  license lic-renewed-2099,\s+expires 2099-06-30T00:00:00Z", output), output[-2000:]
    state = standin_state(services)
    assert state["license"]["LicenseID"] == "lic-renewed-2099" and state["app"]["State"] == "started"


def test_playbooks_are_addressable_by_fqcn():
    """`ansible-playbook circleci_server.aws.<name>` finds each day-2 playbook in the collection."""
    names = [f"circleci_server.aws.{name}" for name in ("backup", "restore", "renew_license")]
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "--syntax-check", "-i", "localhost,", *names],
                          env=ansible_env(), cwd="/", capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{names}: {proc.stdout[-1500:]}{proc.stderr[-1500:]}"
