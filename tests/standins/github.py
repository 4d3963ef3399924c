#!/usr/bin/env python3
"""GitHub OAuth token-exchange STAND-IN for tests: not GitHub.

Answers `POST /login/oauth/access_token` the way github.com and GitHub
Enterprise Server do for an OAuth app (documented in GitHub's
"Troubleshooting OAuth app access token request errors"): with
`Accept: application/json` a 200 carrying {"error", "error_description",
"error_uri"}; otherwise the same fields form-encoded.

- unknown client_id or wrong client_secret -> incorrect_client_credentials
- redirect_uri not matching the registered callback URL (same scheme, host
  and port; path equal or below the callback's) -> redirect_uri_mismatch
- otherwise (our dummy code can never be valid) -> bad_verification_code

Usable as the github.com or the Enterprise web base URL: point the module's
`github_url` at http://127.0.0.1:<port>.

In a test (same process):
    server = GitHubStandIn(apps=[{"client_id": .., "client_secret": .., "callback_url": ..}])
    server.start(); server.url; server.requests; server.stop()
From a shell:
    github.py --apps apps.json [--port 0] [--port-file FILE] [--fail-first N]
`fail_first` answers the first N requests with 502 (to exercise retries).
"""
import argparse
import json
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

NOTICE = "GitHub STAND-IN (tests/standins/github.py): not GitHub"
DOCS = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/"
ERRORS = {
    "incorrect_client_credentials": ("The client_id and/or client_secret passed are incorrect.",
                                     DOCS + "#incorrect-client-credentials"),
    "redirect_uri_mismatch": ("The redirect_uri MUST match the registered callback URL for this application.",
                              DOCS + "#redirect-uri-mismatch2"),
    "bad_verification_code": ("The code passed is incorrect or expired.", DOCS + "#bad-verification-code"),
}


def redirect_matches(registered, given):
    reg, got = urlsplit(registered), urlsplit(given)
    if (reg.scheme, reg.hostname, reg.port) != (got.scheme, got.hostname, got.port):
        return False
    base = reg.path.rstrip("/")
    return got.path == reg.path or got.path.startswith(base + "/") or not base


class GitHubStandIn:
    def __init__(self, apps, host="127.0.0.1", port=0, fail_first=0, certfile=None, keyfile=None):
        self.apps = {app["client_id"]: app for app in apps}
        self.fail_first = fail_first
        self.requests = []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "GitHubStandIn/1.0"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                standin.requests.append({"path": self.path, "headers": dict(self.headers), "form": form})
                if urlsplit(self.path).path != "/login/oauth/access_token":
                    return self.reply(404, {"message": "Not Found"})
                if standin.fail_first > 0:
                    standin.fail_first -= 1
                    return self.reply(502, {"message": "Server Error"})
                return self.reply(200, standin.answer(form))

            def do_GET(self):
                self.reply(404, {"message": "Not Found"})

            def reply(self, status, body):
                if "application/json" in (self.headers.get("Accept") or ""):
                    payload, ctype = json.dumps(body).encode(), "application/json; charset=utf-8"
                else:
                    payload, ctype = urlencode(body).encode(), "application/x-www-form-urlencoded; charset=utf-8"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("X-Stand-In", NOTICE)
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.scheme = "http"
        if certfile:
            # Serve HTTPS like github.com / a GHE appliance with its own CA.
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certfile, keyfile)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.thread = None

    def answer(self, form):
        app = self.apps.get(form.get("client_id", ""))
        if app is None or app["client_secret"] != form.get("client_secret"):
            error = "incorrect_client_credentials"
        elif form.get("redirect_uri") and not redirect_matches(app["callback_url"], form["redirect_uri"]):
            error = "redirect_uri_mismatch"
        else:
            error = "bad_verification_code"
        description, uri = ERRORS[error]
        return {"error": error, "error_description": description, "error_uri": uri}

    @property
    def url(self):
        host, port = self.httpd.server_address[:2]
        return "%s://%s:%d" % (self.scheme, host, port)

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def main():
    parser = argparse.ArgumentParser(description=NOTICE)
    parser.add_argument("--apps", required=True, help="JSON file: list of {client_id, client_secret, callback_url}")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--cert", help="PEM certificate: serve HTTPS")
    parser.add_argument("--key", help="PEM key for --cert")
    args = parser.parse_args()
    with open(args.apps) as handle:
        apps = json.load(handle)
    server = GitHubStandIn(apps, port=args.port, fail_first=args.fail_first, certfile=args.cert, keyfile=args.key)
    sys.stderr.write("%s, listening on %s\n" % (NOTICE, server.url))
    if args.port_file:
        with open(args.port_file, "w") as handle:
            handle.write(str(server.httpd.server_address[1]))
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
