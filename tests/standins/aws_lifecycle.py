#!/usr/bin/env python3
"""Stand-in for what a Nomad client's drain agent asks of AWS: NOT the EC2 instance
metadata service and NOT the Auto Scaling API, a small fake of both on one port.

Instance metadata, IMDSv2 only (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html):
    PUT /latest/api/token   needs X-aws-ec2-metadata-token-ttl-seconds; returns the session token
    GET /latest/...         needs X-aws-ec2-metadata-token (401 otherwise):
        meta-data/autoscaling/target-lifecycle-state   the state set with /standin/state (404 when none)
        meta-data/instance-id, dynamic/instance-identity/document (region, instanceId)
        meta-data/iam/security-credentials/[<role>]    fake role credentials
        meta-data/tags/instance/<key>                  the tags (404 for an absent key)
Auto Scaling Query API (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/):
    POST /   form body Action=RecordLifecycleActionHeartbeat|CompleteLifecycleAction&...: recorded,
             answered with an empty <...Response>. Signatures are not checked (moto does not either).
STAND-IN-ONLY control endpoints:
    PUT /standin/state   body: the target lifecycle state (e.g. Terminated); empty clears it
    GET /standin/calls   JSON list of the recorded Auto Scaling calls: {time, action, params, authorization}

    python3 aws_lifecycle.py [--host 127.0.0.1] [--port 8169]

Stdlib only.
"""
import argparse
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INSTANCE_ID = "i-0a1b2c3d4e5f60718"
REGION = "eu-west-1"
ROLE = "ci-nomad-client"
TOKEN = "standin-imds-session-token"


class LifecycleStandin:
    def __init__(self, host="127.0.0.1", port=0, instance_id=INSTANCE_ID, region=REGION):
        self.state = "InService"
        self.instance_id = instance_id
        self.region = region
        self.tags = {"aws:autoscaling:groupName": "ci-nomad-clients", "circleci:install": "ci"}
        self.calls = []  # (monotonic time, action, params, headers)
        self.token_requests = 0
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.url = "http://%s:%d" % (host, self.server.server_address[1])

    def start(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def actions(self):
        return [call[1] for call in self.calls]

    def metadata(self, path):
        tag_prefix = "meta-data/tags/instance/"
        if path.startswith(tag_prefix):
            return self.tags.get(urllib.parse.unquote(path[len(tag_prefix):]))
        return {
            "meta-data/autoscaling/target-lifecycle-state": self.state,
            "meta-data/instance-id": self.instance_id,
            "dynamic/instance-identity/document": json.dumps({"region": self.region,
                                                              "instanceId": self.instance_id}),
            "meta-data/iam/security-credentials/": ROLE,
            "meta-data/iam/security-credentials/" + ROLE: json.dumps({
                "Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": "ASIASTANDINEXAMPLE",
                "SecretAccessKey": "standin-secret", "Token": "standin-session-token",
                "Expiration": "2099-01-01T00:00:00Z"}),
        }.get(path)

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "aws-lifecycle-standin"

            def log_message(self, *args):
                pass

            def send(self, code, text, content_type="text/plain"):
                data = text.encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def body(self):
                return self.rfile.read(int(self.headers.get("Content-Length", "0") or 0)).decode()

            def do_PUT(self):  # noqa: N802 (http.server API)
                if self.path == "/latest/api/token":
                    if not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                        self.send(400, "missing X-aws-ec2-metadata-token-ttl-seconds")
                        return
                    standin.token_requests += 1
                    self.send(200, TOKEN)
                elif self.path == "/standin/state":
                    standin.state = self.body().strip() or None
                    self.send(200, str(standin.state))
                else:
                    self.send(404, "Not Found")

            def do_GET(self):  # noqa: N802 (http.server API)
                if self.path == "/standin/calls":
                    self.send(200, json.dumps([
                        {"time": t, "action": a, "params": p, "authorization": h.get("Authorization", "")}
                        for t, a, p, h in standin.calls]), "application/json")
                    return
                if not self.path.startswith("/latest/"):
                    self.send(404, "Not Found")
                    return
                if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
                    self.send(401, "")
                    return
                value = standin.metadata(self.path[len("/latest/"):])
                if value is None:
                    self.send(404, "Not Found")
                else:
                    self.send(200, value)

            def do_POST(self):  # noqa: N802 (http.server API)
                params = dict(urllib.parse.parse_qsl(self.body()))
                action = params.pop("Action", "")
                if action not in ("RecordLifecycleActionHeartbeat", "CompleteLifecycleAction"):
                    self.send(400, "<ErrorResponse><Error><Code>InvalidAction</Code><Message>%s is not served by "
                                   "the stand-in</Message></Error></ErrorResponse>" % action, "text/xml")
                    return
                standin.calls.append((time.monotonic(), action, params, dict(self.headers)))
                self.send(200, "<%sResponse><ResponseMetadata><RequestId>standin</RequestId></ResponseMetadata>"
                               "</%sResponse>" % (action, action), "text/xml")

        return Handler


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8169)
    args = parser.parse_args(argv)
    standin = LifecycleStandin(args.host, args.port)
    print("aws lifecycle stand-in (not AWS) on " + standin.url, flush=True)
    standin.server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
