"""Stand-in EC2 hosts: Debian bookworm systemd containers with a real Docker
daemon available inside (apt-get install docker.io works in them).

    image = ensure_base_image()            # debootstrap + docker import, cached by tag
    host = SystemdHost("ci-svc").start()   # systemd as PID 1
    host.exec("systemctl", "is-system-running", "--wait")
    host.inventory_vars()                  # ansible_connection=community.docker.docker
    host.remove()

The container options are the ones verified on these machines (TESTBED.md);
molecule/resources/platform.yml carries the same options for Molecule.
"""
import hashlib
import io
import random
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from .paths import TMP

BASE_IMAGE_NAME = "circleci-sandbox-base"
BASE_SUITE = "bookworm"
BASE_PACKAGES = (
    "python3",
    "python3-apt",
    "systemd",
    "systemd-sysv",
    "sudo",
    "openssh-server",
    "iproute2",
    "procps",
    "ca-certificates",
    "dbus",
    "curl",
    "gnupg",
    "unzip",
)
# Installed with apt-get inside the debootstrapped root: debootstrap --include does not resolve
# cloud-init's dependencies. Real cloud-init runs each emulated EC2 instance's user data from a NoCloud
# seed (demo.py).
APT_PACKAGES = ("cloud-init",)
# cloud-init's datasource in the image: the NoCloud seed the EC2 emulator writes before boot, so cloud-init
# never probes the network for a metadata service (it would find none in a container). ConfigDrive is listed
# only for ds-identify's sake: its check is local (a config-2 labelled disk, none here), and with two entries
# ds-identify really searches, so a container without a seed (Molecule, plain SystemdHost) has cloud-init
# disabled by the generator; a list of one (or one plus None) is taken as found without a check.
# With a seed ds-identify writes datasource_list [NoCloud, None] to /run/cloud-init/cloud.cfg.
# The container's network is Docker's (as a VPC's DHCP gives an instance its address): cloud-init keeps out.
# The image has no `locales` (update-locale), so the locale module is off, and apt's sources stay the ones
# debootstrap wrote (the roles choose their repositories).
# https://cloudinit.readthedocs.io/en/latest/reference/datasources/nocloud.html
# https://cloudinit.readthedocs.io/en/latest/reference/modules.html (locale, apt_configure)
CLOUD_INIT_CONFIG = """\
# Written by tests/sandbox/hosts.py (sandbox base image)
datasource_list: [ NoCloud, ConfigDrive ]
network:
  config: disabled
locale: false
apt:
  preserve_sources_list: true
"""
IMAGE_FILES = {"etc/cloud/cloud.cfg.d/99-sandbox-nocloud.cfg": CLOUD_INIT_CONFIG}
CONTAINER_LABEL = "circleci-sandbox=1"

# What runs systemd as PID 1 here (--privileged fails on these machines).
RUN_OPTIONS = (
    "--cap-add",
    "SYS_ADMIN",
    "--cap-add",
    "NET_ADMIN",
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "apparmor=unconfined",
    "--cgroupns",
    "host",
    "-v",
    "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs",
    "/run",
    "--tmpfs",
    "/run/lock",
    "--stop-signal",
    "SIGRTMIN+3",
)


class SandboxError(RuntimeError):
    pass


def docker(*args, check=True, capture=True, input_bytes=None, timeout=None):
    proc = subprocess.run(
        ["docker", *args], capture_output=capture, input=input_bytes, check=False, timeout=timeout
    )
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace") if capture else ""
        raise SandboxError(f"docker {' '.join(args[:3])}... failed ({proc.returncode}): {err.strip()}")
    return proc


def subnets_in_use():
    """Every IPv4 subnet a Docker network on this daemon holds, leftovers of killed runs included."""
    names = docker("network", "ls", "-q").stdout.decode().split()
    if not names:
        return set()
    out = docker("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", *names).stdout.decode()
    return set(out.split())


def free_subnet(first_octets, low=20, high=219):
    """A random /24 under `first_octets` ("10.215") that no Docker network holds yet.

    A fixed or merely random third octet collided with a network a killed run had left behind
    ("Pool overlaps with other one on this address space").
    """
    used = subnets_in_use()
    choices = [f"{first_octets}.{n}.0/24" for n in range(low, high + 1)]
    free = [c for c in choices if c not in used]
    if not free:
        raise SandboxError(f"no free /24 left under {first_octets}.0.0/16: remove stale networks "
                           "(docker network ls --filter label=circleci-demo)")
    return random.choice(free)


def docker_available():
    return shutil.which("docker") is not None and docker("info", check=False).returncode == 0


def base_image_tag(packages=BASE_PACKAGES, suite=BASE_SUITE):
    """The tag changes whenever the package list, the suite or a file written into the image changes."""
    files = "".join(f"{path}\n{text}" for path, text in sorted(IMAGE_FILES.items()))
    listed = "\n".join(sorted(packages)) + "\napt:" + "\n".join(APT_PACKAGES)
    digest = hashlib.sha256((suite + "\n" + listed + files).encode()).hexdigest()[:12]
    return f"{BASE_IMAGE_NAME}:{digest}"


