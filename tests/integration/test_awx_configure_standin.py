"""playbooks/awx_configure.yml run for real with awx.awx, against an AWX API stand-in.

tests/standins/awx_api.py answers like AWX's /api/v2/ for the calls these
modules make (it is not AWX: see its docstring). Two runs: the first creates
everything from the data under awx/, the second must change nothing.
"""
import json

import pytest
import yaml

from tests.sandbox.ansible import run_playbook
from tests.sandbox.paths import REPO_ROOT, VENV_BIN
from tests.standins.awx_api import AwxApiStandin

AWX = REPO_ROOT / "awx"
LICENSE_TEXT = "stand-in license for a test\nsecond line\n"


def unsafe_yaml(path):
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
    with open(path) as handle:
        return yaml.load(handle, Loader=Loader)  # noqa: S506 - SafeLoader subclass


def base_settings(api):
    return {
        "circleci_awx_controller_host": api.url,
        "circleci_awx_controller_oauthtoken": "stand-in-token",
        "circleci_awx_project_url": "https://git.example.invalid/circleci_server.aws.git",
        "circleci_awx_ee_image": "registry.example.invalid/circleci-server-ee:0.1.0",
        "circleci_awx_aws_credential": "circleci-aws",
        "circleci_awx_machine_credential": "circleci-ec2-key",
        # The awx.awx modules run on the controller: the venv's Python has what they import.
        "ansible_python_interpreter": str(VENV_BIN / "python"),
    }


@pytest.fixture(scope="module")
def configured(tmp_path_factory):
    """(stand-in, first run, second run, write requests of the second run)."""
    tmp = tmp_path_factory.mktemp("awx")
    api = AwxApiStandin().start()
    aws_type = api.seed("credential_types", name="Amazon Web Services", kind="cloud", managed=True)
    ssh_type = api.seed("credential_types", name="Machine", kind="ssh", managed=True)
    api.seed("credentials", name="circleci-aws", credential_type=aws_type["id"], inputs={})
    api.seed("credentials", name="circleci-ec2-key", credential_type=ssh_type["id"], inputs={})
    license_file = tmp / "license.rli"
    license_file.write_text(LICENSE_TEXT)
    settings = base_settings(api)
    settings.update({
        "circleci_awx_installs": [{"prefix": "ci-prod", "region": "us-east-1"},
                                  {"prefix": "ci-staging", "region": "eu-west-1"}],
        "circleci_awx_extra_vars": {"circleci_region": "us-east-1", "circleci_github_type": "public"},
        "circleci_license_path": str(license_file),
        "circleci_secret_passphrase": "Passphrase4Test",
        "circleci_console_password": "console-password",
        "circleci_github_client_id": "Iv1.0123456789abcdef",
        "circleci_github_client_secret": "0123456789abcdef0123456789abcdef01234567",
    })
    try:
        first = run_playbook("playbooks/awx_configure.yml", extra_vars=settings, timeout=900)
        writes_before = len(api.requests)
        second = run_playbook("playbooks/awx_configure.yml", extra_vars=settings, timeout=900)
        yield api, first, second, api.requests[writes_before:]
    finally:
        api.stop()


pytestmark = pytest.mark.slow  # two full runs: about 40 module calls each


def test_missing_secrets_stop_the_run_before_anything_is_written():
    api = AwxApiStandin().start()
    try:
        result = run_playbook("playbooks/awx_configure.yml", extra_vars=base_settings(api), timeout=300)
        assert result.rc != 0
        assert "circleci_awx_manage_credentials=false" in result.output()
        assert api.requests == []
    finally:
        api.stop()


def test_first_run_creates_and_second_run_changes_nothing(configured):
    _api, first, second, second_writes = configured
    assert first.rc == 0, str(first)
    assert first.changed > 0
    assert second.rc == 0, str(second)
    assert second.changed == 0, str(second)
    assert second_writes == [], f"the second run wrote to AWX: {second_writes}"


def test_no_secret_reaches_the_output(configured):
    _api, first, _second, _writes = configured
    secrets = ("Passphrase4Test", "console-password", "0123456789abcdef0123456789abcdef01234567", "stand-in license")
    for secret in secrets:
        assert secret not in first.output()


def test_credential_types_arrive_with_their_injector_templates_unrendered(configured):
    api = configured[0]
    for path in sorted((AWX / "credential_types").glob("*.yml")):
        (definition,) = unsafe_yaml(path).values()
        stored = api.one("credential_types", name=definition["name"])
        assert stored["injectors"] == definition["injectors"]
        assert stored["inputs"] == definition["inputs"]
    assert api.one("credential_types", name="CircleCI Server license")["injectors"]["extra_vars"] == {
        "circleci_license_path": "{{ tower.filename }}"
    }


