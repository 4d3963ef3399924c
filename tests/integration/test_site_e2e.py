"""The whole install through the real site.yml, in the demo sandbox (tests/sandbox/demo.py).

One module-scoped environment, two runs, many assertions:
  run 1 (-vvv): moto + Terraform + the inventory plugin + one container per EC2
         instance + every role + the app modules + validation; the replicatedctl
         stand-in answers the first `app start` with "no such image";
  run 2: the same again must change nothing.
Then the secrets: none of them in run 1's -vvv output, in the Terraform working
directory's listing, or in the hosts' logs; every file holding one is 0600.
"""
import json
import re
import stat
import uuid

import pytest

from tests.sandbox.hosts import free_subnet
from tests.sandbox.aws import DUMMY_SECRET_KEY
from tests.sandbox.demo import Demo

pytestmark = pytest.mark.slow

NOMAD_CLIENTS = 2


@pytest.fixture(scope="module")
def demo(base_image):
    name = "e2e" + uuid.uuid4().hex[:4]
    env = Demo(name=name, subnet=free_subnet("10.214"), nomad_clients=NOMAD_CLIENTS)

    def no_such_image_once(instance, host):
        # Before the roles run: the replicatedctl stand-in will fail the first `app start`
        # with "Failure reported from operator: no such image", as a fresh install can.
        if instance["role"] == "services":
            host.exec("mkdir", "-p", "/var/lib/replicated-standin")
            host.exec("sh", "-c", "umask 077; printf '%s' '{\"faults\": {\"no_such_image_times\": 1}}' "
                                  "> /var/lib/replicated-standin/state.json")

    env.boot_hooks.append(no_such_image_once)
    yield env
    env.clean()


@pytest.fixture(scope="module")
def first_run(demo):
    rc, output, seconds = demo.run_site(extra=["-vvv"], stream=False, log_name="run1")
    assert rc == 0, f"site.yml failed (rc={rc}); log {demo.dir / 'run1.log'}\n{output[-8000:]}"
    return output


@pytest.fixture(scope="module")
def second_run(demo, first_run):
    rc, output, seconds = demo.run_site(stream=False, log_name="run2")
    assert rc == 0, f"second site.yml failed (rc={rc}):\n{output[-8000:]}"
    return output


@pytest.fixture(scope="module")
def secret_values(demo, first_run):
    values = demo.secret_values()
    values["license"] = (demo.dir / "license.rli").read_text()
    values["aws_secret_key"] = DUMMY_SECRET_KEY
    return values


def recap(output):
    hosts = {}
    for line in output[output.rfind("PLAY RECAP"):].splitlines()[1:]:
        match = re.match(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", line.strip())
        if match:
            hosts[match[1]] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match[2])}
    return hosts


def test_first_run_installs_every_host(demo, first_run):
    hosts = recap(first_run)
    instances = demo.instances()
    assert len([i for i in instances if i["role"] == "services"]) == 1
    assert len([i for i in instances if i["role"] == "nomad_client"]) == NOMAD_CLIENTS
    for instance in instances:
        assert instance["id"] in hosts, f"{instance['id']} was not configured: {hosts}"
        assert hosts[instance["id"]]["failed"] == 0 and hosts[instance["id"]]["unreachable"] == 0


def test_validation_names_each_check_and_passes(first_run):
    for check in ("CHECK the Services machine listens on its ports", "CHECK the app state is started",
                  "CHECK the web app answers over HTTP and HTTPS on the Services machine",
                  "CHECK every Nomad client is registered with the Nomad server",
                  "CHECK the Nomad agent service is running", "CHECK the client resolves the Services host name"):
        assert f"TASK [{check}" in first_run
    assert "All checks passed" in first_run


def test_supply_chain_and_tls_are_said_in_the_output(demo, first_run):
    # The stand-in Nomad release is signed with the test key the demo points the role at.
    assert "carries a good signature from the release key" in first_run
    # No installer checksum pinned: trusted on first use, recorded in the install directory.
    assert "TRUST ON FIRST USE" in first_run
    assert list(demo.install_dir.glob("replicated-installer-*.sha256"))
    # No certificate given: the self-signed bootstrap certificate is warned about.
    assert "WARNING: the admin console" in first_run and "SELF-SIGNED" in first_run


