"""The Nomad clients' first-boot bootstrap (roles/nomad_client/files/circleci_bootstrap.py), the AWS calls it
shares with the drain agent (circleci_aws.py), and the bundle publishing (plugins/module_utils/bootstrap_bundle.py).

The bootstrap's AWS side is driven through recording fakes; the SigV4 S3 signature is checked against botocore's
signer; the publishing against moto (in-process S3)."""
import ast
import datetime
import gzip
import hashlib
import importlib.util
import io
import json
import os
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "roles" / "nomad_client" / "files"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, FILES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


boot = _load("circleci_bootstrap")
aws = sys.modules["circleci_aws"]  # the module the bootstrap imported (one AwsError class)

from ansible_collections.circleci_server.aws.plugins.module_utils import bootstrap_bundle  # noqa: E402


# --- the shared AWS calls --------------------------------------------------------------------------------


def test_s3_get_signature_matches_botocore():
    botocore_auth = pytest.importorskip("botocore.auth")
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    creds = {"access_key": "AKIDEXAMPLE", "secret_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "token": "tok"}
    url = aws.S3("", "eu-west-1", lambda: creds).url("ci-bucket", "bootstrap/pieces/0123abcd/node_vars.json")
    assert url == "https://ci-bucket.s3.eu-west-1.amazonaws.com/bootstrap/pieces/0123abcd/node_vars.json"
    empty = hashlib.sha256(b"").hexdigest()
    when = datetime.datetime(2026, 12, 3, 12, 0, 0)
    ours = aws.sigv4_headers("GET", url, b"", "eu-west-1", "s3", creds, now=when,
                             headers={"x-amz-content-sha256": empty})

    request = AWSRequest(method="GET", url=url, headers={k: v for k, v in ours.items() if k != "Authorization"})
    signer = botocore_auth.S3SigV4Auth(Credentials("AKIDEXAMPLE", creds["secret_key"], "tok"), "s3", "eu-west-1")
    request.context["timestamp"] = "20261203T120000Z"
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    assert ours["Authorization"].endswith("Signature=" + expected)
    assert "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token," in ours["Authorization"]


def test_s3_path_style_behind_an_endpoint_override():
    s3 = aws.S3("http://10.0.0.1:4566/", "us-east-1", dict)
    assert s3.url("b", "bootstrap/manifest.json") == "http://10.0.0.1:4566/b/bootstrap/manifest.json"


def test_query_api_endpoints_follow_the_region_unless_overridden():
    assert aws.Ec2("", "eu-west-1", dict).endpoint == "https://ec2.eu-west-1.amazonaws.com/"
    assert aws.AutoScaling("http://gw:4566", "eu-west-1", dict).endpoint == "http://gw:4566/"


@pytest.mark.parametrize("path", ["circleci_aws.py", "circleci_bootstrap.py", "circleci_nomad_drain.py"])
def test_runs_on_python_3_5(path):
    ast.parse((FILES / path).read_text(), feature_version=(3, 5))


# --- the manifest check ------------------------------------------------------------------------------------


def _manifest(tmp_path, content=b"wheel bytes"):
    piece = tmp_path / "piece.whl"
    piece.write_bytes(content)
    entry = {"key": "pieces/x/piece.whl", "sha256": hashlib.sha256(content).hexdigest(), "size": len(content)}
    return piece, entry


def test_a_piece_matching_the_manifest_passes(tmp_path):
    piece, entry = _manifest(tmp_path)
    boot.verify_piece(str(piece), entry)


def test_a_piece_with_another_checksum_fails_naming_both(tmp_path):
    piece, entry = _manifest(tmp_path)
    piece.write_bytes(b"wheel bytez")  # same size, other content
    with pytest.raises(boot.StepFailed, match="sha256 .* does not match the manifest's " + entry["sha256"]):
        boot.verify_piece(str(piece), entry)


def test_a_truncated_piece_fails_on_its_size(tmp_path):
    piece, entry = _manifest(tmp_path)
    piece.write_bytes(b"wheel")
    with pytest.raises(boot.StepFailed, match="5 bytes, the manifest says 11"):
        boot.verify_piece(str(piece), entry)


def test_pieces_for_another_python_are_refused_by_name():
    manifest = {"pythons": {"3.11": {"files": []}}, "files": {}, "common": []}
    with pytest.raises(boot.StepFailed, match="no pins for python 3.5 .it has 3.11."):
        boot.pieces_for(manifest, "3.5")
    assert boot.python_key((3, 5, 2)) == "3.5"


def test_the_failed_tasks_message_is_the_reason():
    output = ('TASK [x]\nfatal: [localhost]: FAILED! => {"changed": false, "msg": "Nomad 0.5.6 was not installed: '
              'the SHA256 checksum of nomad.zip does not match \\"x\\""}\nPLAY RECAP\nlocalhost : ok=3 failed=1\n')
    assert boot.failure_reason(output, 2) == 'Nomad 0.5.6 was not installed: the SHA256 checksum of nomad.zip ' \
                                             'does not match "x"'
    assert boot.failure_reason("a\nb\nc\nd\n", 1) == "exit 1: b / c / d"


# --- the outcome -------------------------------------------------------------------------------------------


class FakeImds:
    def instance_id(self):
        return "i-0123"

    def region(self):
        return "eu-west-1"

    def get(self, path, missing_ok=False):
        return None

    def credentials(self):
        return {}


class Recorder:
    def __init__(self, state="Pending:Wait", objects=None):
        self.calls = []
        self.state = state
        self.objects = objects or {}

    def lifecycle_state(self, instance_id):
        self.calls.append(("DescribeAutoScalingInstances", instance_id))
        return self.state

    def heartbeat(self, *args):
        self.calls.append(("RecordLifecycleActionHeartbeat",) + args)

    def complete(self, *args):
        self.calls.append(("CompleteLifecycleAction",) + args)

    def create_tags(self, *args):
        self.calls.append(("CreateTags",) + args)

    def get(self, bucket, key):
        self.calls.append(("GetObject", bucket, key))
        if key not in self.objects:
            raise aws.AwsError("s3://{}/{}: HTTP 404: NoSuchKey".format(bucket, key))
        return self.objects[key]


def _bootstrap(tmp_path, recorder, **config):
    settings = dict(bucket="b", asg_name="ci-nomad-clients", hook_name="ci-nomad-client-launching",
                    work_dir=str(tmp_path), heartbeat_interval=3600, **config)
    return boot.Bootstrap(settings, imds=FakeImds(), sleep=lambda s: None,
                          aws={"autoscaling": recorder, "ec2": recorder, "s3": recorder})


def test_a_mistyped_setting_stops_the_bootstrap_before_anything_runs(tmp_path):
    config = tmp_path / "bootstrap.json"
    config.write_text(json.dumps({"bucket": "b", "bundel_prefix": "bootstrap/"}))
    with pytest.raises(SystemExit, match="unknown setting.*bundel_prefix"):
        boot.main(["--config", str(config)])


def test_a_failed_step_tags_the_reason_and_abandons_the_launch(tmp_path):
    recorder = Recorder()  # no manifest in the bucket
    assert _bootstrap(tmp_path, recorder).run() == "failed"
    tags = [c for c in recorder.calls if c[0] == "CreateTags"]
    assert tags[0][1] == "i-0123"
    assert tags[0][2]["circleci:bootstrap"].startswith("failed: manifest: cannot read s3://b/bootstrap/manifest.json")
    assert recorder.calls[-1] == ("CompleteLifecycleAction", "ci-nomad-clients", "ci-nomad-client-launching",
                                  "i-0123", "ABANDON")


def test_an_instance_not_held_by_the_hook_is_left_to_site_yml(tmp_path):
    recorder = Recorder(state="InService")
    assert _bootstrap(tmp_path, recorder).run() == "skipped"
    assert [c[0] for c in recorder.calls] == ["DescribeAutoScalingInstances", "CreateTags"]
    assert recorder.calls[1][2]["circleci:bootstrap"] == "skipped: lifecycle state InService"


def test_success_tags_ok_and_continues(tmp_path, monkeypatch):
    recorder = Recorder()
    bootstrap = _bootstrap(tmp_path, recorder)
    for step in ("manifest", "download", "python", "collections", "configure", "registration"):
        monkeypatch.setattr(bootstrap, step, lambda *a: ("3.11", {}) if a == () or len(a) < 2 else None)
    monkeypatch.setattr(bootstrap, "download", lambda manifest: ("3.11", {}))
    assert bootstrap.run() == "ok"
    assert ("CreateTags", "i-0123", {"circleci:bootstrap": "ok"}) in recorder.calls
    assert recorder.calls[-1][-1] == "CONTINUE"


def test_a_long_reason_fits_an_ec2_tag_value(tmp_path):
    recorder = Recorder()
    bootstrap = _bootstrap(tmp_path, recorder)
    bootstrap.instance_id = "i-0123"
    bootstrap.report("failed: configure: " + "x" * 1000, None)
    assert len(recorder.calls[0][2]["circleci:bootstrap"]) == 256


def test_the_download_checks_every_piece_against_the_manifest(tmp_path):
    good, bad = b"good", b"tampered"
    manifest = {"common": ["node_vars.json"], "pythons": {boot.python_key(): {"files": ["py/x.whl"]}},
                "files": {"node_vars.json": {"key": "pieces/1/node_vars.json", "sha256": hashlib.sha256(good)
                                             .hexdigest(), "size": 4},
                          "py/x.whl": {"key": "pieces/2/x.whl", "sha256": hashlib.sha256(good).hexdigest(),
                                       "size": 4}}}
    recorder = Recorder(objects={"bootstrap/pieces/1/node_vars.json": good, "bootstrap/pieces/2/x.whl": bad})
    bootstrap = _bootstrap(tmp_path, recorder)
    bootstrap.region = "eu-west-1"
    with pytest.raises(boot.StepFailed, match="x.whl: 8 bytes, the manifest says 4"):
        bootstrap.download(manifest)


# --- publishing --------------------------------------------------------------------------------------------


def _wheelhouse(tmp_path):
    wheelhouse = tmp_path / "py3.11"
    wheelhouse.mkdir()
    for name in ("pip-24.2-py3-none-any.whl", "ansible_core-2.19.14-py3-none-any.whl",
                 "PyYAML-6.0.4-cp311-cp311-manylinux_2_17_x86_64.whl"):
        with zipfile.ZipFile(wheelhouse / name, "w") as wheel:
            wheel.writestr("x", name)
    return wheelhouse


def _installed_collection(tmp_path):
    root = tmp_path / "installed" / "ansible_collections" / "community" / "docker"
    (root / "plugins").mkdir(parents=True)
    (root / "plugins" / "m.py").write_text("x = 1\n")
    (root / "MANIFEST.json").write_text(json.dumps({"collection_info": {"version": "4.8.5"}}))
    (root / "FILES.json").write_text(json.dumps({"files": [{"name": ".", "ftype": "dir"},
                                                           {"name": "plugins", "ftype": "dir"},
                                                           {"name": "plugins/m.py", "ftype": "file"},
                                                           {"name": ".azure-pipelines", "ftype": "dir"}]}))
    (root / "plugins" / "__pycache__").mkdir()
    return {str(tmp_path / "installed" / "ansible_collections"): {"community.docker": {"version": "4.8.5"}}}


def test_an_installed_collection_packs_to_the_same_bytes_every_time(tmp_path):
    listing = _installed_collection(tmp_path)
    directory = bootstrap_bundle.installed_collection_dir(listing, "community.docker", "4.8.5")
    first = bootstrap_bundle.pack_installed_collection(directory, str(tmp_path / "a.tar.gz"))
    second = bootstrap_bundle.pack_installed_collection(directory, str(tmp_path / "b.tar.gz"))
    assert Path(first).read_bytes() == Path(second).read_bytes()
    with tarfile.open(first) as archive:
        # .azure-pipelines is listed but not installed: left out of the files and of FILES.json
        assert archive.getnames() == ["MANIFEST.json", "FILES.json", "plugins", "plugins/m.py"]
        listed = json.loads(archive.extractfile("FILES.json").read())["files"]
        assert [f["name"] for f in listed] == [".", "plugins", "plugins/m.py"]
    assert bootstrap_bundle.installed_collection_dir(listing, "community.docker", "3.4.11") is None


def _source_checkout(tmp_path):
    """A collection source tree: what the build takes in, and what galaxy.yml's build_ignore leaves out."""
    source = tmp_path / "src"
    files = {"galaxy.yml": "version: 0.1.0\n", "plugins/modules/m.py": "x = 1\n", "roles/r/tasks/main.yml": "---\n",
             "tests/unit/test_m.py": "t = 1\n", ".venv/lib/big.py": "v = 1\n",
             "plugins/modules/__pycache__/m.cpython-311.pyc": "c"}
    for rel, text in files.items():
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_text(text)
    return source


class _Galaxy:
    """Stands in for `ansible-galaxy collection build`: writes a tarball named from galaxy.yml's version."""

    def __init__(self):
        self.builds = 0

    def __call__(self, argv):
        assert argv[:3] == ["collection", "build", "--force"]
        out_dir, source = argv[4], Path(argv[5])
        self.builds += 1
        version = (source / "galaxy.yml").read_text().split()[1]
        _collection_tarball(Path(out_dir) / f"circleci_server-aws-{version}.tar.gz", mtime=self.builds)
        return 0, "Created collection", ""


def test_the_collection_is_built_again_only_when_a_file_it_takes_in_changed(tmp_path):
    source, galaxy, out = _source_checkout(tmp_path), _Galaxy(), str(tmp_path / "build")
    ignore = [".venv", "tests"]
    first, built = bootstrap_bundle.built_collection(str(source), ignore, out, galaxy)
    assert built and galaxy.builds == 1 and first.endswith("circleci_server-aws-0.1.0.tar.gz")
    assert bootstrap_bundle.built_collection(str(source), ignore, out, galaxy) == (first, False)
    # Files the build leaves out change nothing: build_ignore, galaxy's own ignores (__pycache__).
    (source / "tests" / "unit" / "test_m.py").write_text("t = 2\n")
    (source / ".venv" / "lib" / "big.py").write_text("v = 2\n")
    (source / "plugins" / "modules" / "__pycache__" / "m.cpython-311.pyc").write_text("d")
    assert bootstrap_bundle.built_collection(str(source), ignore, out, galaxy) == (first, False)
    # A file the tarball holds, a new one, and galaxy.yml each rebuild; the old tarball goes.
    (source / "plugins" / "modules" / "m.py").write_text("x = 2\n")
    assert bootstrap_bundle.built_collection(str(source), ignore, out, galaxy) == (first, True)
    (source / "roles" / "r" / "tasks" / "extra.yml").write_text("---\n")
    assert bootstrap_bundle.built_collection(str(source), ignore, out, galaxy)[1]
    (source / "galaxy.yml").write_text("version: 0.2.0\n")
    second, built = bootstrap_bundle.built_collection(str(source), ignore, out, galaxy)
    assert built and second.endswith("-0.2.0.tar.gz") and not Path(first).exists()
    assert galaxy.builds == 4


def test_a_failed_build_is_reported_and_not_reused(tmp_path):
    source, out = _source_checkout(tmp_path), str(tmp_path / "build")
    with pytest.raises(ValueError, match="rc=1.*galaxy.yml is not valid"):
        bootstrap_bundle.built_collection(str(source), [], out, lambda argv: (1, "", "ERROR! galaxy.yml is not valid"))
    galaxy = _Galaxy()
    assert bootstrap_bundle.built_collection(str(source), [], out, galaxy)[1] and galaxy.builds == 1


def test_installed_collections_lookup_finds_the_copy_ansible_loads():
    from ansible_collections.circleci_server.aws.plugins.lookup.installed_collections import LookupModule

    listing, = LookupModule().run(["community.docker", "community.nothere"])
    assert len(listing) == 1
    root, found = next(iter(listing.items()))
    assert list(found) == ["community.docker"]
    manifest = json.loads((Path(root) / "community" / "docker" / "MANIFEST.json").read_text())
    assert found["community.docker"]["version"] == manifest["collection_info"]["version"]
    assert bootstrap_bundle.installed_collection_dir(listing, "community.docker", found["community.docker"]["version"])


def test_requirements_pin_every_wheel_but_pip_with_its_hash(tmp_path):
    wheelhouse = _wheelhouse(tmp_path)
    node_vars = tmp_path / "node_vars.json"
    node_vars.write_text("{}")
    own = tmp_path / "own.tar.gz"
    _collection_tarball(own)
    pieces, manifest = bootstrap_bundle.build_pieces(
        str(tmp_path), "3.11", str(wheelhouse), "24.2", False, {"path": str(own)}, {"community.docker": "4.8.5"},
        _installed_collection(tmp_path), str(tmp_path), str(node_vars), [])
    text = (wheelhouse / "requirements.txt").read_text()
    core = hashlib.sha256((wheelhouse / "ansible_core-2.19.14-py3-none-any.whl").read_bytes()).hexdigest()
    assert f"ansible_core==2.19.14 --hash=sha256:{core}" in text
    assert "pip==" not in text
    row = manifest["pythons"]["3.11"]
    assert row["pip"] == "py3.11/pip-24.2-py3-none-any.whl"
    assert row["collections"] == ["collections/circleci_server-aws.tar.gz", "collections/community-docker-4.8.5.tar.gz"]
    assert {p["name"] for p in pieces} >= set(row["files"]) | set(manifest["common"])


def _collection_tarball(path, files_json=b'{"files": []}', mtime=0):
    """A collection artifact as ansible-galaxy builds one: the same files, timestamps that differ per build."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        for name, data in (("MANIFEST.json", b"{}"), ("FILES.json", files_json)):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), mtime
            archive.addfile(info, io.BytesIO(data))
    with open(path, "wb") as out, gzip.GzipFile(fileobj=out, mode="wb", mtime=mtime) as zipped:
        zipped.write(raw.getvalue())


@pytest.fixture
def s3():
    moto = pytest.importorskip("moto")
    import boto3

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with moto.mock_aws():
        client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
        client.create_bucket(Bucket="ci-bucket")
        yield client


def _pieces(tmp_path, build_time=0):
    tarball = tmp_path / "circleci_server-aws-0.1.0.tar.gz"
    _collection_tarball(tarball, mtime=build_time)
    node_vars = tmp_path / "node_vars.json"
    node_vars.write_text('{"circleci_version": "2.16"}')
    return [{"name": "collections/circleci_server-aws.tar.gz", "path": str(tarball),
             "content_digest": bootstrap_bundle.collection_content_digest(str(tarball))},
            {"name": "node_vars.json", "path": str(node_vars)}], tarball, node_vars


def test_publishing_twice_changes_nothing_the_second_time(tmp_path, s3):
    pieces, tarball, _node_vars = _pieces(tmp_path)
    bundle = bootstrap_bundle.BootstrapBundle(s3, "ci-bucket")
    first = bundle.publish(pieces, {"common": ["node_vars.json"]})
    assert first["changed"] and sorted(first["uploaded"]) == sorted(p["name"] for p in pieces)
    # The tarball is rebuilt with other bytes (its timestamps), the same files: nothing to upload.
    before = tarball.read_bytes()
    pieces = _pieces(tmp_path, build_time=1234567)[0]
    assert tarball.read_bytes() != before
    second = bundle.publish(pieces, {"common": ["node_vars.json"]})
    assert second == {"changed": False, "uploaded": [], "manifest": first["manifest"]}
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="ci-bucket")["Contents"]}
    assert "bootstrap/manifest.json" in keys
    assert {"bootstrap/" + e["key"] for e in first["manifest"]["files"].values()} <= keys


def test_a_changed_piece_is_uploaded_under_a_new_key_and_the_old_stays(tmp_path, s3):
    pieces, _tarball, node_vars = _pieces(tmp_path)
    bundle = bootstrap_bundle.BootstrapBundle(s3, "ci-bucket")
    first = bundle.publish(pieces, {"common": ["node_vars.json"]})
    node_vars.write_text('{"circleci_version": "2.19"}')
    second = bundle.publish(pieces, {"common": ["node_vars.json"]})
    assert second["changed"] and second["uploaded"] == ["node_vars.json"]
    old_key = first["manifest"]["files"]["node_vars.json"]["key"]
    new_key = second["manifest"]["files"]["node_vars.json"]["key"]
    assert old_key != new_key
    old = s3.get_object(Bucket="ci-bucket", Key="bootstrap/" + old_key)["Body"].read()
    assert old == b'{"circleci_version": "2.16"}'


def test_check_mode_uploads_nothing(tmp_path, s3):
    pieces = _pieces(tmp_path)[0]
    result = bootstrap_bundle.BootstrapBundle(s3, "ci-bucket", check_mode=True).publish(pieces, {})
    assert result["changed"] and len(result["uploaded"]) == 2
    assert "Contents" not in s3.list_objects_v2(Bucket="ci-bucket")


def test_the_bundle_installs_offline_with_hashes_only(tmp_path):
    """What the bootstrap runs: pip from its wheel, --no-index --require-hashes (checked on the command line)."""
    recorded = []

    class Done:
        returncode, stdout = 0, b""

    bootstrap = boot.Bootstrap({"work_dir": str(tmp_path)}, imds=FakeImds(),
                               run=lambda argv, **kw: recorded.append(argv) or Done())
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "python").write_text("")
    manifest = {"pythons": {"3.11": {"requirements": "py3.11/requirements.txt", "pip": "py3.11/pip.whl"}}}
    bootstrap.python(manifest, "3.11", {"py3.11/requirements.txt": "/b/py3.11/requirements.txt",
                                        "py3.11/pip.whl": "/b/py3.11/pip.whl"})
    argv = recorded[-1]
    assert argv[1] == "/b/py3.11/pip.whl/pip" and argv[2] == "install"
    for flag in ("--no-index", "--require-hashes", "--no-deps"):
        assert flag in argv
    assert argv[argv.index("--find-links") + 1] == "/b/py3.11"
    assert sys.executable  # the venv is made with the running python3


# --- the AWX provisioning callback ---------------------------------------------------------------------------


@pytest.fixture
def awx():
    sys.path.insert(0, str(ROOT / "tests" / "standins"))
    from awx_api import AwxApiStandin

    server = AwxApiStandin().start()
    inventory = server.seed("inventories", name="circleci")
    server.seed("hosts", name="i-0123", inventory=inventory["id"], variables=json.dumps({"ansible_host": "127.0.0.1"}))
    template = server.seed("job_templates", name="CircleCI Server - configure hosts", inventory=inventory["id"],
                           host_config_key="k3y-from-s3")
    yield server, template
    server.stop()


def _awx_bootstrap(tmp_path, server, template, key=b"k3y-from-s3\n"):
    recorder = Recorder(objects={"bootstrap/awx/host_config_key": key})
    bootstrap = _bootstrap(tmp_path, recorder, mode="awx",
                           awx_callback_url=f"{server.url}/api/v2/job_templates/{template['id']}/callback/",
                           awx_host_config_key_object="bootstrap/awx/host_config_key",
                           awx_extra_vars={"circleci_prefix": "ci"}, registration_timeout=0)
    bootstrap.region = "eu-west-1"
    return bootstrap, recorder


def test_the_awx_callback_launches_a_job_for_this_host_only(tmp_path, awx):
    server, template = awx
    bootstrap, recorder = _awx_bootstrap(tmp_path, server, template)
    bootstrap.awx_callback()
    job = server.one("jobs", job_template=template["id"])
    assert job["limit"] == "i-0123" and job["launch_type"] == "callback"
    assert json.loads(job["extra_vars"]) == {"circleci_prefix": "ci"}
    assert ("GetObject", "b", "bootstrap/awx/host_config_key") in recorder.calls


def test_a_wrong_host_config_key_fails_the_step_without_showing_the_key(tmp_path, awx, caplog):
    server, template = awx
    bootstrap = _awx_bootstrap(tmp_path, server, template, key=b"wrong-key-0000")[0]
    with pytest.raises(boot.StepFailed, match="HTTP 403") as failure:
        bootstrap.awx_callback()
    assert "wrong-key-0000" not in str(failure.value) and "wrong-key-0000" not in caplog.text
    assert server.objects("jobs") == []


def test_a_host_awx_does_not_know_fails_after_the_retries(tmp_path, awx):
    server, template = awx
    with server.store.lock:
        server.store.table("hosts").clear()
    bootstrap = _awx_bootstrap(tmp_path, server, template)[0]
    with pytest.raises(boot.StepFailed, match="awx-callback: HTTP 400: .*No matching host"):
        bootstrap.awx_callback()
