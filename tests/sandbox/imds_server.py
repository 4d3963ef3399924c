"""STAND-IN for the EC2 instance metadata service (IMDS) at 169.254.169.254, for the sandbox's emulated instances.

It runs in the demo's "metadata" container (demo.py), which holds the address 169.254.169.254; every
emulated instance routes that address to it. It knows the caller by its source address: the EC2 emulator
writes one JSON file per instance, ``<state dir>/<private ip>.json`` (instance id, placement, IAM role,
metadata options, user data, target lifecycle state), and rewrites it when the instance's Auto Scaling
lifecycle state changes. Standard library only: it runs with the container's python3.

Paths and behaviour, as AWS documents them:

* IMDSv2 session tokens: ``PUT /latest/api/token`` with ``X-aws-ec2-metadata-token-ttl-seconds``
  (1..21600; missing or out of range: 400) returns a token; a request with ``X-Forwarded-For`` is refused
  (403). Metadata requests carry it in ``X-aws-ec2-metadata-token``; an invalid or expired token gets 401,
  and with the instance's ``HttpTokens=required`` so does a request without one (IMDSv1).
  ``HttpEndpoint=disabled``: 403.
  https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html
* Categories (instance-id, local-ipv4, placement/region, iam/info, iam/security-credentials/<role>, ...):
  https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-categories.html
  The role credentials have the documented shape (Code, LastUpdated, Type AWS-HMAC, AccessKeyId,
  SecretAccessKey, Token, Expiration):
  https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html ; their values are
  the fake ones moto's own metadata responses use (moto/instance_metadata/responses.py): moto takes any key.
* ``autoscaling/target-lifecycle-state`` (InService while Pending:Wait or in service, Terminated once the
  instance is Terminating:Wait): https://docs.aws.amazon.com/autoscaling/ec2/userguide/retrieving-target-lifecycle-state-through-imds.html
* ``/latest/user-data`` and ``/latest/dynamic/instance-identity/document``: same categories page.

    python3 imds_server.py --state-dir /imds --bind 169.254.169.254 --port 80
"""
import argparse
import datetime
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
MAX_TOKEN_TTL = 21600
# moto/instance_metadata/responses.py: moto's own (fake) instance role credentials.
FAKE_CREDENTIALS = {"AccessKeyId": "test-key", "SecretAccessKey": "test-secret-key", "Token": "test-session-token"}


def _iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def metadata_tree(record):
    """The meta-data paths of one instance, from the emulator's record."""
    now = datetime.datetime.now(datetime.timezone.utc)
    tree = {
        "ami-id": record["image_id"],
        "ami-launch-index": str(record.get("launch_index", 0)),
        "hostname": record["local_hostname"],
        "instance-id": record["instance_id"],
        "instance-life-cycle": "on-demand",
        "instance-type": record["instance_type"],
        "local-hostname": record["local_hostname"],
        "local-ipv4": record["local_ipv4"],
        "mac": record.get("mac", "02:00:00:00:00:00"),
        "placement/availability-zone": record["availability_zone"],
        "placement/region": record["region"],
        "reservation-id": record.get("reservation_id", ""),
        "security-groups": "\n".join(record.get("security_groups", [])),
    }
    if record.get("public_ipv4"):  # EC2 serves public-ipv4 only for an instance that has one
        tree["public-ipv4"] = record["public_ipv4"]
    if record.get("target_lifecycle_state"):
        tree["autoscaling/target-lifecycle-state"] = record["target_lifecycle_state"]
    role = record.get("iam_role")
    if role:
        tree["iam/info"] = json.dumps({
            "Code": "Success", "LastUpdated": _iso(now),
            "InstanceProfileArn": record.get("instance_profile_arn", ""),
            "InstanceProfileId": record.get("instance_profile_id", ""),
        }, indent=2)
        tree[f"iam/security-credentials/{role}"] = json.dumps({
            "Code": "Success", "LastUpdated": _iso(now), "Type": "AWS-HMAC", **FAKE_CREDENTIALS,
            "Expiration": _iso(now + datetime.timedelta(hours=6)),
        }, indent=2)
    return tree


