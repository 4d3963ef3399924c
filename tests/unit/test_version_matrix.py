"""data/versions.yml: the rows the vendor's commits give, and the role defaults that read them."""
import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar, trust_as_template

from tests.sandbox.paths import COLLECTIONS_ROOT, REPO_ROOT

# The collection finder is already set up by the test session; the plugin
# loader (for the `file` lookup the defaults use) still needs initialising.
pytestmark = pytest.mark.filterwarnings("ignore:AnsibleCollectionFinder has already been configured")

VERSIONS = yaml.safe_load((REPO_ROOT / "data" / "versions.yml").read_text())
ROWS = VERSIONS["circleci_server_versions"]


def render_default(role, variable, **extra):
    """A role default as Ansible renders it, with role_path set."""
    init_plugin_loader([str(COLLECTIONS_ROOT)])
    defaults = yaml.safe_load((REPO_ROOT / "roles" / role / "defaults" / "main.yml").read_text())
    # Role files are trusted templates to Ansible; yaml.safe_load's strings are not.
    variables = {k: trust_as_template(v) if isinstance(v, str) else v for k, v in dict(defaults, **extra).items()}
    variables["role_path"] = str(REPO_ROOT / "roles" / role)
    return Templar(loader=DataLoader(), variables=variables).template(variables[variable])


def test_rows_hold_what_the_vendor_ran():
    # enterprise-setup 8abbfef: Replicated 2.34.1 for 2.17.
    assert ROWS["2.17"]["replicated"] == "2.34.1"
    # Nomad 0.5.6 / Docker 17.03.2 on clients until the server-2.19 branch (a24cf18, 2019-11-20).
    for version in ("2.16", "2.17", "2.18"):
        assert (ROWS[version]["nomad"], ROWS[version]["nomad_client_docker"]) == ("0.5.6", "17.03.2")
    assert (ROWS["2.19"]["nomad"], ROWS["2.19"]["nomad_client_docker"]) == ("0.9.3", "18.09.9")
    # 2.19 kept Docker 17.12.1 on the Services machine.
    assert all(row["services_docker"] == "17.12.1" for row in ROWS.values())
    # cc3d0ee: the datacenter became "default" with 2.19.
    assert {v: row["nomad_datacenter"] for v, row in ROWS.items()} == {
        "2.16": "us-east-1", "2.17": "us-east-1", "2.18": "us-east-1", "2.19": "default"}
    # Ubuntu 16.04 AMIs (4bc90a1) and IMDSv1-era containers for every 2.x release.
    assert {row["ubuntu"] for row in ROWS.values()} == {"16.04"}
    assert {row["services_http_tokens"] for row in ROWS.values()} == {"optional"}


@pytest.mark.parametrize("version,datacenter", [("2.16", "us-east-1"), ("2.18", "us-east-1"), ("2.19", "default")])
def test_nomad_client_datacenter_comes_from_the_matrix(version, datacenter):
    rendered = render_default("nomad_client", "nomad_client_datacenter", nomad_client_circleci_version=version)
    assert rendered == datacenter


def test_infrastructure_ami_filter_and_imds_come_from_the_matrix():
    role_vars = yaml.safe_load((REPO_ROOT / "roles" / "infrastructure" / "vars" / "main.yml").read_text())
    needed = {k: role_vars[k]
              for k in ("__infrastructure_versions", "__infrastructure_release", "__infrastructure_ubuntu")}
    for variable, expected in (
        ("infrastructure_ubuntu_ami_name_filter", "ubuntu/images/hvm-ssd*/ubuntu-xenial-16.04-amd64-server-*"),
        ("infrastructure_services_http_tokens", "optional"),
    ):
        assert render_default("infrastructure", variable, **needed) == expected