def test_the_running_app_has_every_setting(demo, first_run):
    """The app runs with the vendor's values (settings take effect on start in the stand-in)."""
    from tests.sandbox.hosts import SystemdHost

    services = next(i for i in demo.instances() if i["role"] == "services")
    host = SystemdHost(demo.container_name(services["id"]))
    state = json.loads(host.output("cat", "/var/lib/replicated-standin/state.json"))
    running = state["app"]["RunningConfig"]
    assert running["license_agreement"] == "license_agreement_agree"
    assert running["hostname"] == demo.hostname and running["ghe_type"] == "github_type_public"
    assert running["allow_cluster"] == "1" and running["storage_backend"] == "storage_backend_s3"
    assert not [key for key in running if key.startswith("vm_")]


def test_no_such_image_was_retried(first_run):
    used = [int(n) for n in re.findall(r'"image_retries_used": (\d+)', first_run)]
    assert used and max(used) == 1, "the app start did not go through one 'no such image' retry"


def test_terraform_state_and_outputs_kept(demo, first_run):
    outputs = json.loads((demo.install_dir / "outputs.json").read_text())
    for key in ("services_instance_id", "bucket_name", "queue_url", "console_url", "app_url", "nomad_asg_name"):
        assert outputs.get(key), key
    assert demo.moto.client("s3").head_bucket(Bucket=outputs["bucket_name"])


def test_second_run_changes_nothing(second_run):
    hosts = recap(second_run)
    assert hosts and all(h["failed"] == 0 for h in hosts.values())
    changed = {host: counts["changed"] for host, counts in hosts.items() if counts["changed"]}
    tasks = re.findall(r"TASK \[([^\]]+)\][^\n]*\n(?:[^\n]*\n)*?changed: \[([^\]]+)\]", second_run)
    assert not changed, f"second run changed something: {changed}; tasks: {tasks[:10]}"


def test_no_secret_in_verbose_output(first_run, secret_values):
    for name, value in secret_values.items():
        assert value not in first_run, f"{name} appears in the -vvv output"


def secret_holders(directory, secret_values):
    """{file: [names of the secrets in its contents]} for every file under `directory`
    (Terraform's provider binaries left out: they are HashiCorp's, not written by this install)."""
    holders = {}
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or "providers" in path.relative_to(directory).parts[:2]:
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        names = [name for name, value in secret_values.items() if value.strip() and value.strip() in text]
        if names:
            holders[str(path.relative_to(directory))] = names
    return holders


def test_no_secret_in_terraform_workdir_contents(demo, secret_values, first_run):
    # Terraform never sees a secret (roles/infrastructure/defaults/main.yml): neither its
    # inputs, state, plans nor logs may hold one, whatever their mode.
    workdir = demo.install_dir / "terraform"
    assert any(workdir.rglob("terraform.tfvars")), f"no Terraform working directory in {workdir}"
    assert secret_holders(workdir, secret_values) == {}
    # The file names too (a secret must not become a path).
    listing = "\n".join(str(p.relative_to(demo.install_dir)) for p in demo.install_dir.rglob("*"))
    for name, value in secret_values.items():
        assert value not in listing, name


def test_install_dir_files_holding_secrets_are_0600(demo, secret_values, first_run):
    holders = []
    for path in demo.install_dir.rglob("*"):
        if not path.is_file() or ".terraform" in path.parts:
            continue
        text = path.read_text(errors="replace")
        assert secret_values["aws_secret_key"] not in text, f"the AWS secret key is written to {path}"
        if any(value in text for value in secret_values.values()):
            holders.append(path)
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode == 0o600, f"{path} holds a secret with mode {mode:o}"
    # The rendered inputs are private whether or not they hold a secret today.
    tfvars = demo.install_dir / "terraform" / "terraform.tfvars"
    assert stat.S_IMODE(tfvars.stat().st_mode) == 0o600
    print(f"install-dir files holding a secret: {holders or 'none'}")


