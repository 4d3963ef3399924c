"""Benchmark: the whole install in the demo sandbox (run with `make bench`).

1. first vs second run of the demo (site.yml end to end, fresh environment,
   1 Nomad client). Target: second <= 0.4 x first (issue 14's bar: no worse
   than 0.30). --pairs N makes N such pairs, each from a fresh environment,
   and reports every pair and the median ratio: one pair on this shared
   2-core machine varies by about a third.
2. the Nomad client fleet: configure 1 vs 8 fresh Nomad clients
   (`site.yml --tags configure_hosts --limit localhost:circleci_nomad_clients`,
   forks >= 8, after preflight, provision and the inventory stage booted
   the hosts). Target: 8 clients <= 2 x 1 client. Each converge also reports
   the CPU-seconds the machine spent busy (controller, docker, containers);
   the 8-client converge cannot take less than its CPU time / cores, so
   that over the 1-client time is printed as the floor for the ratio on
   this machine.

--reference REV also runs the demo of another commit (a git worktree under
.tmp/bench/reference/), one of its pairs before each of this checkout's, and
reports both trees' medians and this tree's runs over the reference's: the
comparison of two trees made in one run, on the same machine and under the
same load (issue 14's 0.30 was measured on c951173).

The machine is shared and has 2 cores: compare figures of one run only.
Results are printed and written to .tmp/bench/demo.json.

    python -m tests.bench.bench_demo [--skip-runs] [--skip-fleet] [--pairs N] [--reference REV]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

THIS_TREE = Path(__file__).resolve().parents[2]
# A reference pair runs this file again with BENCH_DEMO_REFERENCE_TREE set: Demo and TMP
# then come from the reference checkout, so that pair runs the reference's code.
REFERENCE_TREE = os.environ.get("BENCH_DEMO_REFERENCE_TREE")
sys.path.insert(0, REFERENCE_TREE or str(THIS_TREE))

from tests.sandbox.demo import Demo  # noqa: E402
from tests.sandbox.paths import TMP  # noqa: E402

LOGS = TMP / "bench" / "logs"


def busy_cpu_seconds():
    """CPU time the whole machine spent busy so far (every process and container), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def changed_tasks(output):
    """The tasks that reported a change, by name (so a second run that is not changed=0 says where)."""
    found, task = [], None
    for line in output.splitlines():
        if line.startswith("TASK [") or line.startswith("RUNNING HANDLER ["):
            task = line.split("[", 1)[1].rsplit("]", 1)[0]
        elif line.startswith("changed: [") and task not in found:
            found.append(task)
    return found


def timed_run(demo, extra, log_name):
    rc, output, seconds = demo.run_site(extra=extra, stream=False, log_name=log_name)
    # demo.clean() removes the demo's directory: the log is kept with the results.
    kept = LOGS / f"{demo.name}-{log_name}.log"
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_text(output)
    if rc != 0:
        raise SystemExit(f"{log_name}: site.yml failed (rc={rc}); see {kept}\n" + output[-3000:])
    changed = sum(int(n) for n in re.findall(r"changed=(\d+)", output[output.rfind("PLAY RECAP"):]))
    if changed and log_name.startswith("second"):
        print(f"{log_name}: changed={changed} in {', '.join(changed_tasks(output))} "
              f"(log: {kept})", flush=True)
    return round(seconds, 1), changed


def bench_pair(demo, number):
    suffix = f"-{number}"  # each pair's logs are kept: .tmp/bench/logs/benchrun-second-2.log
    demo.clean()
    try:
        first, first_changed = timed_run(demo, [], "first" + suffix)
        second, second_changed = timed_run(demo, [], "second" + suffix)
    finally:
        demo.clean()
    return {"first_s": first, "second_s": second, "ratio": round(second / first, 2),
            "second_changed": second_changed, "first_changed": first_changed}


def reference_checkout(rev):
    """(commit, path): a git worktree of `rev` under .tmp/bench/reference/, made once."""
    def git(*args):
        return subprocess.run(["git", "-C", str(THIS_TREE), *args], check=True, capture_output=True,
                              text=True).stdout.strip()
    commit = git("rev-parse", "--verify", rev + "^{commit}")
    path = TMP / "bench" / "reference" / commit[:12]
    if not (path / ".git").exists():
        git("worktree", "prune")  # a checkout that `make clean` removed
        git("worktree", "add", "--detach", str(path), commit)
    return commit, path


def reference_pair(tree, number):
    """One first/second pair of the reference checkout's demo, in a process of its own (its code, not ours)."""
    env = dict(os.environ, BENCH_DEMO_REFERENCE_TREE=str(tree))
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--reference-pair", str(number)],
                          cwd=str(tree), env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"reference pair {number} failed in {tree}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarize(runs):
    # With one pair this is that pair's figures, as before --pairs existed.
    summary = {key: round(statistics.median(run[key] for run in runs), 2) for key in ("first_s", "second_s", "ratio")}
    summary.update(second_changed=max(run["second_changed"] for run in runs),
                   first_changed=max(run["first_changed"] for run in runs), pairs=runs)
    return summary


