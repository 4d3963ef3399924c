# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Publish the Nomad clients' bootstrap bundle to S3: content-addressed pieces and one manifest.

Layout under the prefix (default ``bootstrap/``):
  manifest.json                      what a booting client reads first (names -> key, sha256, size)
  pieces/<sha256[:16]>/<file name>   every piece, never overwritten: a client that read the old
                                     manifest still finds the pieces it names
A piece whose bytes differ between builds of the same content (a collection tarball: gzip and tar
carry timestamps) has a ``content_digest``; it is uploaded again only when that digest changes.
The manifest is written last and only when something in it changed, so a second publish of the
same bundle changes nothing.
"""
import copy
import fnmatch
import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import time

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# What ansible-galaxy's collection build always leaves out (ansible.galaxy.collection
# _build_files_manifest_walk), besides galaxy.yml's build_ignore.
GALAXY_IGNORED_PATTERNS = ("MANIFEST.json", "FILES.json", "*.pyc", "*.retry", "tests/output")
GALAXY_IGNORED_DIRS = frozenset(("CVS", ".bzr", ".hg", ".git", ".svn", "__pycache__", ".tox"))
SOURCE_DIGEST_NAME = "source.sha256"


def write_if_changed(path, text):
    """Write text to path unless it already holds exactly that; True when written."""
    if os.path.isfile(path):
        with open(path) as handle:
            if handle.read() == text:
                return False
    with open(path, "w") as handle:
        handle.write(text)
    return True


def collection_source_digest(source_dir, build_ignore):
    """sha256 over every file a collection build of source_dir takes in (path and content), and galaxy.yml.

    Walks as ansible-galaxy's build does (fnmatch over paths relative to source_dir, the same directories
    always skipped), so a change to any file the tarball would hold changes the digest, and files the build
    leaves out (the test suites, .tmp, a virtualenv) cost nothing.
    """
    patterns = list(GALAXY_IGNORED_PATTERNS) + list(build_ignore or [])
    digest = hashlib.sha256()

    def ignored(rel_path):
        return any(fnmatch.fnmatch(rel_path, pattern) for pattern in patterns)

    def walk(directory, rel_base):
        for item in sorted(os.listdir(directory)):
            path = os.path.join(directory, item)
            rel_path = os.path.join(rel_base, item) if rel_base else item
            if os.path.isdir(path):
                if item in GALAXY_IGNORED_DIRS or ignored(rel_path):
                    continue
                digest.update(("d %s\n" % rel_path).encode("utf-8"))
                if not os.path.islink(path):
                    walk(path, rel_path)
            elif rel_path == "galaxy.yml" or not ignored(rel_path):
                digest.update(("f %s %s\n" % (rel_path, sha256_file(path))).encode("utf-8"))

    walk(source_dir, "")
    return digest.hexdigest()


def built_collection(source_dir, build_ignore, out_dir, run):
    """(tarball, built) for the collection in source_dir: the tarball built earlier when the source is unchanged.

    ``run(argv)`` runs ``ansible-galaxy collection build`` and returns (rc, stdout, stderr). The digest of the
    source the last build was made from is kept next to the tarball; any other content rebuilds.
    """
    digest = collection_source_digest(source_dir, build_ignore)
    record = os.path.join(out_dir, SOURCE_DIGEST_NAME)
    tarballs = sorted(f for f in os.listdir(out_dir) if f.endswith(".tar.gz")) if os.path.isdir(out_dir) else []
    if len(tarballs) == 1 and os.path.isfile(record):
        with open(record) as handle:
            if handle.read().split() == [digest, tarballs[0]]:
                return os.path.join(out_dir, tarballs[0]), False
    if not os.path.isdir(out_dir):
        os.makedirs(out_dir, 0o700)
    for old in tarballs + [SOURCE_DIGEST_NAME]:
        if os.path.exists(os.path.join(out_dir, old)):
            os.remove(os.path.join(out_dir, old))
    rc, out, err = run(["collection", "build", "--force", "--output-path", out_dir, source_dir])
    tarballs = sorted(f for f in os.listdir(out_dir) if f.endswith(".tar.gz"))
    if rc != 0 or len(tarballs) != 1:
        raise ValueError("ansible-galaxy collection build %s failed (rc=%s): %s"
                         % (source_dir, rc, (err or out or "no output").strip()[-2000:]))
    write_if_changed(record, "%s %s\n" % (digest, tarballs[0]))
    return os.path.join(out_dir, tarballs[0]), True


def collection_content_digest(tarball):
    """sha256 over a collection artifact's MANIFEST.json and FILES.json (FILES.json names every file's sha256)."""
    digest = hashlib.sha256()
    with tarfile.open(tarball, "r:gz") as archive:
        for name in ("MANIFEST.json", "FILES.json"):
            digest.update(archive.extractfile(name).read())
    return digest.hexdigest()


def pack_installed_collection(directory, out_path):
    """An installed collection (MANIFEST.json, FILES.json and the files it lists) as an artifact tarball.

    Deterministic (fixed mtimes and owners, gzip without a timestamp): the same content gives the same bytes.
    An installed copy may lack files its FILES.json lists (the ansible package drops CI files such as
    .azure-pipelines): the packed FILES.json lists what is there, since ansible-galaxy's install extracts
    every entry it names.
    """
    with open(os.path.join(directory, "FILES.json"), "rb") as handle:
        files_json = json.loads(handle.read().decode("utf-8"))
    present = [f for f in files_json["files"]
               if f["name"] == "." or os.path.lexists(os.path.join(directory, f["name"]))]
    files_bytes = json.dumps(dict(files_json, files=present), indent=4, sort_keys=True).encode("utf-8")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for name in ["MANIFEST.json", "FILES.json"] + [f["name"] for f in present if f["name"] != "."]:
            path = os.path.join(directory, name)
            info = archive.gettarinfo(path, arcname=name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = 0o755 if info.isdir() or info.mode & 0o111 else 0o644
            if name == "FILES.json":
                info.size = len(files_bytes)
                archive.addfile(info, io.BytesIO(files_bytes))
            elif info.isfile():
                with open(path, "rb") as handle:
                    archive.addfile(info, handle)
            else:
                archive.addfile(info)
    with open(out_path, "wb") as out, gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as zipped:
        zipped.write(raw.getvalue())
    return out_path


def wheel_name_version(filename):
    """'ansible_core-2.19.14-py3-none-any.whl' -> ('ansible_core', '2.19.14') (PEP 427 file names)."""
    parts = os.path.basename(filename).split("-")
    return parts[0], parts[1]


def requirements_text(wheel_paths, python):
    lines = ["# Written by site.yml (circleci_server.aws.bootstrap_bundle) for python %s:" % python,
             "# pip install --no-index --require-hashes --no-deps -r requirements.txt"]
    for path in sorted(wheel_paths, key=os.path.basename):
        name, version = wheel_name_version(path)
        lines.append("%s==%s --hash=sha256:%s" % (name, version, sha256_file(path)))
    return "\n".join(lines) + "\n"


def installed_collection_dir(listing, name, version):
    """The controller's installed copy of name at exactly version.

    ``listing``: ``ansible-galaxy collection list --format json`` (path -> name -> {version}).
    """
    for path, collections in (listing or {}).items():
        found = collections.get(name)
        if found and found.get("version") == version:
            return os.path.join(path, *name.split("."))
    return None


def build_pieces(build_dir, python, wheelhouse, pip_version, system_site_packages, collection, dependencies,
                 installed, download_dir, node_vars, extra_files):
    """(pieces, manifest fields) of the bundle from what the controller built."""
    pieces, common = [], []
    collections = []
    own = "collections/circleci_server-aws.tar.gz"
    if collection.get("path"):
        pieces.append({"name": own, "path": collection["path"],
                       "content_digest": collection_content_digest(collection["path"])})
    else:
        packed = pack_installed_collection(collection["collection_dir"],
                                           os.path.join(build_dir, "circleci_server-aws.tar.gz"))
        pieces.append({"name": own, "path": packed})
    collections.append(own)
    for name, version in sorted(dependencies.items()):
        artifact = "collections/%s-%s.tar.gz" % (name.replace(".", "-"), version)
        directory = installed_collection_dir(installed, name, version)
        if directory:
            path = pack_installed_collection(directory, os.path.join(build_dir, os.path.basename(artifact)))
        else:
            path = os.path.join(download_dir, os.path.basename(artifact))
            if not os.path.isfile(path):
                raise ValueError("collection %s %s is neither installed on the controller nor downloaded to %s "
                                 "(ansible-galaxy collection download %s:==%s)" % (name, version, download_dir,
                                                                                   name, version))
        pieces.append({"name": artifact, "path": path})
        collections.append(artifact)
    wheels = sorted(os.path.join(wheelhouse, f) for f in os.listdir(wheelhouse) if f.endswith(".whl"))
    pip_wheels = [w for w in wheels if re.match(r"pip-%s-" % re.escape(pip_version), os.path.basename(w))]
    if not pip_wheels:
        raise ValueError("the wheelhouse %s has no pip %s wheel" % (wheelhouse, pip_version))
    install = [w for w in wheels if w not in pip_wheels and not os.path.basename(w).startswith("pip-")]
    requirements = os.path.join(wheelhouse, "requirements.txt")
    write_if_changed(requirements, requirements_text(install, python))
    row_prefix = "py%s/" % python
    files = [row_prefix + "requirements.txt"] + [row_prefix + os.path.basename(w) for w in pip_wheels + install]
    pieces.append({"name": row_prefix + "requirements.txt", "path": requirements})
    pieces.extend({"name": row_prefix + os.path.basename(w), "path": w} for w in pip_wheels + install)
    pieces.append({"name": "node_vars.json", "path": node_vars})
    common.append("node_vars.json")
    for extra in extra_files:
        pieces.append({"name": extra["name"], "path": extra["path"]})
        common.append(extra["name"])
    manifest = {
        "collection": own,
        "playbook": "circleci_server.aws.bootstrap_node",
        "node_vars": "node_vars.json",
        "common": common,
        "pythons": {python: {
            "pip": row_prefix + os.path.basename(pip_wheels[0]),
            "requirements": row_prefix + "requirements.txt",
            "system_site_packages": bool(system_site_packages),
            "collections": collections,
            "files": files + collections,
        }},
    }
    return pieces, manifest


def _is_missing(exc):
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in ("NoSuchKey", "404", "NotFound")


class BootstrapBundle(object):
    def __init__(self, s3, bucket, prefix="bootstrap/", check_mode=False, clock=time.time):
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix if prefix.endswith("/") or not prefix else prefix + "/"
        self.check_mode = check_mode
        self.clock = clock

    def current_manifest(self):
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=self.prefix + MANIFEST_NAME)["Body"].read()
        except Exception as exc:  # botocore ClientError; only "missing" means a first publish
            if _is_missing(exc):
                return {}
            raise
        try:
            return json.loads(body.decode("utf-8"))
        except ValueError:
            return {}  # a damaged manifest is replaced

    def entry_for(self, piece, published):
        """The manifest entry for one local piece, reusing the published one when the content is the same."""
        path = piece["path"]
        if not os.path.isfile(path):
            raise ValueError("bootstrap piece %s: %s is not a file" % (piece["name"], path))
        sha256 = sha256_file(path)
        content_digest = piece.get("content_digest") or ""
        old = published.get(piece["name"])
        if old and ((content_digest and old.get("content_digest") == content_digest)
                    or (not content_digest and old.get("sha256") == sha256)):
            return old, False
        entry = {"key": "pieces/%s/%s" % (sha256[:16], os.path.basename(path)), "sha256": sha256,
                 "size": os.path.getsize(path)}
        if content_digest:
            entry["content_digest"] = content_digest
        return entry, True

    def publish(self, pieces, manifest_fields):
        current = self.current_manifest()
        published = current.get("files", {}) if current.get("format") == MANIFEST_FORMAT else {}
        files, uploaded = {}, []
        for piece in pieces:
            entry, new = self.entry_for(piece, published)
            files[piece["name"]] = entry
            if new:
                uploaded.append(piece["name"])
                if not self.check_mode:
                    with open(piece["path"], "rb") as handle:
                        self.s3.put_object(Bucket=self.bucket, Key=self.prefix + entry["key"], Body=handle,
                                           ServerSideEncryption="AES256")
        manifest = dict(copy.deepcopy(manifest_fields), format=MANIFEST_FORMAT, files=files)
        unchanged = {k: v for k, v in current.items() if k != "published"} == manifest
        if unchanged:
            return {"changed": False, "uploaded": [], "manifest": current}
        manifest["published"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock()))
        if not self.check_mode:
            self.s3.put_object(Bucket=self.bucket, Key=self.prefix + MANIFEST_NAME,
                               Body=json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"),
                               ContentType="application/json", ServerSideEncryption="AES256")
        return {"changed": True, "uploaded": uploaded, "manifest": manifest}
