#!/usr/bin/env python3
"""nomad stand-in: NOT HashiCorp Nomad.

Packaged as `nomad` inside a release zip laid out like HashiCorp's (see
build_release.py), so the nomad_client role installs it exactly as it would
install the real binary. It answers:

    nomad version                     -> "Nomad v<version> (nomad stand-in, not HashiCorp Nomad)"
    nomad agent -config <file|dir>    -> a long-lived agent (see below)

The agent parses the HCL config (the subset CircleCI's config.hcl uses:
attributes, nested blocks, lists, maps, strings, numbers, booleans) and
listens on the HTTP port (ports { http }, default 4646) on bind_addr
(default 0.0.0.0), answering:

    GET  /v1/agent/self      {"config": {...parsed config...}, "member": {...}, "standin": true}
    GET  /v1/status/leader   "<advertise rpc>:<rpc port>" (server) or the first server (client)
    GET  /v1/node/self       this client's node (client mode; stand-in-only path)
    GET  /v1/nodes           server mode: the clients that registered, in /v1/nodes list shape;
                             client mode: the same list, asked of its first server
    POST /v1/standin/register  server mode, STAND-IN-ONLY endpoint: a client registers itself

Client mode also answers what a drain needs, for its own node only (real Nomad forwards
these to the servers; https://developer.hashicorp.com/nomad/api-docs/nodes):

    GET  /v1/agent/self                  stats.client.node_id (as Nomad's client.Stats())
    GET  /v1/node/<id>                   the node, with Drain (and DrainStrategy from 0.8)
    GET  /v1/node/<id>/allocations       allocations: ID, JobID, ClientStatus, DesiredStatus, Job.Type
    PUT|POST /v1/node/<id>/drain         the spelling of the version the stand-in reports:
        before 0.8 ?enable=true|false (0.5-0.7 "Drain Node" API); from 0.8 a JSON body
        {"DrainSpec": {"Deadline": <ns>, "IgnoreSystemJobs": bool}} (null DrainSpec disables).
        The other spelling is refused with 400, as Nomad would fail to parse it.
    POST /v1/standin/allocations         STAND-IN-ONLY test hook: {"JobID": "...", "Type": "batch",
        "RunsFor": <seconds>, "KillTimeout": <seconds>} places a running allocation on this node
        that completes after RunsFor seconds (forever when absent) and, once stopped, exits after
        KillTimeout seconds (0 by default; null: it never exits, a task that ignores the stop).
        A drain stops allocations as the documented behaviour of the version says: before 0.8
        every allocation is migrated (stopped) at once; from 0.8 service allocations stop at once
        and batch allocations run until they finish or the drain deadline passes (https://developer.hashicorp.com/nomad/commands/node/drain).

Server mode (`server { enabled = true }`) also listens on the RPC port
(default 4647; connections are accepted and closed). Client mode POSTs its
node to http://<server host>:<server http port, 4646>/v1/standin/register
for every entry of client { servers = [...] } every few seconds, tolerating
servers that are absent. Stdlib only.
"""
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "@VERSION@"  # build_release.py substitutes the release version
if VERSION.startswith("@"):  # run from the source tree (unit tests): the version comes from the environment
    VERSION = os.environ.get("NOMAD_STANDIN_VERSION", "0.5.6")
STANDIN_NOTE = "nomad stand-in, not HashiCorp Nomad"
REGISTER_INTERVAL = float(os.environ.get("NOMAD_STANDIN_REGISTER_INTERVAL", "5"))
# The servers' HTTP port a client registers with (4646, Nomad's default); tests that run several
# stand-in agents on one machine move it (stand-in only).
SERVER_HTTP_PORT = int(os.environ.get("NOMAD_STANDIN_SERVER_HTTP_PORT", "4646"))

# --- HCL subset parser -------------------------------------------------------

_TOKEN = re.compile(
    r'\s+|#[^\n]*|//[^\n]*|/\*.*?\*/'
    r'|(?P<str>"(?:[^"\\]|\\.)*")'
    r'|(?P<num>-?\d+(?:\.\d+)?)'
    r'|(?P<ident>[A-Za-z_][A-Za-z0-9_.\-]*)'
    r'|(?P<punct>[=:{}\[\],])',
    re.S,
)


