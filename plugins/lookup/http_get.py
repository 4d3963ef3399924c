# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
name: http_get
author: circleci_server.aws contributors (@circleci-server-aws)
short_description: GET one URL from the controller and say how it went, without failing
description:
  - Fetches the URL in the Ansible process on the controller, with the same HTTP client as the
    M(ansible.builtin.uri) module (proxies from the environment, certificates verified), but without
    starting a module process. The input checks use it to look for a Nomad release in its C(SHA256SUMS).
  - Never fails the task. An HTTP error gives its status code; no answer at all (DNS, connection, TLS,
    timeout) gives status V(-1). The caller decides what each means.
options:
  _terms:
    description: The URL (one).
    required: true
    type: list
    elements: str
  timeout:
    description: Seconds to wait for the server.
    type: int
    default: 15
  validate_certs:
    description: Verify the server's TLS certificate.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Fetch a release's checksums
  ansible.builtin.set_fact:
    sums: "{{ lookup('circleci_server.aws.http_get', nomad_mirror ~ '/nomad/0.5.6/nomad_0.5.6_SHA256SUMS') }}"
  vars:
    nomad_mirror: https://releases.hashicorp.com

- name: Stop when the release does not exist
  ansible.builtin.assert:
    that: sums.status == 200
    fail_msg: "{{ sums.url }}: {{ sums.msg }}"
"""

RETURN = r"""
_raw:
  description: One dict per URL.
  type: list
  elements: dict
  contains:
    url:
      description: The URL asked for.
      type: str
    status:
      description: The HTTP status code, or -1 when no HTTP answer came.
      type: int
    content:
      description: The body (UTF-8; empty unless the status is 2xx).
      type: str
    msg:
      description: V(OK), the HTTP error, or why nothing answered.
      type: str
"""

from urllib.error import HTTPError  # noqa: E402

from ansible.errors import AnsibleLookupError  # noqa: E402
from ansible.module_utils.common.text.converters import to_text  # noqa: E402
from ansible.module_utils.urls import open_url  # noqa: E402
from ansible.plugins.lookup import LookupBase  # noqa: E402


def http_get(url, timeout=15, validate_certs=True):
    """{url, status, content, msg} for one GET; status -1 when no HTTP answer came."""
    try:
        response = open_url(url, method="GET", timeout=timeout, validate_certs=validate_certs)
        return {"url": url, "status": response.getcode(), "msg": "OK",
                "content": to_text(response.read(), errors="surrogate_or_replace")}
    except HTTPError as exc:
        return {"url": url, "status": exc.code, "content": "", "msg": "HTTP Error %s: %s" % (exc.code, exc.reason)}
    except Exception as exc:  # pylint: disable=broad-except  # DNS, refused, TLS, timeout: "no answer"
        return {"url": url, "status": -1, "content": "", "msg": to_text(exc) or exc.__class__.__name__}


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        if len(terms) != 1:
            raise AnsibleLookupError("http_get takes exactly one URL (got %d)" % len(terms))
        return [http_get(terms[0], timeout=self.get_option("timeout"),
                         validate_certs=self.get_option("validate_certs"))]
