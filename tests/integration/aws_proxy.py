"""A counting HTTP proxy in front of moto (test side only).

ansible-inventory runs in a subprocess, so API calls are counted where they
arrive: clients use ``proxy.url`` as their endpoint and every request is
recorded (action, region, access key) before being passed on to moto.

Fault injection: requests signed with ``REJECTED_ACCESS_KEY`` get the answer
real EC2 gives for unknown credentials (HTTP 401, ``AuthFailure``), because
moto accepts any key.

    with CountingProxy(moto.url) as proxy:
        ...  # endpoint_url=proxy.url
        proxy.calls            # [Call(action="DescribeInstances", region="us-east-1", ...)]
        proxy.reset()
"""
import http.client
import re
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REJECTED_ACCESS_KEY = "testing-rejected-access-key"  # fake on purpose, no real key shape
_CREDENTIAL = re.compile(r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/")
_AUTH_FAILURE = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>AuthFailure</Code>'
    b"<Message>AWS was not able to validate the provided access credentials</Message></Error></Errors>"
    b"<RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>"
)
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass(frozen=True)
class Call:
    action: str
    region: str
    service: str
    access_key: str


class CountingProxy:
    def __init__(self, upstream_url):
        parsed = urllib.parse.urlparse(upstream_url)
        self.upstream = (parsed.hostname, parsed.port)
        self.calls = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self._server.server_address[1]

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def reset(self):
        with self._lock:
            self.calls = []

    def actions(self):
        with self._lock:
            return [c.action for c in self.calls]

    def _record(self, call):
        with self._lock:
            self.calls.append(call)

    def _handler_class(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                auth = self.headers.get("Authorization", "")
                match = _CREDENTIAL.search(auth)
                access_key, region, service = match.groups() if match else ("", "", "")
                action = self.headers.get("X-Amz-Target", "")
                if not action:
                    fields = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
                    fields.update(urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query))
                    action = (fields.get("Action") or [self.command + " " + self.path])[0]
                proxy._record(Call(action, region, service, access_key))
                if access_key == REJECTED_ACCESS_KEY:
                    self._reply(401, [("Content-Type", "text/xml")], _AUTH_FAILURE)
                    return
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=900)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                skip = _HOP_BY_HOP | {"content-length"}
                out_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in skip]
                self._reply(resp.status, out_headers, data)

            def _reply(self, status, headers, data):
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        return Handler
