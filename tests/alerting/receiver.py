"""A real local HTTP receiver for notifier tests: records requests, fails the first N."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    fail_first: int = 0
    fail_status: int = 503
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def delivered(self) -> list[Received]:
        """Requests answered 2xx, collapsed by Idempotency-Key like a receiver that honours it."""
        ok = self.requests[self.fail_first :]
        seen: dict[str, Received] = {}
        for request in ok:
            seen.setdefault(request.headers.get("Idempotency-Key", str(id(request))), request)
        return list(seen.values())

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.requests.append(Received(request.path, dict(request.headers), json.loads(raw)))
        if len(self.requests) <= self.fail_first:
            return web.Response(status=self.fail_status, text="receiver says no")
        return web.json_response({"status": "success"}, status=202)

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
