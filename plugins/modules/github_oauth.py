#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to circleci_server.aws
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
module: github_oauth
short_description: Check the GitHub OAuth app for CircleCI Server and put it in the app settings
description:
  - GitHub has no API to create an OAuth app; the admin registers it in GitHub's UI (Settings, Developer
    settings, OAuth Apps) with the callback URL this module returns.
  - This module checks what was registered the way the admin console's "Test Authentication" does, using
    GitHub's documented token-exchange errors. It sends C(POST <web base>/login/oauth/access_token) with
    C(Accept) header C(application/json), the client id and secret, a dummy code and C(redirect_uri) set to the
    install's callback URL C(<scheme>://<hostname>/auth/github).
  - C(incorrect_client_credentials) fails with "wrong client id or secret"; C(redirect_uri_mismatch) fails
    naming the callback URL to register (http and https must match); C(bad_verification_code) means the app is
    right.
  - Then it sets C(ghe_type), C(ghe_domain) (Enterprise), C(ghe_client_id) and C(ghe_client_secret) with
    C(replicatedctl app-config import), changing only keys that differ.
  - Runs on the Services machine, which must reach GitHub (directly or through the proxy in the environment).
version_added: "1.0.0"
author:
  - circleci_server.aws contributors (@circleci-server-aws)
extends_documentation_fragment:
  - circleci_server.aws.replicatedctl
  - circleci_server.aws.replicatedctl.attributes
