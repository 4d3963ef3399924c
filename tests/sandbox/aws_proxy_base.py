"""An HTTP proxy in front of moto that reads each AWS request (test side only).

The base of the sandbox's two proxies: tests/integration/aws_proxy.py (counts
calls, refuses one fake key) and tests/sandbox/fault_proxy.py (injects
throttling and errors). It runs the server, reads who is calling what from
the SigV4 Authorization header and the request, forwards to moto, and passes
the answer back. A subclass decides per request in ``intercept``:

    class Recorder(AwsProxy):
        def intercept(self, request):
            ...                                  # request.service, .region, .action, ...
            return None                          # forward to moto
            # or: return status, content_type, body   (answered here, moto never sees it)

        def rewrite(self, request, status, body):
            return body                          # what moto answered, changed or not
"""
import http.client
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_CREDENTIAL = re.compile(r"Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass(frozen=True)
class AwsRequest:
    access_key: str
    region: str
    service: str
    target: str  # X-Amz-Target of JSON-protocol calls, e.g. "AWSCognitoIdentityService.ListPools"
    action: str  # the operation: the target's last part, or the query/form Action
    json_protocol: bool
    user_agent: str
    # The query/form parameters of query-protocol calls (EC2, Auto Scaling, ...), first value of each.
    params: dict = field(default_factory=dict, compare=False)


def parse_request(method, path, headers, body):
    match = _CREDENTIAL.search(headers.get("Authorization", ""))
    access_key, region, service = match.groups() if match else ("", "", "")
    target = headers.get("X-Amz-Target", "")
    action = target.rsplit(".", 1)[-1] if target else ""
    if not action:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
        form = urllib.parse.parse_qs(body.decode(errors="replace")) if b"Action=" in body else {}
        action = (query.get("Action") or form.get("Action") or [method + " " + path])[0]
        params = {key: values[0] for key, values in {**query, **form}.items()}
    else:
        params = {}
    json_protocol = bool(target) or "json" in headers.get("Content-Type", "")
    return AwsRequest(access_key, region, service, target, action, json_protocol, headers.get("User-Agent", ""),
                      params)


class AwsProxy:
    upstream_timeout = 900  # a DescribeInstances of thousands of instances takes moto minutes

    def __init__(self, upstream_url, host="127.0.0.1", port=0):
        self.upstream = urllib.parse.urlsplit(upstream_url)
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = None

    @property
    def url(self):
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

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

    def intercept(self, request):
        """None to forward the request to moto, or (status, content_type, body) to answer it here."""
        return None

    def rewrite(self, request, status, body):
        """What the client gets of moto's answer: ``body`` itself, or a changed copy."""
        return body

    def _handler_class(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = parse_request(self.command, self.path, self.headers, body)
                answer = proxy.intercept(request)
                if answer:
                    status, content_type, payload = answer
                    self._reply(status, [("Content-Type", content_type)], payload)
                    return
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port,
                                                  timeout=proxy.upstream_timeout)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = proxy.rewrite(request, resp.status, resp.read())
                conn.close()
                skip = _HOP_BY_HOP | {"content-length"}
                self._reply(resp.status, [(k, v) for k, v in resp.getheaders() if k.lower() not in skip], data)

            def _reply(self, status, headers, data):
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward  # noqa: N815

        return Handler