def test_no_secret_in_host_logs_and_secret_files_0600(demo, secret_values, first_run):
    from tests.sandbox.hosts import SystemdHost

    secrets_list = "\n".join(v for v in secret_values.values() if "\n" not in v.strip()) + "\n"
    for instance in demo.instances():
        host = SystemdHost(demo.container_name(instance["id"]))
        journal = host.output("journalctl", "--no-pager", "-o", "cat", check=False)
        logs = host.output("sh", "-c", "cat /var/log/*.log /var/log/*/*.log 2>/dev/null", check=False)
        for name, value in secret_values.items():
            assert value not in journal, f"{name} is in the journal of {instance['id']}"
            assert value not in logs, f"{name} is in /var/log of {instance['id']}"
        found = host.exec("sh", "-c", "cat > /tmp/.secrets && grep -rlF -f /tmp/.secrets /etc /var/lib /opt /root "
                          "/usr/local 2>/dev/null; rm -f /tmp/.secrets", check=False,
                          input_bytes=secrets_list.encode()).stdout.decode().split()
        for path in found:
            mode = host.output("stat", "-c", "%a %U", path)
            assert mode in ("600 root", "400 root"), f"{instance['id']}:{path} holds a secret with mode {mode}"
        if instance["role"] == "services":
            assert found, "the Services machine should hold the passphrase in its hand-off file"


LOGIN_USER = "ubuntu"


def test_configure_app_and_validate_run_as_a_non_root_user_with_sudo(demo, second_run):
    """Real Ubuntu AMIs log in as `ubuntu` with passwordless sudo, never as root:
    configure_app and validate must become root where they need it."""
    from tests.sandbox.hosts import SystemdHost

    hosts = [SystemdHost(demo.container_name(i["id"])) for i in demo.instances()]
    for host in hosts:
        # What cloud-init does on an Ubuntu AMI (/etc/sudoers.d/90-cloud-init-users).
        host.exec("sh", "-c", f"id -u {LOGIN_USER} >/dev/null 2>&1 || useradd -m -s /bin/bash {LOGIN_USER}; "
                              f"echo '{LOGIN_USER} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/90-cloud-init-users; "
                              "chmod 0440 /etc/sudoers.d/90-cloud-init-users")
    rc, output, _seconds = demo.run_site(
        extra=["--tags", "configure_app,validate", "-e", f"ansible_user={LOGIN_USER}"],
        stream=False, log_name="non-root")
    assert rc == 0, f"configure_app/validate as {LOGIN_USER} failed:\n{output[-6000:]}"
    assert "TASK [Set the admin console password]" in output and "All checks passed" in output
    results = recap(output)
    assert all(counts["failed"] == 0 and counts["unreachable"] == 0 for counts in results.values()), results
    # They logged in as the non-root user and became root through sudo.
    for host in hosts:
        journal = host.output("journalctl", "--no-pager", "-o", "cat", "_COMM=sudo", check=False)
        assert f"{LOGIN_USER} : " in journal and "USER=root" in journal, f"{host.name}: no sudo by {LOGIN_USER}"


def test_validation_fails_naming_a_port_nobody_listens_on(demo, second_run):
    """Last of the install tests: it stops the console (port 8800) on the Services machine, then starts it again."""
    from tests.sandbox.hosts import SystemdHost

    services = next(i for i in demo.instances() if i["role"] == "services")
    host = SystemdHost(demo.container_name(services["id"]))
    host.exec("systemctl", "stop", "replicated")
    try:
        rc, output, _seconds = demo.run_site(extra=["--tags", "validate", "-e", "circleci_validate_timeout=2"],
                                             stream=False, log_name="validate-port-down")
    finally:
        host.exec("systemctl", "start", "replicated")
    assert rc != 0
    assert "CHECK FAILED: nothing listens on port 8800/tcp" in output, output[-4000:]
    assert "All checks passed" not in output


