"""A webhook receiver written for Alertmanager, as its receivers are written.

The model is Alertmanager's own (``notify/webhook.Message``: ``template.Data``
plus ``version``, ``groupKey`` and ``truncatedAlerts``, each ``template.Alert``
with status, labels, annotations, startsAt, endsAt, generatorURL and
fingerprint). Decoding is strict where a Go receiver would silently get zero
values: every field is required and typed, times are RFC 3339. A body that does
not decode is answered 400, so a notifier test sees the failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import msgspec
from aiohttp import web


class AmAlert(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime
    generator_url: str = msgspec.field(name="generatorURL")
    fingerprint: str


class AmMessage(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    version: Literal["4"]
    group_key: str
    truncated_alerts: int
    status: Literal["firing", "resolved"]
    receiver: str
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    external_url: str = msgspec.field(name="externalURL")
    alerts: list[AmAlert]

    def firing(self) -> list[AmAlert]:
        """``template.Data.Alerts.Firing()``."""
        return [a for a in self.alerts if a.status == "firing"]

    def resolved(self) -> list[AmAlert]:
        return [a for a in self.alerts if a.status == "resolved"]


@dataclass
class AmReceiver:
    port: int = 0
    messages: list[AmMessage] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alertmanager"

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            message = msgspec.json.decode(await request.read(), type=AmMessage)
        except msgspec.ValidationError as exc:
            self.refused.append(str(exc))
            return web.Response(status=400, text=str(exc))
        self.messages.append(message)
        return web.Response(status=200)

    async def start(self) -> AmReceiver:
        app = web.Application()
        app.router.add_post("/alertmanager", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
