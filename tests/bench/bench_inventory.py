"""Benchmark: circleci_server.aws.circleci_ec2 against amazon.aws.aws_ec2 (run with `make bench`).

One run, one moto server, 5,000 Nomad clients + 1 Services instance:

  1. raw      boto3 paginated DescribeInstances with the plugins' filter (the API floor),
              measured before and after the plugins so moto's drift shows
  2. aws_ec2  amazon.aws.aws_ec2, tag filter + keyed_groups on the role tag + compose ansible_host
  3. plugin   circleci_ec2 with the equivalent configuration (and a cache)
  4. cached   circleci_ec2 again within the cache timeout

Each plugin runs as `ansible-inventory --list` under tests/bench/timed_inventory.py,
which splits the CLI's wall time into the inventory load (the plugin's run, which
every ansible-playbook waits for), the AWS requests inside it, and the CLI's own
JSON output of all hostvars. Every AWS call, raw ones included, goes through the
same counting proxy; the cached run must make none.

overhead = the plugin's run (inventory load) - the AWS requests inside that same
run (the calls raw boto3 makes, timed in place: moto's answer time drifts by
several seconds between runs, so subtracting another run's time is noise). The
issue's coarser form, CLI wall - raw API time, is printed next to it. Targets:
plugin overhead <= 0.25 x aws_ec2 overhead; cached run <= 2 s with 0 API calls.
moto is slow and the machine is shared, so compare the figures of one run only.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.integration.aws_proxy import CountingProxy  # noqa: E402
from tests.sandbox.ansible import ansible_env, plain_values  # noqa: E402
from tests.sandbox.aws import MotoServer  # noqa: E402
from tests.sandbox.paths import VENV_BIN  # noqa: E402

TIMED_INVENTORY = Path(__file__).resolve().parent / "timed_inventory.py"

INSTALL = "bench"
REGION = "us-east-1"
FILTERS = [
    {"Name": "tag:circleci:install", "Values": [INSTALL]},
    {"Name": "instance-state-name", "Values": ["pending", "running"]},
]
AWS_EC2_CONFIG = f"""plugin: amazon.aws.aws_ec2
regions: [{REGION}]
filters:
  tag:circleci:install: {INSTALL}
  instance-state-name: [pending, running]
# Named by instance id like circleci_ec2: aws_ec2's default (DNS name) merges
# hosts whose moto-made names repeat (4,819 of 5,001 hosts seen).
hostnames: [instance-id]
keyed_groups:
  - key: tags['circleci:role']
    prefix: role
compose:
  ansible_host: private_ip_address
"""
CIRCLECI_EC2_CONFIG = """plugin: circleci_server.aws.circleci_ec2
regions: [{region}]
installs: [{install}]
keyed_groups:
  - key: ec2_tags['circleci:role']
    prefix: role
compose:
  ansible_host: private_ip_address
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: {cache_dir}
cache_timeout: 3600
"""


# Bench only: on a shared machine moto can take longer than botocore's 60 s read
# timeout for one big DescribeInstances, and both plugins would then fail after
# retries. Every client in the bench (raw, aws_ec2, circleci_ec2) gets the same 15 min.
SITECUSTOMIZE = """try:
    import botocore.config
    botocore.config.Config.OPTION_DEFAULTS["read_timeout"] = 900
except ImportError:
    pass
