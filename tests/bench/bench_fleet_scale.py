"""Benchmark: the control node's work to grow the Nomad fleet by 7 clients (run with `make bench-scale`).

1. scale: `scale.yml -e circleci_nomad_desired=8` on a fleet of 1 (max 8): the fleet configures
   itself, the control node only sets the count and waits. Measured where the clients configure
   themselves: the demo sandbox when its launch template carries the bootstrap user data (issue 13
   item 1), else the stand-in fleet (tests/sandbox/fleet_standin.py: moto + lifecycle hooks stand-in
   + Nomad stand-ins + the real drain agent), which is said in the output.
2. converge: what the same 7 clients cost the control node today, `configure_hosts.yml`
   (`site.yml --tags configure_hosts --limit localhost:circleci_nomad_clients`) on 7 fresh clients in
   the demo sandbox, after preflight, provision and inventory booted them.

CPU-seconds are the ansible-playbook process's own rusage with everything it waited for (its forks,
modules, docker exec clients: os.wait4), user + system; the sandbox's emulators are not counted.
Target: scale / converge <= 0.1. Also the wall time from "desired +1" (the group's desired capacity
seen raised) to "node registered" (seen ready in the Nomad server's /v1/nodes) for each new client.

The machine is shared: compare figures of one run. Results: .tmp/bench/fleet_scale.json.

    python -m tests.bench.bench_fleet_scale [--skip-converge] [--skip-scale] [--standin]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.sandbox.demo import Demo  # noqa: E402
from tests.sandbox.fleet_standin import StandInFleet  # noqa: E402
from tests.bench.results import write_results  # noqa: E402
from tests.sandbox.paths import REPO_ROOT, TMP, VENV_BIN  # noqa: E402

NEW_CLIENTS = 7


def run_measured(argv, env, log_path):
    """Run a command; (rc, CPU-seconds of it and its waited-for descendants, wall seconds)."""
    started = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(argv, env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, round(usage.ru_utime + usage.ru_stime, 1), round(time.monotonic() - started, 1)


class RegistrationWatch:
    """Polls the group's desired capacity and the Nomad server's ready nodes once a second."""

    def __init__(self, desired_of, ready_of):
        self.desired_of, self.ready_of = desired_of, ready_of
        self.raised_at = None
        self.registered = {}
        self.known = set(ready_of())
        self.first_desired = desired_of()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join(timeout=10)

    def _loop(self):
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                if self.raised_at is None and self.desired_of() > self.first_desired:
                    self.raised_at = now
                for name in set(self.ready_of()) - self.known - set(self.registered):
                    self.registered[name] = now
            except OSError:
                pass
            self._stop.wait(1)

    def seconds(self):
        if self.raised_at is None:
            return []
        return sorted(round(t - self.raised_at, 1) for t in self.registered.values())


def _summary(times):
    if not times:
        return {}
    return {"first_s": times[0], "median_s": round(statistics.median(times), 1), "last_s": times[-1],
            "each_s": times}


def bench_converge():
    demo = Demo(name="benchconv", subnet="10.218.7.0/24", nomad_clients=NEW_CLIENTS)
    demo.clean()
    try:
        rc, output, _log = demo.run_site(extra=["--tags", "preflight,provision,inventory"], stream=False,
                                         log_name="boot")
        if rc != 0:
            raise SystemExit(f"booting {NEW_CLIENTS} clients failed; see {demo.dir / 'boot.log'}\n{output[-3000:]}")
        _hosts, inventory, vars_file, secrets_file, vault_pass = demo.prepare()
        argv = demo.playbook_argv(inventory, vars_file, secrets_file, vault_pass,
                                  ["--tags", "configure_hosts", "--limit", "localhost:circleci_nomad_clients",
                                   "--forks", "8"])
        rc, cpu, wall = run_measured(argv, demo.env(), demo.dir / "converge.log")
        if rc != 0:
            raise SystemExit(f"configure_hosts failed (rc={rc}); see {demo.dir / 'converge.log'}")
        return {"clients": NEW_CLIENTS, "cpu_s": cpu, "wall_s": wall, "where": "demo sandbox (containers)"}
    finally:
        demo.stop_aws_front()
        demo.clean()


def _demo_has_bootstrap(demo):
    ec2 = demo.moto.client("ec2")
    templates = ec2.describe_launch_templates(Filters=[{"Name": "launch-template-name",
                                                        "Values": [f"{demo.prefix}-nomad-clients"]}])
    if not templates["LaunchTemplates"]:
        return False
    data = ec2.describe_launch_template_versions(LaunchTemplateId=templates["LaunchTemplates"][0]["LaunchTemplateId"],
                                                 Versions=["$Latest"])["LaunchTemplateVersions"][0]
    return bool(data["LaunchTemplateData"].get("UserData"))


def _get_json(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def bench_scale_demo():
    """scale.yml 1 -> 8 in the demo sandbox; None when its clients do not configure themselves."""
    demo = Demo(name="benchscale", subnet="10.218.8.0/24", nomad_clients=1, nomad_max=1 + NEW_CLIENTS)
    demo.clean()
    try:
        rc, output, _log = demo.run_site(stream=False, log_name="site")
        if rc != 0:
            raise SystemExit(f"site.yml failed; see {demo.dir / 'site.log'}\n{output[-3000:]}")
        image, inventory, vars_file, secrets_file, vault_pass = demo.prepare()
        if not _demo_has_bootstrap(demo):
            return None
        services_ip = next(i["ip"] for i in demo.instances() if i["role"] == "services")
        autoscaling = demo.moto.client("autoscaling")
        group = f"{demo.prefix}-nomad-clients"
        demo._stop.clear()
        demo.watch_instances(image)
        argv = [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), "circleci_server.aws.scale",
                "-e", f"@{vars_file}", "-e", f"@{secrets_file}", "--vault-password-file", str(vault_pass),
                "-e", f"circleci_nomad_desired={1 + NEW_CLIENTS}",
                # 8 clients is above the sizing band of the demo's 20 daily active users.
                "-e", "circleci_nomad_allow_outside_sizing=true"]
        with RegistrationWatch(
                lambda: autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])[
                    "AutoScalingGroups"][0]["DesiredCapacity"],
                lambda: [n["Name"] for n in _get_json(f"http://{services_ip}:4646/v1/nodes")
                         if n["Status"] == "ready"]) as watch:
            rc, cpu, wall = run_measured(argv, demo.env(), demo.dir / "scale.log")
        if rc != 0:
            # The demo directory goes in the finally below: say why here.
            raise SystemExit(f"scale.yml failed (rc={rc}):\n{(demo.dir / 'scale.log').read_text()[-6000:]}")
        return {"clients_added": NEW_CLIENTS, "cpu_s": cpu, "wall_s": wall, "where": "demo sandbox (containers, "
                "self-configuring clients)", "desired_to_registered": _summary(watch.seconds())}
    finally:
        demo.stop_watching()
        demo.stop_aws_front()
        demo.clean()


def bench_scale_standin():
    with tempfile.TemporaryDirectory(dir=TMP) as workdir, \
            StandInFleet(Path(workdir), prefix="benchfleet", min_size=1, max_size=1 + NEW_CLIENTS,
                         desired=1) as fleet:
        deadline = time.monotonic() + 60
        while len(fleet.ready_nodes()) < 1 and time.monotonic() < deadline:
            time.sleep(0.5)
        vars_file = Path(workdir) / "vars.json"
        vars_file.write_text(json.dumps({"circleci_prefix": fleet.prefix, "circleci_region": "us-east-1",
                                         "circleci_install_dir": str(Path(workdir) / "install"),
                                         "circleci_nomad_server_url": fleet.server_url,
                                         "circleci_nomad_desired": 1 + NEW_CLIENTS}))
        from tests.sandbox.ansible import ansible_env

        argv = [str(VENV_BIN / "ansible-playbook"), "-i", str(fleet.inventory), "circleci_server.aws.scale",
                "-e", f"@{vars_file}"]
        with RegistrationWatch(lambda: fleet.describe_group()["DesiredCapacity"], fleet.ready_nodes) as watch:
            rc, cpu, wall = run_measured(argv, ansible_env(fleet.env), Path(workdir) / "scale.log")
        if rc != 0:
            raise SystemExit(f"scale.yml failed (rc={rc}):\n{(Path(workdir) / 'scale.log').read_text()[-3000:]}")
        return {"clients_added": NEW_CLIENTS, "cpu_s": cpu, "wall_s": wall,
                "where": "stand-in fleet (moto + hooks stand-in + Nomad stand-ins + drain agent; a client joins "
                         "when the group has it, so registration times are not the sandbox's)",
                "desired_to_registered": _summary(watch.seconds())}


def main(argv=None):
    parser = argparse.ArgumentParser(description="scale.yml vs configure_hosts.yml on the control node")
    parser.add_argument("--skip-converge", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--standin", action="store_true", help="measure scale.yml on the stand-in fleet only")
    args = parser.parse_args(argv)
    results = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "load_average_at_start": os.getloadavg()}
    if not args.skip_scale:
        scale = None if args.standin else bench_scale_demo()
        if scale is None:
            print("scale: the demo's clients do not configure themselves (no bootstrap user data in the launch "
                  "template): measuring scale.yml on the stand-in fleet", flush=True)
            scale = bench_scale_standin()
        results["scale"] = scale
        print(f"scale.yml 1 -> {1 + NEW_CLIENTS}: {scale['cpu_s']} CPU-s on the control node, {scale['wall_s']} s "
              f"wall ({scale['where']}); desired +1 -> registered: {scale['desired_to_registered']}", flush=True)
    if not args.skip_converge:
        results["converge"] = bench_converge()
        print(f"configure_hosts.yml on {NEW_CLIENTS} fresh clients: {results['converge']['cpu_s']} CPU-s, "
              f"{results['converge']['wall_s']} s wall", flush=True)
    if "scale" in results and "converge" in results:
        results["ratio"] = round(results["scale"]["cpu_s"] / results["converge"]["cpu_s"], 3)
        print(f"CPU ratio scale / converge = {results['ratio']} (target <= 0.1)", flush=True)
    write_results("fleet_scale", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