class HCLError(ValueError):
    pass


def _tokens(text):
    pos = 0
    out = []
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            line = text.count("\n", 0, pos) + 1
            raise HCLError(f"line {line}: unexpected character {text[pos]!r}")
        pos = m.end()
        kind = m.lastgroup
        if kind is None:
            continue
        val = m.group(kind)
        if kind == "str":
            val = json.loads(val)
        elif kind == "num":
            val = float(val) if "." in val else int(val)
        elif kind == "ident" and val in ("true", "false"):
            kind, val = "bool", val == "true"
        out.append((kind, val))
    return out


class _Parser:
    def __init__(self, tokens):
        self.toks = tokens
        self.i = 0

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def take(self, punct=None):
        tok = self.peek()
        if tok[0] is None:
            raise HCLError("unexpected end of file")
        if punct is not None and tok != ("punct", punct):
            raise HCLError(f"expected {punct!r}, got {tok[1]!r}")
        self.i += 1
        return tok

    def body(self, closing=None):
        result = {}
        while True:
            kind, val = self.peek()
            if kind is None and closing is None:
                return result
            if (kind, val) == ("punct", closing):
                self.take()
                return result
            if kind == "punct" and val == ",":
                self.take()
                continue
            if kind not in ("ident", "str"):
                raise HCLError(f"expected a key, got {val!r}")
            self.take()
            key = val
            nxt = self.peek()
            if nxt in (("punct", "="), ("punct", ":")):
                self.take()
                result[key] = self.value()
            else:
                labels = []
                while self.peek()[0] == "str":
                    labels.append(self.take()[1])
                self.take("{")
                block = self.body("}")
                for label in reversed(labels):
                    block = {label: block}
                existing = result.get(key)
                if isinstance(existing, dict):
                    existing.update(block)
                else:
                    result[key] = block

    def value(self):
        kind, val = self.take()
        if kind in ("str", "num", "bool"):
            return val
        if (kind, val) == ("punct", "["):
            items = []
            while self.peek() != ("punct", "]"):
                items.append(self.value())
                if self.peek() == ("punct", ","):
                    self.take()
            self.take("]")
            return items
        if (kind, val) == ("punct", "{"):
            return self.body("}")
        raise HCLError(f"unexpected {val!r}")


def parse_hcl(text):
    return _Parser(_tokens(text)).body()


def load_config(paths):
    config = {}
    for path in paths:
        files = [path]
        if os.path.isdir(path):
            files = sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".hcl"))
        for name in files:
            with open(name, encoding="utf-8") as handle:
                try:
                    config.update(parse_hcl(handle.read()))
                except HCLError as exc:
                    raise HCLError(f"{name}: {exc}") from exc
    return config


# --- agent -------------------------------------------------------------------


