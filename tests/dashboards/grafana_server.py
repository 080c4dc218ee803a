"""An in-process HTTP server answering the Grafana API calls ``llmpulse dashboards push`` makes.

Answers are the recorded bodies in tests/fixtures/grafana/ (see its README for each source), with the
uids, titles and versions of what was sent filled in. It keeps what was created, so a second push meets
existing objects the way a real Grafana would, and records every request for the assertions.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "grafana"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class GrafanaState:
    token: str = "glsa_test_token"
    forbid: set[tuple[str, str]] = field(default_factory=set)  # (method, path prefix) answered 403
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    state: GrafanaState

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def _answer(self, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        state = self.state
        state.requests.append(Request(method, self.path, dict(self.headers), body))
        if self.path != "/api/health" and self.headers.get("Authorization") != f"Bearer {state.token}":
            return self._answer(401, fixture("unauthorized.json"))
        if any(method == m and self.path.startswith(p) for m, p in state.forbid):
            return self._answer(403, fixture("forbidden.json"))
        status, answer = self._route(method, self.path, body)
        self._answer(status, answer)

    def _route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        s = self.state
        if path == "/api/health":
            return 200, fixture("health.json")
        if path.startswith("/api/folders"):
            if method == "GET":
                uid = path.rsplit("/", 1)[1]
                return (200, s.folders[uid]) if uid in s.folders else (404, fixture("folder_not_found.json"))
            folder = {**fixture("folder.json"), "uid": body["uid"], "title": body["title"]}
            folder["url"] = f"/dashboards/f/{body['uid']}/{body['title'].lower()}"
            s.folders[body["uid"]] = folder
            return 200, folder
        if path.startswith("/api/datasources"):
            if method == "POST":
                created = fixture("datasource_created.json")
                created["datasource"].update({k: body[k] for k in ("uid", "name", "type", "access", "jsonData")})
                created["name"] = body["name"]
                s.datasources[body["uid"]] = created["datasource"]
                return 200, created
            uid = path.rsplit("/", 1)[1]
            if uid not in s.datasources:
                return 404, fixture("datasource_not_found.json")
            if method == "GET":
                return 200, s.datasources[uid]
            updated = fixture("datasource_updated.json")
            updated["datasource"].update({k: body[k] for k in ("uid", "name", "type", "access", "jsonData")})
            s.datasources[uid] = updated["datasource"]
            return 200, updated
        if path == "/api/dashboards/db":
            dashboard = body["dashboard"]
            version = s.dashboards.get(dashboard["uid"], {}).get("version", 0) + 1
            s.dashboards[dashboard["uid"]] = {"version": version, "folderUid": body["folderUid"], "body": dashboard}
            saved = fixture("dashboard_saved.json")
            saved.update(uid=dashboard["uid"], version=version, url=f"/d/{dashboard['uid']}/x")
            return 200, saved
        if path.startswith("/api/v1/provisioning/alert-rules"):
            if method == "POST":
                rule = {**fixture("alert_rule.json"), **body, "id": len(s.rules) + 1}
                s.rules[body["uid"]] = rule
                return 201, rule
            uid = path.rsplit("/", 1)[1]
            if uid not in s.rules:
                return 404, None
            if method == "PUT":
                s.rules[uid] = {**s.rules[uid], **body}
            return 200, s.rules[uid]
        return 404, {"message": "Not found"}

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")


class GrafanaServer:
    """``with GrafanaServer() as grafana: push(grafana.url, grafana.state.token)``."""

    def __init__(self, state: GrafanaState | None = None) -> None:
        self.state = state or GrafanaState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> GrafanaServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()
