"""AWX custom credential types: their injectors feed exactly what the playbooks read.

The injectors are rendered with Jinja the way AWX renders them at job launch;
the names they produce are checked against docs/dev/contract.md, the
playbooks the job templates run, and the roles' argument_specs, all read at
test time.
"""
import pytest

from tests.unit.awx_data import (
    BUILTIN_CREDENTIALS,
    REPO,
    STAGE_PLAYBOOKS,
    contract_variables,
    credential_types,
    injected_variables,
    job_templates,
    load_yaml,
    mentions,
    playbook_closure,
    render_injectors,
)

TYPES = credential_types()
CONTRACT = contract_variables()
SAMPLE_INPUTS = {
    "license": "-----fake license for a test-----\nline 2\n",
    "client_id": "Iv1.0123456789abcdef",
    "client_secret": "0123456789abcdef0123456789abcdef01234567",
    "secret_passphrase": "Passphrase4Test",
    "console_password": "console pass with spaces & symbols {{ not jinja }}",
    "awx_host_config_key": "0123456789abcdef0123456789abcdef",
}


def test_the_three_credential_types_exist():
    assert set(TYPES) == {"circleci_license", "circleci_github_oauth", "circleci_install_secrets"}


@pytest.mark.parametrize("type_id", sorted(TYPES))
def test_definition_is_one_awx_accepts(type_id):
    cred_type = TYPES[type_id]
    assert cred_type["kind"] == "cloud"  # the only kind AWX allows for custom types besides "net"
    field_ids = [field["id"] for field in cred_type["inputs"]["fields"]]
    assert len(field_ids) == len(set(field_ids))
    assert set(cred_type["inputs"]["required"]) <= set(field_ids)
    for field in cred_type["inputs"]["fields"]:
        assert field["type"] in ("string", "boolean")
        assert field.get("label"), f"{type_id}.{field['id']} needs a label for the AWX form"
    assert set(cred_type["injectors"]) <= {"file", "env", "extra_vars"}


@pytest.mark.parametrize("type_id", sorted(TYPES))
def test_injectors_render_into_contract_variables(type_id):
    extra_vars, env, _files = render_injectors(TYPES[type_id], SAMPLE_INPUTS)
    assert extra_vars, f"{type_id} injects nothing"
    assert not env, "the playbooks read variables, not environment"
    unknown = set(extra_vars) - set(CONTRACT)
    assert not unknown, f"{type_id} injects {sorted(unknown)}, which docs/dev/contract.md does not define"


def test_license_arrives_as_a_file_whose_path_is_circleci_license_path():
    extra_vars, _env, files = render_injectors(TYPES["circleci_license"], SAMPLE_INPUTS)
    assert set(extra_vars) == {"circleci_license_path"}
    assert files == {extra_vars["circleci_license_path"]: SAMPLE_INPUTS["license"]}


def test_secret_values_pass_through_unchanged():
    oauth = render_injectors(TYPES["circleci_github_oauth"], SAMPLE_INPUTS)[0]
    assert oauth == {
        "circleci_github_client_id": SAMPLE_INPUTS["client_id"],
        "circleci_github_client_secret": SAMPLE_INPUTS["client_secret"],
    }
    secrets = render_injectors(TYPES["circleci_install_secrets"], SAMPLE_INPUTS)[0]
    assert secrets == {
        "circleci_secret_passphrase": SAMPLE_INPUTS["secret_passphrase"],
        # Jinja in a secret's value stays text: AWX renders the template, not the value.
        "circleci_console_password": SAMPLE_INPUTS["console_password"],
        "circleci_awx_host_config_key": SAMPLE_INPUTS["awx_host_config_key"],
    }


def test_every_secret_install_variable_comes_from_a_credential():
    injected = set().union(*(injected_variables(t) for t in TYPES.values()))
    secrets = {name for name, secret in CONTRACT.items() if secret}
    # The license is secret as content; AWX hands it over as a file (circleci_license_path).
    missing = secrets - injected - {"circleci_license_content"}
    assert not missing, f"secret install variables no credential type injects: {sorted(missing)}"


@pytest.mark.parametrize("type_id", sorted(TYPES))
def test_inputs_behind_secret_variables_are_secret_fields(type_id):
    cred_type = TYPES[type_id]
    fields = {field["id"]: field for field in cred_type["inputs"]["fields"]}
    templates = dict(cred_type["injectors"].get("extra_vars", {}))
    file_sources = " ".join(cred_type["injectors"].get("file", {}).values())
    for variable, template in templates.items():
        sources = file_sources if "tower.filename" in template else template
        if CONTRACT.get(variable) or variable == "circleci_license_path":
            for field_id, field in fields.items():
                if field_id in sources:
                    assert field.get("secret"), f"{type_id}.{field_id} feeds {variable} and must be secret"


def _credential_vars(template):
    return set().union(*(injected_variables(TYPES[key]) for key in template["credentials"] if key in TYPES))


