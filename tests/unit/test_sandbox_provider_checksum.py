"""The provider mirror refuses a zip whose SHA256 is not HashiCorp's."""
import shutil

import pytest

from tests.sandbox import terraform as sandbox_terraform


def test_shipped_zip_matches_published_sum():
    assert sandbox_terraform.verify_provider_zip(sandbox_terraform.shipped_provider_zip()) == \
        sandbox_terraform.PROVIDER_SHA256


def test_tampered_zip_is_refused(tmp_path):
    tampered = tmp_path / sandbox_terraform.PROVIDER_ZIP
    shutil.copyfile(sandbox_terraform.shipped_provider_zip(), tampered)
    with open(tampered, "r+b") as handle:
        handle.seek(1024)
        byte = handle.read(1)
        handle.seek(1024)
        handle.write(bytes([byte[0] ^ 0xFF]))
    mirror = tmp_path / "mirror"
    with pytest.raises(sandbox_terraform.ProviderChecksumError, match="refusing"):
        sandbox_terraform.build_provider_mirror(source=tampered, mirror_dir=mirror)
    assert not list(mirror.rglob("*.zip"))
