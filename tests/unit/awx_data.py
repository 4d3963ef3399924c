"""Readers for the AWX data under awx/ and the files it must agree with.

Shared by tests/unit/test_awx_*.py. Everything is read from the checkout at
test time, so a renamed variable anywhere makes the tests fail.
"""
import re
from pathlib import Path

import yaml
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

REPO = Path(__file__).resolve().parents[2]
AWX = REPO / "awx"
CONTRACT = REPO / "docs" / "dev" / "contract.md"

# Stage playbooks (job templates); site.yml imports them all.
STAGE_PLAYBOOKS = {
    "preflight": "playbooks/preflight.yml",
    "provision": "playbooks/provision.yml",
    "configure_hosts": "playbooks/configure_hosts.yml",
    "configure_app": "playbooks/configure_app.yml",
    "validate": "playbooks/validate.yml",
    "teardown": "playbooks/teardown.yml",
}
# Credentials awx_configure.yml takes from the operator (AWX built-in types).
BUILTIN_CREDENTIALS = {"aws", "machine"}


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads Ansible's `!unsafe` tag as a plain string."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def load_yaml(path):
    with open(path) as handle:
        return yaml.load(handle, Loader=_Loader)  # noqa: S506 - SafeLoader subclass


def credential_types():
    """{type id: definition} from awx/credential_types/*.yml (as include_vars dir= merges them)."""
    merged = {}
    for path in sorted((AWX / "credential_types").glob("*.yml")):
        data = load_yaml(path)
        assert isinstance(data, dict) and len(data) == 1, f"{path}: one credential type per file, under its id"
        merged.update(data)
    return merged


def job_templates():
    return load_yaml(AWX / "job_templates.yml")["circleci_awx_job_templates"]


def workflow():
    return load_yaml(AWX / "workflow.yml")["circleci_awx_workflow"]


def surveys():
    """{survey key: spec}; the key is what job templates and the workflow name."""
    found = {}
    for path in sorted((AWX / "surveys").glob("*.yml")):
        for var_name, spec in load_yaml(path).items():
            assert var_name.startswith("circleci_awx_survey_"), f"{path}: {var_name}"
            found[var_name[len("circleci_awx_survey_"):]] = spec
    return found


def sizing_instance_types():
    return list(load_yaml(REPO / "data" / "sizing.yml")["instance_types"])


def upgrade_releases():
    """The releases one can upgrade to, as awx_configure.yml offers them: the matrix after its oldest."""
    releases = load_yaml(REPO / "data" / "versions.yml")["circleci_server_versions"]
    return sorted(releases, key=lambda v: tuple(int(p) for p in v.split(".")))[1:]


def contract_variables():
    """{variable: is_secret} from the install-level table of docs/dev/contract.md."""
    text = CONTRACT.read_text()
    section = text.split("## Install-level variables", 1)[1].split("\n## ", 1)[0]
    variables = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        secret = cells[-1].lower().startswith("yes")
        for name in re.findall(r"`(circleci_[a-z0-9_]+)`", cells[0]):
            variables[name] = secret
    return variables


AWX_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined)


class TowerNamespace:
    filename = None


def render_injectors(cred_type, inputs, file_dir="/runner/env"):
    """Render a credential type's injectors the way AWX does at job launch.

    Returns (extra_vars, env, files): files maps each written path to its content.
    Mirrors awx.main.models.credential.CredentialType.inject_credential: the
    input values plus `tower` are the namespace; file templates are rendered
    first and `tower.filename` (one file) or `tower.filename.<name>` point at them.
    """
    tower = TowerNamespace()
    namespace = {"tower": tower}
    for field in cred_type["inputs"]["fields"]:
        namespace[field["id"]] = inputs.get(field["id"], "")
    injectors = cred_type.get("injectors", {})
    files = {}
    for label, template in sorted(injectors.get("file", {}).items()):
        path = f"{file_dir}/tmp_{len(files)}"
        files[path] = AWX_ENV.from_string(template).render(**namespace)
        if "." in label:
            if not isinstance(tower.filename, dict):
                tower.filename = {}
            tower.filename[label.split(".", 1)[1]] = path
        else:
            tower.filename = path
    extra_vars = {
        name: AWX_ENV.from_string(template).render(**namespace)
        for name, template in injectors.get("extra_vars", {}).items()
    }
    env = {
        name: AWX_ENV.from_string(template).render(**namespace) for name, template in injectors.get("env", {}).items()
    }
    return extra_vars, env, files


def injected_variables(cred_type):
    return set(cred_type.get("injectors", {}).get("extra_vars", {}))


TASK_KEYS = ("tasks", "pre_tasks", "post_tasks", "handlers", "block", "rescue", "always")
INCLUDE_TASKS = ("include_tasks", "import_tasks")
INCLUDE_ROLE = ("include_role", "import_role")


