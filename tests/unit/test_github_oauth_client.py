"""The GitHub OAuth check (plugins/module_utils/github_oauth.py) against the
GitHub stand-in over real HTTP(S)."""
import subprocess

import pytest

from ansible_collections.circleci_server.aws.plugins.module_utils import github_oauth as gh
from tests.standins.github import GitHubStandIn

SECRET = "gh-secret-0123456789abcdef"
CALLBACK = "https://ci.example.com/auth/github"
APPS = [{"client_id": "Iv1.good", "client_secret": SECRET, "callback_url": CALLBACK},
        {"client_id": "Iv1.http", "client_secret": SECRET, "callback_url": "http://ci.example.com/auth/github"}]


@pytest.fixture
def github():
    server = GitHubStandIn(APPS).start()
    yield server
    server.stop()


def client(url, **kwargs):
    kwargs.setdefault("sleep", lambda seconds: None)
    return gh.GitHubOAuthClient(url, **kwargs)


def test_web_base_and_callback_urls():
    assert gh.web_base_url("public") == "https://github.com"
    assert gh.web_base_url("enterprise", "ghe.example.com") == "https://ghe.example.com"
    assert gh.callback_url("https", "ci.example.com") == CALLBACK
    with pytest.raises(gh.GitHubOAuthError, match="no GitHub Enterprise host"):
        gh.web_base_url("enterprise", "")


def test_good_credentials_pass_and_request_is_the_documented_one(github):
    answer = client(github.url).check_app("Iv1.good", SECRET, CALLBACK)
    assert answer["error"] == "bad_verification_code"
    request = github.requests[-1]
    assert request["path"] == "/login/oauth/access_token"
    assert request["headers"]["Accept"] == "application/json"
    assert request["form"]["redirect_uri"] == CALLBACK and request["form"]["code"]


def test_wrong_secret_is_explained_without_the_secret(github):
    with pytest.raises(gh.GitHubOAuthError) as err:
        client(github.url).check_app("Iv1.good", SECRET + "x", CALLBACK)
    assert err.value.error == "incorrect_client_credentials"
    assert "client id Iv1.good or its client secret is wrong" in err.value.message
    assert SECRET not in err.value.message


def test_callback_mismatch_names_the_url_to_register(github):
    with pytest.raises(gh.GitHubOAuthError) as err:
        client(github.url).check_app("Iv1.good", SECRET, "https://other.example.com/auth/github")
    assert err.value.error == "redirect_uri_mismatch"
    assert "to https://other.example.com/auth/github" in err.value.message
    assert "http vs https" in err.value.message
    assert "only the scheme differs" not in err.value.message


def test_scheme_only_mismatch_is_told_apart(github):
    with pytest.raises(gh.GitHubOAuthError) as err:
        client(github.url).check_app("Iv1.http", SECRET, CALLBACK)
    assert "GitHub accepts http://ci.example.com/auth/github" in err.value.message
    assert "only the scheme differs" in err.value.message


def test_5xx_is_retried_a_bounded_number_of_times():
    server = GitHubStandIn(APPS, fail_first=2).start()
    try:
        sleeps = []
        checker = client(server.url, retries=3, sleep=sleeps.append, retry_delay=1)
        checker.check_app("Iv1.good", SECRET, CALLBACK)
        assert checker.attempts == 3 and sleeps == [1, 2]
        server.fail_first = 10
        checker = client(server.url, retries=2)
        with pytest.raises(gh.GitHubOAuthError) as err:
            checker.check_app("Iv1.good", SECRET, CALLBACK)
        assert "answered HTTP 502 after 3 attempt(s)" in err.value.message
        assert server.url + "/login/oauth/access_token" in err.value.message
    finally:
        server.stop()


def test_other_answers_name_url_and_status(github):
    with pytest.raises(gh.GitHubOAuthError) as err:
        client(github.url + "/not-github").check_app("Iv1.good", SECRET, CALLBACK)
    assert "/not-github/login/oauth/access_token answered HTTP 404" in err.value.message


def test_unreachable_host_is_a_clear_error():
    with pytest.raises(gh.GitHubOAuthError, match="cannot reach http://127.0.0.1:9/login/oauth/access_token"):
        client("http://127.0.0.1:9", retries=1).check_app("Iv1.good", SECRET, CALLBACK)


def test_proxy_from_environment_is_used(github, monkeypatch):
    monkeypatch.setenv("http_proxy", github.url)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    client("http://github.invalid").check_app("Iv1.good", SECRET, CALLBACK)
    assert github.requests[-1]["path"] == "http://github.invalid/login/oauth/access_token"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_ca_bundle_and_validate_certs(tls_files):
    cert, key = tls_files
    server = GitHubStandIn(APPS, certfile=str(cert), keyfile=str(key)).start()
    try:
        assert server.url.startswith("https://")
        with pytest.raises(gh.GitHubOAuthError, match="cannot reach .*CA bundle"):
            client(server.url, retries=0).check_app("Iv1.good", SECRET, CALLBACK)
        client(server.url, ca_path=str(cert)).check_app("Iv1.good", SECRET, CALLBACK)
        client(server.url, validate_certs=False).check_app("Iv1.good", SECRET, CALLBACK)
    finally:
        server.stop()


@pytest.mark.parametrize("url", ["github.example.com", "github.example.com/path", "ftp://github.example.com",
                                 "https://", "", None])
def test_a_web_url_without_scheme_or_host_is_named_not_a_value_error(url):
    with pytest.raises(gh.GitHubOAuthError, match="not a web base URL: give it with its scheme"):
        gh.checked_web_url(url)


def test_a_web_url_with_scheme_passes():
    assert gh.checked_web_url(" https://github.example.com:8443/ghe ") == "https://github.example.com:8443/ghe"
