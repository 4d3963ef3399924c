#!/bin/bash
# replicated installer stand-in: NOT get.replicated.com's installer.
#
# Served by tests/standins/download_server.py at /docker?replicated_tag=...,
# which fills in the tags below the way get.replicated.com renders its script.
# Takes the same arguments the services role passes to the real one:
#   local-address=<private ip>  no-proxy  no-docker
# and, like the real installer, leaves the `replicatedctl` CLI and a
# `replicated` systemd service behind. The CLI is the replicatedctl stand-in
# (tests/standins/replicatedctl.py), fetched from the same server; the service
# is a tiny HTTP answer on :8800 saying it is a stand-in console.
set -euo pipefail

REPLICATED_TAG="@REPLICATED_TAG@"
REPLICATED_UI_TAG="@REPLICATED_UI_TAG@"
REPLICATED_OPERATOR_TAG="@REPLICATED_OPERATOR_TAG@"
BASE_URL="@BASE_URL@"

echo "replicated installer stand-in (not Replicated's installer): Replicated ${REPLICATED_TAG}" >&2

LOCAL_ADDRESS=""
NO_PROXY_FLAG=0
NO_DOCKER_FLAG=0
for arg in "$@"; do
  case "$arg" in
    local-address=*) LOCAL_ADDRESS="${arg#local-address=}" ;;
    no-proxy) NO_PROXY_FLAG=1 ;;
    no-docker) NO_DOCKER_FLAG=1 ;;
    *) echo "replicated installer stand-in: ignoring unsupported argument '$arg'" >&2 ;;
  esac
done

if [ "$(id -u)" != 0 ]; then
  echo "replicated installer stand-in: must run as root" >&2
  exit 1
fi
if [ -z "$LOCAL_ADDRESS" ]; then
  echo "replicated installer stand-in: local-address=<private ip> is required for unattended installs" >&2
  exit 1
fi
if [ "$NO_DOCKER_FLAG" = 1 ] && ! command -v docker >/dev/null; then
  echo "replicated installer stand-in: no-docker given but Docker is not installed" >&2
  exit 1
fi

install -d -m 0755 /usr/local/lib/replicated-standin /etc/default /var/lib/replicated
curl -fsS -o /usr/local/lib/replicated-standin/replicatedctl.py "${BASE_URL}/standins/replicatedctl.py"
install -m 0755 /usr/local/lib/replicated-standin/replicatedctl.py /usr/local/bin/replicatedctl

cat > /usr/local/lib/replicated-standin/console.py <<'PY'
#!/usr/bin/env python3
"""Replicated admin console stand-in: answers on :8800 and says what it is."""
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

BODY = ("Replicated admin console stand-in (not Replicated), version %s\n"
        % os.environ.get("REPLICATED_TAG", "?")).encode()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)


HTTPServer(("0.0.0.0", int(os.environ.get("CONSOLE_PORT", "8800"))), Handler).serve_forever()
PY

cat > /etc/default/replicated <<CONF
# Written by the replicated installer stand-in.
REPLICATED_TAG=${REPLICATED_TAG}
REPLICATED_UI_TAG=${REPLICATED_UI_TAG}
REPLICATED_OPERATOR_TAG=${REPLICATED_OPERATOR_TAG}
LOCAL_ADDRESS=${LOCAL_ADDRESS}
NO_PROXY=${NO_PROXY_FLAG}
CONF

cat > /etc/systemd/system/replicated.service <<'UNIT'
[Unit]
Description=Replicated (stand-in, not Replicated)
After=network.target docker.service

[Service]
EnvironmentFile=/etc/default/replicated
ExecStart=/usr/bin/python3 /usr/local/lib/replicated-standin/console.py
Restart=always

[Install]
WantedBy=multi-user.target
UNIT

# What Replicated starts on `replicatedctl app start` (CircleCI's containers and
# the Nomad server): the CircleCI app stand-in, when the server offers it.
install -d -m 0755 /usr/local/lib/replicated-standin/nomad
if curl -fsS -o /usr/local/lib/replicated-standin/circleci_app.py "${BASE_URL}/standins/circleci_app.py" \
   && curl -fsS -o /usr/local/lib/replicated-standin/nomad/nomad.py "${BASE_URL}/standins/nomad/nomad.py"; then
  cat > /etc/systemd/system/circleci-app-standin.service <<'UNIT'
[Unit]
Description=CircleCI app (stand-in, not CircleCI): listens while replicatedctl says the app is started
After=network.target replicated.service

[Service]
ExecStart=/usr/bin/python3 /usr/local/lib/replicated-standin/circleci_app.py --nomad /usr/local/lib/replicated-standin/nomad/nomad.py
Restart=always

[Install]
WantedBy=multi-user.target
UNIT
  APP_STANDIN=1
else
  echo "replicated installer stand-in: no CircleCI app stand-in on ${BASE_URL}; app start opens no ports" >&2
  APP_STANDIN=0
fi

systemctl daemon-reload
# Re-running the installer is Replicated's documented upgrade
# (help.replicated.com/docs/native/customer-installations/upgrading): the
# daemon comes back on the new tag, so restart rather than only start.
systemctl enable replicated.service
systemctl restart replicated.service
if [ "$APP_STANDIN" = 1 ]; then systemctl enable --now circleci-app-standin.service; fi
echo "replicated installer stand-in: installed Replicated ${REPLICATED_TAG} (stand-in), local address ${LOCAL_ADDRESS}"
