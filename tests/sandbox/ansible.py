"""Run Ansible's real CLIs against this checkout as collection circleci_server.aws.

    result = run_playbook("playbooks/site.yml", extra_vars={...}, env=moto.env())
    result.rc, result.stdout, result.recap   # recap: {host: {"ok": 3, "changed": 0, ...}}
"""
import json
import os
import re
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .paths import REPO_ROOT, TMP, VENV_BIN, ensure_collection_link

RECAP_LINE = re.compile(r"^(?P<host>\S+)\s+:\s+(?P<counts>(?:\w+=\d+\s*)+)$")


@dataclass
class AnsibleResult:
    rc: int
    stdout: str
    stderr: str
    args: list = field(default_factory=list)

    @property
    def recap(self):
        """Per-host counters from PLAY RECAP."""
        hosts = {}
        in_recap = False
        for line in self.stdout.splitlines():
            if line.startswith("PLAY RECAP"):
                in_recap, hosts = True, {}
                continue
            match = RECAP_LINE.match(line.strip()) if in_recap else None
            if match:
                hosts[match["host"]] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match["counts"])}
        return hosts

    @property
    def changed(self):
        return sum(h.get("changed", 0) for h in self.recap.values())

    def output(self):
        return self.stdout + "\n" + self.stderr

    def __str__(self):
        return f"rc={self.rc}\n--- stdout ---\n{self.stdout[-6000:]}\n--- stderr ---\n{self.stderr[-3000:]}"


def ansible_env(base=None, **extra):
    collections = ensure_collection_link()
    env = dict(os.environ if base is None else base)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_HOST_KEY_CHECKING="False",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_RETRY_FILES_ENABLED="False",
        ANSIBLE_LOCAL_TEMP=str(TMP / "ansible-local"),
        ANSIBLE_PYTHON_INTERPRETER="auto_silent",
        ANSIBLE_DEPRECATION_WARNINGS="False",
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _run(argv, env, cwd, timeout, input_text=None):
    proc = subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, input=input_text
    )
    return AnsibleResult(proc.returncode, proc.stdout, proc.stderr, argv)


def run_playbook(playbook, inventory=None, extra_vars=None, env=None, check=False, diff=False, verbosity=0,
                 tags=None, limit=None, forks=None, cwd=REPO_ROOT, timeout=1800, extra_args=()):
    """ansible-playbook, with extra vars passed as JSON (types survive)."""
    argv = [str(VENV_BIN / "ansible-playbook"), str(playbook)]
    argv += ["-i", str(inventory) if inventory else "localhost,"]
    if extra_vars:
        vars_file = Path(TMP) / f"extra-vars-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
        vars_file.parent.mkdir(parents=True, exist_ok=True)
        vars_file.write_text(json.dumps(extra_vars, default=str))
        vars_file.chmod(0o600)
        argv += ["-e", f"@{vars_file}"]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    if verbosity:
        argv.append("-" + "v" * verbosity)
    if tags:
        argv += ["--tags", ",".join(tags) if isinstance(tags, (list, tuple)) else tags]
    if limit:
        argv += ["--limit", limit]
    if forks:
        argv += ["--forks", str(forks)]
    argv += list(extra_args)
    try:
        return _run(argv, ansible_env(env), cwd, timeout)
    finally:
        if extra_vars:
            vars_file.unlink(missing_ok=True)  # it may hold test secrets


def plain_values(value):
    """ansible-inventory writes strings from AWS as {"__ansible_unsafe": "..."}; give plain values."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_values(v) for v in value]
    return value


def run_inventory(inventory_file, env=None, cwd=REPO_ROOT, timeout=600, extra_args=()):
    """ansible-inventory --list; returns (AnsibleResult, parsed JSON or None)."""
    argv = [str(VENV_BIN / "ansible-inventory"), "-i", str(inventory_file), "--list", *extra_args]
    result = _run(argv, ansible_env(env), cwd, timeout)
    data = None
    if result.rc == 0:
        try:
            data = json.loads(result.stdout)
        except ValueError:
            data = None
    return result, data