def test_credentials_hold_the_install_secrets(configured):
    api = configured[0]
    assert api.one("credentials", name="CircleCI Server license")["inputs"] == {"license": LICENSE_TEXT}
    assert api.one("credentials", name="CircleCI Server install secrets")["inputs"] == {
        "secret_passphrase": "Passphrase4Test", "console_password": "console-password",
    }
    assert api.one("credentials", name="CircleCI Server GitHub OAuth app")["inputs"]["client_id"] == (
        "Iv1.0123456789abcdef"
    )


def test_one_inventory_source_per_install_from_the_project_file(configured):
    api = configured[0]
    project = api.one("projects", name="CircleCI Server")
    assert project["default_environment"] == api.one("execution_environments", name="CircleCI Server EE")["id"]
    sources = {s["name"]: s for s in api.objects("inventory_sources")}
    assert set(sources) == {"CircleCI Server - ci-prod", "CircleCI Server - ci-staging"}
    prod = sources["CircleCI Server - ci-prod"]
    assert prod["source"] == "scm" and prod["source_project"] == project["id"]
    assert prod["source_path"] == "awx/inventory/circleci.circleci_ec2.yml"
    source_vars = prod["source_vars"] if isinstance(prod["source_vars"], dict) else json.loads(prod["source_vars"])
    assert source_vars == {"CIRCLECI_INSTALL": "ci-prod", "CIRCLECI_REGION": "us-east-1"}
    assert prod["update_on_launch"] is True
    assert prod["credential"] == api.one("credentials", name="circleci-aws")["id"]


def test_job_templates_get_their_playbook_credentials_and_survey(configured):
    api = configured[0]
    credential_names = {c["id"]: c["name"] for c in api.objects("credentials")}
    data = unsafe_yaml(AWX / "job_templates.yml")["circleci_awx_job_templates"]
    sizing = list(unsafe_yaml(REPO_ROOT / "data" / "sizing.yml")["instance_types"])
    releases = sorted(unsafe_yaml(REPO_ROOT / "data" / "versions.yml")["circleci_server_versions"],
                      key=lambda v: tuple(int(p) for p in v.split(".")))
    key_names = {"aws": "circleci-aws", "machine": "circleci-ec2-key",
                 "circleci_license": "CircleCI Server license",
                 "circleci_github_oauth": "CircleCI Server GitHub OAuth app",
                 "circleci_install_secrets": "CircleCI Server install secrets"}
    assert len(api.objects("job_templates")) == len(data)
    for template in data:
        stored = api.one("job_templates", name=template["name"])
        assert stored["playbook"] == template["playbook"]
        linked = {credential_names[i] for i in api.linked("job_templates", stored["id"], "credentials")}
        assert linked == {key_names[k] for k in template["credentials"]}
        survey = api.survey("job_templates", stored["id"])
        assert stored["survey_enabled"] is True and survey["spec"]
        for question in survey["spec"]:
            if question["variable"].endswith("_instance_type"):
                assert question["choices"] == sizing
            elif question["variable"] == "circleci_version" and template["id"] == "upgrade":
                assert question["choices"] == releases[1:] and question["default"] == releases[-1]


def test_workflow_nodes_and_paths(configured):
    api = configured[0]
    workflow = api.one("workflow_job_templates", name="CircleCI Server - install workflow")
    nodes = {n["identifier"]: n for n in api.objects("workflow_job_template_nodes")
             if n["workflow_job_template"] == workflow["id"]}
    by_id = {n["id"]: name for name, n in nodes.items()}
    data = unsafe_yaml(AWX / "workflow.yml")["circleci_awx_workflow"]["nodes"]
    assert set(nodes) == {n["identifier"] for n in data}
    for node in data:
        for kind in ("success", "failure"):
            linked = [by_id[i] for i in api.linked("workflow_job_template_nodes", nodes[node["identifier"]]["id"],
                                                   f"{kind}_nodes")]
            assert sorted(linked) == sorted(node.get(kind, [])), (node["identifier"], kind)
    approval = api.one("workflow_approval_templates")
    assert nodes["approve_teardown"]["unified_job_template"] == approval["id"]
    teardown = api.one("job_templates", name="CircleCI Server - teardown")
    assert nodes["teardown"]["unified_job_template"] == teardown["id"]
