"""`dashboards push`: the request sequence, against a local HTTP server that
implements the few Grafana API endpoints it calls.

This is a unit test of the sequence and the created / updated / unchanged
report only: no Grafana can run on these machines, so it does not prove that
a real Grafana accepts the payloads (docs/design.md, "Dashboards").
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dashboards import provisioning, push

TOKEN = "glsa_test"


class FakeGrafana:
    def __init__(self) -> None:
        self.folders: dict[str, dict[str, Any]] = {}
        self.datasources: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.healthy = True

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        self.requests.append((method, path))
        parts = path.removeprefix("/api/").split("/")
        if parts[0] == "folders":
            if method == "GET" and len(parts) == 2:
                return (200, self.folders[parts[1]]) if parts[1] in self.folders else (404, {"message": "not found"})
            if method == "POST":
                self.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"], "version": 1}
                return 200, self.folders[body["uid"]]
            if method == "PUT":
                self.folders[parts[1]]["title"] = body["title"]
                return 200, self.folders[parts[1]]
        if parts[0] == "datasources":
            if method == "POST":
                stored = {k: v for k, v in body.items() if k != "secureJsonData"}
                self.datasources[body["uid"]] = {**stored, "id": len(self.datasources) + 1, "secureJsonFields":
                                                 {"password": True}}
                return 200, {"datasource": self.datasources[body["uid"]]}
            uid = parts[2]
            if len(parts) == 4 and parts[3] == "health":
                if not self.healthy:
                    return 400, {"status": "ERROR", "message": "dial tcp clickhouse:9000: connection refused"}
                return 200, {"status": "OK", "message": "Data source is working"}
            if method == "GET":
                return (200, self.datasources[uid]) if uid in self.datasources else (404, {"message": "not found"})
            if method == "PUT":
                self.datasources[uid].update({k: v for k, v in body.items() if k != "secureJsonData"})
                return 200, {"datasource": self.datasources[uid]}
        if parts[0] == "dashboards":
            if method == "GET":
                uid = parts[2]
                if uid not in self.dashboards:
                    return 404, {"message": "Dashboard not found"}
                return 200, self.dashboards[uid]
            if method == "POST" and parts[1] == "db":
                board = dict(body["dashboard"])
                previous = self.dashboards.get(board["uid"], {}).get("dashboard", {})
                board.update(id=17, version=previous.get("version", 0) + 1)
                self.dashboards[board["uid"]] = {"dashboard": board, "meta": {"folderUid": body["folderUid"]}}
                return 200, {"status": "success", "uid": board["uid"], "version": board["version"]}
        return 404, {"message": f"no route {method} {path}"}


@pytest.fixture
def grafana() -> Iterator[tuple[str, FakeGrafana]]:
    state = FakeGrafana()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                status, payload = 401, {"message": "Unauthorized"}
            else:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                status, payload = state.handle(method, self.path.split("?")[0], body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def do_PUT(self) -> None:  # noqa: N802
            self._serve("PUT")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def _push(url: str, force: bool = False, boards: list[dict[str, Any]] | None = None,
          host: str = "clickhouse") -> list[push.Change]:
    target = provisioning.DatasourceTarget(host=host, port=9000, database="outagewatch",
                                           user="outagewatch_reader", password="outagewatch_reader")
    api = push.connect(url, TOKEN)
    return push.push_all(api, provisioning.datasource(target), boards or provisioning.dashboards(),
                         "outagewatch", provisioning.FOLDER_TITLE, force=force)


def test_first_push_creates_everything_and_the_second_changes_nothing(grafana: tuple[str, FakeGrafana]) -> None:
    url, state = grafana
    first = _push(url)
    assert [(c.kind, c.action) for c in first] == [
        ("folder", "created"), ("datasource", "created"), ("health", "ok"),
        *[("dashboard", "created")] * 4]
    assert set(state.dashboards) == {b["uid"] for b in provisioning.dashboards()}
    assert all(d["meta"]["folderUid"] == "outagewatch" for d in state.dashboards.values())
    posts = len([r for r in state.requests if r[0] != "GET"])

    second = _push(url)
    assert {c.action for c in second if c.kind != "health"} == {"unchanged"}
    assert len([r for r in state.requests if r[0] != "GET"]) == posts  # nothing written


def test_changes_are_reported_as_updates(grafana: tuple[str, FakeGrafana]) -> None:
    url, state = grafana
    _push(url)
    boards = provisioning.dashboards()
    boards[0]["title"] = "renamed"
    changes = {(c.kind, c.uid): c.action for c in _push(url, boards=boards, host="ch.internal")}
    assert changes[("datasource", "outagewatch-clickhouse")] == "updated"
    assert changes[("dashboard", boards[0]["uid"])] == "updated"
    assert changes[("dashboard", boards[1]["uid"])] == "unchanged"
    assert state.datasources["outagewatch-clickhouse"]["jsonData"]["host"] == "ch.internal"
    assert {c.action for c in _push(url, force=True) if c.kind == "dashboard"} == {"updated"}


def test_a_failing_health_check_is_reported(grafana: tuple[str, FakeGrafana]) -> None:
    url, state = grafana
    state.healthy = False
    health = next(c for c in _push(url) if c.kind == "health")
    assert health.action == "failed" and "connection refused" in health.detail


def test_a_bad_token_is_an_error_not_a_report(grafana: tuple[str, FakeGrafana]) -> None:
    url, _ = grafana
    api = push.connect(url, "wrong")
    from grafana_client.client import GrafanaUnauthorizedError

    with pytest.raises(GrafanaUnauthorizedError):
        push.push_folder(api, "outagewatch", "outagewatch")