class Agent:
    def __init__(self, config):
        self.config = config
        ports = config.get("ports", {})
        self.http_port = int(ports.get("http", 4646))
        self.rpc_port = int(ports.get("rpc", 4647))
        self.bind_addr = config.get("bind_addr", "0.0.0.0")
        advertise = config.get("advertise", {})
        self.advertise_http = advertise.get("http", self.bind_addr)
        self.advertise_rpc = advertise.get("rpc", self.bind_addr)
        self.server_enabled = bool(config.get("server", {}).get("enabled", False))
        client = config.get("client", {})
        self.client_enabled = bool(client.get("enabled", False))
        self.servers = list(client.get("servers", []))
        self.name = config.get("name") or socket.gethostname()
        self.datacenter = config.get("datacenter", "dc1")
        self.node_class = client.get("node_class", "")
        self.data_dir = config.get("data_dir", "/opt/nomad")
        self.node_id = self._node_id()
        self.registered = {}  # server mode: node id -> node
        self.lock = threading.Lock()
        self.allocations = {}  # client mode: alloc id -> allocation (see add_allocation)
        self.drain_strategy = None  # None, or {"Deadline": ns, "ForceDeadline": epoch s}
        self.drain = False

    def _node_id(self):
        path = os.path.join(self.data_dir, "standin-node-id")
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().strip()
        except OSError:
            node_id = str(uuid.uuid4())
            try:
                os.makedirs(self.data_dir, exist_ok=True)
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(node_id)
            except OSError:
                pass
            return node_id

    def node(self):
        return {
            "ID": self.node_id,
            "Name": self.name,
            "Datacenter": self.datacenter,
            "NodeClass": self.node_class,
            "Address": self.advertise_http,
            "HTTPAddr": f"{self.advertise_http}:{self.http_port}",
            "Status": "ready",
            "Drain": False,
            "Version": VERSION,
            "Standin": True,
        }

    def node_detail(self):
        node = self.node()
        node["Drain"] = self.drain
        if uses_drain_spec(VERSION):
            node["DrainStrategy"] = self.drain_strategy
            node["SchedulingEligibility"] = "ineligible" if self.drain else "eligible"
        return node

    def add_allocation(self, spec):
        runs_for = spec.get("RunsFor")
        alloc = {
            "ID": str(uuid.uuid4()),
            "NodeID": self.node_id,
            "JobID": spec.get("JobID", "standin-job"),
            "Job": {"ID": spec.get("JobID", "standin-job"), "Type": spec.get("Type", "batch")},
            "ClientStatus": "running",
            "DesiredStatus": "run",
            "DesiredDescription": "",
            "Standin": True,
            "_ends_at": time.time() + float(runs_for) if runs_for is not None else None,
            # Seconds the task takes to exit once stopped (a job's kill_timeout; None: ignores the stop).
            "_kill_timeout": spec.get("KillTimeout", 0),
            "_stop_at": None,
        }
        with self.lock:
            self.allocations[alloc["ID"]] = alloc
        return alloc

    def _settle(self):
        """Bring allocations up to date: finished ones complete, drained ones stop."""
        now = time.time()
        for alloc in self.allocations.values():
            if alloc["ClientStatus"] != "running":
                continue
            if alloc["_ends_at"] is not None and now >= alloc["_ends_at"]:
                alloc["ClientStatus"] = "complete"
                continue
            if alloc["_stop_at"] is not None and now >= alloc["_stop_at"]:
                alloc["ClientStatus"] = "complete"
                continue
            if not self.drain or alloc["DesiredStatus"] == "stop":
                continue
            batch = alloc["Job"]["Type"] in ("batch", "sysbatch")
            deadline = (self.drain_strategy or {}).get("ForceDeadline")
            if not uses_drain_spec(VERSION) or not batch or (deadline is not None and now >= deadline):
                alloc.update(DesiredStatus="stop", DesiredDescription="alloc is being migrated")
                if alloc["_kill_timeout"] is not None:
                    alloc["_stop_at"] = now + float(alloc["_kill_timeout"])
                    if alloc["_stop_at"] <= now:
                        alloc["ClientStatus"] = "complete"

    def list_allocations(self):
        with self.lock:
            self._settle()
            return [{k: v for k, v in a.items() if not k.startswith("_")} for a in self.allocations.values()]

    def set_drain(self, query, body):
        """Apply a drain request in this version's spelling; returns (code, payload)."""
        if uses_drain_spec(VERSION):
            try:
                request = json.loads(body) if body else None
            except ValueError as exc:
                return 400, {"error": f"invalid JSON body: {exc}"}
            if not isinstance(request, dict):
                return 400, {"error": "EOF (Nomad >= 0.8 takes a JSON body with DrainSpec)"}
            spec = request.get("DrainSpec")
            with self.lock:
                if spec is None:
                    self.drain, self.drain_strategy = False, None
                else:
                    deadline_ns = int(spec.get("Deadline", 0))
                    self.drain = True
                    self.drain_strategy = {"Deadline": deadline_ns,
                                           "IgnoreSystemJobs": bool(spec.get("IgnoreSystemJobs", False)),
                                           "ForceDeadline": time.time() + deadline_ns / 1e9 if deadline_ns > 0
                                           else (time.time() if deadline_ns < 0 else None)}
                self._settle()
            return 200, {"EvalIDs": None, "EvalCreateIndex": 0, "NodeModifyIndex": 1, "Index": 1}
        enable = query.get("enable", [None])[0]
        if enable not in ("true", "false"):
            return 400, {"error": "missing enable value (Nomad < 0.8 takes ?enable=true|false)"}
        with self.lock:
            self.drain = enable == "true"
            self._settle()
        return 200, {"EvalIDs": [], "EvalCreateIndex": 1, "NodeModifyIndex": 1, "Index": 1}

    def register_loop(self):
        body = json.dumps(self.node()).encode()
        while True:
            for server in self.servers:
                host = server.rsplit(":", 1)[0] if ":" in server else server
                url = f"http://{host}:{SERVER_HTTP_PORT}/v1/standin/register"
                request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
                try:
                    urllib.request.urlopen(request, timeout=3).read()
                except OSError as exc:
                    log(f"client: registration with {server} failed ({exc}); retrying")
            time.sleep(REGISTER_INTERVAL)

    def rpc_listener(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.bind_addr, self.rpc_port))
        sock.listen(16)
        while True:
            conn, _ = sock.accept()
            conn.close()

    def handler(self):
        agent = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "nomad-standin"

            def log_message(self, fmt, *args):
                log("http: " + fmt % args)

            def reply(self, code, payload):
                data = json.dumps(payload, indent=2).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802 (http.server API)
                path = self.path.split("?", 1)[0].rstrip("/")
                if path == "/v1/agent/self":
                    self.reply(200, {
                        "config": agent.config,
                        "member": {"Name": agent.name, "Addr": agent.advertise_rpc,
                                   "Tags": {"dc": agent.datacenter, "build": VERSION}},
                        "stats": dict({"nomad": {"server": str(agent.server_enabled).lower(),
                                                 "client": str(agent.client_enabled).lower()}},
                                      **({"client": {"node_id": agent.node_id,
                                                     "num_allocations": str(len(agent.allocations))}}
                                         if agent.client_enabled else {})),
                        "standin": True,
                    })
                elif path == "/v1/status/leader":
                    leader = f"{agent.advertise_rpc}:{agent.rpc_port}" if agent.server_enabled else (
                        agent.servers[0] if agent.servers else "")
                    self.reply(200, leader)
                elif path == "/v1/node/self" and agent.client_enabled:
                    self.reply(200, agent.node())
                elif agent.client_enabled and path == f"/v1/node/{agent.node_id}":
                    self.reply(200, agent.node_detail())
                elif agent.client_enabled and path == f"/v1/node/{agent.node_id}/allocations":
                    self.reply(200, agent.list_allocations())
                elif path == "/v1/nodes" and not agent.server_enabled and agent.servers:
                    # A client agent answers from the servers (real Nomad forwards the RPC).
                    host = agent.servers[0].rsplit(":", 1)[0]
                    try:
                        with urllib.request.urlopen(f"http://{host}:{SERVER_HTTP_PORT}/v1/nodes", timeout=5) as r:
                            self.reply(200, json.loads(r.read()))
                    except OSError as exc:
                        self.reply(500, {"error": f"no cluster leader ({exc})"})
                elif path == "/v1/nodes" and agent.server_enabled:
                    with agent.lock:
                        nodes = [dict(n, Status="ready" if time.time() - n["LastSeen"] < 4 * REGISTER_INTERVAL
                                      else "down") for n in agent.registered.values()]
                    self.reply(200, nodes)
                else:
                    self.reply(404, {"error": f"{path} is not served by the nomad stand-in"})

            def body(self):
                length = int(self.headers.get("Content-Length", "0"))
                return self.rfile.read(length) if length else b""

            def client_post(self, path):
                """Client-mode POST/PUT endpoints; False when the path is not one of them."""
                if path == f"/v1/node/{agent.node_id}/drain":
                    query = urllib.parse.parse_qs(self.path.split("?", 1)[1] if "?" in self.path else "")
                    code, payload = agent.set_drain(query, self.body())
                    log(f"client: drain request {self.command} {self.path} -> {code} (drain={agent.drain})")
                    self.reply(code, payload)
                    return True
                if path == "/v1/standin/allocations":
                    try:
                        spec = json.loads(self.body() or b"{}")
                    except ValueError:
                        self.reply(400, {"error": "body must be JSON"})
                        return True
                    self.reply(200, agent.add_allocation(spec))
                    return True
                return False

            def do_PUT(self):  # noqa: N802 (http.server API)
                path = self.path.split("?", 1)[0].rstrip("/")
                if not (agent.client_enabled and self.client_post(path)):
                    self.reply(404, {"error": f"{path} is not served by the nomad stand-in"})

            def do_POST(self):  # noqa: N802 (http.server API)
                path = self.path.split("?", 1)[0].rstrip("/")
                if agent.client_enabled and self.client_post(path):
                    return
                if path != "/v1/standin/register" or not agent.server_enabled:
                    self.reply(404, {"error": f"{path} is not served by the nomad stand-in"})
                    return
                length = int(self.headers.get("Content-Length", "0"))
                try:
                    node = json.loads(self.rfile.read(length) or b"{}")
                    node_id = node["ID"]
                except (ValueError, KeyError, TypeError):
                    self.reply(400, {"error": "body must be a JSON node with an ID"})
                    return
                node["LastSeen"] = time.time()
                with agent.lock:
                    known = node_id in agent.registered
                    agent.registered[node_id] = node
                if not known:
                    log(f"server: node {node.get('Name')} ({node_id}) registered from {self.client_address[0]}")
                self.reply(200, {"Index": len(agent.registered)})

        return Handler

    def run(self):
        mode = " + ".join(m for m, on in (("server", self.server_enabled), ("client", self.client_enabled)) if on)
        log(f"==> Nomad agent configuration ({STANDIN_NOTE}), version {VERSION}")
        log(f"    mode: {mode or 'none'}; name: {self.name}; datacenter: {self.datacenter}; "
            f"node_class: {self.node_class}; servers: {self.servers}")
        log(f"    http: {self.bind_addr}:{self.http_port} (advertised {self.advertise_http})")
        if self.server_enabled:
            threading.Thread(target=self.rpc_listener, daemon=True).start()
            log(f"    rpc: {self.bind_addr}:{self.rpc_port}")
        if self.client_enabled and self.servers:
            threading.Thread(target=self.register_loop, daemon=True).start()
        httpd = ThreadingHTTPServer((self.bind_addr, self.http_port), self.handler())
        log("==> Nomad agent started (stand-in)")
        httpd.serve_forever()


