"""STAND-IN for the AWX/Automation Controller REST API (v2), in memory, on 127.0.0.1.

Not AWX. It implements the part of /api/v2/ that the awx.awx modules used by
playbooks/awx_configure.yml call, with AWX's documented shapes:
list views ({"count", "next", "results"}) filtered by field and by
or__id/or__name, detail views, POST create (201), PATCH update (200),
association sub-endpoints (POST {"id"} / {"id", "disassociate": true} -> 204),
survey_spec, project updates (finish at once, "successful"),
create_approval_template, unified_job_templates, and credential inputs of
secret fields read back as "$encrypted$". Also the provisioning callback
(POST /api/v2/job_templates/<id>/callback/ with host_config_key, JSON or form,
optional extra_vars): 202 and a job limited to the calling host when the key
is the template's; 403 for another key; 400 "No matching host could be
found!" when no host of the template's inventory has the caller's address as
its name or ansible_host; 405 when the template has no host_config_key
(AWX API reference, "Job Template Callback"; the AWX issue #15166 shows the 400's text).
The stand-in runs no playbook: the job stays "pending". Fields are stored as sent: AWX's own
normalisation (for example of extra_vars) is not modelled.
Every answer carries the header `X-Standin: awx-api`.

    server = AwxApiStandin().start()
    server.url                     # http://127.0.0.1:<port>
    server.objects("job_templates")
    server.requests                # [(method, path)] of every write
    server.stop()
"""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

API = "/api/v2/"
ENCRYPTED = "$encrypted$"
PRODUCT_VERSION = "24.6.1"
ASSOCIATIONS = {
    "job_templates": ["credentials", "labels", "instance_groups", "notification_templates_started",
                      "notification_templates_success", "notification_templates_error"],
    "workflow_job_templates": ["labels", "notification_templates_started", "notification_templates_success",
                               "notification_templates_error", "notification_templates_approvals"],
    "workflow_job_template_nodes": ["success_nodes", "failure_nodes", "always_nodes", "credentials", "labels",
                                    "instance_groups"],
    "organizations": ["instance_groups", "galaxy_credentials", "notification_templates_started",
                      "notification_templates_success", "notification_templates_error",
                      "notification_templates_approvals"],
    "inventories": ["instance_groups", "input_inventories"],
    "inventory_sources": ["notification_templates_started", "notification_templates_success",
                          "notification_templates_error"],
    "projects": ["notification_templates_started", "notification_templates_success",
                 "notification_templates_error"],
}
UNIFIED = ("job_templates", "workflow_job_templates", "projects", "inventory_sources", "workflow_approval_templates")


class Store:
    def __init__(self):
        self.lock = threading.Lock()
        self.tables = {}
        self.links = {}  # (endpoint, id, association) -> [ids]
        self.surveys = {}  # (endpoint, id) -> spec
        self.next_id = 1
        self.requests = []

    def table(self, endpoint):
        return self.tables.setdefault(endpoint, {})

    def create(self, endpoint, data):
        obj_id = self.next_id
        self.next_id += 1
        url = f"{API}{endpoint}/{obj_id}/"
        obj = dict(data)
        obj.update(id=obj_id, url=url, type=endpoint.rstrip("s"), summary_fields={}, modified="now")
        related = {name: f"{url}{name}/" for name in ASSOCIATIONS.get(endpoint, [])}
        if endpoint in ("job_templates", "workflow_job_templates"):
            related["survey_spec"] = f"{url}survey_spec/"
        if endpoint == "projects":
            update = self.create("project_updates", {"status": "successful", "project": obj_id})
            obj["summary_fields"] = {"current_update": {"id": update["id"], "status": "successful"}}
            obj.setdefault("scm_revision", "0" * 40)
            related["update"] = f"{url}update/"
        if endpoint == "workflow_job_template_nodes":
            related["create_approval_template"] = f"{url}create_approval_template/"
        obj["related"] = related
        self.table(endpoint)[obj_id] = obj
        return obj


def _host_vars(host):
    variables = host.get("variables") or {}
    if isinstance(variables, str):
        try:
            variables = json.loads(variables or "{}")
        except ValueError:
            return {}
    return variables if isinstance(variables, dict) else {}


def _matches(obj, query):
    ors = {k[4:]: v for k, v in query.items() if k.startswith("or__")}
    if ors and not any(str(obj.get(k)) == v for k, v in ors.items()):
        return False
    for key, value in query.items():
        if key.startswith("or__") or key in ("page", "page_size", "order_by"):
            continue
        if str(obj.get(key)) != value:
            return False
    return True