def ensure_base_image(packages=BASE_PACKAGES, suite=BASE_SUITE):
    """Build the base image with debootstrap unless an image with this tag exists."""
    tag = base_image_tag(packages, suite)
    if docker("image", "inspect", tag, check=False).returncode == 0:
        return tag
    if not docker_available():
        raise SandboxError("dockerd is not running: start it (the .ci/run script does) before building hosts")
    if shutil.which("debootstrap") is None:
        raise SandboxError("debootstrap is missing: apt-get install debootstrap")
    TMP.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=TMP, prefix="rootfs-") as rootfs:
        subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=" + ",".join(packages), suite, rootfs],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        root = Path(rootfs)
        _apt_install(root, APT_PACKAGES)
        # A container has no console to log in on and no kernel modules to load.
        for unit in ("getty@tty1.service", "systemd-modules-load.service"):
            link = root / "etc/systemd/system" / unit
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to("/dev/null")
        (root / "etc/machine-id").write_text("")
        for path, text in IMAGE_FILES.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text)
        apt_clean = root / "var/cache/apt/archives"
        for deb in apt_clean.glob("*.deb"):
            deb.unlink()
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            ["docker", "import", "-c", 'CMD ["/sbin/init"]', "-", tag], stdin=tar.stdout, check=True,
            stdout=subprocess.DEVNULL,
        )
        tar.wait()
    docker("tag", tag, f"{BASE_IMAGE_NAME}:latest")
    return tag


def _apt_install(root, packages):
    """apt-get install in the debootstrapped root (a chroot: no service may start while building)."""
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    try:
        for argv in (["apt-get", "update", "-qq"],
                     ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
                     ["apt-get", "clean"]):
            proc = subprocess.run(["chroot", str(root), *argv], env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SandboxError(f"building the base image: {' '.join(argv)} failed: {proc.stderr[-2000:]}")
    finally:
        policy.unlink()


class SystemdHost:
    """One systemd container standing in for one EC2 host."""

    def __init__(self, name, image=None, labels=None, hostname=None, run_args=()):
        self.name = name
        self.run_args = list(run_args)  # extra `docker run` options (network, ip, aliases)
        self.image = image
        self.labels = dict(labels or {})
        self.hostname = hostname or name

    def start(self, wait=True, timeout=90, files=None):
        """Run the container; ``files`` ({path: text, or ("symlink", target)}) are in place before init starts."""
        image = self.image or ensure_base_image()
        docker("rm", "-f", self.name, check=False)
        label_args = []
        for key, value in {**dict([CONTAINER_LABEL.split("=")]), **self.labels}.items():
            label_args += ["--label", f"{key}={value}"]
        docker(
            "create", "--name", self.name, "--hostname", self.hostname, *label_args, *RUN_OPTIONS, *self.run_args,
            image,
            "/sbin/init",
        )
        if files:
            docker("cp", "-", f"{self.name}:/", input_bytes=_tar(files))
        docker("start", self.name)
        if wait:
            self.wait_running(timeout)
        return self

    def exec(self, *cmd, check=True, input_bytes=None, timeout=None):
        interactive = ["-i"] if input_bytes is not None else []
        proc = docker("exec", *interactive, "-e", "LANG=C.UTF-8", self.name, *cmd,
                      check=False, input_bytes=input_bytes, timeout=timeout)
        if check and proc.returncode != 0:
            raise SandboxError(
                f"{self.name}: {' '.join(cmd)} failed ({proc.returncode}): "
                f"{proc.stdout.decode(errors='replace')[-2000:]} {proc.stderr.decode(errors='replace')[-2000:]}"
            )
        return proc

    def output(self, *cmd, check=True):
        return self.exec(*cmd, check=check).stdout.decode(errors="replace").strip()

    def system_state(self):
        return self.output("systemctl", "is-system-running", check=False)

    def wait_running(self, timeout=90):
        """Wait until systemd reports running or degraded; return that state."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.system_state()
            if state in ("running", "degraded"):
                return state
            time.sleep(0.5)
        raise SandboxError(f"{self.name}: systemd did not settle within {timeout}s (state {state!r})")

    def failed_units(self):
        return self.output("systemctl", "--failed", "--no-legend", "--plain", check=False)

    def inventory_vars(self):
        return {"ansible_connection": "community.docker.docker", "ansible_host": self.name,
                "ansible_python_interpreter": "/usr/bin/python3"}

    def remove(self):
        docker("rm", "-f", self.name, check=False)


def _tar(files):
    """A tar stream of {path: text | ("symlink", target)} with root-owned entries, for `docker cp -`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        directories = sorted({str(parent) for path in files for parent in Path(path).parents if str(parent) != "."})
        for directory in directories:
            info = tarfile.TarInfo(directory.lstrip("/"))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            archive.addfile(info)
        for path, content in files.items():
            info = tarfile.TarInfo(path.lstrip("/"))
            if isinstance(content, tuple):
                info.type, info.linkname = tarfile.SYMTYPE, content[1]
                archive.addfile(info)
                continue
            data = content.encode() if isinstance(content, str) else content
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def remove_all_hosts():
    ids = docker("ps", "-aq", "--filter", f"label={CONTAINER_LABEL}").stdout.decode().split()
    if ids:
        docker("rm", "-f", *ids, check=False)
    return len(ids)
