"""playbooks/awx_configure.yml and the AWX data it reads: surveys, job templates, workflow."""
import subprocess

import pytest

from tests.sandbox.ansible import ansible_env
from tests.sandbox.paths import VENV_BIN
from tests.unit.awx_data import (
    REPO,
    STAGE_PLAYBOOKS,
    contract_variables,
    job_templates,
    load_yaml,
    rendered_survey,
    sizing_instance_types,
    surveys,
    workflow,
)

SURVEYS = surveys()
TEMPLATES = {t["id"]: t for t in job_templates()}
WORKFLOW = workflow()
# Question types AWX's survey editor offers.
AWX_SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}


def test_syntax_check():
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "--syntax-check", "playbooks/awx_configure.yml"],
        cwd=REPO, env=ansible_env(), capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("key", sorted(SURVEYS))
def test_survey_is_valid_for_awx(key):
    spec = rendered_survey(key)
    assert spec["name"] and "description" in spec
    variables = [q["variable"] for q in spec["spec"]]
    assert len(variables) == len(set(variables)), "a variable asked twice"
    for question in spec["spec"]:
        assert question["type"] in AWX_SURVEY_TYPES
        assert question["question_name"] and isinstance(question["required"], bool)
        if "min" in question and "max" in question:
            assert question["min"] <= question["max"]
        if question["type"] in ("multiplechoice", "multiselect"):
            assert question["choices"], f"{question['variable']} has no choices"
            if question.get("default"):
                assert question["default"] in question["choices"]
        if question["type"] == "integer" and question.get("default") not in (None, ""):
            assert question["min"] <= question["default"] <= question["max"]


@pytest.mark.parametrize("key", sorted(SURVEYS))
def test_survey_asks_for_install_variables_the_playbooks_read(key):
    unknown = {q["variable"] for q in SURVEYS[key]["spec"]} - set(contract_variables())
    assert not unknown, f"survey {key} sets {sorted(unknown)}, not in docs/dev/contract.md"


def test_install_survey_asks_what_an_operator_enters_per_run():
    questions = {q["variable"]: q for q in rendered_survey("install")["spec"]}
    assert set(questions) == {
        "circleci_prefix", "circleci_daily_active_users",
        "circleci_services_instance_type", "circleci_nomad_instance_type",
    }
    assert questions["circleci_prefix"]["required"] and questions["circleci_daily_active_users"]["required"]
    assert questions["circleci_daily_active_users"]["type"] == "integer"
    for variable in ("circleci_services_instance_type", "circleci_nomad_instance_type"):
        # Optional: unanswered means "the sizing table's recommendation".
        assert not questions[variable]["required"]
        assert questions[variable]["choices"] == sizing_instance_types()


def test_instance_type_choices_come_from_the_sizing_table_not_a_copy():
    raw = {q["variable"]: q for q in SURVEYS["install"]["spec"]}
    assert raw["circleci_services_instance_type"]["choices"] == "{{ circleci_awx_instance_types }}"
    playbook = (REPO / "playbooks" / "awx_configure.yml").read_text()
    assert "lookup('circleci_server.aws.data', 'sizing.yml')" in playbook and "circleci_awx_instance_types" in playbook


def test_every_stage_has_a_job_template_with_its_playbook():
    for template_id, playbook in STAGE_PLAYBOOKS.items():
        assert TEMPLATES[template_id]["playbook"] == playbook
    assert TEMPLATES["site"]["playbook"] == "playbooks/site.yml"
    for template in TEMPLATES.values():
        assert template["survey"] in SURVEYS
        assert "aws" in template["credentials"], f"{template['name']}: every stage talks to AWS"
    names = [t["name"] for t in TEMPLATES.values()]
    assert len(names) == len(set(names)), "AWX resolves workflow nodes by name: names must be unique"


def test_templates_that_reach_hosts_get_the_machine_credential():
    for template_id in ("configure_hosts", "configure_app", "validate", "site"):
        assert "machine" in TEMPLATES[template_id]["credentials"]
    for template_id in ("preflight", "provision", "teardown"):
        assert "machine" not in TEMPLATES[template_id]["credentials"]


def _edges():
    return {
        node["identifier"]: {"success": node.get("success", []), "failure": node.get("failure", [])}
        for node in WORKFLOW["nodes"]
    }


def test_workflow_nodes_refer_to_real_templates_and_nodes():
    edges = _edges()
    assert len(edges) == len(WORKFLOW["nodes"]), "duplicate node identifiers"
    for node in WORKFLOW["nodes"]:
        assert ("job_template" in node) != ("approval" in node), node["identifier"]
        if "job_template" in node:
            assert node["job_template"] in TEMPLATES
        for target in node.get("success", []) + node.get("failure", []):
            assert target in edges, f"{node['identifier']} -> unknown node {target}"
    assert WORKFLOW["survey"] in SURVEYS


def test_workflow_happy_path_runs_the_stages_in_order():
    edges = _edges()
    roots = set(edges) - {t for e in edges.values() for t in e["success"] + e["failure"]}
    assert roots == {"preflight"}
    path, node = [], "preflight"
    while node:
        path.append(next(n["job_template"] for n in WORKFLOW["nodes"] if n["identifier"] == node))
        node = edges[node]["success"][0] if edges[node]["success"] else None
    assert path == ["preflight", "provision", "configure_hosts", "configure_app", "validate"]


def test_workflow_failure_paths():
    edges = _edges()
    nodes = {n["identifier"]: n for n in WORKFLOW["nodes"]}
    assert not edges["preflight"]["failure"], "nothing exists after a failed preflight: nothing to undo"
    for configure in ("configure_hosts", "configure_app"):
        (diagnose,) = edges[configure]["failure"]
        assert nodes[diagnose]["job_template"] == "validate", "a failed configure runs validate to name the check"
    (after_provision,) = edges["provision"]["failure"]
    assert "approval" in nodes[after_provision]


def test_teardown_is_only_reached_through_an_approval():
    """A workflow re-run on a live install must never destroy it without a person saying so."""
    nodes = {n["identifier"]: n for n in WORKFLOW["nodes"]}
    edges = _edges()

    def reachable_without_approval(start):
        seen, stack = set(), [start]
        while stack:
            current = stack.pop()
            if current in seen or "approval" in nodes[current]:
                continue
            seen.add(current)
            stack.extend(edges[current]["success"] + edges[current]["failure"])
        return seen

    teardown_nodes = {i for i, n in nodes.items() if n.get("job_template") == "teardown"}
    assert teardown_nodes
    assert not teardown_nodes & reachable_without_approval("preflight")


def test_workflow_graph_has_no_cycle():
    edges = _edges()
    state = {}

    def visit(node):
        assert state.get(node) != "open", f"cycle through {node}"
        if state.get(node) == "done":
            return
        state[node] = "open"
        for target in edges[node]["success"] + edges[node]["failure"]:
            visit(target)
        state[node] = "done"

    for node in edges:
        visit(node)


def test_inventory_source_file_uses_the_collection_plugin():
    path = REPO / "awx" / "inventory" / "circleci.circleci_ec2.yml"
    assert path.name.endswith("circleci_ec2.yml"), "the plugin only accepts files named *circleci_ec2.yml"
    config = load_yaml(path)
    assert config["plugin"] == "circleci_server.aws.circleci_ec2"
    playbook = (REPO / "playbooks" / "awx_configure.yml").read_text()
    assert f"source_path: {path.relative_to(REPO)}" in playbook
