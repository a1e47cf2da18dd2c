"""What servers already send, received: OTLP/HTTP metrics and Prometheus remote-write 1.0.

Both go through the collector's own checks (``Collector.push_samples``: in-flight
limit, a key with the ``metrics`` scope, size, per-key rate, event-time
bound) into ``server-metrics``, and answer in their protocol's terms:

- ``POST /v1/metrics`` on the OTLP listener (``collector.otlp_port``, 4318):
  200 with an ``ExportMetricsServiceResponse`` (``partial_success`` naming
  the refused points), a ``google.rpc.Status`` in the request's encoding
  for a refusal (400, 401, 403, 413, 415, 429, 503 with ``Retry-After``).
  Its own listener: the path is OTLP's convention and the collector's port
  already serves our JSON ``POST /v1/metrics``.
- ``POST /api/v1/write`` on the collector's port: 204, or 400 with the
  reasons when samples were refused (those accepted are in Kafka; remote-write
  1.0 has no partial answer, and a 4xx tells Prometheus not to resend what
  will never be taken), other refusals as the collector's JSON errors.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from collectors import otlp, remote_write
from collectors.series import SeriesLimits
from core.schemas import MetricSample

if TYPE_CHECKING:  # collectors.server starts the receivers
    from collectors.server import Collector, Pushed

log = logging.getLogger("collectors.receivers")

# HTTP status of a refusal -> the gRPC code its google.rpc.Status carries.
GRPC_CODES = {400: 3, 401: 16, 403: 7, 413: 3, 415: 3, 429: 8, 503: 14}
REASONS_LISTED = 5


class Receivers:
    """The OTLP and remote-write endpoints of one collector."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.limits = SeriesLimits.from_settings(collector.settings.collector)

    def _counted(self, path: str, handler: Callable[[web.Request], Awaitable[web.Response]]
                 ) -> Callable[[web.Request], Awaitable[web.Response]]:
        requests = self.collector.metrics.requests

        async def wrapped(request: web.Request) -> web.Response:
            response = await handler(request)
            requests.labels(path, str(response.status)).inc()
            return response

        return wrapped

    def add_remote_write(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/write", self._counted("/api/v1/write", self.post_remote_write))

    def otlp_app(self) -> web.Application:
        app = web.Application(client_max_size=self.collector.settings.collector.max_body_bytes)
        app.router.add_post("/v1/metrics", self._counted("otlp:/v1/metrics", self.post_otlp))
        return app

    # -- OTLP/HTTP --------------------------------------------------------------------------------

    async def post_otlp(self, request: web.Request) -> web.Response:
        collector = self.collector
        # The encoding of the answer: the request's, when it is one OTLP takes; JSON (readable) otherwise.
        answer = otlp.PROTOBUF if otlp.PROTOBUF in (request.content_type or "") else otlp.JSON

        def decode(body: bytes, kind: str, max_points: int) -> tuple[list[MetricSample], list[tuple[int, str]]]:
            return otlp.decode(body, kind, max_points, collector.clock.now_ms(), collector.bound, self.limits)

        pushed = await collector.push_samples(request, "otlp", decode,
                                              media=lambda r: otlp.media_type(r.headers.get("Content-Type")))
        if isinstance(pushed, web.Response):
            return _as_status(pushed, answer)
        self._refused("otlp", pushed)
        return web.Response(status=200, body=otlp.response(answer, pushed.invalid), content_type=answer)

    # -- remote-write -----------------------------------------------------------------------------

    async def post_remote_write(self, request: web.Request) -> web.Response:
        collector = self.collector
        max_bytes = collector.settings.collector.max_body_bytes

        def media(r: web.Request) -> str:
            remote_write.check_headers(r.headers.get("Content-Type"), r.headers.get("Content-Encoding"),
                                       r.headers.get(remote_write.VERSION_HEADER))
            return remote_write.PROTOBUF

        def decode(body: bytes, kind: str, max_samples: int
                   ) -> tuple[list[MetricSample], list[tuple[int, str]]]:
            return remote_write.decode(body, max_bytes, max_samples, collector.clock.now_ms(), collector.bound,
                                       self.limits)

        pushed = await collector.push_samples(request, "remote_write", decode, media=media,
                                              inflate=lambda body, _encoding, _cap: body)
        if isinstance(pushed, web.Response):
            return pushed
        self._refused("remote_write", pushed)
        if not pushed.invalid:
            return web.Response(status=204)
        reasons = "; ".join(f"sample {index}: {reason}" for index, reason in pushed.invalid[:REASONS_LISTED])
        return web.Response(status=400, content_type="text/plain",
                            text=f"accepted {pushed.accepted} samples, refused {len(pushed.invalid)}: {reasons}")

    def _refused(self, kind: str, pushed: Pushed) -> None:
        if pushed.invalid:
            self.collector.rejected(kind, pushed.invalid)
            log.info("%s request: %d sample(s) accepted, %d refused (first: %s)", kind, pushed.accepted,
                     len(pushed.invalid), pushed.invalid[0][1])


def _as_status(refusal: web.Response, kind: str) -> web.Response:
    """The collector's JSON refusal, re-said as the ``google.rpc.Status`` OTLP/HTTP clients read."""
    try:
        reason = str(json.loads(refusal.body)["error"])  # type: ignore[arg-type]
    except (TypeError, ValueError, KeyError):
        reason = refusal.reason or "refused"
    headers = {"Retry-After": refusal.headers["Retry-After"]} if "Retry-After" in refusal.headers else None
    return web.Response(status=refusal.status, body=otlp.status(kind, GRPC_CODES.get(refusal.status, 2), reason),
                        content_type=kind, headers=headers)


async def start_otlp(receivers: Receivers, host: str, port: int,
                     reuse_port: bool = False) -> tuple[web.AppRunner, int]:
    """The OTLP listener on ``host:port`` (0: a free port, ``reuse_port``: SO_REUSEPORT); returns its runner
    and the port bound."""
    runner = web.AppRunner(receivers.otlp_app(), access_log=None, auto_decompress=False, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True, reuse_port=reuse_port or None)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    server = site._server  # noqa: SLF001 - the only way to learn the port picked for port=0
    bound = int(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    return runner, bound
