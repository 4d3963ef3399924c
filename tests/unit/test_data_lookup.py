"""The data lookup (circleci_server.aws.data): the one way roles and playbooks read data/."""
import re

import pytest
from ansible.errors import AnsibleLookupError

from ansible_collections.circleci_server.aws.plugins.lookup.data import LookupModule
from ansible_collections.circleci_server.aws.plugins.plugin_utils import data as data_files
from tests.sandbox.paths import REPO_ROOT


def lookup(*terms, **kwargs):
    return LookupModule().run(list(terms), variables={}, **kwargs)


def test_returns_the_parsed_file():
    versions, = lookup("versions.yml")
    assert versions["circleci_server_default_version"] in versions["circleci_server_versions"]


def test_returns_a_copy_callers_may_change():
    first, = lookup("ports.yml")
    first.clear()
    second, = lookup("ports.yml")
    assert second


def test_path_option_gives_the_file_in_the_collection():
    path, = lookup("ports.yml", path=True)
    assert path == str(REPO_ROOT / "data" / "ports.yml") or path.endswith("/data/ports.yml")


@pytest.mark.parametrize("name", ["../galaxy.yml", "/etc/passwd", "nothere.yml", "versions"])
def test_refuses_anything_but_a_data_file_naming_the_choices(name):
    with pytest.raises(AnsibleLookupError, match="versions.yml"):
        lookup(name)


def test_no_role_or_playbook_builds_its_own_path_to_data():
    pattern = re.compile(r"(role_path|playbook_dir)[^\n]*/data/|\.\./data/")
    offenders = [str(p.relative_to(REPO_ROOT)) for top in ("roles", "playbooks")
                 for p in (REPO_ROOT / top).rglob("*.yml") if pattern.search(p.read_text())]
    assert offenders == []


def test_the_default_version_is_written_once():
    default = data_files.load_data("versions.yml")["circleci_server_default_version"]
    literal = re.compile(r"""["']%s["']""" % re.escape(str(default)))
    files = [p for top in ("roles", "playbooks", "plugins") for p in (REPO_ROOT / top).rglob("*")
             if p.suffix in (".yml", ".py", ".j2")]
    offenders = [str(p.relative_to(REPO_ROOT)) for p in files if literal.search(p.read_text())]
    assert offenders == []