class Handler(BaseHTTPRequestHandler):
    server_version = "awx-api-standin"

    def log_message(self, *args):  # quiet
        pass

    @property
    def store(self):
        return self.server.store

    def _send(self, status, body=None):
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-API-Product-Name", "AWX")
        self.send_header("X-API-Product-Version", PRODUCT_VERSION)
        self.send_header("X-Standin", "awx-api")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}") if length else {}

    def _route(self):
        parsed = urlparse(self.path)
        if not parsed.path.startswith(API):
            return None
        parts = [p for p in parsed.path[len(API):].split("/") if p]
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        return parts, query

    def _present(self, endpoint, obj):
        shown = json.loads(json.dumps(obj))
        if endpoint == "credentials":
            cred_type = self.store.table("credential_types").get(obj.get("credential_type"), {})
            secret_ids = {f["id"] for f in (cred_type.get("inputs") or {}).get("fields", []) if f.get("secret")}
            shown["inputs"] = {k: (ENCRYPTED if k in secret_ids and v else v) for k, v in obj.get("inputs", {}).items()}
        return shown

    def _list(self, endpoint, query):
        tables = UNIFIED if endpoint == "unified_job_templates" else (endpoint,)
        results = [
            self._present(t, obj) for t in tables for obj in self.store.table(t).values() if _matches(obj, query)
        ]
        return {"count": len(results), "next": None, "previous": None, "results": results}

    def do_GET(self):  # noqa: N802 - http.server's naming
        route = self._route()
        if route is None:
            return self._send(404, {"detail": "Not found."})
        parts, query = route
        with self.store.lock:
            if parts == ["ping"]:
                return self._send(200, {"version": PRODUCT_VERSION, "standin": True})
            if len(parts) == 1:
                return self._send(200, self._list(parts[0], query))
            endpoint, obj_id = parts[0], int(parts[1])
            obj = self.store.table(endpoint).get(obj_id)
            if obj is None:
                return self._send(404, {"detail": "Not found."})
            if len(parts) == 2:
                return self._send(200, self._present(endpoint, obj))
            if parts[2] == "survey_spec":
                return self._send(200, self.store.surveys.get((endpoint, obj_id), {}))
            ids = self.store.links.get((endpoint, obj_id, parts[2]), [])
            return self._send(200, {"count": len(ids), "next": None, "previous": None,
                                    "results": [{"id": i} for i in ids]})

    def _callback(self, template_id):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if "json" in (self.headers.get("Content-Type") or ""):
            data = json.loads(raw or b"{}")
        else:
            data = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
        caller = self.client_address[0]
        with self.store.lock:
            self.store.requests.append(("POST", f"job_templates/{template_id}/callback"))
            template = self.store.table("job_templates").get(template_id)
            if template is None:
                return self._send(404, {"detail": "Not found."})
            if not template.get("host_config_key"):
                return self._send(405, {"detail": 'Method "POST" not allowed.'})
            if data.get("host_config_key") != template["host_config_key"]:
                return self._send(403, {"detail": "You do not have permission to perform this action."})
            hosts = [h for h in self.store.table("hosts").values()
                     if h.get("inventory") == template.get("inventory")
                     and caller in (h.get("name"), _host_vars(h).get("ansible_host"))]
            if not hosts:
                return self._send(400, {"msg": "No matching host could be found!"})
            job = self.store.create("jobs", {"job_template": template_id, "launch_type": "callback",
                                             "limit": hosts[0]["name"], "status": "pending",
                                             "extra_vars": json.dumps(data.get("extra_vars") or {})})
            return self._send(202, {"id": job["id"], "job": job["id"]})

    def do_POST(self):  # noqa: N802
        route = self._route()
        if route is None:
            return self._send(404, {"detail": "Not found."})
        parts, _query = route
        if len(parts) == 3 and parts[0] == "job_templates" and parts[2] == "callback":
            return self._callback(int(parts[1]))
        data = self._body()
        with self.store.lock:
            self.store.requests.append(("POST", "/".join(parts)))
            if len(parts) == 1:
                if parts[0] == "tokens":
                    return self._send(201, {"id": 0, "token": "standin-token"})
                return self._send(201, self.store.create(parts[0], data))
            endpoint, obj_id, action = parts[0], int(parts[1]), parts[2]
            obj = self.store.table(endpoint).get(obj_id)
            if obj is None:
                return self._send(404, {"detail": "Not found."})
            if action == "survey_spec":
                self.store.surveys[(endpoint, obj_id)] = data
                return self._send(200, {})
            if action == "create_approval_template":
                template = self.store.create("workflow_approval_templates", data)
                obj["unified_job_template"] = template["id"]
                obj["related"]["unified_job_template"] = template["url"]
                return self._send(201, template)
            linked = self.store.links.setdefault((endpoint, obj_id, action), [])
            if data.get("disassociate"):
                if data["id"] in linked:
                    linked.remove(data["id"])
            elif data["id"] not in linked:
                linked.append(data["id"])
            return self._send(204)

    def do_PATCH(self):  # noqa: N802
        route = self._route()
        if route is None:
            return self._send(404, {"detail": "Not found."})
        parts, _query = route
        data = self._body()
        with self.store.lock:
            self.store.requests.append(("PATCH", "/".join(parts)))
            endpoint = parts[0]
            obj = self.store.table(endpoint).get(int(parts[1]))
            if obj is None:
                return self._send(404, {"detail": "Not found."})
            obj.update(data)
            return self._send(200, self._present(endpoint, obj))

    def do_DELETE(self):  # noqa: N802
        route = self._route()
        parts, _query = route
        with self.store.lock:
            self.store.requests.append(("DELETE", "/".join(parts)))
            if len(parts) >= 3 and parts[2] == "survey_spec":
                self.store.surveys.pop((parts[0], int(parts[1])), None)
                return self._send(200, {})
            self.store.table(parts[0]).pop(int(parts[1]), None)
            return self._send(204)


class AwxApiStandin:
    def __init__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.store = Store()
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def store(self):
        return self.httpd.store

    @property
    def requests(self):
        return list(self.store.requests)

    def seed(self, endpoint, **fields):
        with self.store.lock:
            return self.store.create(endpoint, fields)

    def objects(self, endpoint):
        with self.store.lock:
            return json.loads(json.dumps(list(self.store.table(endpoint).values())))

    def one(self, endpoint, **fields):
        found = [o for o in self.objects(endpoint) if all(o.get(k) == v for k, v in fields.items())]
        assert len(found) == 1, f"{endpoint} {fields}: {len(found)} found"
        return found[0]

    def linked(self, endpoint, obj_id, association):
        with self.store.lock:
            return list(self.store.links.get((endpoint, obj_id, association), []))

    def survey(self, endpoint, obj_id):
        with self.store.lock:
            return self.store.surveys.get((endpoint, obj_id))

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
