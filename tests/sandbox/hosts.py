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
import shutil
import subprocess
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


def docker_available():
    return shutil.which("docker") is not None and docker("info", check=False).returncode == 0


def base_image_tag(packages=BASE_PACKAGES, suite=BASE_SUITE):
    """The tag changes whenever the package list or suite changes."""
    digest = hashlib.sha256((suite + "\n" + "\n".join(sorted(packages))).encode()).hexdigest()[:12]
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
        # A container has no console to log in on and no kernel modules to load.
        for unit in ("getty@tty1.service", "systemd-modules-load.service"):
            link = root / "etc/systemd/system" / unit
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to("/dev/null")
        (root / "etc/machine-id").write_text("")
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


class SystemdHost:
    """One systemd container standing in for one EC2 host."""

    def __init__(self, name, image=None, labels=None, hostname=None, run_args=()):
        self.name = name
        self.run_args = list(run_args)  # extra `docker run` options (network, ip, aliases)
        self.image = image
        self.labels = dict(labels or {})
        self.hostname = hostname or name

    def start(self, wait=True, timeout=90):
        image = self.image or ensure_base_image()
        docker("rm", "-f", self.name, check=False)
        label_args = []
        for key, value in {**dict([CONTAINER_LABEL.split("=")]), **self.labels}.items():
            label_args += ["--label", f"{key}={value}"]
        docker(
            "run", "-d", "--name", self.name, "--hostname", self.hostname, *label_args, *RUN_OPTIONS, *self.run_args,
            image,
            "/sbin/init",
        )
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


def remove_all_hosts():
    ids = docker("ps", "-aq", "--filter", f"label={CONTAINER_LABEL}").stdout.decode().split()
    if ids:
        docker("rm", "-f", *ids, check=False)
    return len(ids)
