"""The Nomad stand-in: its release matches HashiCorp's layout and sums, it
parses the config.hcl the nomad_client role writes, and a client registers
with a server over HTTP."""
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

STANDIN = Path(__file__).resolve().parents[1] / "standins" / "nomad"
sys.path.insert(0, str(STANDIN))
import build_release  # noqa: E402
import nomad  # noqa: E402

ROLE_STYLE_CONFIG = """
# written by the nomad_client role
log_level = "DEBUG"
name = "i-0123456789abcdef0"
data_dir = "/opt/nomad"
datacenter = "us-east-1"

advertise {
  http = "10.0.1.5"
  rpc  = "10.0.1.5"
  serf = "10.0.1.5"
}

client {
  enabled = true
  servers = ["10.0.0.10:4647"]
  node_class = "linux-64bit"
  options = {
    "driver.raw_exec.enable" = "1"
  }
}
"""


def test_parses_the_role_config():
    config = nomad.parse_hcl(ROLE_STYLE_CONFIG)
    assert config["name"] == "i-0123456789abcdef0"
    assert config["advertise"] == {"http": "10.0.1.5", "rpc": "10.0.1.5", "serf": "10.0.1.5"}
    assert config["client"]["servers"] == ["10.0.0.10:4647"]
    assert config["client"]["options"] == {"driver.raw_exec.enable": "1"}
    assert config["client"]["enabled"] is True


def test_rejects_broken_hcl():
    with pytest.raises(nomad.HCLError):
        nomad.parse_hcl('client { enabled = true ')


def test_release_layout_and_sums(tmp_path):
    zip_path, digest = build_release.build("0.5.6", tmp_path)
    assert zip_path == tmp_path / "nomad" / "0.5.6" / "nomad_0.5.6_linux_amd64.zip"
    assert hashlib.sha256(zip_path.read_bytes()).hexdigest() == digest
    sums = (tmp_path / "nomad" / "0.5.6" / "nomad_0.5.6_SHA256SUMS").read_text()
    assert f"{digest}  nomad_0.5.6_linux_amd64.zip" in sums.splitlines()
    with zipfile.ZipFile(zip_path) as archive:
        info = archive.getinfo("nomad")
        assert (info.external_attr >> 16) & 0o111
        assert archive.read("nomad").startswith(b"#!/usr/bin/env python3")


def test_corrupt_release_no_longer_matches(tmp_path):
    zip_path, digest = build_release.build("0.5.6", tmp_path, corrupt=True)
    assert hashlib.sha256(zip_path.read_bytes()).hexdigest() != digest


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url):
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.loads(response.read())


