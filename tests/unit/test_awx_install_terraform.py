"""awx/execution_environment/install_terraform.py: the EE installs terraform only with a matching SHA256."""
import hashlib
import importlib.util
import os
import zipfile

import pytest

from tests.unit.awx_data import REPO

SPEC = importlib.util.spec_from_file_location(
    "install_terraform", REPO / "awx" / "execution_environment" / "install_terraform.py"
)
install_terraform = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(install_terraform)

BINARY = b"#!/bin/sh\necho 'Terraform v9.9.9 (test stand-in)'\n"


@pytest.fixture
def release(tmp_path):
    """A local release tree laid out like releases.hashicorp.com/terraform."""
    root = tmp_path / "releases"
    archive = root / "9.9.9" / "terraform_9.9.9_linux_amd64.zip"
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("terraform", BINARY)
        zipped.writestr("LICENSE.txt", "test")
    return root.as_uri(), hashlib.sha256(archive.read_bytes()).hexdigest()


def test_installs_when_the_checksum_matches(tmp_path, release):
    base_url, digest = release
    target = install_terraform.install("9.9.9", "x86_64", digest.upper(), tmp_path / "bin", base_url)
    with open(target, "rb") as installed:
        assert installed.read() == BINARY
    assert os.access(target, os.X_OK)


def test_refuses_a_zip_with_another_checksum(tmp_path, release):
    base_url, _digest = release
    with pytest.raises(install_terraform.InstallError, match="does not match"):
        install_terraform.install("9.9.9", "amd64", "0" * 64, tmp_path / "bin", base_url)
    assert not (tmp_path / "bin" / "terraform").exists()


@pytest.mark.parametrize("given", ["", "abc", "g" * 64])
def test_refuses_to_run_without_a_valid_checksum(tmp_path, release, given):
    base_url, _digest = release
    with pytest.raises(install_terraform.InstallError, match="TERRAFORM_SHA256"):
        install_terraform.install("9.9.9", "amd64", given, tmp_path / "bin", base_url)


def test_cli_reports_a_missing_release(tmp_path, release, capsys):
    base_url, digest = release
    rc = install_terraform.main(["--version", "1.0.0", "--sha256", digest, "--base-url", base_url,
                                 "--dest", str(tmp_path / "bin")])
    assert rc == 1
    assert "cannot download" in capsys.readouterr().err