def test_a_client_that_fails_its_configuration_is_named_and_the_services_machine_goes_on(demo, second_run):
    """configure_hosts runs each host at its own pace: a client whose configuration fails does not stop the
    Services machine's, and the validation's report names the client instead of saying all checks passed.
    A directory where the client's public-IPv4 record belongs makes the write fail; it is put back after."""
    from tests.sandbox.hosts import SystemdHost

    instances = demo.instances()
    services_id = next(i["id"] for i in instances if i["role"] == "services")
    client_id = next(i["id"] for i in instances if i["role"] == "nomad_client")
    client = SystemdHost(demo.container_name(client_id))
    record = "/etc/circleci/public-ipv4"
    client.exec("mv", record, record + ".saved")
    client.exec("mkdir", record)
    try:
        rc, output, _seconds = demo.run_site(extra=["--tags", "configure_hosts,validate"], stream=False,
                                             log_name="client-fails-configuration")
    finally:
        client.exec("rmdir", record)
        client.exec("mv", record + ".saved", record)
    assert rc != 0
    assert f"fatal: [{client_id}]" in output, output[-4000:]
    services_last_task = output.index(
        "TASK [circleci_server.aws.services : Make sure Replicated is enabled and running]")
    assert f"ok: [{services_id}]" in output[services_last_task:], output[-4000:]
    assert f"NOT VALIDATED: {client_id} did not pass the checks" in output, output[-4000:]
    assert "All checks passed" not in output


# --- Day 2 (issue 15): dry run and upgrade on this module's install ----------------------------
# They run after the tests above (pytest keeps file order) and leave the install at 2.19.

def services_host(demo):
    from tests.sandbox.hosts import SystemdHost

    return SystemdHost(demo.container_name(next(i["id"] for i in demo.instances() if i["role"] == "services")))


def client_hosts(demo):
    from tests.sandbox.hosts import SystemdHost

    return {i["id"]: SystemdHost(demo.container_name(i["id"])) for i in demo.instances() if i["role"] == "nomad_client"}


def standin_state(host):
    return json.loads(host.output("cat", "/var/lib/replicated-standin/state.json"))