def test_version_says_stand_in(tmp_path):
    zip_path = build_release.build("0.9.3", tmp_path)[0]
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(tmp_path / "bin")
    binary = tmp_path / "bin" / "nomad"
    binary.chmod(0o755)
    out = subprocess.run([str(binary), "version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("Nomad v0.9.3") and "stand-in" in out


def test_client_registers_with_server(tmp_path):
    # The client registers at <server>:4646 (fixed, like Nomad's default HTTP port), so the
    # server must own 127.0.0.1:4646 here; skip if something else does.
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 4646)) == 0:
            pytest.skip("127.0.0.1:4646 is in use")
    server_cfg = tmp_path / "server.hcl"
    server_cfg.write_text(f'bind_addr = "127.0.0.1"\ndata_dir = "{tmp_path}/s"\n'
                          f'ports {{ rpc = {_free_port()} }}\nserver {{ enabled = true }}\n')
    client_port = _free_port()
    client_cfg = tmp_path / "client.hcl"
    client_cfg.write_text(ROLE_STYLE_CONFIG.replace("10.0.1.5", "127.0.0.1").replace("10.0.0.10", "127.0.0.1")
                          .replace('data_dir = "/opt/nomad"', f'data_dir = "{tmp_path}/c"')
                          + f'bind_addr = "127.0.0.1"\nports {{ http = {client_port} }}\n')
    env = dict(os.environ, NOMAD_STANDIN_REGISTER_INTERVAL="0.2")
    procs = [subprocess.Popen([sys.executable, str(STANDIN / "nomad.py"), "agent", "-config", str(cfg)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for cfg in (server_cfg, client_cfg)]
    try:
        nodes = []
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                nodes = _get("http://127.0.0.1:4646/v1/nodes")
                if nodes:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        assert [n["Name"] for n in nodes] == ["i-0123456789abcdef0"]
        assert nodes[0]["Status"] == "ready" and nodes[0]["NodeClass"] == "linux-64bit"
        agent = _get(f"http://127.0.0.1:{client_port}/v1/agent/self")
        assert agent["config"]["client"]["servers"] == ["127.0.0.1:4647"]
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=5)


@pytest.mark.parametrize("version, good, bad", [
    ("0.5.6", ("?enable=true", None), ("", {"DrainSpec": {"Deadline": 10**9}})),
    ("0.9.3", ("", {"DrainSpec": {"Deadline": 10**9}}), ("?enable=true", None)),
])
def test_client_drains_in_its_versions_spelling_only(tmp_path, version, good, bad):
    port = _free_port()
    cfg = tmp_path / "client.hcl"
    cfg.write_text(f'bind_addr = "127.0.0.1"\ndata_dir = "{tmp_path}/c"\nports {{ http = {port} }}\n'
                   'client { enabled = true }\n')
    proc = subprocess.Popen([sys.executable, str(STANDIN / "nomad.py"), "agent", "-config", str(cfg)],
                            env=dict(os.environ, NOMAD_STANDIN_VERSION=version),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def call(method, path, payload=None):
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(base + path, data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    try:
        deadline = time.time() + 10
        while True:
            try:
                node_id = _get(base + "/v1/agent/self")["stats"]["client"]["node_id"]
                break
            except OSError:
                assert time.time() < deadline
                time.sleep(0.1)
        service = call("POST", "/v1/standin/allocations", {"JobID": "web", "Type": "service"})[1]
        build = call("POST", "/v1/standin/allocations", {"JobID": "build", "Type": "batch", "RunsFor": 60})[1]
        assert call("POST", f"/v1/node/{node_id}/drain{bad[0]}", bad[1])[0] == 400
        assert call("GET", f"/v1/node/{node_id}")[1]["Drain"] is False
        assert call("PUT", f"/v1/node/{node_id}/drain{good[0]}", good[1])[0] == 200
        assert call("GET", f"/v1/node/{node_id}")[1]["Drain"] is True
        states = {a["ID"]: a["ClientStatus"] for a in call("GET", f"/v1/node/{node_id}/allocations")[1]}
        assert states[service["ID"]] == "complete"
        # Before 0.8 a drain migrates batch allocations too; from 0.8 they run to the deadline.
        assert states[build["ID"]] == ("complete" if version == "0.5.6" else "running")
    finally:
        proc.terminate()
        proc.wait(timeout=5)


# -- release signatures ----------------------------------------------------------
ROLE_FILES = Path(__file__).resolve().parents[2] / "roles" / "nomad_client" / "files"
HASHICORP_FINGERPRINT = "C874011F0AB405110D02105534365D9472D7468F"


def gpgv(keyring, sig, sums):
    return subprocess.run(["gpgv", "--status-fd", "1", "--keyring", str(keyring), str(sig), str(sums)],
                          capture_output=True, text=True, check=False)


def test_shipped_hashicorp_key_is_the_published_one(tmp_path):
    """The role's key file is HashiCorp's release key (fingerprint as hashicorp.com/trust/security publishes),
    the .gpg is the same key in the binary form gpgv reads, and it is valid past today."""
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    for name in ("hashicorp-release-key.asc", "hashicorp-release-key.gpg"):
        listing = subprocess.run(["gpg", "--homedir", str(home), "--batch", "--with-colons", "--show-keys",
                                  str(ROLE_FILES / name)], capture_output=True, text=True, check=True).stdout
        records = [line.split(":") for line in listing.splitlines()]
        assert [r[9] for r in records if r[0] == "fpr"][0] == HASHICORP_FINGERPRINT, name
        primary = next(r for r in records if r[0] == "pub")
        assert int(primary[6]) > time.time(), "HashiCorp's key in the role has expired: fetch its current export"
    dearmored = subprocess.run(["gpg", "--dearmor"], input=(ROLE_FILES / "hashicorp-release-key.asc").read_bytes(),
                               capture_output=True, check=True).stdout
    assert dearmored == (ROLE_FILES / "hashicorp-release-key.gpg").read_bytes()


def test_release_is_signed_with_the_test_key_and_tampering_breaks_it(tmp_path):
    build_release.build("0.5.6", tmp_path)
    release = tmp_path / "nomad" / "0.5.6"
    sums, sig = release / "nomad_0.5.6_SHA256SUMS", release / "nomad_0.5.6_SHA256SUMS.sig"
    keyring = tmp_path / "nomad-standin-release-key.gpg"
    fingerprint = (tmp_path / "nomad-standin-release-key.fpr").read_text().strip()
    good = gpgv(keyring, sig, sums)
    assert good.returncode == 0 and [line.split()[-1] for line in good.stdout.splitlines()
                                     if line.startswith("[GNUPG:] VALIDSIG")] == [fingerprint]
    # Another version built into the same directory is signed with the same test key.
    build_release.build("0.9.3", tmp_path)
    assert (tmp_path / "nomad-standin-release-key.fpr").read_text().strip() == fingerprint
    # Not HashiCorp's key: the role's default keyring must refuse the stand-in's signature.
    assert gpgv(ROLE_FILES / "hashicorp-release-key.gpg", sig, sums).returncode != 0
    bad = tmp_path / "bad"
    build_release.build("0.5.6", bad, bad_signature=True)
    release = bad / "nomad" / "0.5.6"
    result = gpgv(bad / "nomad-standin-release-key.gpg", release / "nomad_0.5.6_SHA256SUMS.sig",
                  release / "nomad_0.5.6_SHA256SUMS")
    assert result.returncode != 0 and "BADSIG" in result.stdout
