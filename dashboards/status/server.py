"""The status page's own small web server (aiohttp): the page, the Statuspage JSON API, the Atom feed.

Anonymous visitors choose only the path, from a fixed set; query strings,
headers and bodies are ignored (a visitor's ``Host`` never builds a link).
Every answer is a 200 from the cache, a 404 or a 405: ClickHouse being down
or slow serves the last good page marked stale, never a 5xx.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from core.config import Settings
from dashboards.status import api
from dashboards.status.cache import SnapshotCache, View
from dashboards.status.model import Snapshot, parse_rooms
from dashboards.status.render import render_page
from dashboards.status.source import ClickHouseSource, clickhouse_runner, wall_clock

log = logging.getLogger("dashboards.status")

_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
JsonView = Callable[[Snapshot, api.PageInfo], dict[str, Any]]


class StatusPage:
    """The aiohttp application over one ``SnapshotCache``."""

    def __init__(self, cache: SnapshotCache, page: api.PageInfo, history_days: int) -> None:
        self.cache = cache
        self.page = page
        self.history_days = history_days
        self.requests = 0
        self._bodies_of: Snapshot | None = None
        self._bodies: dict[tuple[int, bool, str, str], bytes] = {}
        self.app = web.Application(client_max_size=1024)
        routes: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {
            "/": self.index,
            "/index.html": self.index,
            "/api/v2/status.json": self._json(api.status_json),
            "/api/v2/summary.json": self._json(api.summary_json),
            "/api/v2/incidents.json": self._json(api.incidents_json),
            "/api/v2/components.json": self._json(api.components_json),
            "/history.atom": self.atom,
            "/healthz": self.healthz,
        }
        for path, handler in routes.items():
            self.app.router.add_get(path, handler)
        self.app.router.add_route("*", "/{tail:.*}", self.not_found)

    def _headers(self, view: View, content_type: str) -> dict[str, str]:
        headers = {**_SECURITY_HEADERS, "Content-Type": content_type,
                   "Cache-Control": f"public, max-age={max(1, int(self.cache.ttl))}",
                   "X-Data-Stale": "true" if view.stale or view.snapshot is None else "false"}
        if view.snapshot is not None:
            headers["X-Data-As-Of"] = api.timestamp(view.snapshot.as_of)
        return headers

    async def _view(self) -> View:
        self.requests += 1
        return await self.cache.get()

    def _rendered(self, view: View, path: str, render: Callable[[], str]) -> bytes:
        """Each body is rendered once per snapshot and staleness, not once per visitor."""
        if view.snapshot is None:
            return render().encode()
        key = (id(view.snapshot), view.stale, view.reason, path)
        if self._bodies_of is not view.snapshot:
            self._bodies_of, self._bodies = view.snapshot, {}
        body = self._bodies.get(key)
        if body is None:
            body = self._bodies[key] = render().encode()
        return body

    async def index(self, request: web.Request) -> web.StreamResponse:
        view = await self._view()
        body = self._rendered(view, "/", lambda: render_page(view.snapshot, self.page.name, view.stale, view.reason,
                                                               self.history_days))
        return web.Response(body=body, headers=self._headers(view, "text/html; charset=utf-8"))

    def _json(self, build: JsonView) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            view = await self._view()

            def render() -> str:
                snapshot = view.snapshot or Snapshot(as_of=wall_clock(), components=(), incidents=())
                document = build(snapshot, self.page)
                if view.snapshot is None and "status" in document:
                    # Statuspage has no "unknown" indicator: say so in the description rather than claim all is well.
                    document["status"]["description"] = f"Status data unavailable: {view.reason or 'no read yet'}"
                return json.dumps(document)

            return web.Response(body=self._rendered(view, request.path, render),
                                headers=self._headers(view, "application/json"))
        return handler

    async def atom(self, request: web.Request) -> web.StreamResponse:
        view = await self._view()
        snapshot = view.snapshot or Snapshot(as_of=wall_clock(), components=(), incidents=())
        return web.Response(body=self._rendered(view, "/history.atom", lambda: api.atom_feed(snapshot, self.page)),
                            headers=self._headers(view, "application/atom+xml; charset=utf-8"))

    async def healthz(self, request: web.Request) -> web.StreamResponse:
        snapshot = self.cache.snapshot
        body = {"live": True, "has_data": snapshot is not None, "stale": bool(self.cache.error),
                "as_of": api.timestamp(snapshot.as_of) if snapshot else None, "refreshes": self.cache.refreshes,
                "failures": self.cache.failures}
        return web.json_response(body)

    async def not_found(self, request: web.Request) -> web.StreamResponse:
        if request.method not in {"GET", "HEAD"}:
            return web.Response(status=405, text="method not allowed\n", headers={"Allow": "GET, HEAD"})
        return web.Response(status=404, text="not found: see / for the status page\n")


def build(settings: Settings) -> tuple[StatusPage, ClickHouseSource]:
    """The page over ClickHouse as ``clickhouse.reader_user``, cached per ``status_page.cache_seconds``."""
    from history.api import reader_target

    sp = settings.status_page
    source = ClickHouseSource(clickhouse_runner(reader_target(settings), sp.query_timeout_seconds),
                              parse_rooms(sp.rooms), sp.max_components_per_kind, sp.history_days,
                              # Alertmanager's expiry of a firing alert outagewatch stopped confirming.
                              expire_after=int(2 * settings.alerting.renotify_seconds))
    cache = SnapshotCache(source.load, ttl=sp.cache_seconds, wait_seconds=sp.query_timeout_seconds,
                          clock=time.time)
    return StatusPage(cache, api.PageInfo(sp.title, sp.public_url), sp.history_days), source


class ServerThread:
    """The server on its own event loop in a thread: for tests and the benchmark."""

    def __init__(self, page: StatusPage, host: str, port: int) -> None:
        self.page, self.host, self.port = page, host, port
        self.loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, name="status-page", daemon=True)

    def start(self) -> ServerThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=10)
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.page.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


async def serve(page: StatusPage, host: str, port: int) -> None:
    """Run until cancelled (Ctrl-C)."""
    runner = web.AppRunner(page.app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=1024).start()
    log.info("status page on http://%s:%d/ (JSON at /api/v2/summary.json, feed at /history.atom)", host, port)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
