"""execution-environment.yml: `ansible-builder create` makes a complete build context offline.

The EE file is used as written: it is copied with the files it names (same
relative layout) into a temporary directory next to a freshly built
collection tarball, so the test neither reads nor leaves anything in .tmp/dist.
`ansible-builder build` needs registries and is not run here (docs/awx.md).
"""
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.sandbox.ansible import ansible_env
from tests.sandbox.paths import REPO_ROOT, VENV_BIN

EE_FILE = REPO_ROOT / "execution-environment.yml"


def run(argv, cwd, env=None):
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env or ansible_env(), capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, f"{argv}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    """(definition, build context dir, staging dir) after one `ansible-builder create`."""
    stage = tmp_path_factory.mktemp("ee-stage")
    definition = yaml.safe_load(EE_FILE.read_text())
    shutil.copy2(EE_FILE, stage / EE_FILE.name)
    for key in ("python", "system", "galaxy"):
        source = definition["dependencies"][key]
        (stage / source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / source, stage / source)
    for entry in definition["additional_build_files"]:
        src = entry["src"]
        if "circleci_server-aws-" in src:  # the collection tarball: built fresh, where the glob looks
            run([VENV_BIN / "ansible-galaxy", "collection", "build", "--force", "--output-path",
                 (stage / src).parent, REPO_ROOT], cwd=REPO_ROOT)
        else:
            (stage / src).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / src, stage / src)
    build_context = stage / "context"
    run([VENV_BIN / "ansible-builder", "create", "--file", EE_FILE.name, "--context", build_context,
         "--output-filename", "Containerfile"], cwd=stage)
    return definition, build_context, stage


def test_containerfile_takes_the_base_image_as_a_build_argument(context):
    definition, build_context, _ = context
    containerfile = (build_context / "Containerfile").read_text()
    assert f'ARG EE_BASE_IMAGE="{definition["images"]["base_image"]["name"]}"' in containerfile
    assert "FROM $EE_BASE_IMAGE AS base" in containerfile


def test_dependency_files_are_the_collections_own(context):
    _, build_context, _ = context
    for name in ("requirements.txt", "bindep.txt", "requirements.yml"):
        assert (build_context / "_build" / name).read_text() == (REPO_ROOT / name).read_text(), name
    containerfile = (build_context / "Containerfile").read_text()
    assert "--user-pip=requirements.txt --user-bindep=bindep.txt" in containerfile
    assert 'collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml' in containerfile


def test_ansible_core_in_the_image_is_the_tested_one(context):
    definition, build_context, _ = context
    pinned = re.search(r"^ansible-core==(\S+)$", (REPO_ROOT / "requirements-test.txt").read_text(), re.M).group(1)
    assert definition["dependencies"]["ansible_core"]["package_pip"] == f"ansible-core=={pinned}"
    assert f"ansible-core=={pinned}" in (build_context / "Containerfile").read_text()


def test_collection_dependencies_agree_with_galaxy_yml():
    """The image installs requirements.yml; the collection tarball declares galaxy.yml's list."""
    requirements = {c["name"] for c in yaml.safe_load((REPO_ROOT / "requirements.yml").read_text())["collections"]}
    declared = set(yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())["dependencies"])
    assert requirements == declared


def test_the_collection_itself_is_in_the_context_and_installs(context, tmp_path):
    _, build_context, _ = context
    tarballs = sorted((build_context / "_build" / "collections").glob("circleci_server-aws-*.tar.gz"))
    assert len(tarballs) == 1, tarballs
    containerfile = (build_context / "Containerfile").read_text()
    assert "/build/collections/circleci_server-aws-*.tar.gz" in containerfile
    with tarfile.open(tarballs[0]) as archive:
        names = set(archive.getnames())
    for expected in ("MANIFEST.json", "playbooks/awx_configure.yml", "awx/inventory/circleci.circleci_ec2.yml",
                     "awx/credential_types/circleci_license.yml", "data/sizing.yml", "requirements.txt",
                     "bindep.txt"):
        assert expected in names, f"{expected} missing from the collection tarball"
    assert not any(n.startswith(("tests/", ".tmp/", ".venv/")) for n in names)

    # What the galaxy stage does, offline and without dependencies.
    target = tmp_path / "collections"
    run([VENV_BIN / "ansible-galaxy", "collection", "install", "--offline", "--no-deps", "--collections-path",
         target, tarballs[0]], cwd=tmp_path, env=ansible_env(ANSIBLE_COLLECTIONS_PATH=str(target)))
    installed = target / "ansible_collections" / "circleci_server" / "aws"
    assert (installed / "playbooks" / "awx_configure.yml").is_file()
    # AWX-side use of the installed copy: the playbook resolves by its FQCN.
    bundled = Path(VENV_BIN).parent / "lib"
    env = ansible_env(ANSIBLE_COLLECTIONS_PATH=f"{target}:{next(bundled.glob('python3*/site-packages'))}")
    run([VENV_BIN / "ansible-playbook", "--syntax-check", "circleci_server.aws.awx_configure"], cwd=tmp_path, env=env)


def test_terraform_is_installed_only_with_a_checksum(context):
    _, build_context, _ = context
    containerfile = (build_context / "Containerfile").read_text()
    final_stage = containerfile.split("FROM base AS final", 1)[1]
    assert "COPY _build/terraform/install_terraform.py" in final_stage
    assert '--sha256 "$TERRAFORM_SHA256"' in final_stage
    assert (build_context / "_build" / "terraform" / "install_terraform.py").is_file()


def test_bindep_file_parses_for_this_platform(context):
    _, build_context, _ = context
    proc = subprocess.run([str(VENV_BIN / "bindep"), "--file", str(build_context / "_build" / "bindep.txt"),
                           "--brief"], capture_output=True, text=True, check=False)
    # 0: all present, 1: some missing (listed); anything else is a parse error.
    assert proc.returncode in (0, 1), proc.stderr
    assert set(proc.stdout.split()) <= {"openssh-client", "ca-certificates"}
