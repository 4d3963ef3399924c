#!/usr/bin/env python3
"""CircleCI app STAND-IN for tests: NOT CircleCI Server.

On a real Services machine, Replicated pulls CircleCI's images and starts
their containers when the app is started (`replicatedctl app start`); they
listen on 80/443 (web app), 8585, 7171 and 3001 (internal services and
artifacts), and the Nomad server container on 4646 (HTTP API) and 4647 (RPC).
None of that can be fetched here, so this one process plays the part:

* it watches the replicatedctl stand-in's state file
  (env REPLICATEDCTL_STANDIN_STATE, default /var/lib/replicated-standin/state.json);
* while the app's State is "started" it listens on 80 (HTTP), 443 (HTTPS with
  a self-signed certificate for the configured hostname, made with openssl on
  first start), 8585, 7171 and 3001 (HTTP, each saying what it stands for),
  and runs the Nomad stand-in (tests/standins/nomad/nomad.py) as the Nomad
  server on 4646/4647, with which the clients register;
* when the app stops, it closes them again;
* it keeps its "app data" under <data-dir>/data (app.json: when this app's
  data was first created and for which hostname), which the replicatedctl
  stand-in's snapshots carry, as Replicated's snapshots carry the app's data.

Every answer says it is a stand-in. Stdlib only (runs on the test hosts).

    circleci_app.py [--state FILE] [--nomad PATH-TO-nomad.py] [--data-dir DIR]
"""
import argparse
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NOTICE = "CircleCI Server STAND-IN (tests/standins/circleci_app.py): not CircleCI"
DEFAULT_STATE = "/var/lib/replicated-standin/state.json"
# port -> what the real service on that port is
PLAIN_PORTS = {80: "web app (HTTP)", 8585: "internal services", 7171: "artifacts", 3001: "internal services"}
TLS_PORT = 443
NOMAD_SERVER_CONFIG = """# Nomad server stand-in config, written by circleci_app.py
data_dir  = "{data_dir}"
bind_addr = "0.0.0.0"
datacenter = "us-east-1"
name = "circleci-services-nomad-server"
server {{
  enabled = true
}}
ports {{
  http = 4646
  rpc  = 4647
}}
"""


def log(message):
    print(message, flush=True)


def read_state(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def handler_for(port, what, app):
    class Handler(BaseHTTPRequestHandler):
        server_version = "circleci-app-standin"

        def log_message(self, fmt, *args):
            log(f"http {port}: " + fmt % args)

        def do_GET(self):  # noqa: N802 (http.server API)
            body = json.dumps({
                "standin": NOTICE,
                "port": port,
                "serves": what,
                "hostname": app.hostname(),
                "path": self.path,
            }, indent=2).encode() + b"\n"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET  # noqa: N815

    return Handler


class App:
    def __init__(self, state_path, nomad_path, data_dir):
        self.state_path = state_path
        self.nomad_path = nomad_path
        self.data_dir = data_dir
        self.servers = []
        self.nomad = None
        self.running = False

    def hostname(self):
        # The settings the app was started with (the replicatedctl stand-in's
        # app.RunningConfig), not the ones imported since: like the real app.
        config = read_state(self.state_path).get("app", {}).get("RunningConfig", {})
        value = config.get("hostname", {})
        return value.get("value", "") if isinstance(value, dict) else str(value)

    def _certificate(self):
        cert = os.path.join(self.data_dir, "tls.crt")
        key = os.path.join(self.data_dir, "tls.key")
        if not (os.path.exists(cert) and os.path.exists(key)):
            name = self.hostname() or "circleci-standin"
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "825",
                 "-subj", f"/CN={name}", "-keyout", key, "-out", cert],
                check=True, capture_output=True,
            )
            os.chmod(key, 0o600)
        return cert, key

    def _app_data(self):
        """Created once; a restored snapshot brings the old one back (tests compare it)."""
        path = os.path.join(self.data_dir, "data", "app.json")
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as handle:
                json.dump({"standin": NOTICE, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "created_ns": time.time_ns(), "hostname": self.hostname()}, handle)

    def start(self):
        os.makedirs(self.data_dir, exist_ok=True)
        self._app_data()
        for port, what in PLAIN_PORTS.items():
            self._serve(ThreadingHTTPServer(("0.0.0.0", port), handler_for(port, what, self)))
        httpd = ThreadingHTTPServer(("0.0.0.0", TLS_PORT), handler_for(TLS_PORT, "web app (HTTPS)", self))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*self._certificate())
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        self._serve(httpd)
        nomad_dir = os.path.join(self.data_dir, "nomad")
        os.makedirs(nomad_dir, exist_ok=True)
        config = os.path.join(self.data_dir, "nomad-server.hcl")
        with open(config, "w", encoding="utf-8") as handle:
            handle.write(NOMAD_SERVER_CONFIG.format(data_dir=nomad_dir))
        self.nomad = subprocess.Popen([sys.executable, self.nomad_path, "agent", "-config", config])
        self.running = True
        log(f"app started ({NOTICE}): ports {sorted([*PLAIN_PORTS, TLS_PORT, 4646, 4647])}")

    def _serve(self, httpd):
        self.servers.append(httpd)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()

    def stop(self):
        for httpd in self.servers:
            httpd.shutdown()
            httpd.server_close()
        self.servers = []
        if self.nomad and self.nomad.poll() is None:
            self.nomad.terminate()
            self.nomad.wait(timeout=10)
        self.nomad = None
        self.running = False
        log("app stopped")

    def reconcile(self):
        app_state = read_state(self.state_path).get("app", {})
        transitioning = app_state.get("TransitionUntil", 0) and app_state["TransitionUntil"] > time.time()
        want = app_state.get("State") in ("started", "starting") and app_state.get("DesiredState") == "started" \
            and not transitioning
        if want and not self.running:
            self.start()
        elif not want and self.running and app_state.get("DesiredState") == "stopped":
            self.stop()
        elif self.running and self.nomad and self.nomad.poll() is not None:
            log("nomad server stand-in exited; restarting the app")
            self.stop()


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=NOTICE)
    parser.add_argument("--state", default=os.environ.get("REPLICATEDCTL_STANDIN_STATE") or DEFAULT_STATE)
    parser.add_argument("--nomad", default=os.path.join(here, "nomad", "nomad.py"))
    parser.add_argument("--data-dir", default="/var/lib/circleci-app-standin")
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    app = App(args.state, args.nomad, args.data_dir)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log(f"{NOTICE}: watching {args.state}")
    try:
        while True:
            app.reconcile()
            time.sleep(args.interval)
    finally:
        if app.running:
            app.stop()


if __name__ == "__main__":
    sys.exit(main())
