#!/usr/bin/env python3
"""Build a Nomad "release" from the stand-in, laid out like releases.hashicorp.com:

    <out>/nomad/<version>/nomad_<version>_linux_amd64.zip   (holds `nomad`, mode 0755)
    <out>/nomad/<version>/nomad_<version>_SHA256SUMS        (real sha256 of the zip)

    python3 tests/standins/nomad/build_release.py --version 0.5.6 --out DIR [--corrupt]

--corrupt writes the SHA256SUMS of the good zip and then damages the zip, as a
download corrupted in transit would be: the nomad_client role must refuse it.
Point the role at it with nomad_client_download_base_url=<http base of DIR>.
Stdlib only (the Molecule prepare step runs it on the controller).
"""
import argparse
import hashlib
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build(version, out, arch="amd64", corrupt=False):
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
    (release / f"nomad_{version}_SHA256SUMS").write_text(sums)
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
    args = parser.parse_args(argv)
    zip_path, digest = build(args.version, args.out, args.arch, args.corrupt)
    print(f"{zip_path} sha256 {digest}{' (then corrupted)' if args.corrupt else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
