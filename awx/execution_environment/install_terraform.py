"""Install the terraform CLI into the execution environment, checksum first.

Used by execution-environment.yml (append_final). Downloads
<base>/<version>/terraform_<version>_linux_<arch>.zip, refuses to install
unless its SHA256 equals --sha256 (take it from HashiCorp's
terraform_<version>_SHA256SUMS), then extracts the `terraform` binary.
Standard library only: the EE base image has nothing else yet.
"""
import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.request
import zipfile

DEFAULT_BASE_URL = "https://releases.hashicorp.com/terraform"
ARCH_ALIASES = {"x86_64": "amd64", "aarch64": "arm64"}


class InstallError(Exception):
    pass


def zip_url(base_url, version, arch):
    return f"{base_url.rstrip('/')}/{version}/terraform_{version}_linux_{arch}.zip"


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def install(version, arch, expected_sha256, dest, base_url=DEFAULT_BASE_URL):
    """Download, verify and extract; returns the installed binary's path."""
    expected = (expected_sha256 or "").strip().lower()
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise InstallError(
            "no valid SHA256 for the terraform zip: pass --build-arg TERRAFORM_SHA256=<64 hex digits> "
            f"from terraform_{version}_SHA256SUMS (entry terraform_{version}_linux_{arch}.zip)"
        )
    arch = ARCH_ALIASES.get(arch, arch)
    url = zip_url(base_url, version, arch)
    with tempfile.TemporaryDirectory() as tmp:
        archive = os.path.join(tmp, "terraform.zip")
        try:
            with urllib.request.urlopen(url, timeout=120) as response, open(archive, "wb") as out:  # noqa: S310
                shutil.copyfileobj(response, out)
        except OSError as exc:
            raise InstallError(f"cannot download {url}: {exc}") from exc
        actual = sha256_of(archive)
        if actual != expected:
            raise InstallError(f"{url}: SHA256 {actual} does not match the expected {expected}; not installing")
        with zipfile.ZipFile(archive) as zipped:
            if "terraform" not in zipped.namelist():
                raise InstallError(f"{url} has no 'terraform' binary inside")
            zipped.extract("terraform", tmp)
        os.makedirs(dest, exist_ok=True)
        target = os.path.join(dest, "terraform")
        shutil.move(os.path.join(tmp, "terraform"), target)
        os.chmod(target, 0o755)
    return target


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True)
    parser.add_argument("--arch", default="amd64")
    parser.add_argument("--sha256", default="")
    parser.add_argument("--dest", default="/usr/local/bin")
    parser.add_argument("--base-url", default=os.environ.get("TERRAFORM_BASE_URL", DEFAULT_BASE_URL))
    args = parser.parse_args(argv)
    try:
        target = install(args.version, args.arch, args.sha256, args.dest, args.base_url)
    except InstallError as exc:
        print(f"install_terraform: {exc}", file=sys.stderr)
        return 1
    print(f"install_terraform: installed {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
