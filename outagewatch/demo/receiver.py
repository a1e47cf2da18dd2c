"""A local webhook receiver: where the demo's alert notifications land.

It stands in for on-call tooling (a real HTTP endpoint, not a mock of ours):
every JSON body it receives is appended to an NDJSON file the summary points at.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

from aiohttp import web


class WebhookReceiver:
    def __init__(self, out_file: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.out_file = out_file
        self.host = host
        self.port = port
        self.received: list[dict[str, Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="webhook-receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/alerts"

    def start(self) -> WebhookReceiver:
        self.out_file.parent.mkdir(parents=True, exist_ok=True)
        self.out_file.write_text("")
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the demo's webhook receiver did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/alerts", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, self.host, self.port)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"error": "body is not JSON"}, status=400)
        self.received.append(body)
        with self.out_file.open("a") as out:
            out.write(json.dumps(body) + "\n")
        return web.json_response({"ok": True})
