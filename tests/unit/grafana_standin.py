"""A Grafana stand-in for ``grafana-setup`` tests (Grafana itself cannot be installed here).

It keeps organisations, teams, data sources and dashboards in memory and answers the few
operations ``grafana-setup`` uses the way Grafana 11 does (org context from X-Grafana-Org-Id,
basic auth, 409 for a taken name, 404 for an unknown data source UID, dashboards matched by uid
and versioned). Every request and every answer is validated against Grafana's published OpenAPI
document (the part in tests/fixtures/grafana/, README there); what fails is kept in
``violations``, and a request for an operation the document does not have is one too.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

SPEC = Path(__file__).resolve().parents[1] / "fixtures" / "grafana" / "openapi3-subset.json"


@dataclass
class State:
    orgs: dict[int, str] = field(default_factory=lambda: {1: "Main Org."})
    teams: dict[int, dict] = field(default_factory=dict)  # id -> team
    datasources: dict[tuple[int, str], dict] = field(default_factory=dict)  # (org, uid) -> stored
    dashboards: dict[tuple[int, str], dict] = field(default_factory=dict)  # (org, uid) -> {version, dashboard}
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, org) in order


class GrafanaStandIn:
    def __init__(self, user: str = "admin", password: str = "admin-secret") -> None:
        self.user, self.password = user, password
        self.state = State()
        self.violations: list[str] = []
        self.api = OpenAPI.from_dict(json.loads(SPEC.read_text()))
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    # -- validation ----------------------------------------------------------------------------

    def _validate(self, method: str, path: str, query: dict, body: bytes | None, status: int, answer) -> None:
        request = MockRequest(self.url, method.lower(), path, args=query, data=body or b"",
                              content_type="application/json")
        response = MockResponse(json.dumps(answer).encode(), status_code=status, content_type="application/json")
        for what, check in (("request", lambda: self.api.validate_request(request)),
                            ("answer", lambda: self.api.validate_response(request, response))):
            try:
                check()
            except Exception as exc:  # noqa: BLE001 - every kind of spec failure is a finding
                cause = getattr(exc, "__cause__", None)
                self.violations.append(f"{method} {path} {status} {what}: {exc} {cause or ''}".strip())

    # -- Grafana's behaviour -------------------------------------------------------------------

    def answer(self, method: str, path: str, query: dict, body: dict | None, headers) -> tuple[int, object]:
        auth = headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        if auth != expected:
            return 401, {"message": "Invalid username or password"}
        org = int(headers.get("X-Grafana-Org-Id") or 1)
        s = self.state
        if org not in s.orgs:
            return 401, {"message": "User does not belong to the organization"}
        s.requests.append((method, path, org))
        name = (query.get("name") or [None])[0]
        if (method, path) == ("GET", "/api/orgs"):
            return 200, [{"id": i, "name": n} for i, n in s.orgs.items() if name is None or n == name]
        if (method, path) == ("POST", "/api/orgs"):
            if body["name"] in s.orgs.values():
                return 409, {"message": "Organization name taken"}
            new = max(s.orgs) + 1
            s.orgs[new] = body["name"]
            return 200, {"orgId": new, "message": "Organization created"}
        if (method, path) == ("GET", "/api/teams/search"):
            teams = [t for t in s.teams.values() if t["orgId"] == org and (name is None or t["name"] == name)]
            return 200, {"totalCount": len(teams), "teams": teams, "page": 1, "perPage": 1000}
        if (method, path) == ("POST", "/api/teams"):
            if any(t["orgId"] == org and t["name"] == body["name"] for t in s.teams.values()):
                return 409, {"message": "Team name taken"}
            new = len(s.teams) + 1
            s.teams[new] = {"id": new, "uid": f"t{new}", "orgId": org, "name": body["name"],
                            "email": body.get("email", ""), "avatarUrl": "", "memberCount": 0, "permission": 0}
            return 200, {"teamId": new, "message": "Team created"}
        if path.startswith("/api/datasources"):
            return self._datasources(method, path, org, body)
        if (method, path) == ("POST", "/api/dashboards/db"):
            return self._save_dashboard(org, body)
        return 404, {"message": "Not found"}

    def _public(self, stored: dict) -> dict:
        shown = {k: v for k, v in stored.items() if k != "secureJsonData"}
        return {**shown, "secureJsonFields": {k: True for k in stored.get("secureJsonData") or {}}}

    def _datasources(self, method: str, path: str, org: int, body: dict | None) -> tuple[int, object]:
        s = self.state
        if method == "POST" and path == "/api/datasources":
            mine = [d for (o, _), d in s.datasources.items() if o == org]
            if any(d["name"] == body["name"] or d["uid"] == body.get("uid") for d in mine):
                return 409, {"message": "data source with the same name already exists"}
            new = len(s.datasources) + 1
            stored = {**body, "id": new, "orgId": org, "version": 1, "readOnly": False}
            s.datasources[(org, body["uid"])] = stored
            return 200, {"datasource": self._public(stored), "id": new, "message": "Datasource added",
                         "name": body["name"]}
        uid = path.removeprefix("/api/datasources/uid/")
        stored = s.datasources.get((org, uid))
        if method == "GET":
            return (404, {"message": "Data source not found"}) if stored is None else (200, self._public(stored))
        if method == "PUT" and stored is not None and stored.get("readOnly"):
            return 403, {"message": "Cannot update read-only data source"}  # provisioned by a file
        if method == "PUT" and stored is not None:
            stored.update({**body, "version": stored["version"] + 1})
            return 200, {"datasource": self._public(stored), "id": stored["id"], "message": "Datasource updated",
                         "name": stored["name"]}
        return 404, {"message": "Not found"}

    def _save_dashboard(self, org: int, body: dict) -> tuple[int, object]:
        board = body["dashboard"]
        key = (org, board["uid"])
        old = self.state.dashboards.get(key)
        if old and not body.get("overwrite"):
            return 412, {"message": "A dashboard with the same uid already exists", "status": "name-exists"}
        version = old["version"] + 1 if old else 1
        ident = old["id"] if old else len(self.state.dashboards) + 1
        self.state.dashboards[key] = {"id": ident, "version": version, "dashboard": board}
        slug = board["title"].lower().replace(" ", "-").replace("/", "")
        return 200, {"id": ident, "uid": board["uid"], "url": f"/d/{board['uid']}/{slug}", "status": "success",
                     "version": version, "title": slug, "folderUid": body.get("folderUid", "")}

    # -- HTTP ----------------------------------------------------------------------------------

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
                body = json.loads(raw) if raw else None
                with standin._lock:
                    status, answer = standin.answer(method, parts.path, query, body, self.headers)
                    standin._validate(method, parts.path, {k: v[0] for k, v in query.items()}, raw,
                                      status, answer)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def do_PUT(self):
                self._serve("PUT")

        return Handler
