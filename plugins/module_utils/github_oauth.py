# -*- coding: utf-8 -*-
# Copyright: contributors to circleci_server.aws
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks a GitHub OAuth app the way CircleCI's "Test Authentication" does.

GitHub has no API to read or create an OAuth app, but its token exchange
(`POST <web base>/login/oauth/access_token`) answers a dummy code with a
documented error that tells apart wrong credentials, a callback URL that
does not match the registered one, and good credentials.
"""

from __future__ import absolute_import, division, print_function

import json
import time

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import urlencode, urlsplit
from ansible.module_utils.urls import open_url

GITHUB_COM = "https://github.com"
TOKEN_PATH = "/login/oauth/access_token"
DUMMY_CODE = "circleci-server-ansible-oauth-check"
CALLBACK_PATH = "/auth/github"

CREDENTIALS_OK = "bad_verification_code"
BAD_CREDENTIALS = "incorrect_client_credentials"
CALLBACK_MISMATCH = "redirect_uri_mismatch"


class GitHubOAuthError(Exception):
    """The OAuth app check failed; the message says what to fix."""

    def __init__(self, message, error=None, status=None):
        super(GitHubOAuthError, self).__init__(message)
        self.message = message
        self.error = error
        self.status = status


def web_base_url(github_type="public", enterprise_host=None):
    """https://github.com, or https://<host> for GitHub Enterprise."""
    if github_type == "enterprise":
        if not enterprise_host:
            raise GitHubOAuthError("github_type is enterprise but no GitHub Enterprise host name was given")
        host = enterprise_host.strip().rstrip("/")
        if "://" in host:
            return host
        return "https://" + host
    return GITHUB_COM


def checked_web_url(url):
    """`url` when it is an http(s) URL with a host; GitHubOAuthError naming the fix otherwise.

    urllib would raise a bare ValueError ("unknown url type") for a URL without a scheme.
    """
    parts = urlsplit(url.strip()) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise GitHubOAuthError("github_url %r is not a web base URL: give it with its scheme, such as "
                               "https://github.example.com" % (url,))
    return url.strip()


def callback_url(scheme, hostname):
    """The callback URL CircleCI uses: <scheme>://<hostname>/auth/github."""
    return "%s://%s%s" % (scheme, hostname.strip().rstrip("/"), CALLBACK_PATH)


def other_scheme(url):
    parts = urlsplit(url)
    swapped = "http" if parts.scheme == "https" else "https"
    return swapped + url[len(parts.scheme):]


class GitHubOAuthClient:
    """POSTs the token exchange with bounded retries on 5xx and connection errors.

    Proxies come from the environment (http_proxy/https_proxy/no_proxy) through
    open_url; `validate_certs` and `ca_path` control TLS verification.
    """

    def __init__(self, base_url, validate_certs=True, ca_path=None, timeout=30, retries=3, retry_delay=2.0,
                 opener=None, sleep=None):
        self.base_url = base_url.rstrip("/")
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.timeout = timeout
        self.retries = retries
        self.retry_delay = retry_delay
        self.opener = opener or open_url
        self.sleep = sleep or time.sleep
        self.attempts = 0

    @property
    def token_url(self):
        return self.base_url + TOKEN_PATH

    def _post(self, form):
        kwargs = dict(method="POST", data=urlencode(form),
                      headers={"Accept": "application/json",
                               "Content-Type": "application/x-www-form-urlencoded",
                               "User-Agent": "circleci_server.aws-oauth-check"},
                      validate_certs=self.validate_certs, timeout=self.timeout, use_proxy=True)
        if self.ca_path:
            kwargs["ca_path"] = self.ca_path
        return self.opener(self.token_url, **kwargs)

    def exchange(self, client_id, client_secret, redirect_uri):
        """One token exchange with a dummy code -> GitHub's JSON answer (dict)."""
        form = {"client_id": client_id, "client_secret": client_secret, "code": DUMMY_CODE,
                "redirect_uri": redirect_uri}
        last = None
        for attempt in range(self.retries + 1):
            self.attempts += 1
            try:
                response = self._post(form)
                status, body = response.getcode(), response.read()
            except HTTPError as exc:
                status, body = exc.code, exc.read() if hasattr(exc, "read") else b""
            except URLError as exc:
                last = GitHubOAuthError("cannot reach %s: %s (check the URL, proxy settings and CA bundle)"
                                        % (self.token_url, getattr(exc, "reason", exc)))
                if attempt < self.retries:
                    self.sleep(self.retry_delay * (attempt + 1))
                    continue
                raise last from None
            if status >= 500:
                last = GitHubOAuthError("%s answered HTTP %s after %d attempt(s)"
                                        % (self.token_url, status, attempt + 1), status=status)
                if attempt < self.retries:
                    self.sleep(self.retry_delay * (attempt + 1))
                    continue
                raise last
            if isinstance(body, bytes):
                body = body.decode("utf-8", "replace")
            try:
                data = json.loads(body)
            except ValueError:
                raise GitHubOAuthError("%s answered HTTP %s with something that is not JSON: %r (is this a GitHub "
                                       "web URL?)" % (self.token_url, status, body[:200]), status=status) from None
            if status != 200 or not isinstance(data, dict):
                raise GitHubOAuthError("%s answered HTTP %s: %s" % (self.token_url, status, data), status=status)
            return data
        raise last  # pragma: no cover - the loop always returns or raises

    def check_app(self, client_id, client_secret, redirect_uri):
        """Raise GitHubOAuthError unless GitHub accepts the id, secret and callback URL."""
        data = self.exchange(client_id, client_secret, redirect_uri)
        error = data.get("error")
        if error == CREDENTIALS_OK:
            return data
        if error == BAD_CREDENTIALS:
            raise GitHubOAuthError(
                "GitHub at %s rejected the OAuth app credentials (incorrect_client_credentials): the client id "
                "%s or its client secret is wrong. Copy both again from the OAuth app's page on GitHub."
                % (self.base_url, client_id), error=error)
        if error == CALLBACK_MISMATCH:
            message = ("GitHub at %s says the callback URL does not match (redirect_uri_mismatch): set the OAuth "
                       "app's 'Authorization callback URL' on GitHub to %s. The scheme must match too: http vs "
                       "https is a mismatch (the console's 'Unknown error authenticating via GitHub')."
                       % (self.base_url, redirect_uri))
            # Tell the common case apart: the app is registered with the other scheme.
            try:
                swapped = self.exchange(client_id, client_secret, other_scheme(redirect_uri))
            except GitHubOAuthError:
                swapped = {}
            if swapped.get("error") == CREDENTIALS_OK:
                message += (" GitHub accepts %s for this app, so only the scheme differs: fix the scheme on "
                            "GitHub or the install's scheme." % other_scheme(redirect_uri))
            raise GitHubOAuthError(message, error=error)
        if "access_token" in data:
            # Cannot happen with a dummy code; never echo a token back.
            raise GitHubOAuthError("%s unexpectedly issued a token for a dummy code" % self.token_url)
        raise GitHubOAuthError("%s answered an unexpected error %r: %s" % (
            self.token_url, error, data.get("error_description", "")), error=error)
