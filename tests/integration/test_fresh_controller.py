"""The stages run from a fresh controller, as every AWX job does (a new
execution-environment container): no install directory, no outputs.json,
no terraform.tfvars, no local state.

Provision uses the real Terraform S3 backend against moto (state and its
lock file in a bucket, `use_lockfile`), and keeps the install record
`install-record/<prefix>.json` there. Then, each from a new empty
circleci_install_dir: configure_hosts finds the outputs in S3; with no record
it stops with a message naming what is missing, before any host is touched;
teardown destroys from the S3 state and the record, snapshotting the Services
root volume first.

The backend's endpoint settings point it at moto: test-side values of
circleci_terraform_backend_config (with a key pair, which the -vvv provision
and the teardown must not show) (the provider's come from the override
file, tests/integration/infrastructure_support.py).
"""
import json
import time

import pytest

from tests.integration.infrastructure_support import install_vars, prepare_account, seed_override
from tests.sandbox.ansible import run_playbook

PREFIX = "ci-fresh"
STATE_BUCKET = "circleci-tfstate-test"
# Backend settings may hold credentials; they go to `terraform init` as
# -backend-config values and must never reach the log (docs/secrets.md).
BACKEND_SECRET = "FreshBackendSecret7Kq0123456789"
TIMES = {}


def backend_vars(server, prefix=PREFIX):
    return {
        "circleci_terraform_backend": "s3",
        "circleci_terraform_backend_config": {
            "bucket": STATE_BUCKET,
            "key": f"circleci/{prefix}/terraform.tfstate",
            "region": server.region,
            "use_lockfile": True,
            # Sandbox only: the backend talks to moto.
            "endpoints": {"s3": server.url, "sts": server.url},
            "use_path_style": True,
            "skip_credentials_validation": True,
            "skip_requesting_account_id": True,
            "skip_metadata_api_check": True,
            # moto takes any key pair.
            "access_key": "AKIAFRESHBACKEND7KQ",
            "secret_key": BACKEND_SECRET,
        },
    }


def fresh_dir(tmp_path_factory, server, name):
    """A new, empty install directory; only the test-side moto override is in it."""
    install_dir = tmp_path_factory.mktemp(name) / PREFIX
    seed_override(install_dir, server)
    return install_dir


def hostless_inventory(path):
    path.write_text("all:\n  children:\n    circleci_services:\n      hosts: {}\n    circleci_nomad_clients:\n"
                    "      hosts: {}\n")
    return path


@pytest.fixture(scope="module")
def provisioned(moto_server, terraform_bin, tmp_path_factory):
    moto_server.reset()
    account = prepare_account(moto_server, cidr="10.31.0.0/16", subnet_cidr="10.31.1.0/24")
    moto_server.client("s3").create_bucket(Bucket=STATE_BUCKET)
    install_dir = fresh_dir(tmp_path_factory, moto_server, "provision")
    extra = install_vars(PREFIX, install_dir, account, circleci_nomad_desired=1, **backend_vars(moto_server))
    env = moto_server.env()
    start = time.monotonic()
    first = run_playbook("playbooks/provision.yml", extra_vars=extra, env=env, verbosity=3)
    TIMES["provision (S3 backend, -vvv)"] = time.monotonic() - start
    assert first.rc == 0, str(first)
    assert BACKEND_SECRET not in first.output()
    start = time.monotonic()
    second = run_playbook("playbooks/provision.yml", extra_vars=extra, env=env)
    TIMES["second provision"] = time.monotonic() - start
    yield {"dir": install_dir, "vars": extra, "env": env, "server": moto_server, "account": account,
           "second": second, "outputs": json.loads((install_dir / "outputs.json").read_text())}
    print("\nfresh-controller times in the sandbox: " + ", ".join(f"{k} {v:.1f}s" for k, v in TIMES.items()))


def record(server, prefix=PREFIX):
    body = server.client("s3").get_object(Bucket=STATE_BUCKET, Key=f"install-record/{prefix}.json")["Body"]
    return json.loads(body.read())


def test_state_lives_in_s3_with_the_install_record(provisioned):
    server = provisioned["server"]
    keys = {o["Key"] for o in server.client("s3").list_objects_v2(Bucket=STATE_BUCKET)["Contents"]}
    assert f"circleci/{PREFIX}/terraform.tfstate" in keys
    assert not list((provisioned["dir"] / "terraform").glob("terraform.tfstate*"))  # nothing local
    kept = record(server)
    assert kept["prefix"] == PREFIX
    assert kept["outputs"] == provisioned["outputs"]
    assert kept["outputs"]["bucket_name"] and kept["outputs"]["queue_url"]
    assert f'prefix                          = "{PREFIX}"' in kept["terraform_tfvars"]
    assert provisioned["vars"]["circleci_secret_passphrase"] not in json.dumps(kept)
    # No lock file is left behind by a run that finished.
    assert f"circleci/{PREFIX}/terraform.tfstate.tflock" not in keys


def test_second_provision_changes_nothing(provisioned):
    second = provisioned["second"]
    assert second.rc == 0, str(second)
    assert second.changed == 0, second.recap()