def listing(tree, prefix):
    """The directory listing AWS returns for a path prefix: children, sub-directories with a trailing slash."""
    children = []
    for path in tree:
        if path.startswith(prefix):
            rest = path[len(prefix):]
            child = rest.split("/", 1)[0] + ("/" if "/" in rest else "")
            if child not in children:
                children.append(child)
    return "\n".join(sorted(children))


class MetadataService:
    def __init__(self, state_dir):
        self.state_dir = Path(state_dir)
        self.tokens = {}  # token -> (caller address, expiry)
        self.lock = threading.Lock()

    def record(self, address):
        path = self.state_dir / f"{address}.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def issue_token(self, address, ttl):
        token = secrets.token_urlsafe(40)
        with self.lock:
            now = time.monotonic()
            self.tokens = {t: v for t, v in self.tokens.items() if v[1] > now}
            self.tokens[token] = (address, now + ttl)
        return token

    def token_valid(self, token, address):
        with self.lock:
            found = self.tokens.get(token)
        return bool(found) and found[0] == address and found[1] > time.monotonic()

    def answer(self, method, path, headers, address):
        """(status, body) for one request."""
        record = self.record(address)
        if record is None:
            return 404, "Not Found"  # not an emulated instance (or not booted yet)
        options = record.get("metadata_options", {})
        if options.get("HttpEndpoint", "enabled") == "disabled":
            return 403, "Forbidden"
        if path == "/latest/api/token":
            if method != "PUT":
                return 405, "Method Not Allowed"
            if headers.get("X-Forwarded-For"):
                return 403, "Forbidden"
            try:
                ttl = int(headers.get(TOKEN_TTL_HEADER, ""))
            except ValueError:
                return 400, "Bad Request"
            if not 1 <= ttl <= MAX_TOKEN_TTL:
                return 400, "Bad Request"
            return 200, self.issue_token(address, ttl)
        if method not in ("GET", "HEAD"):
            return 405, "Method Not Allowed"
        token = headers.get(TOKEN_HEADER)
        if token is not None and not self.token_valid(token, address):
            return 401, "Unauthorized"
        if token is None and options.get("HttpTokens", "optional") == "required":
            return 401, "Unauthorized"
        return self.content(record, path)

    def content(self, record, path):
        if path in ("/", "/latest", "/latest/"):
            return 200, "dynamic\nmeta-data\nuser-data" if record.get("user_data") else "dynamic\nmeta-data"
        if path == "/latest/user-data":
            return (200, record["user_data"]) if record.get("user_data") else (404, "Not Found")
        if path.rstrip("/") == "/latest/dynamic/instance-identity/document":
            return 200, json.dumps({
                "accountId": record.get("account_id", "123456789012"), "architecture": "x86_64",
                "availabilityZone": record["availability_zone"], "imageId": record["image_id"],
                "instanceId": record["instance_id"], "instanceType": record["instance_type"],
                "privateIp": record["local_ipv4"], "region": record["region"], "version": "2017-09-30",
            }, indent=2)
        prefix = "/latest/meta-data/"
        if not (path + "/").startswith(prefix):
            return 404, "Not Found"
        key = path[len(prefix):]
        tree = metadata_tree(record)
        if key in tree:
            return 200, tree[key]
        directory = listing(tree, key.rstrip("/") + "/" if key else "")
        return (200, directory) if directory else (404, "Not Found")


def make_handler(service):
    class Handler(BaseHTTPRequestHandler):
        server_version = "EC2ws"  # the Server header real IMDS sends
        protocol_version = "HTTP/1.1"

        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            status, body = service.answer(self.command, self.path.split("?", 1)[0], self.headers,
                                          self.client_address[0])
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            if self.path == "/latest/api/token" and status == 200:
                self.send_header(TOKEN_TTL_HEADER, self.headers.get(TOKEN_TTL_HEADER))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _serve  # noqa: N815

        def log_message(self, fmt, *args):
            print(f"{self.client_address[0]} {fmt % args}", flush=True)

    return Handler


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--bind", default="169.254.169.254")
    parser.add_argument("--port", type=int, default=80)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.bind, args.port), make_handler(MetadataService(args.state_dir)))
    server.daemon_threads = True
    print(f"IMDS stand-in on {args.bind}:{args.port}, instances from {args.state_dir}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
