#!/usr/bin/env python3
"""Stand-in download server for the hosts under test (NOT HashiCorp's or Replicated's).

Serves a directory over HTTP on 127.0.0.1 inside a test host, the way
releases.hashicorp.com and get.replicated.com serve the real downloads:

    GET /nomad/<v>/...         files under <root>/nomad/<v>/ (build with nomad/build_release.py)
    GET /docker?replicated_tag=V&replicated_ui_tag=V&replicated_operator_tag=V
                               replicated_installer.sh with the tags filled in, like
                               get.replicated.com renders its installer
    GET /<anything else>       the file under <root>

    python3 download_server.py --root DIR [--port 8999] [--bind 127.0.0.1]

The installer it renders fetches `/standins/replicatedctl.py` from this same
server, so copy tests/standins/replicatedctl.py to <root>/standins/. Stdlib only.
"""
import argparse
import functools
import sys
import urllib.parse
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent


class Handler(SimpleHTTPRequestHandler):
    installer = None  # set in main

    def do_GET(self):  # noqa: N802 (http.server API)
        url = urllib.parse.urlsplit(self.path)
        if url.path.rstrip("/") != "/docker":
            super().do_GET()
            return
        query = urllib.parse.parse_qs(url.query)
        tag = query.get("replicated_tag", [""])[0]
        if not tag:
            self.send_error(400, "replicated_tag is required by this stand-in (pin the version)")
            return
        base = f"http://{self.headers.get('Host', '127.0.0.1')}"
        body = (
            self.installer.replace("@REPLICATED_TAG@", tag)
            .replace("@REPLICATED_UI_TAG@", query.get("replicated_ui_tag", [tag])[0])
            .replace("@REPLICATED_OPERATOR_TAG@", query.get("replicated_operator_tag", [tag])[0])
            .replace("@BASE_URL@", base)
            .encode()
        )
        self.send_response(200)
        self.send_header("Content-Type", "text/x-shellscript")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main(argv=None):
    parser = argparse.ArgumentParser(description="stand-in download server")
    parser.add_argument("--root", required=True)
    parser.add_argument("--port", type=int, default=8999)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--installer", default=str(HERE / "replicated_installer.sh"))
    args = parser.parse_args(argv)
    installer = Path(args.installer)
    Handler.installer = installer.read_text() if installer.exists() else "echo 'no stand-in installer' >&2; exit 1\n"
    handler = functools.partial(Handler, directory=args.root)
    print(f"stand-in download server on {args.bind}:{args.port} serving {args.root}", flush=True)
    ThreadingHTTPServer((args.bind, args.port), handler).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
