"""The http_get lookup: the input checks' look for a Nomad release, made in the controller's process."""
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ansible.errors import AnsibleLookupError
from ansible.plugins.loader import lookup_loader

SUMS = "%s  nomad_0.5.6_linux_amd64.zip\n" % ("a" * 64)


class Mirror(BaseHTTPRequestHandler):
    """A release mirror with one file; everything else is 404, /private is 403, /broken is 500."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        status, body = {"/nomad/0.5.6/nomad_0.5.6_SHA256SUMS": (200, SUMS.encode()),
                        "/private": (403, b"no"), "/broken": (500, b"oops")}.get(self.path, (404, b"not found"))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def mirror():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Mirror)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()


def plugin():
    # Through the plugin loader, as a playbook gets it: its options come from its DOCUMENTATION.
    return lookup_loader.get("circleci_server.aws.http_get")


def lookup(url, **kwargs):
    return plugin().run([url], variables={}, **kwargs)[0]


def test_a_file_that_exists_comes_back_with_status_200(mirror):
    url = mirror + "/nomad/0.5.6/nomad_0.5.6_SHA256SUMS"
    assert lookup(url) == {"url": url, "status": 200, "msg": "OK", "content": SUMS}


@pytest.mark.parametrize("path,status", [("/nomad/0.9.99/nomad_0.9.99_SHA256SUMS", 404), ("/private", 403),
                                         ("/broken", 500)])
def test_an_http_error_gives_its_status_without_failing(mirror, path, status):
    result = lookup(mirror + path)
    assert result["status"] == status and result["content"] == ""
    assert result["msg"].startswith("HTTP Error %d" % status)


def test_no_answer_is_status_minus_one_with_the_reason():
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = lookup("http://127.0.0.1:%d/nomad/" % port, timeout=2)
    assert result["status"] == -1 and result["content"] == ""
    assert "refused" in result["msg"].lower()


def test_one_url_only(mirror):
    with pytest.raises(AnsibleLookupError, match="exactly one URL"):
        plugin().run([mirror, mirror], variables={})