def aws_snapshot(demo):
    """What the dry run must not change in (emulated) AWS."""
    ec2, asg, s3 = (demo.moto.client(name) for name in ("ec2", "autoscaling", "s3"))
    instances = sorted((i["InstanceId"], i["State"]["Name"]) for r in ec2.describe_instances()["Reservations"]
                       for i in r["Instances"])
    groups = sorted((g["AutoScalingGroupName"], g["MinSize"], g["MaxSize"], g["DesiredCapacity"])
                    for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"])
    templates = sorted((t["LaunchTemplateName"], t["LatestVersionNumber"])
                       for t in ec2.describe_launch_templates()["LaunchTemplates"])
    objects = sorted((b["Name"], o["Key"], o["ETag"]) for b in s3.list_buckets()["Buckets"]
                     for o in s3.list_objects_v2(Bucket=b["Name"]).get("Contents", []))
    return {"instances": instances, "groups": groups, "templates": templates, "objects": objects}


def hosts_snapshot(demo):
    """Files changed under /etc since a marker, and the app's settings, license and release."""
    snapshot = {}
    for instance in demo.instances():
        host = client_hosts(demo).get(instance["id"]) or services_host(demo)
        files = host.output("sh", "-c", "find /etc /opt/nomad /usr/local/bin -newer /tmp/dry-run-marker -type f "
                                        "2>/dev/null | sort", check=False)
        snapshot[instance["id"]] = files
        if instance["role"] == "services":
            state = standin_state(host)
            snapshot["app"] = (state["app_config"], state["license"], state["app"]["Sequence"],
                               state["app"]["RunningConfig"], state["counters"])
    return snapshot


def dry_run(demo, log_name, extra=()):
    for host in [services_host(demo), *client_hosts(demo).values()]:
        host.exec("touch", "/tmp/dry-run-marker")
    before_aws, before_hosts = aws_snapshot(demo), hosts_snapshot(demo)
    rc, output, seconds = demo.run_site(extra=["--check", "--diff", *extra], stream=False, log_name=log_name)
    assert rc == 0, f"dry run failed (rc={rc}):\n{output[-6000:]}"
    assert aws_snapshot(demo) == before_aws, "the dry run changed something in AWS"
    after_hosts = hosts_snapshot(demo)
    assert after_hosts == before_hosts, "the dry run changed something on a host"
    report = output[output.index("DRY RUN REPORT"):]
    print(f"{log_name}: {seconds:.0f}s\n{report}")
    return report


def report_hosts(report):
    """{host: number of tasks that would change} from the report's Hosts line."""
    line = next(line for line in report.splitlines() if line.startswith("Hosts ("))
    return {host: 0 if what == "nothing to change" else int(what.split()[0])
            for host, what in re.findall(r"(i-[0-9a-f]+): (nothing to change|\d+ task\(s\) would change)", line)}


def test_dry_run_on_the_converged_install_reports_nothing_to_change(demo, second_run):
    report = dry_run(demo, "dry-run-converged")
    assert "no change to any AWS resource" in report
    hosts = report_hosts(report)
    assert set(hosts) == {i["id"] for i in demo.instances()} and not any(hosts.values()), report
    assert "App settings: no change" in report and "App restart: no" in report
    assert "[controller]" not in report


def test_dry_run_names_exactly_the_drift(demo, second_run):
    services = services_host(demo)
    client_id, client = sorted(client_hosts(demo).items())[0]
    config = client.output("cat", "/etc/nomad/config.hcl")
    hostname = standin_state(services)["app_config"]["hostname"]
    hostname = hostname["value"] if isinstance(hostname, dict) else hostname
    client.exec("sh", "-c", "echo '# edited by hand' >> /etc/nomad/config.hcl")
    services.exec("replicatedctl", "app-config", "set", "hostname", "--value", "drifted.example.com")
    try:
        # The tfvar: a larger Nomad client group (circleci_nomad_max) than the install was made with.
        report = dry_run(demo, "dry-run-drift", extra=["-e", "circleci_nomad_max=%d" % (NOMAD_CLIENTS + 1)])
    finally:
        client.exec("sh", "-c", "cat > /etc/nomad/config.hcl", input_bytes=(config + "\n").encode())
        services.exec("replicatedctl", "app-config", "set", "hostname", "--value", hostname)
    plan = re.findall(r"^  (?:\+ create |~ update |- DESTROY|!! REPLACE) (\S+)", report, re.M)
    assert len(plan) == 1 and plan[0].startswith("aws_autoscaling_group."), report
    assert "to REPLACE" in report and "0 to REPLACE" in report
    hosts = report_hosts(report)
    assert hosts.pop(client_id) >= 1 and hosts.pop(services_host_id(demo)) >= 1 and not any(hosts.values()), report
    client_tasks = re.findall(r"^  \[%s\] (.+)$" % client_id, report, re.M)
    assert any("config" in task.lower() for task in client_tasks), client_tasks
    assert all(re.search(r"config|restart", task, re.I) for task in client_tasks), client_tasks
    assert "+# edited by hand" not in report and "-# edited by hand" in report
    settings = report[report.index("App settings that would change"):].splitlines()[1:]
    changed_keys = [line.split(":")[0].strip() for line in settings if line.startswith("  ") and ":" in line]
    assert changed_keys == ["hostname"], settings
    assert "'drifted.example.com' -> '%s'" % hostname in report
    assert "App restart: YES" in report


def services_host_id(demo):
    return next(i["id"] for i in demo.instances() if i["role"] == "services")


def backup_ids(demo):
    s3 = demo.moto.client("s3")
    outputs = json.loads((demo.install_dir / "outputs.json").read_text())
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=outputs["bucket_name"]).get("Contents", [])]
    return sorted({k.split("/")[2] for k in keys if k.startswith("circleci-backups/") and k.endswith("/manifest.json")})


def upgrade(demo, version, log_name, extra=()):
    # The backup's snapshot: the replicatedctl stand-in reaches the bucket through the sandbox's AWS endpoint.
    return demo.run_site(extra=["-e", f"circleci_version={version}",
                                "-e", f"circleci_backup_s3_endpoint={demo.instance_aws_endpoint}", *extra],
                         stream=False, log_name=log_name, playbook="playbooks/upgrade.yml")