options:
  github_type:
    description:
      - V(public) for github.com, V(enterprise) for GitHub Enterprise Server.
    type: str
    choices: [public, enterprise]
    default: public
  enterprise_host:
    description:
      - GitHub Enterprise host name (required when O(github_type=enterprise)); its web base URL is
        C(https://<enterprise_host>).
    type: str
  github_url:
    description:
      - Web base URL to check against instead of C(https://github.com) or C(https://<enterprise_host>).
    type: str
  client_id:
    description:
      - Client ID of the OAuth app.
    type: str
    required: true
  client_secret:
    description:
      - Client secret of the OAuth app.
    type: str
    required: true
  hostname:
    description:
      - Host name users browse CircleCI at (the setting C(hostname)).
    type: str
    required: true
  scheme:
    description:
      - Scheme of the install (V(https) when CircleCI is served with TLS).
    type: str
    choices: [http, https]
    default: https
  callback_url:
    description:
      - Callback URL to check instead of C(<scheme>://<hostname>/auth/github). A warning is given when its scheme
        differs from O(scheme).
    type: str
  validate_certs:
    description:
      - Verify the TLS certificate of GitHub (Enterprise).
    type: bool
    default: true
  ca_path:
    description:
      - CA bundle (PEM) to verify GitHub Enterprise's certificate with.
    type: path
  timeout:
    description:
      - Seconds to wait for one answer from GitHub.
    type: int
    default: 30
  retries:
    description:
      - How many times to ask again after a 5xx answer or a connection error.
    type: int
    default: 3
  retry_delay:
    description:
      - Seconds before the first retry (the delay grows linearly).
    type: float
    default: 2
  apply_settings:
    description:
      - Put the C(ghe_*) settings into Replicated after a successful check. V(false) only checks.
    type: bool
    default: true
notes:
  - Proxies come from the C(https_proxy), C(http_proxy) and C(no_proxy) environment variables (use the task's
    C(environment)).
  - The check also runs in check mode (it changes nothing on GitHub).
"""

EXAMPLES = r"""
- name: Check the OAuth app and configure CircleCI with it
  circleci_server.aws.github_oauth:
    client_id: "{{ circleci_github_client_id }}"
    client_secret: "{{ circleci_github_client_secret }}"
    hostname: "{{ circleci_hostname }}"
    scheme: "{{ circleci_scheme }}"
  environment:
    https_proxy: "{{ circleci_https_proxy }}"
    no_proxy: "{{ circleci_no_proxy }}"

- name: GitHub Enterprise with a private CA
  circleci_server.aws.github_oauth:
    github_type: enterprise
    enterprise_host: github.example.com
    ca_path: /etc/ssl/certs/example-ca.pem
    client_id: "{{ circleci_github_client_id }}"
    client_secret: "{{ circleci_github_client_secret }}"
    hostname: circleci.example.com
"""

RETURN = r"""
callback_url:
  description: The Authorization callback URL the OAuth app must have on GitHub.
  returned: always
  type: str
  sample: https://circleci.example.com/auth/github
web_url:
  description: The GitHub web base URL that was checked.
  returned: always
  type: str
  sample: https://github.com
github_error:
  description: The error GitHub answered the dummy token exchange with (C(bad_verification_code) when all is right).
  returned: always
  type: str
  sample: bad_verification_code
changed_keys:
  description: The app settings that were (or in check mode would be) changed.
  returned: success
  type: list
  elements: str
  sample: [ghe_client_id, ghe_client_secret, ghe_type]
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.six.moves.urllib.parse import urlsplit  # noqa: E402

from ansible_collections.circleci_server.aws.plugins.module_utils.github_oauth import (  # noqa: E402
    CREDENTIALS_OK,
    GitHubOAuthClient,
    GitHubOAuthError,
    callback_url as build_callback_url,
    checked_web_url,
    web_base_url,
)
from ansible_collections.circleci_server.aws.plugins.module_utils.replicatedctl import (  # noqa: E402
    ReplicatedctlError,
    apply_settings,
    client_from_module,
    replicatedctl_argument_spec,
)

GHE_TYPES = {"public": "github_type_public", "enterprise": "github_type_enterprise"}


def desired_settings(params):
    settings = {
        "ghe_type": GHE_TYPES[params["github_type"]],
        "ghe_client_id": params["client_id"],
        "ghe_client_secret": params["client_secret"],
    }
    if params["github_type"] == "enterprise":
        settings["ghe_domain"] = params["enterprise_host"]
    return settings


def main():
    argument_spec = replicatedctl_argument_spec()
    argument_spec.update(
        github_type=dict(type="str", choices=["public", "enterprise"], default="public"),
        enterprise_host=dict(type="str"),
        github_url=dict(type="str"),
        client_id=dict(type="str", required=True),
        client_secret=dict(type="str", required=True, no_log=True),
        hostname=dict(type="str", required=True),
        scheme=dict(type="str", choices=["http", "https"], default="https"),
        callback_url=dict(type="str"),
        validate_certs=dict(type="bool", default=True),
        ca_path=dict(type="path"),
        timeout=dict(type="int", default=30),
        retries=dict(type="int", default=3),
        retry_delay=dict(type="float", default=2),
        apply_settings=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[("github_type", "enterprise", ("enterprise_host",))])
    params = module.params

    callback = params["callback_url"] or build_callback_url(params["scheme"], params["hostname"])
    callback_scheme = urlsplit(callback).scheme
    if callback_scheme != params["scheme"]:
        module.warn("the callback URL %s uses %s but the install uses %s: GitHub's OAuth login will fail with the "
                    "console's 'Unknown error authenticating via GitHub' unless both match"
                    % (callback, callback_scheme, params["scheme"]))
    try:
        web_url = checked_web_url(params["github_url"]
                                  or web_base_url(params["github_type"], params["enterprise_host"]))
    except GitHubOAuthError as exc:
        module.fail_json(msg=exc.message, callback_url=callback)
    result = dict(changed=False, callback_url=callback, web_url=web_url, github_error="", changed_keys=[])

    github = GitHubOAuthClient(web_url, validate_certs=params["validate_certs"], ca_path=params["ca_path"],
                               timeout=params["timeout"], retries=params["retries"],
                               retry_delay=params["retry_delay"])
    try:
        github.check_app(params["client_id"], params["client_secret"], callback)
    except GitHubOAuthError as exc:
        result["github_error"] = exc.error or ""
        module.fail_json(msg=exc.message, **result)
    result["github_error"] = CREDENTIALS_OK

    if params["apply_settings"]:
        client = client_from_module(module)
        try:
            result.update(apply_settings(client, desired_settings(params), secret_keys=["ghe_client_secret"],
                                         check_mode=module.check_mode))
        except ReplicatedctlError as exc:
            module.fail_json(msg="the OAuth app is right, but the settings were not applied: %s" % exc.message,
                             **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