def _existing_stage_templates():
    return [t for t in job_templates() if t["id"] in STAGE_PLAYBOOKS and (REPO / t["playbook"]).exists()]


def test_job_templates_name_known_credentials():
    for template in job_templates():
        unknown = set(template["credentials"]) - set(TYPES) - BUILTIN_CREDENTIALS
        assert not unknown, f"{template['name']}: unknown credentials {sorted(unknown)}"


def test_injected_variables_are_read_by_the_playbooks_that_get_them():
    """Each credential a job template attaches feeds something its playbook reads.

    Runs for the stage playbooks that exist; until they are written the
    contract check above is the one that holds (see docs/awx.md).
    """
    templates = _existing_stage_templates()
    if not templates:
        pytest.skip("no stage playbook (playbooks/preflight.yml ...) exists yet; names checked against contract.md")
    for template in templates:
        text = playbook_closure(template["playbook"])
        for key in template["credentials"]:
            if key in TYPES:
                read = {v for v in injected_variables(TYPES[key]) if mentions(text, v)}
                assert read, f"{template['playbook']} reads none of {sorted(injected_variables(TYPES[key]))} ({key})"


# Read by a job's playbook closure but not needed by that job, and why. Kept
# short and explicit: anything else a playbook reads must come from a credential.
READ_NOT_NEEDED = {
    # The infrastructure role never reads the passphrase (the input contract checks it).
    # teardown.yml and validate.yml import inputs.yml with check_inputs_groups: []
    # (only the install-wide checks); the secret groups of check_inputs.yml do not run there.
    "teardown": {"circleci_secret_passphrase", "circleci_console_password", "circleci_github_client_id",
                 "circleci_github_client_secret", "circleci_license_path"},
    "validate": {"circleci_console_password", "circleci_github_client_id", "circleci_github_client_secret",
                 "circleci_license_path", "circleci_secret_passphrase"},
}


def test_playbook_closure_follows_task_files_and_roles():
    # provision.yml names the passphrase only in a task file it imports, and the
    # infrastructure role's working directory only in the role: both must be found.
    text = playbook_closure("playbooks/provision.yml")
    assert "circleci_secret_passphrase" not in (REPO / "playbooks" / "provision.yml").read_text()
    assert mentions(text, "circleci_secret_passphrase")
    assert mentions(text, "__infrastructure_workdir")
    # configure_hosts.yml -> roles services -> include_role docker.
    hosts = playbook_closure("playbooks/configure_hosts.yml")
    assert mentions(hosts, "services__passphrase_path") and mentions(hosts, "docker_daemon_options")


def test_playbooks_get_every_secret_they_read():
    templates = _existing_stage_templates()
    if not templates:
        pytest.skip("no stage playbook exists yet")
    injected_anywhere = set().union(*(injected_variables(t) for t in TYPES.values()))
    for template in templates:
        text = playbook_closure(template["playbook"])
        needed = {v for v in injected_anywhere if mentions(text, v)} - READ_NOT_NEEDED.get(template["id"], set())
        missing = needed - _credential_vars(template)
        assert not missing, (
            f"{template['name']} runs {template['playbook']}, which reads {sorted(missing)}: attach the credential"
        )


def test_site_template_runs_every_stage():
    site = next(t for t in job_templates() if t["id"] == "site")
    if not all((REPO / path).exists() for path in STAGE_PLAYBOOKS.values()):
        pytest.skip("not every stage playbook exists yet")
    text = playbook_closure(site["playbook"])
    injected_anywhere = set().union(*(injected_variables(t) for t in TYPES.values()))
    assert {v for v in injected_anywhere if mentions(text, v)} <= _credential_vars(site)


def _role_mappings():
    """(file, role option, install variable) for every role option a playbook sets from an injected variable."""
    roles = {p.name for p in (REPO / "roles").glob("*") if p.is_dir()} if (REPO / "roles").exists() else set()
    injected = set().union(*(injected_variables(t) for t in TYPES.values()))
    found = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(key, str) and isinstance(value, str):
                    role = next((r for r in roles if key.startswith(r + "_")), None)
                    for variable in injected:
                        if role and mentions(value, variable):
                            found.append((path, role, key, variable))
                walk(value, path)
        elif isinstance(node, list):
            for item in node:
                walk(item, path)

    for path in sorted((REPO / "playbooks").rglob("*.yml")) + [REPO / "site.yml"]:
        walk(load_yaml(path), path.relative_to(REPO))
    return found


def test_role_options_fed_by_credentials_exist_in_the_argument_specs():
    mappings = [m for m in _role_mappings() if (REPO / "roles" / m[1] / "meta" / "argument_specs.yml").exists()]
    if not mappings:
        pytest.skip("no playbook maps an injected variable to a role with meta/argument_specs.yml yet")
    for path, role, option, variable in mappings:
        specs = load_yaml(REPO / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]
        options = set().union(*(set(entry.get("options", {})) for entry in specs.values()))
        assert option in options, f"{path} sets {option} from {variable}, but roles/{role} has no such option"