def test_upgrade_to_an_unknown_release_is_refused_with_the_table(demo, second_run):
    before = aws_snapshot(demo)
    rc, output, _seconds = upgrade(demo, "2.21", "upgrade-unknown")
    assert rc != 0
    assert "UPGRADE REFUSED before anything changed: circleci_version=2.21 is not a CircleCI Server release" in output
    for release in ("2.16", "2.17", "2.18", "2.19"):
        assert re.search(r'"%s\s+\d' % re.escape(release), output), f"{release} missing from the table"
    assert aws_snapshot(demo) == before


def test_failed_upgrade_step_names_the_step_and_leaves_a_usable_backup(demo, second_run):
    services = services_host(demo)
    services.exec("replicatedctl", "standin-set",
                  'faults.release_apply_error="injected by the test: the 2.19 images could not be pulled"')
    try:
        rc, output, seconds = upgrade(demo, "2.19", "upgrade-failing")
    finally:
        services.exec("replicatedctl", "standin-set", "faults.release_apply_error=null")
    print(f"failed upgrade: {seconds:.0f}s")
    assert rc != 0
    match = re.search(r"UPGRADE STOPPED at step app \(.*?\): .*?injected by the test.*?"
                      r"Backup taken before anything changed: (\S+)\.", output, re.S)
    assert match, output[-5000:]
    backup_id = match[1]
    assert backup_id in backup_ids(demo), (backup_id, backup_ids(demo))
    # The steps before it are done: Replicated runs the 2.19 row's version; the app is still on 2.16 and up.
    assert "2.38.6" in services.output("replicatedctl", "version")
    state = standin_state(services)
    assert state["app"]["Sequence"] == 1 and state["app"]["State"] == "started"


def test_upgrade_2_16_to_2_19_end_to_end(demo, second_run):
    old_clients = set(client_hosts(demo))
    rc, output, seconds = upgrade(demo, "2.19", "upgrade")
    print(f"upgrade 2.16 -> 2.19: {seconds:.0f}s")
    assert rc == 0, f"upgrade failed (rc={rc}):\n{output[-8000:]}"
    assert "Upgrade from CircleCI Server 2.16 (2.16.0) to 2.19" in output
    assert "All checks passed" in output and "UPGRADE DONE: CircleCI Server 2.16 -> 2.19" in output
    services = services_host(demo)
    assert "2.38.6" in services.output("replicatedctl", "version")
    state = standin_state(services)
    assert state["app"]["Sequence"] == 4 and state["app"]["State"] == "started"
    assert state["app"]["RunningConfig"]["hostname"] == demo.hostname  # settings survive the release change
    clients = client_hosts(demo)
    assert len(clients) == NOMAD_CLIENTS and not set(clients) & old_clients, "the clients were not replaced"
    for host in clients.values():
        assert 'datacenter = "default"' in host.output("cat", "/etc/nomad/config.hcl")
        assert "0.9.3" in host.output("nomad", "version")
    # One batch per client (circleci_upgrade_batch_size 1), each through the group's terminating hook.
    assert output.count("TASK [Terminate the batch through the Auto Scaling group") == NOMAD_CLIENTS


def test_downgrade_is_refused_before_anything_changes(demo, second_run):
    before, backups = aws_snapshot(demo), backup_ids(demo)
    rc, output, _seconds = upgrade(demo, "2.18", "upgrade-downgrade")
    assert rc != 0
    assert "UPGRADE REFUSED before anything changed: circleci_version=2.18 is older than the running 2.19" in output
    assert re.search(r'"2\.19 \(running\)\s', output) and not re.search(r'"2\.18\s', output)
    assert "TASK [Take a Replicated snapshot" not in output and "TASK [Apply the app's newest" not in output
    assert aws_snapshot(demo) == before and backup_ids(demo) == backups
    assert "2.38.6" in services_host(demo).output("replicatedctl", "version")