"""


def seed(moto, clients, batch):
    ec2 = moto.client("ec2", REGION)
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

    # As the install's Terraform makes them (the plugin trusts nothing less): the Services machine
    # with the install's instance profile, clients carrying their Auto Scaling group's tag (EC2
    # reserves "aws:" tags for itself; moto accepts it, which spares launching 5,000 through an ASG).
    iam = moto.client("iam", REGION)
    profile = f"{INSTALL}-circleci"
    iam.create_role(RoleName=profile, AssumeRolePolicyDocument="{}")
    iam.create_instance_profile(InstanceProfileName=profile)
    iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=profile)

    def launch(count, role, instance_type):
        tags = [{"Key": "circleci:install", "Value": INSTALL}, {"Key": "circleci:role", "Value": role}]
        extra = {}
        if role == "services":
            extra["IamInstanceProfile"] = {"Name": profile}
        else:
            tags.append({"Key": "aws:autoscaling:groupName", "Value": f"{INSTALL}-nomad-clients"})
        ec2.run_instances(
            ImageId=ami, MinCount=count, MaxCount=count, InstanceType=instance_type,
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}], **extra,
        )

    launch(1, "services", "m5.2xlarge")
    left = clients
    while left:
        count = min(batch, left)
        launch(count, "nomad_client", "m5.xlarge")
        left -= count


def raw_describe(moto, endpoint_url):
    session = moto.session(REGION)
    config = Config(read_timeout=900, retries={"max_attempts": 1})
    client = session.client("ec2", endpoint_url=endpoint_url, config=config)
    paginator = client.get_paginator("describe_instances")
    pages = list(paginator.paginate(Filters=FILTERS, PaginationConfig={"PageSize": 1000}))
    return sum(len(r["Instances"]) for page in pages for r in page["Reservations"]), len(pages)


def run_inventory(config_path, env, out_path):
    """One timed `ansible-inventory --list`: (wall, hosts, timings, proc)."""
    timings_path = Path(str(out_path) + ".timings.json")
    argv = [str(VENV_BIN / "python"), str(TIMED_INVENTORY), "-i", str(config_path), "--list", "--output", str(out_path)]
    start = time.monotonic()
    proc = subprocess.run(argv, env=dict(env, BENCH_TIMINGS=str(timings_path)),
                          capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    hosts = timings = None
    if proc.returncode == 0:
        hosts = len(json.loads(Path(out_path).read_text())["_meta"]["hostvars"])
        timings = json.loads(timings_path.read_text())
    return wall, hosts, timings, proc


def write_static_inventory(listing_path, static_path):
    """The same hosts, groups and variables as a plain YAML-plugin inventory: the CLI's own floor."""
    listing = plain_values(json.loads(Path(listing_path).read_text()))
    hostvars = listing.pop("_meta")["hostvars"]
    children = {
        name: {"hosts": {host: None for host in group.get("hosts", [])}}
        for name, group in listing.items()
        if name not in ("all", "ungrouped")
    }
    static_path.write_text(json.dumps({"all": {"hosts": hostvars, "children": children}}))


