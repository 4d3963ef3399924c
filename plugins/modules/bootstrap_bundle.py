#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
DOCUMENTATION = r"""
module: bootstrap_bundle
short_description: Publish the Nomad clients' first-boot bootstrap bundle to S3
version_added: 0.1.0
description:
  - Uploads the pieces a new Nomad client needs to configure itself (the collection tarball,
    wheelhouse and pinned requirements per node Python, the node vars file, ...) to
    C(s3://<bucket>/<prefix>pieces/<sha256 prefix>/<file name>), then writes C(<prefix>manifest.json)
    naming each piece with its key, sha256 and size. The client's bootstrap
    (C(roles/nomad_client/files/circleci_bootstrap.py)) reads the manifest and checks every piece against it.
  - Pieces are content addressed and never overwritten, so a client that read the previous manifest still
    finds what it names. A piece is uploaded only when its sha256 (for this collection's tarball, its file
    list's) differs from the published manifest's;
    the manifest is written only when it changed. A second run with the same
    bundle reports C(changed=false).
  - Check mode reports what would be uploaded and uploads nothing.
  - Nothing secret belongs in a piece; the module does not look.
author: circleci_server.aws maintainers (@circleci-server-aws)
options:
  bucket:
    description: The install's S3 bucket (Terraform output C(bucket_name)).
    type: str
    required: true
  prefix:
    description: Key prefix of the bundle; the Nomad client role may read C(bootstrap/*) only.
    type: str
    default: bootstrap/
  build_dir:
    description: A directory on the controller for the built and packed collection tarballs and the node vars file.
    type: path
    required: true
  python:
    description: The nodes' python3 (C(major.minor)) the wheelhouse is for; the bootstrap picks its row by it.
    type: str
    required: true
  wheelhouse:
    description:
      - Directory with the pinned wheels for O(python), pip's own wheel among them. The module writes
        C(requirements.txt) there (every wheel but pip's, C(name==version --hash=sha256:...)).
    type: path
    required: true
  pip_version:
    description: The pip whose wheel the bootstrap runs pip from.
    type: str
    required: true
  system_site_packages:
    description: Whether the node's venv sees the OS's python3 packages (PyYAML on Python 3.5).
    type: bool
    default: false
  collection:
    description:
      - This collection, in one of three forms.
      - C(source_dir) (a source checkout, galaxy.yml at its top) with C(build_ignore) (galaxy.yml's list) and
        C(galaxy) (the C(ansible-galaxy) to run) is built into C(<build_dir>/build) with
        C(ansible-galaxy collection build), and built again only when a file the build takes in (or galaxy.yml)
        changed since the last build. The digest of the source built is kept next to the tarball.
      - C(path), a tarball C(ansible-galaxy collection build) made.
      - C(collection_dir), an installed copy, packed deterministically.
      - A built tarball is compared with the published one by its C(MANIFEST.json)/C(FILES.json), since the
        tarball's bytes carry timestamps.
    type: dict
    required: true
  dependencies:
    description: Dependency collections the node's play needs, name to exact version.
    type: dict
    default: {}
  installed:
    description:
      - The controller's collections, in the shape of C(ansible-galaxy collection list --format json)
        (the P(circleci_server.aws.installed_collections#lookup) lookup gives it); a dependency installed at the
        pinned version is packed from there.
    type: dict
    default: {}
  download_dir:
    description: Where C(ansible-galaxy collection download) put the dependencies not installed at their pinned version.
    type: path
  node_vars:
    description:
      - What the node's play needs (no secret). Written to C(<build_dir>/node_vars.json) when it differs
        from what is there, and published as that piece.
    type: dict
    required: true
  files:
    description: Other files every node gets (e.g. the Nomad release keyring), C(name) and C(path).
    type: list
    elements: dict
    default: []
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Publish the bootstrap bundle
  circleci_server.aws.bootstrap_bundle:
    bucket: "{{ circleci_infrastructure.bucket_name }}"
    region: us-east-1
    build_dir: ~/.circleci_server/ci/bootstrap
    python: "3.5"
    wheelhouse: ~/.circleci_server/ci/bootstrap/py3.5
    pip_version: "20.3.4"
    system_site_packages: true
    collection:
      source_dir: "{{ playbook_dir }}/.."
      build_ignore: "{{ (lookup('ansible.builtin.file', playbook_dir ~ '/../galaxy.yml') | from_yaml).build_ignore }}"
      galaxy: ansible-galaxy
    dependencies: {community.docker: "3.4.11"}
    installed: "{{ lookup('circleci_server.aws.installed_collections', 'community.docker') }}"
    download_dir: ~/.circleci_server/ci/bootstrap/download
    node_vars: {circleci_version: "{{ circleci_version }}", circleci_http_proxy: ""}
"""

RETURN = r"""
collection_built:
  description: Whether this run built the collection's tarball from C(collection.source_dir).
  returned: always
  type: bool
uploaded:
  description: Names of the pieces uploaded by this run (would be, in check mode).
  returned: always
  type: list
  elements: str
manifest:
  description: The manifest as published (or as it would be, in check mode).
  returned: always
  type: dict
"""

import json  # noqa: E402
import os  # noqa: E402

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule  # noqa: E402
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry  # noqa: E402
from ansible_collections.circleci_server.aws.plugins.module_utils.bootstrap_bundle import (  # noqa: E402
    BootstrapBundle,
    build_pieces,
    built_collection,
    write_if_changed,
)


def main():
    argument_spec = dict(
        bucket=dict(type="str", required=True),
        prefix=dict(type="str", default="bootstrap/"),
        build_dir=dict(type="path", required=True),
        python=dict(type="str", required=True),
        wheelhouse=dict(type="path", required=True),
        pip_version=dict(type="str", required=True),
        system_site_packages=dict(type="bool", default=False),
        collection=dict(type="dict", required=True),
        dependencies=dict(type="dict", default={}),
        installed=dict(type="dict", default={}),
        download_dir=dict(type="path"),
        node_vars=dict(type="dict", required=True),
        files=dict(type="list", elements="dict", default=[]),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    s3 = module.client("s3", retry_decorator=AWSRetry.jittered_backoff())
    bundle = BootstrapBundle(s3, module.params["bucket"], module.params["prefix"], check_mode=module.check_mode)
    params = module.params
    collection = dict(params["collection"])
    built = False
    try:
        if collection.get("source_dir"):
            collection["path"], built = built_collection(
                collection["source_dir"], collection.get("build_ignore"),
                os.path.join(params["build_dir"], "build"),
                lambda argv: module.run_command([collection.get("galaxy") or "ansible-galaxy"] + argv))
        node_vars = os.path.join(params["build_dir"], "node_vars.json")
        write_if_changed(node_vars, json.dumps(params["node_vars"], indent=4, sort_keys=True) + "\n")
        pieces, manifest = build_pieces(
            params["build_dir"], params["python"], params["wheelhouse"], params["pip_version"],
            params["system_site_packages"], collection, params["dependencies"], params["installed"],
            params["download_dir"] or params["build_dir"], node_vars, params["files"])
        result = bundle.publish(pieces, manifest)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # botocore errors: say which bucket and what to check
        module.fail_json_aws(exc, msg="could not publish the bootstrap bundle to s3://%s/%s (does the bucket exist "
                                      "and may this identity write it?)" % (module.params["bucket"],
                                                                            module.params["prefix"]))
    module.exit_json(collection_built=built, **result)


if __name__ == "__main__":
    main()
