"""host_state: one read of files, units and packages, and the comparisons that decide which write tasks run."""
import hashlib
import os
import shutil

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.circleci_server.aws.plugins.filter.host_state import FilterModule
from ansible_collections.circleci_server.aws.plugins.module_utils.host_state import (
    HostStateError, HostStateReader, file_differs, packages_missing, unit_needs_start)

FILTERS = FilterModule().filters()
ME = __import__("pwd").getpwuid(os.getuid())[0]
MY_GROUP = __import__("grp").getgrgid(os.getgid())[0]


def no_commands(argv):
    raise AssertionError("no command expected, ran %s" % argv)


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "conf").write_text("server 169.254.169.123 iburst\n")
    (tmp_path / "conf").chmod(0o644)
    (tmp_path / "secret").write_text("s3cr3t\n")
    (tmp_path / "secret").chmod(0o600)
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir").chmod(0o755)
    (tmp_path / "link").symlink_to(tmp_path / "conf")
    return tmp_path


def read(tree, **kwargs):
    return HostStateReader(run_command=no_commands).collect(**kwargs)


def test_reports_type_mode_owner_and_the_checksum_copy_compares(tree):
    state = read(tree, files=[str(tree / n) for n in ("conf", "secret", "dir", "link", "missing")])["files"]
    conf = state[str(tree / "conf")]
    assert conf == {"exists": True, "type": "file", "mode": "0644", "owner": ME, "group": MY_GROUP,
                    "checksum": hashlib.sha1(b"server 169.254.169.123 iburst\n").hexdigest()}
    assert state[str(tree / "secret")]["mode"] == "0600"
    assert "content" not in state[str(tree / "secret")]  # never read unless asked
    assert state[str(tree / "dir")]["type"] == "directory" and "checksum" not in state[str(tree / "dir")]
    assert state[str(tree / "link")]["type"] == "link"  # not followed
    assert state[str(tree / "missing")] == {"exists": False}


def test_read_returns_the_content_of_listed_files_only(tree):
    state = read(tree, files=[str(tree / "conf")], read=[str(tree / "conf"), str(tree / "dir")])["files"]
    assert state[str(tree / "conf")]["content"] == "server 169.254.169.123 iburst\n"
    assert "content" not in state[str(tree / "dir")]


def test_read_refuses_a_file_too_large_to_be_configuration(tree):
    big = tree / "big"
    big.write_bytes(b"x" * (1024 * 1024 + 1))
    with pytest.raises(HostStateError, match="big is 1048577 bytes"):
        read(tree, read=[str(big)])


@pytest.mark.skipif(os.getuid() == 0, reason="root reads every file")
def test_an_unreadable_file_is_a_named_error(tree):
    (tree / "secret").chmod(0)
    with pytest.raises(HostStateError, match="cannot read .*secret"):
        read(tree, files=[str(tree / "secret")])


def test_file_differs_on_content_mode_owner_group_type_and_existence(tree):
    state = read(tree, files=[str(tree / n) for n in ("conf", "dir", "link", "missing")])
    conf, wanted = str(tree / "conf"), "server 169.254.169.123 iburst\n"
    assert not file_differs(state, conf, wanted, "0644", ME, MY_GROUP)
    assert not file_differs(state, conf, wanted, 0o644)  # an integer mode, as YAML 0644 gives
    assert file_differs(state, conf, wanted + "server 10.0.0.1\n", "0644")
    assert file_differs(state, conf, wanted, "0600")
    assert file_differs(state, conf, wanted, "0644", "no-such-owner")
    assert file_differs(state, conf, wanted, "0644", ME, "no-such-group")
    assert file_differs(state, str(tree / "missing"), wanted)
    assert file_differs(state, str(tree / "link"), wanted)  # a link where a file belongs is replaced
    assert file_differs(state, str(tree / "dir"), wanted)
    assert not file_differs(state, str(tree / "dir"), mode="0755", state="directory")
    assert file_differs(state, str(tree / "dir"), mode="0700", state="directory")
    assert file_differs(state, conf, state="directory")
    assert file_differs(state, conf, state="absent")
    assert not file_differs(state, str(tree / "missing"), state="absent")


def test_file_differs_on_a_path_not_read_is_an_error_not_a_skip(tree):
    state = read(tree, files=[str(tree / "conf")])
    with pytest.raises(AnsibleFilterError, match="file_differs: .*elsewhere was not read: add it to .*files"):
        FILTERS["file_differs"](state, str(tree / "elsewhere"), "x")
    with pytest.raises(AnsibleFilterError, match="mode 'rw' is not an octal number"):
        FILTERS["file_differs"](state, str(tree / "conf"), mode="rw")


def fake_systemctl(states):
    def run(argv):
        assert argv[0] == "/bin/systemctl"
        verb, unit = argv[1], argv[2]
        if unit not in states:
            return (4, "inactive\n", "") if verb == "is-active" else (1, "", "Failed to get unit file state")
        return (0, states[unit][verb] + "\n", "")
    return run


def test_units_are_read_with_is_active_and_is_enabled():
    reader = HostStateReader(run_command=fake_systemctl({
        "chrony": {"is-active": "active", "is-enabled": "enabled"},
        "nomad": {"is-active": "failed", "is-enabled": "enabled"},
        "docker": {"is-active": "active", "is-enabled": "disabled"},
    }), systemctl="/bin/systemctl")
    state = reader.collect(units=["chrony", "nomad", "docker", "replicated"])
    assert state["units"]["replicated"] == {"active": "inactive", "enabled": "not-found"}
    assert not unit_needs_start(state, "chrony")
    assert unit_needs_start(state, "nomad")
    assert unit_needs_start(state, "docker")
    assert unit_needs_start(state, "replicated")
    with pytest.raises(HostStateError, match="containerd was not read: add it to the host_state module's units"):
        unit_needs_start(state, "containerd")


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs a Debian host")
def test_packages_are_read_from_dpkg_and_compared_as_apt_would():
    import subprocess

    def run(argv):
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    reader = HostStateReader(run_command=run, dpkg_query=shutil.which("dpkg-query"))
    state = reader.collect(packages=["dpkg", "no-such-package-circleci", "coreutils=0.0.1", "bash=*"])
    dpkg_version = state["packages"]["dpkg"]
    assert dpkg_version and state["packages"]["no-such-package-circleci"] is None
    assert packages_missing(state, ["dpkg", "bash=*"]) == []
    assert packages_missing(state, ["dpkg=" + dpkg_version]) == []
    assert packages_missing(state, ["dpkg", "no-such-package-circleci", "coreutils=0.0.1"]) == [
        "no-such-package-circleci", "coreutils=0.0.1"]
