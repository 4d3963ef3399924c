"""Shared pytest fixtures: the sandbox (see tests/sandbox/__init__.py).

Fixtures:
  moto_server   session-wide moto server (started once)
  aws           the same server, reset before the test (a clean AWS account)
  terraform_bin the sandbox terraform executable (mirror + CLI config ready)
  tf_workdir    factory: copy a Terraform config into a temp dir, add the moto override
  base_image    the systemd host image tag (built once, cached by package list)
  systemd_host  factory: start systemd containers, removed after the test
"""
import shutil
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.sandbox import hosts as sandbox_hosts  # noqa: E402
from tests.sandbox import terraform as sandbox_terraform  # noqa: E402
from tests.sandbox.aws import MotoServer  # noqa: E402
from tests.sandbox.paths import ensure_collection_link  # noqa: E402

ensure_collection_link()
# Unit tests import the collection as ansible_collections.circleci_server.aws.
from tests.sandbox.paths import COLLECTIONS_ROOT  # noqa: E402

if str(COLLECTIONS_ROOT) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS_ROOT))

# Ansible's collection finder and plugin loader (once per session, first): templates
# rendered in unit tests find the collection's own plugins (the data lookup).
from ansible.plugins.loader import init_plugin_loader  # noqa: E402

init_plugin_loader([str(COLLECTIONS_ROOT)])


@pytest.fixture(scope="session")
def moto_server():
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def aws(moto_server):
    moto_server.reset()
    yield moto_server


@pytest.fixture(scope="session")
def terraform_bin():
    return sandbox_terraform.setup()


@pytest.fixture
def tf_workdir(tmp_path, terraform_bin, moto_server):
    """Copy a Terraform configuration into a fresh directory pointed at moto."""

    def make(source_dir, extra_override=""):
        workdir = tmp_path / f"tf-{uuid.uuid4().hex[:6]}"
        shutil.copytree(source_dir, workdir, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
        sandbox_terraform.write_moto_override(workdir, moto_server.url, moto_server.region, extra_override)
        return workdir

    return make


@pytest.fixture(scope="session")
def base_image():
    if not sandbox_hosts.docker_available():
        pytest.fail("dockerd is not running; .ci/run starts it (or run `dockerd &` as root)")
    return sandbox_hosts.ensure_base_image()


@pytest.fixture
def systemd_host(base_image):
    started = []

    def start(name_prefix="host", **kwargs):
        host = sandbox_hosts.SystemdHost(f"sbx-{name_prefix}-{uuid.uuid4().hex[:6]}", image=base_image, **kwargs)
        started.append(host)
        return host.start()

    yield start
    for host in started:
        host.remove()