def _module_arg(task, names):
    """The argument of a task calling any of `names` (short or ansible.builtin.), else None."""
    for name in names:
        for key in (name, "ansible.builtin." + name):
            if key in task:
                return task[key]
    return None


def _role_dir(name):
    return REPO / "roles" / str(name).split("circleci_server.aws.", 1)[-1]


def _role_closure(name, seen):
    """A role's defaults, vars and meta (its dependencies followed) and its tasks (includes followed)."""
    directory = _role_dir(name).resolve()
    if directory in seen or not directory.is_dir():
        return ""
    seen.add(directory)
    texts = []
    for sub in ("defaults", "vars", "meta"):
        for path in sorted((directory / sub).glob("*.yml")):
            texts.append(path.read_text())
    for dependency in (load_yaml(directory / "meta" / "main.yml") or {}).get("dependencies", []) \
            if (directory / "meta" / "main.yml").exists() else []:
        texts.append(_role_closure(dependency.get("role") if isinstance(dependency, dict) else dependency, seen))
    texts.append(_tasks_closure(directory / "tasks" / "main.yml", seen, directory / "tasks"))
    return "\n".join(texts)


def _tasks_closure(path, seen, role_tasks=None):
    """A task file's text plus the task files and roles it includes or imports, recursively."""
    path = path.resolve()
    if path in seen or not path.exists():
        return ""
    seen.add(path)
    texts = [path.read_text()]
    texts.append(_walk_tasks(load_yaml(path) or [], path.parent, seen, role_tasks))
    return "\n".join(texts)


def _walk_tasks(tasks, base, seen, role_tasks):
    texts = []
    for task in tasks if isinstance(tasks, list) else []:
        if not isinstance(task, dict):
            continue
        for key in ("block", "rescue", "always"):
            texts.append(_walk_tasks(task.get(key), base, seen, role_tasks))
        target = _module_arg(task, INCLUDE_TASKS)
        if isinstance(target, dict):
            target = target.get("file")
        if isinstance(target, str) and "{{" not in target:
            candidates = [base / target] + ([role_tasks / target] if role_tasks else [])
            found = next((c for c in candidates if c.exists()), None)
            assert found, f"{base}: included task file {target} not found"
            texts.append(_tasks_closure(found, seen, role_tasks))
        role = _module_arg(task, INCLUDE_ROLE)
        if isinstance(role, dict) and role.get("name") and "{{" not in role["name"]:
            texts.append(_role_closure(role["name"], seen))
    return "\n".join(texts)


def playbook_closure(relative_path, seen=None):
    """Text of a playbook plus everything it runs, recursively: imported playbooks, its plays'
    vars_files, included or imported task files, and roles (play `roles:`, include_role and
    import_role, meta dependencies) with their defaults, vars, meta and task files."""
    seen = set() if seen is None else seen
    path = (REPO / relative_path).resolve()
    if path in seen or not path.exists():
        return ""
    seen.add(path)
    text = path.read_text()
    for entry in load_yaml(path) or []:
        if not isinstance(entry, dict):
            continue
        target = entry.get("ansible.builtin.import_playbook") or entry.get("import_playbook")
        if target and "{{" not in target:
            target = target.split("circleci_server.aws.", 1)[-1]
            if not target.endswith(".yml"):
                target = f"playbooks/{target}.yml"
            candidate = (path.parent / target) if (path.parent / target).exists() else (REPO / target)
            text += "\n" + playbook_closure(candidate.relative_to(REPO), seen)
            continue
        for role in entry.get("roles") or []:
            name = role.get("role") or role.get("name") if isinstance(role, dict) else role
            text += "\n" + _role_closure(name, seen)
        for key in ("pre_tasks", "tasks", "post_tasks", "handlers"):
            text += "\n" + _walk_tasks(entry.get(key), path.parent, seen, None)
        # A play's vars_files are read by it too (e.g. configure_hosts.yml's vars/app_settings.yml reads the license).
        for vars_file in entry.get("vars_files") or []:
            plain = isinstance(vars_file, str) and "{{" not in vars_file
            candidate = (path.parent / vars_file).resolve() if plain else None
            if candidate and candidate.exists() and candidate not in seen:
                seen.add(candidate)
                text += "\n" + candidate.read_text()
    return text


def mentions(text, variable):
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(variable)}(?![A-Za-z0-9_])", text) is not None


def rendered_survey(key):
    """A survey as awx_configure.yml sends it: Jinja in it rendered with the sizing table's types
    and the version matrix's later releases."""
    spec = surveys()[key]
    context = {"circleci_awx_instance_types": sizing_instance_types(),
               "circleci_awx_upgrade_releases": upgrade_releases()}

    def render(node):
        if isinstance(node, dict):
            return {k: render(v) for k, v in node.items()}
        if isinstance(node, list):
            return [render(v) for v in node]
        if isinstance(node, str) and node.strip().startswith("{{") and node.strip().endswith("}}"):
            return AWX_ENV.compile_expression(node.strip()[2:-2])(**context)
        return node

    return render(spec)