def test_configure_hosts_finds_the_outputs_in_s3(provisioned, tmp_path):
    install_dir = tmp_path / "empty" / PREFIX  # does not even exist
    # Only the outputs are under test here: the input checks are test_bad_inputs.py's.
    # configure_hosts also publishes the clients' bootstrap bundle: for the controller's own python (the
    # Ubuntu 16.04 pins need Galaxy for community.docker 3.x, unreachable here).
    extra = {"circleci_prefix": PREFIX, "circleci_install_dir": str(install_dir), "circleci_checks_done": ["inputs"],
             "circleci_fleet_bootstrap_node_os": "debian 12", **backend_vars(provisioned["server"])}
    result = run_playbook("playbooks/configure_hosts.yml", inventory=hostless_inventory(tmp_path / "hosts.yml"),
                          extra_vars=extra, env=dict(provisioned["env"], ANSIBLE_STDOUT_CALLBACK="ansible.posix.json"))
    assert result.rc == 0, str(result)
    doc = json.loads(result.stdout)
    facts = [host["ansible_facts"] for play in doc["plays"] for task in play["tasks"]
             for host in task["hosts"].values() if "circleci_infrastructure" in host.get("ansible_facts", {})]
    assert facts and facts[-1]["circleci_infrastructure"] == provisioned["outputs"]


def test_no_outputs_anywhere_stops_before_any_host(provisioned, tmp_path):
    inventory = tmp_path / "hosts.yml"
    # A host that cannot be reached: touching it would fail with "No such container".
    inventory.write_text("all:\n  children:\n    circleci_services:\n      hosts:\n        never-touched:\n"
                         "          ansible_connection: community.docker.docker\n"
                         "          ansible_host: no-such-container-h17\n")
    never = "ci-never"
    extra = {"circleci_prefix": never, "circleci_install_dir": str(tmp_path / never),
             "circleci_checks_done": ["inputs"],
             **backend_vars(provisioned["server"], never)}
    result = run_playbook("playbooks/configure_hosts.yml", inventory=inventory, extra_vars=extra,
                          env=provisioned["env"])
    assert result.rc != 0
    output = result.output()
    assert f"The Terraform outputs of install {never} were not found" in output, output[-3000:]
    assert f"s3://{STATE_BUCKET}/install-record/{never}.json" in output
    assert "Run the provision stage" in output
    assert "never-touched" not in output  # no task ran on the host

    # Without a backend or record bucket it says which setting is missing.
    plain = {"circleci_prefix": never, "circleci_install_dir": str(tmp_path / never),
             "circleci_checks_done": ["inputs"]}
    result = run_playbook("playbooks/configure_hosts.yml", inventory=inventory, extra_vars=plain,
                          env=provisioned["env"])
    assert result.rc != 0
    assert "no install record bucket is set (circleci_install_record_bucket" in result.output()
    assert "never-touched" not in result.output()


def test_teardown_from_a_fresh_controller_snapshots_and_destroys(provisioned, tmp_path_factory):
    server = provisioned["server"]
    ec2 = server.client("ec2")
    services_id = provisioned["outputs"]["services_instance_id"]
    instance = ec2.describe_instances(InstanceIds=[services_id])["Reservations"][0]["Instances"][0]
    root_volume = next(m["Ebs"]["VolumeId"] for m in instance["BlockDeviceMappings"]
                       if m["DeviceName"] == instance["RootDeviceName"])
    install_dir = fresh_dir(tmp_path_factory, server, "teardown")
    extra = {"circleci_prefix": PREFIX, "circleci_teardown_confirm": PREFIX, "circleci_install_dir": str(install_dir),
             "circleci_terraform_binary": provisioned["vars"]["circleci_terraform_binary"],
             **backend_vars(server)}
    start = time.monotonic()
    result = run_playbook("playbooks/teardown.yml", extra_vars=extra, env=provisioned["env"])
    TIMES["teardown from a fresh controller"] = time.monotonic() - start
    assert result.rc == 0, str(result)
    assert BACKEND_SECRET not in result.output()

    snapshots = ec2.describe_snapshots(Filters=[{"Name": "tag:circleci:install", "Values": [PREFIX]}])["Snapshots"]
    assert [s["VolumeId"] for s in snapshots] == [root_volume]
    assert f"Snapshot of the Services root volume: {snapshots[0]['SnapshotId']}" in result.output()

    running = [i for r in ec2.describe_instances(Filters=[
        {"Name": "tag:circleci:install", "Values": [PREFIX]},
        {"Name": "instance-state-name", "Values": ["pending", "running"]}])["Reservations"] for i in r["Instances"]]
    assert running == []
    counts = server.resource_counts()
    assert counts["autoscaling_groups"] == 0 and counts["iam_roles"] == 0 and counts["queues"] == 0
    assert provisioned["outputs"]["bucket_name"] in {b["Name"] for b in server.client("s3").list_buckets()["Buckets"]}
    keys = {o["Key"] for o in server.client("s3").list_objects_v2(Bucket=STATE_BUCKET).get("Contents", [])}
    assert f"install-record/{PREFIX}.json" not in keys  # a later stage cannot find a destroyed install


def test_teardown_can_skip_the_snapshot(moto_server, terraform_bin, tmp_path_factory):
    """circleci_teardown_snapshot=false: no snapshot (local backend, small install)."""
    moto_server.reset()
    account = prepare_account(moto_server, cidr="10.32.0.0/16", subnet_cidr="10.32.1.0/24")
    install_dir = fresh_dir(tmp_path_factory, moto_server, "nosnap")
    extra = install_vars("ci-nosnap", install_dir, account, circleci_nomad_desired=1)
    env = moto_server.env()
    provision = run_playbook("playbooks/provision.yml", extra_vars=extra, env=env)
    assert provision.rc == 0, str(provision)
    extra.update(circleci_teardown_confirm="ci-nosnap", circleci_teardown_snapshot=False)
    result = run_playbook("playbooks/teardown.yml", extra_vars=extra, env=env)
    assert result.rc == 0, str(result)
    assert moto_server.client("ec2").describe_snapshots(
        Filters=[{"Name": "tag:circleci:install", "Values": ["ci-nosnap"]}])["Snapshots"] == []
    assert "No snapshot of the Services root volume was taken" in result.output()