def print_pair(label, number, pairs, run):
    print("{label}pair {n}/{pairs}: first {first_s}s, second {second_s}s (changed={second_changed}): ratio {ratio}"
          .format(label=label, n=number, pairs=pairs, **run), flush=True)


def bench_runs(pairs, reference):
    """`pairs` pairs of this checkout; with `reference` ((commit, path)), a reference pair before each."""
    demo = Demo(name="benchrun", subnet="10.216.0.0/24", nomad_clients=1)
    runs, reference_runs = [], []
    for number in range(1, pairs + 1):
        if reference:
            reference_runs.append(reference_pair(reference[1], number))
            print_pair(f"reference {reference[0][:12]} ", number, pairs, reference_runs[-1])
        runs.append(bench_pair(demo, number))
        if pairs > 1 or reference:
            print_pair("", number, pairs, runs[-1])
    summary = summarize(runs)
    summary.update(target="ratio <= 0.4")
    if reference:
        summary["reference"] = dict(summarize(reference_runs), commit=reference[0])
        for key in ("first_s", "second_s"):
            summary["over_reference_" + key] = round(summary[key] / summary["reference"][key], 2)
    return summary


def bench_fleet(clients):
    demo = Demo(name=f"benchfleet{clients}", subnet=f"10.217.{clients}.0/24", nomad_clients=clients)
    demo.clean()
    try:
        timed_run(demo, ["--tags", "preflight,provision,inventory"], "boot")
        cpu_before = busy_cpu_seconds()
        seconds, changed = timed_run(
            demo, ["--tags", "configure_hosts", "--limit", "localhost:circleci_nomad_clients", "--forks", "8"],
            "converge")
        cpu_seconds = round(busy_cpu_seconds() - cpu_before, 1)
    finally:
        demo.clean()
    return {"clients": clients, "converge_s": seconds, "changed": changed, "cpu_s": cpu_seconds}


def main(argv=None):
    parser = argparse.ArgumentParser(description="make demo benchmarks")
    parser.add_argument("--skip-runs", action="store_true")
    parser.add_argument("--skip-fleet", action="store_true")
    parser.add_argument("--pairs", type=int, default=1, help="first/second pairs to run (median reported)")
    parser.add_argument("--reference", metavar="REV",
                        help="also run this commit's demo, a pair before each of ours (e.g. c951173)")
    parser.add_argument("--reference-pair", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.reference_pair:
        # Inside reference_pair()'s process: Demo is the reference checkout's.
        print(json.dumps(bench_pair(Demo(name="benchref", subnet="10.216.1.0/24", nomad_clients=1),
                                    args.reference_pair)), flush=True)
        return 0
    if args.pairs < 1:
        parser.error("--pairs must be 1 or more")
    from tests.bench.results import write_results  # this checkout's (a reference checkout may predate it)
    results = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if not args.skip_runs:
        reference = reference_checkout(args.reference) if args.reference else None
        results["demo_runs"] = bench_runs(args.pairs, reference)
        median = " (medians of {} pairs)".format(args.pairs) if args.pairs > 1 else ""
        if reference:
            print("reference {commit:.12} first run {first_s}s, second run {second_s}s: ratio {ratio}{median}"
                  .format(median=median, **results["demo_runs"]["reference"]), flush=True)
        print("demo first run {first_s}s, second run {second_s}s (changed={second_changed}): "
              "ratio {ratio}{median} (target <= 0.4)".format(median=median, **results["demo_runs"]), flush=True)
        if reference:
            print("this tree over the reference: first run x{over_reference_first_s}, second run "
                  "x{over_reference_second_s}".format(**results["demo_runs"]), flush=True)
    if not args.skip_fleet:
        one, eight = bench_fleet(1), bench_fleet(8)
        results["fleet"] = {"one": one, "eight": eight, "ratio": round(eight["converge_s"] / one["converge_s"], 2),
                            "target": "ratio <= 2.0, forks 8"}
        # The 8-client converge cannot finish before its CPU time is spread over every core.
        cores = os.cpu_count() or 1
        floor = round(eight["cpu_s"] / cores / one["converge_s"], 2)
        results["fleet"].update(cores=cores, cpu_bound_floor_ratio=floor)
        print(f"Nomad clients: 1 in {one['converge_s']}s ({one['cpu_s']} CPU-s), 8 in {eight['converge_s']}s "
              f"({eight['cpu_s']} CPU-s): ratio {results['fleet']['ratio']} (target <= 2.0); on {cores} cores "
              f"the 8 clients' CPU time alone sets a floor of {eight['cpu_s']} / {cores} / {one['converge_s']} "
              f"= {floor}", flush=True)
    write_results("demo", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