def timed(label, func):
    start = time.monotonic()
    value = func()
    elapsed = time.monotonic() - start
    print(f"  {label}: {elapsed:.1f} s", flush=True)
    return elapsed, value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=250, help="instances per run_instances call while seeding")
    args = parser.parse_args(argv)

    moto = MotoServer().start()
    proxy = CountingProxy(moto.url).start()
    work = Path(tempfile.mkdtemp(prefix="bench-inventory-"))
    failures = []
    try:
        print(f"seeding moto with {args.clients} Nomad clients + 1 Services instance", flush=True)
        timed("seeding", lambda: seed(moto, args.clients, args.batch))
        expected = args.clients + 1

        env = moto.env()
        env.update(AWS_URL=proxy.url, AWS_ENDPOINT_URL=proxy.url, ANSIBLE_INVENTORY_UNPARSED_FAILED="True")
        site_dir = work / "site"
        site_dir.mkdir()
        (site_dir / "sitecustomize.py").write_text(SITECUSTOMIZE)
        env = ansible_env(env, PYTHONPATH=str(site_dir))

        print("measuring", flush=True)
        raw_before, (raw_hosts, raw_pages) = timed("raw boto3 DescribeInstances", lambda: raw_describe(moto, proxy.url))

        results = {}
        aws_ec2_cfg = work / "bench.aws_ec2.yml"
        aws_ec2_cfg.write_text(AWS_EC2_CONFIG)
        ours_cfg = work / "bench.circleci_ec2.yml"
        ours_cfg.write_text(CIRCLECI_EC2_CONFIG.format(region=REGION, install=INSTALL, cache_dir=work / "cache"))
        for label, cfg in (("aws_ec2", aws_ec2_cfg), ("circleci_ec2", ours_cfg), ("circleci_ec2 cached", ours_cfg)):
            proxy.reset()
            wall, hosts, timings, proc = run_inventory(cfg, env, work / f"{label.replace(' ', '_')}.json")
            calls = len(proxy.calls)
            results[label] = (wall, hosts, calls, timings or {})
            print(f"  {label}: {wall:.1f} s, {hosts} hosts, {calls} API call(s)", flush=True)
            if proc.returncode != 0:
                failures.append(f"{label} failed (rc={proc.returncode}): {proc.stderr.strip()[-800:]}")
            elif hosts != expected:
                failures.append(f"{label} returned {hosts} hosts, expected {expected}")
        raw_after = timed("raw boto3 DescribeInstances again", lambda: raw_describe(moto, proxy.url))[0]
        raw_time = (raw_before + raw_after) / 2

        floor_wall = None
        if results["circleci_ec2 cached"][1] == expected:
            static = work / "static.json"
            write_static_inventory(work / "circleci_ec2_cached.json", static)
            floor_wall, floor_hosts, _floor_timings, _floor_proc = run_inventory(static, env, work / "static_out.json")
            print(f"  static file, same {floor_hosts} hosts: {floor_wall:.1f} s", flush=True)

        print()
        print(f"raw API time = mean of {raw_before:.1f} s and {raw_after:.1f} s = {raw_time:.1f} s "
              f"({raw_pages} page(s), {raw_hosts} hosts; expected {expected})")
        print(f"{'measurement':<22}{'CLI wall':>9}{'load':>7}{'in API':>8}{'output':>8}"
              f"{'overhead':>10}{'wall-raw':>10}{'calls':>7}")
        for label, (wall, _hosts, calls, t) in results.items():
            cached = label.endswith("cached")
            load, api, output = t.get("load", float("nan")), t.get("api", float("nan")), t.get("output", float("nan"))
            overhead = "-" if cached else f"{load - api:.1f}"
            wall_overhead = "-" if cached else f"{wall - raw_time:.1f}"
            print(f"{label:<22}{wall:>9.1f}{load:>7.1f}{api:>8.1f}{output:>8.1f}{overhead:>10}{wall_overhead:>10}{calls:>7}")
        print("  load = the plugin's run (inventory load); in API = AWS requests inside it; output = --list JSON;")
        print("  overhead = load - in API; wall-raw = CLI wall - raw API time (the coarse form)")

        def ratio(overhead_of):
            aws, ours = overhead_of(results["aws_ec2"]), overhead_of(results["circleci_ec2"])
            return ours / aws if aws > 0 else float("nan")

        load_ratio = ratio(lambda r: r[3].get("load", float("nan")) - r[3].get("api", float("nan")))
        wall_ratio = ratio(lambda r: r[0] - raw_time)
        print()
        print(f"plugin overhead / aws_ec2 overhead = {load_ratio:.3f} (target <= 0.25): "
              f"{'met' if load_ratio <= 0.25 else 'NOT met'}; coarse form (CLI wall - raw) {wall_ratio:.3f}")
        cached_wall, _cached_hosts, cached_calls, cached_t = results["circleci_ec2 cached"]
        cached_load = cached_t.get("load", float("nan"))
        cached_ok = cached_load <= 2.0 and cached_calls == 0
        print(f"cached run: inventory load {cached_load:.2f} s with {cached_calls} API calls (target <= 2 s, 0 calls): "
              f"{'met' if cached_ok else 'NOT met'}; CLI wall {cached_wall:.2f} s")
        if floor_wall is not None:
            print(f"floor: ansible-inventory --list of the same hosts from a static file {floor_wall:.2f} s")
        for failure in failures:
            print("FAILED: " + failure)
        return 1 if failures else 0
    finally:
        proxy.stop()
        moto.stop()


if __name__ == "__main__":
    sys.exit(main())