def uses_drain_spec(version):
    """Nomad 0.8 changed the drain API from ?enable=true to a DrainSpec body."""
    nums = [int(re.match(r"\d*", p).group(0) or 0) for p in str(version).split(".")[:3]]
    return tuple(nums + [0] * (3 - len(nums))) >= (0, 8, 0)


def log(message):
    print(message, flush=True)


USAGE = f"""usage: nomad version | nomad agent -config <file or dir> [-config ...]
({STANDIN_NOTE}: only `version` and `agent` are implemented)"""


def main(argv):
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 1
    if argv[0] in ("version", "-version", "--version", "-v"):
        print(f"Nomad v{VERSION} ({STANDIN_NOTE})")
        return 0
    if argv[0] == "agent":
        paths = []
        args = argv[1:]
        i = 0
        while i < len(args):
            arg = args[i]
            if arg in ("-config", "--config") and i + 1 < len(args):
                paths.append(args[i + 1])
                i += 2
                continue
            if arg.startswith(("-config=", "--config=")):
                paths.append(arg.split("=", 1)[1])
            i += 1
        if not paths:
            print("nomad stand-in: agent needs -config <file or dir>", file=sys.stderr)
            return 1
        try:
            config = load_config(paths)
        except (OSError, HCLError) as exc:
            print(f"nomad stand-in: error loading configuration: {exc}", file=sys.stderr)
            return 1
        Agent(config).run()
        return 0
    print(f"nomad stand-in: command {argv[0]!r} is not implemented\n{USAGE}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
