#!/usr/bin/env python3
"""Build a Nomad "release" from the stand-in, laid out like releases.hashicorp.com:

    <out>/nomad/<version>/nomad_<version>_linux_amd64.zip   (holds `nomad`, mode 0755)
    <out>/nomad/<version>/nomad_<version>_SHA256SUMS        (real sha256 of the zip)
    <out>/nomad/<version>/nomad_<version>_SHA256SUMS.sig    (detached signature of it)
    <out>/nomad-standin-release-key.gpg                      (the TEST public key, binary keyring)
    <out>/nomad-standin-release-key.fpr                      (its fingerprint)

    python3 tests/standins/nomad/build_release.py --version 0.5.6 --out DIR [--corrupt] [--bad-signature]

HashiCorp signs each release's SHA256SUMS with its release key (gpg detached
signature, SHA256SUMS.sig; since the April 2021 key rotation also
SHA256SUMS.72D7468F.sig for every release). The stand-in signs with a TEST key
made here with the gpg CLI (kept in <out>/.standin-signing-key so every
version built into one directory shares it): NOT HashiCorp's key. Point the
role at it with nomad_client_signing_keyring=<out>/nomad-standin-release-key.gpg,
nomad_client_signing_key_fingerprint=<contents of the .fpr file> and
nomad_client_signature_suffix=.sig.

--corrupt writes the SHA256SUMS of the good zip and then damages the zip, as a
download corrupted in transit would be: the nomad_client role must refuse it.
--bad-signature changes SHA256SUMS after it was signed (a tampered checksum
file): the role must refuse it before downloading the zip.
Point the role at it with nomad_client_download_base_url=<http base of DIR>.
Stdlib and the gpg CLI (the Molecule prepare step runs it on the controller).
"""
import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEY_NAME = "nomad-standin-release-key"
KEY_UID = "Nomad stand-in release TEST key (tests/standins/nomad, not HashiCorp) <standin@invalid>"


def _gpg(home, *args, **kwargs):
    return subprocess.run(["gpg", "--homedir", home, "--batch", "--yes", "--pinentry-mode", "loopback",
                           "--passphrase", "", *args], check=True, capture_output=True, **kwargs)


def sign(sums_path, out):
    """Sign sums_path with the stand-in's test key (made on first use); returns the key's fingerprint."""
    out = Path(out)
    secret = out / ".standin-signing-key" / "secret.asc"
    # A short home: gpg-agent's socket path must stay under ~100 characters.
    home = tempfile.mkdtemp(prefix="gpg-", dir="/tmp")
    try:
        if secret.exists():
            _gpg(home, "--import", str(secret))
        else:
            _gpg(home, "--quick-gen-key", KEY_UID, "ed25519", "sign", "never")
            secret.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(secret.parent, 0o700)
            secret.write_bytes(_gpg(home, "--armor", "--export-secret-keys").stdout)
        listing = _gpg(home, "--with-colons", "--list-secret-keys").stdout.decode()
        fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
        (out / f"{KEY_NAME}.gpg").write_bytes(_gpg(home, "--export", fingerprint).stdout)
        (out / f"{KEY_NAME}.fpr").write_text(fingerprint + "\n")
        _gpg(home, "--local-user", fingerprint, "--detach-sign", "--output", f"{sums_path}.sig", str(sums_path))
        return fingerprint
    finally:
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"], check=False, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def build(version, out, arch="amd64", corrupt=False, bad_signature=False):
    release = Path(out) / "nomad" / version
    release.mkdir(parents=True, exist_ok=True)
    source = (HERE / "nomad.py").read_text().replace("@VERSION@", version)
    zip_name = f"nomad_{version}_linux_{arch}.zip"
    zip_path = release / zip_name
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("nomad", date_time=(2017, 1, 1, 0, 0, 0))
        info.external_attr = 0o100755 << 16  # regular file, executable
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, source)
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    # HashiCorp's SHA256SUMS lists every artifact of the release; keep a sibling line too.
    sums = f"{'0' * 64}  nomad_{version}_darwin_amd64.zip\n{digest}  {zip_name}\n"
    sums_path = release / f"nomad_{version}_SHA256SUMS"
    sums_path.write_text(sums)
    sign(sums_path, out)
    if bad_signature:
        sums_path.write_text(sums.replace(digest, hashlib.sha256(b"tampered").hexdigest()))
    if corrupt:
        data = bytearray(zip_path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        zip_path.write_bytes(bytes(data))
    return zip_path, digest


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--arch", default="amd64")
    parser.add_argument("--corrupt", action="store_true")
    parser.add_argument("--bad-signature", action="store_true")
    args = parser.parse_args(argv)
    zip_path, digest = build(args.version, args.out, args.arch, args.corrupt, args.bad_signature)
    print(f"{zip_path} sha256 {digest}{' (then corrupted)' if args.corrupt else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
