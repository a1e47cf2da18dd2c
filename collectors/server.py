"""The collector's HTTP service: ``POST /v1/reports``, ``POST /v1/metrics``, health and ``/metrics``.

aiohttp: it served the same handler faster than uvicorn + starlette
(docs/benchmarks.md), and needs no extra dependency.

Order of checks for an ingest request, cheapest refusal first:
503 (in-flight limit, not counting the requests of flooding rooms; all of
them past the storm limit: shed before reading the body) -> 401 (key) -> 403
(the key lacks the endpoint's scope) -> 415 (content type) -> 413
(Content-Length) -> 429 (the key's bucket, then the client network's, empty)
-> read body -> 413/400 (gzip cap, envelope, batch length) -> item
validation (the whole batch in one msgspec call when it is all valid) ->
event time within its bound of the receive clock -> 429 (charge items) ->
source stamp -> dedup -> sampling under load (a flooding room's errors by
client, heartbeats by report: ``collectors.storm``) -> Kafka (202 after
acks=all, 503 otherwise).

Why a flood is read rather than refused: the room of a request is known only
once its body is decoded, and a 503 before that cannot choose whom it hits.
So the requests of flooding rooms are read (past ``max_inflight_requests``,
up to ``storm_max_inflight_requests``) and their room's errors sampled; the
other rooms' requests keep the whole ``max_inflight_requests`` for
themselves.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from collectors import batching, bodies, health, receivers, siblings
from collectors.auth import DEMO_SECRET, ApiKeys, Key, KeyConfigError
from collectors.coalesce import ReportCoalescer
from collectors.dedup import RecentIds
from collectors.keyring import Check, KeyRing
from collectors.metrics import CollectorMetrics, StormMetrics, rejection_reason
from collectors.ratelimit import RateLimiter
from collectors.sampling import SamplingPolicy
from collectors.scraper import Scraper, ScrapeTarget, parse_targets
from collectors.siblings import ProcessGroup
from collectors.sink import KafkaSink, ProducerSettings, RecordSink, SinkUnavailable
from collectors.sources import SourcePolicy, Sources
from collectors.storm import Admission, StormPolicy, StormSampler, storm_seed
from core import schemas
from core.codec import report_encoder
from core.config import Settings
from core.health import Health, LivenessGuard, LivenessPolicy
from core.timeutil import Clock, SystemClock

log = logging.getLogger("collectors.server")

MAX_ERRORS_LISTED = 1000
# Names the process of `collect --processes N` that answered /healthz, /readyz or /metrics.
PROCESS_HEADER = "Outagewatch-Process"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")
# A decompressed body, its media type and the item limit -> valid items, (index, reason) of the others.
Decode = Callable[[bytes, str, int], tuple[list[T], list[tuple[int, str]]]]
# A request -> the media type of its body (BodyError 415 when not taken).
Media = Callable[[web.Request], str]
# A body, its Content-Encoding and the size cap -> the plain body (BodyError when refused).
Inflate = Callable[[bytes, str | None, int], bytes]


def _content_type(request: web.Request) -> str:
    return bodies.media_type(request.headers.get("Content-Type"))


def _json(status: int, payload: Any, retry_after: float | None = None) -> web.Response:
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after is not None else None
    return web.Response(status=status, body=schemas.encode(payload), content_type="application/json",
                        headers=headers)


def _error(status: int, reason: str, retry_after: float | None = None) -> web.Response:
    return _json(status, {"error": reason}, retry_after)


@dataclass
class Admitted(Generic[T]):
    """A request past every refusal before its items: who sent it, from where, and its items."""

    key: Key
    # The client's network (``collectors.sources``); empty when the key is a relay's.
    network: str
    valid: list[T]
    invalid: list[tuple[int, str]]


@dataclass(frozen=True)
class Pushed:
    """Samples a request had in Kafka (``accepted``), and ``(index, reason)`` of those refused."""

    accepted: int
    invalid: list[tuple[int, str]]


def _positions(valid: int, invalid: list[tuple[int, str]]) -> list[int]:
    """Where each valid item stood in the request, given the indexes of the invalid ones.

    >>> _positions(3, [(1, "bad"), (3, "bad")])
    [0, 2, 4]
    """
    if not invalid:
        return list(range(valid))
    refused = {index for index, _ in invalid}
    return [index for index in range(valid + len(invalid)) if index not in refused]




class Collector:
    """The ingest endpoints, wired to a ``RecordSink``; ``app`` is the aiohttp application."""

    def __init__(self, settings: Settings, sink: RecordSink, clock: Clock | None = None,
                 metrics: CollectorMetrics | None = None, keys: KeyRing | None = None) -> None:
        c = settings.collector
        self.settings = settings
        self.sink = sink
        self.clock = clock or SystemClock()
        self.metrics = metrics or CollectorMetrics()
        self.ring = keys or KeyRing.from_settings(c.api_keys, c.api_keys_file, int(c.api_keys_reload_seconds * 1000),
                                                  self.clock)
        self.ring.on_reload = lambda outcome: self.metrics.key_reloads.labels(outcome).inc()
        self.limiter = RateLimiter(c.rate_per_second, c.rate_burst, self.clock)
        self.sources = Sources(SourcePolicy.from_settings(c), c.source_secret.encode() or None)
        self.source_limiter = RateLimiter(c.source_rate_per_second, c.source_rate_burst, self.clock,
                                          max_buckets=c.source_buckets_max)
        self.bound = settings.event_time.bound()
        self.seen = RecentIds(int(c.dedup_horizon_seconds * 1000), c.dedup_max_ids, self.clock)
        self.sampling = SamplingPolicy(enabled=c.sample_heartbeats, min_keep=c.sample_min_keep)
        self.storm = StormSampler(StormPolicy.from_settings(c), storm_seed(self.sources.secret), self.clock,
                                  self.sampling)
        self.storm_metrics = StormMetrics(self.metrics.registry)
        self.inflight = 0
        # Set when this is one of `collect --processes N`'s processes: its index is a header on the health and
        # metrics answers (so an operator behind the shared port can tell who answered), /metrics covers all.
        self.group: ProcessGroup | None = None
        self.health = Health("collector", self.clock, LivenessPolicy.from_settings(settings), needs_assignment=False)
        # The in-flight requests' shares of reports from flooding rooms, summed (Admission.flooding_share).
        self.inflight_flooding = 0.0
        self.coalescer = ReportCoalescer(sink, settings.topics.client_reports, c.coalesce_ms / 1000,
                                         c.coalesce_max_reports, report_encoder(c.kafka_report_format))
        self.app = web.Application(client_max_size=c.max_body_bytes)
        self.app.router.add_post("/v1/reports", self._counted("/v1/reports", self.post_reports))
        self.app.router.add_post("/v1/metrics", self._counted("/v1/metrics", self.post_metrics))
        self.receivers = receivers.Receivers(self)
        self.receivers.add_remote_write(self.app)
        self.app.router.add_get("/healthz", self._counted("/healthz", self.healthz))
        self.app.router.add_get("/readyz", self._counted("/readyz", self.readyz))
        self.app.router.add_get("/metrics", self.prometheus)

    def _counted(self, path: str, handler: Handler) -> Handler:
        requests = self.metrics.requests

        async def wrapped(request: web.Request) -> web.StreamResponse:
            response = await handler(request)
            requests.labels(path, str(response.status)).inc()
            return response

        return wrapped

    # -- the shared front half of both ingest endpoints ------------------------------------------

    async def _admit(self, request: web.Request, scope: str, decode: Decode[T], media: Media = _content_type,
                     inflate: Inflate = bodies.decompress) -> Admitted[T] | web.Response:
        """Auth, scope, content type (``media``), size, rate (per key; per client network for reports); then
        the body's valid items and ``(index, reason)`` for the others (``inflate``, ``decode``, then the
        event-time bound). A Response means refused."""
        c = self.settings.collector
        key = self.ring.keys.identify(request.headers.get("Authorization"))
        if key is None:
            return _error(401, "missing or unknown API key: send 'Authorization: Bearer <key>'")
        if not key.may(scope):
            return _error(403, f"key {key.name!r} may not use {request.path}: it holds the scope(s) "
                               f"{'+'.join(sorted(key.scopes))}; {request.path} needs a key with the {scope} scope")
        try:
            kind = media(request)
        except bodies.BodyError as exc:
            return _error(exc.status, exc.reason)
        if request.content_length is not None and request.content_length > c.max_body_bytes:
            return _error(413, f"body of {request.content_length} bytes; at most {c.max_body_bytes}")
        wait = self.limiter.empty(key.name)
        if wait > 0:
            return self._limited("key", self._key_over(key), wait)
        network = ""
        if scope == "reports" and not key.may("relay"):
            forwarded = request.headers.get(c.client_address_header) if c.trusted_proxies else None
            network = self.sources.network(self.sources.client_address(request.remote, forwarded))
            wait = self.source_limiter.empty(network)
            if wait > 0:
                return self._limited("source", self._source_over(network), wait)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"body larger than {c.max_body_bytes} bytes")
        try:
            plain = inflate(body, request.headers.get("Content-Encoding"), c.max_body_bytes)
            valid, invalid = decode(plain, kind, c.max_batch_items)
        except bodies.BodyError as exc:
            return _error(exc.status, exc.reason)
        kept, out_of_bounds = self.bound.split(valid, self.clock.now_ms())
        if out_of_bounds:
            positions = _positions(len(valid), invalid)
            invalid = sorted([*invalid, *((positions[at], why) for at, why in out_of_bounds)])
        # Every item is charged, valid or not.
        items = len(kept) + len(invalid)
        wait = self.limiter.take(key.name, items)
        if wait > 0:
            return self._limited("key", self._key_over(key), wait)
        if network:
            wait = self.source_limiter.take(network, items)
            if wait > 0:
                return self._limited("source", self._source_over(network), wait)
        return Admitted(key, network, kept, invalid)

    def _key_over(self, key: Key) -> str:
        return f"key {key.name!r} is over its rate of {self.settings.collector.rate_per_second:g} items/s"

    def _source_over(self, network: str) -> str:
        return (f"your network {network} is over its rate of {self.settings.collector.source_rate_per_second:g} "
                "reports/s")

    def _limited(self, limit: str, reason: str, wait: float) -> web.Response:
        self.metrics.rate_limited.labels(limit).inc()
        return _error(429, reason, wait)

    def _shed(self) -> web.Response | None:
        c = self.settings.collector
        others = self.inflight - self.inflight_flooding
        if others >= c.max_inflight_requests:
            self.metrics.shed.labels("inflight").inc()
            return _error(503, f"collector is at its limit of {c.max_inflight_requests} requests in flight; "
                               "retry later", c.retry_after_seconds)
        if self.inflight >= c.storm_max_inflight_requests:
            self.metrics.shed.labels("storm_inflight").inc()
            return _error(503, f"collector is at its limit of {c.storm_max_inflight_requests} requests in flight "
                               f"({self.inflight - others:.0f} of them from rooms flooding it, already sampled); "
                               "retry later", c.retry_after_seconds)
        return None

    async def _deliver(self, send: Awaitable[None], kind: str, accepted: int) -> web.Response | None:
        started = asyncio.get_running_loop().time()
        try:
            await send
        except SinkUnavailable as exc:
            self.metrics.shed.labels("kafka").inc()
            return _error(503, f"Kafka cannot take the {kind} now, nothing was accepted: {exc.reason}",
                          max(exc.retry_after, self.settings.collector.retry_after_seconds))
        finally:
            self.metrics.pending_bytes.set(self.sink.pending_bytes)
            self.health.waiting(self.sink.pending_bytes, health.WAITING)
        self.metrics.kafka_send_seconds.observe(asyncio.get_running_loop().time() - started)
        self.metrics.accepted.labels(kind).inc(accepted)
        self._acknowledged()
        return None

    def _acknowledged(self) -> None:
        self.health.moved("records acknowledged by Kafka")
        self.metrics.last_ack.set(self.clock.now_ms() / 1000)

    def _rejected(self, kind: str, invalid: list[tuple[int, str]]) -> list[dict[str, Any]]:
        counter = self.metrics.rejected
        for _, error in invalid:
            counter.labels(kind, rejection_reason(error)).inc()
        return [{"index": index, "error": error} for index, error in invalid[:MAX_ERRORS_LISTED]]

    # -- handlers ------------------------------------------------------------------------------

    async def post_reports(self, request: web.Request) -> web.Response:
        shed = self._shed()
        if shed is not None:
            return shed
        self.inflight += 1
        self.metrics.inflight.set(self.inflight)
        try:
            return await self._reports(request)
        finally:
            self.inflight -= 1
            self.metrics.inflight.set(self.inflight)

    async def _reports(self, request: web.Request) -> web.Response:
        admitted = await self._admit(request, "reports", bodies.decode_reports)
        if isinstance(admitted, web.Response):
            return admitted
        valid, invalid = admitted.valid, admitted.invalid
        if admitted.network:
            # The collector's word, not the client's: where the report came from, and that it stands for
            # one report (a client-sent weight of 1e6 would count as a million listeners or error clients).
            source = self.sources.stamp(admitted.network, admitted.key.name)
            for report in valid:
                report.source = source
                report.weight = 1.0
        fresh, duplicate_ids = self._drop_duplicates(valid)
        admission = self._sample(fresh)
        self.inflight_flooding += admission.flooding_share
        try:
            refused = await self._deliver(self.coalescer.submit(admission.kept), "reports", len(fresh))
        finally:
            self.inflight_flooding -= admission.flooding_share
        if refused is not None:
            return refused
        # Only now: a report whose request got a 503 must not count as seen when the client retries.
        self.seen.remember(report.report_id for report in fresh)
        if duplicate_ids:
            self.metrics.duplicates.inc(duplicate_ids)
        if admission.heartbeats_out:
            self.metrics.sampled_out.inc(admission.heartbeats_out)
        if admission.errors_out:
            self.storm_metrics.errors_out.inc(admission.errors_out)
        return _json(202, {"accepted": len(fresh), "rejected": len(invalid), "duplicates": duplicate_ids,
                           "sampled_out": admission.sampled_out, "errors": self._rejected("reports", invalid)})

    def _sample(self, fresh: list[schemas.ClientReport]) -> Admission:
        """The storm policy's decision for a request's fresh reports, at the collector's load now."""
        limit = self.settings.collector.max_inflight_requests
        admission = self.storm.admit(fresh, self.inflight / limit, (self.inflight - self.inflight_flooding) / limit)
        self.metrics.heartbeat_keep.set(admission.heartbeat_keep)
        return admission

    def _drop_duplicates(self, reports: list[schemas.ClientReport]) -> tuple[list[schemas.ClientReport], int]:
        flags = self.seen.unseen([report.report_id for report in reports])
        fresh = [report for report, new in zip(reports, flags, strict=True) if new]
        return fresh, len(reports) - len(fresh)

    async def post_metrics(self, request: web.Request) -> web.Response:
        pushed = await self.push_samples(request, "samples", bodies.decode_samples)
        if isinstance(pushed, web.Response):
            return pushed
        return _json(202, {"accepted": pushed.accepted, "rejected": len(pushed.invalid),
                           "errors": self._rejected("samples", pushed.invalid)})

    async def push_samples(self, request: web.Request, kind: str, decode: Decode[schemas.MetricSample],
                           media: Media = _content_type, inflate: Inflate = bodies.decompress) -> Pushed | web.Response:
        """A request of server metric samples, in any format ``decode`` reads, into ``server-metrics``: the
        checks of ``_admit`` (a key with the ``metrics`` scope), then Kafka. A Response means refused."""
        shed = self._shed()
        if shed is not None:
            return shed
        self.inflight += 1
        try:
            admitted = await self._admit(request, "metrics", decode, media, inflate)
            if isinstance(admitted, web.Response):
                return admitted
            records = batching.sample_records(admitted.valid, self.settings.topics.server_metrics)
            refused = await self._deliver(self.sink.send_all(records), kind, len(admitted.valid))
            if refused is not None:
                return refused
            return Pushed(len(admitted.valid), admitted.invalid)
        finally:
            self.inflight -= 1

    def rejected(self, kind: str, invalid: list[tuple[int, str]]) -> None:
        """Count refused items by reason (``/metrics``), for a receiver that answers in its own format."""
        self._rejected(kind, invalid)

    async def healthz(self, request: web.Request) -> web.Response:
        return self._named(health.answer(self.health, "live"))

    async def readyz(self, request: web.Request) -> web.Response:
        kafka_ready = await self.sink.ready()
        response = health.answer(self.health, "ready", None if kafka_ready else "Kafka is not reachable")
        if response.status == 503:
            response.headers["Retry-After"] = str(max(1, math.ceil(self.settings.collector.retry_after_seconds)))
        return self._named(response)

    async def prometheus(self, request: web.Request) -> web.Response:
        page = self._own_page()
        if self.group is not None:
            page = await siblings.gather(self.group, page.decode())
        return self._named(web.Response(body=page, headers={"Content-Type": CONTENT_TYPE_LATEST}))

    async def own_prometheus(self, request: web.Request) -> web.Response:
        """This process's page alone: what a sibling gathers over the group's Unix socket."""
        return web.Response(body=self._own_page(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    def _own_page(self) -> bytes:
        self.metrics.pending_bytes.set(self.sink.pending_bytes)
        self.metrics.source_buckets.set(len(self.source_limiter))
        self.metrics.live.set(float(self.health.verdict().live))
        self._show_storm()
        return generate_latest(self.metrics.registry)

    def _named(self, response: web.Response) -> web.Response:
        if self.group is not None:
            response.headers[PROCESS_HEADER] = str(self.group.index)
        return response

    def _show_storm(self) -> None:
        """/metrics: the rooms being sampled now (the top ones by name) and their keep ratios."""
        current = self.storm.current()
        self.storm_metrics.show([(room, entry.keep, entry.share) for room, entry in current], len(current))


# -- running it --------------------------------------------------------------------------------


def producer_settings(settings: Settings) -> ProducerSettings:
    c = settings.collector
    return ProducerSettings(
        bootstrap=settings.kafka.bootstrap,
        client_id=f"{settings.kafka.client_id}-collector",
        compression=c.kafka_compression,
        delivery_timeout_ms=int(c.send_timeout_seconds * 1000),
        max_pending_bytes=c.max_pending_bytes,
        cooldown_ms=int(c.retry_after_seconds * 1000),
        client=c.kafka_client,
    )


@dataclass
class CollectorRunner:
    """A started collector: ``url`` to talk to, ``stop()`` to end it."""

    collector: Collector
    runner: web.AppRunner
    sink: RecordSink
    host: str
    port: int
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # The OTLP/HTTP listener (collector.otlp_port); None when turned off.
    otlp_runner: web.AppRunner | None = None
    otlp_port: int = 0
    # Its own /metrics on the process group's Unix socket (collect --processes N); None alone.
    own_runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def otlp_url(self) -> str:
        """Where an OTLP/HTTP exporter sends metrics: ``<otlp_url>/v1/metrics``."""
        return f"http://{self.host}:{self.otlp_port}"

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.own_runner is not None:
            await self.own_runner.cleanup()
        if self.otlp_runner is not None:
            await self.otlp_runner.cleanup()
        await self.runner.cleanup()
        close = getattr(self.sink, "close", None)
        if close is not None:
            await close()


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` serves this machine only.

    >>> [is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "", "10.0.0.5", "collector.internal")]
    [True, True, True, False, False, False, False]
    """
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # every address, or a name: assume the network can reach it


def demo_key_guard(host: str, allow: bool) -> Check:
    """A key check refusing the README's demo key when ``host`` is reachable from the network."""

    def check(keys: ApiKeys) -> None:
        if keys.holds_demo_key and not allow and not is_loopback(host):
            raise KeyConfigError(
                f"refusing to listen on {host or 'every address'} while the API keys include the demo key "
                f"({DEMO_SECRET!r}, published in the README): anyone could send reports and metrics. Set your own "
                "keys (OUTAGEWATCH_COLLECTOR_API_KEYS=name:secret:reports, or a keys file in "
                "OUTAGEWATCH_COLLECTOR_API_KEYS_FILE), or for a throwaway test set "
                "OUTAGEWATCH_COLLECTOR_ALLOW_DEMO_KEY=true (collector.allow_demo_key)")

    return check


def _warn_about(settings: Settings, keys: ApiKeys, host: str) -> None:
    legacy = [name for name in keys.legacy_names if not (name == "demo" and keys.holds_demo_key)]
    if legacy:
        log.warning("API key(s) %s name no scopes, so they may send reports and push metrics (as before scopes "
                    "existed); a key that ships in client apps should be 'name:secret:reports', a server's "
                    "'name:secret:metrics'", ", ".join(legacy))
    if not settings.collector.source_secret and not is_loopback(host):
        log.warning("collector.source_secret is not set: report sources are keyed by this process alone; "
                    "collectors behind one load balancer must share one secret, or each sees a client as its "
                    "own source")


async def _poll_keys(ring: KeyRing) -> None:
    while True:
        await asyncio.sleep(min(1.0, ring.reload_ms / 1000))
        ring.poll()


def preflight(settings: Settings, bind_host: str, clock: Clock) -> tuple[KeyRing, tuple[ScrapeTarget, ...]]:
    """The keys and scrape targets, or the error a bad setting deserves (before anything connects)."""
    c = settings.collector
    ring = KeyRing.from_settings(c.api_keys, c.api_keys_file, int(c.api_keys_reload_seconds * 1000), clock,
                                 check=demo_key_guard(bind_host, c.allow_demo_key))
    targets = parse_targets(c.scrape_targets)
    SourcePolicy.from_settings(c).proxies()  # refuse a bad prefix or proxy before connecting to Kafka too
    StormPolicy.from_settings(c)  # and a storm setting that cannot be used
    return ring, targets


async def _serve_own_page(collector: Collector, group: ProcessGroup) -> web.AppRunner:
    app = web.Application()
    app.router.add_get("/metrics", collector.own_prometheus)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    path = group.socket_of(group.index)
    Path(path).unlink(missing_ok=True)  # left by the process this one replaces
    await web.UnixSite(runner, path).start()
    return runner


async def start(settings: Settings, *, host: str | None = None, port: int | None = None,
                clock: Clock | None = None, sink: RecordSink | None = None,
                otlp_port: int | None = None, group: ProcessGroup | None = None) -> CollectorRunner:
    """Start the collector in the running event loop (``port=0`` picks a free port), and its OTLP/HTTP
    listener on ``otlp_port`` (default ``collector.otlp_port``; 0 a free port, -1 none).

    In a ``group`` (``collectors.processes``) it listens with SO_REUSEPORT, so
    the kernel spreads connections over every process of the group, and
    serves its own ``/metrics`` on the group's Unix socket for its siblings.

    Refuses bad keys and the demo key on an address the network can reach
    (``KeyConfigError``), bad prefixes or proxies (``SourceConfigError``),
    before connecting the Kafka producer (raising
    ``SinkUnavailable`` if the topics' metadata cannot be had), then listens,
    then starts scraping ``collector.scrape_targets`` and watching the keys file.
    """
    clock = clock or SystemClock()
    c = settings.collector
    bind_host = host if host is not None else c.host
    ring, targets = preflight(settings, bind_host, clock)
    _warn_about(settings, ring.keys, bind_host)
    if sink is None:
        kafka = KafkaSink(producer_settings(settings), clock)
        await kafka.start([settings.topics.client_reports, settings.topics.server_metrics])
        sink = kafka
    collector = Collector(settings, sink, clock, keys=ring)
    collector.group = group
    reuse_port = group is not None
    runner = web.AppRunner(collector.app, access_log=None, auto_decompress=False, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, bind_host, c.port if port is None else port, backlog=1024, reuse_address=True,
                       reuse_port=reuse_port or None)
    await site.start()
    server: Any = site._server  # noqa: SLF001 - the only way to learn the port picked for port=0
    bound_port = int(server.sockets[0].getsockname()[1])
    started = CollectorRunner(collector, runner, sink, bind_host, bound_port)
    if group is not None:
        started.own_runner = await _serve_own_page(collector, group)
    otlp_at = c.otlp_port if otlp_port is None else otlp_port
    if otlp_at >= 0:
        try:
            started.otlp_runner, started.otlp_port = await receivers.start_otlp(collector.receivers, bind_host, otlp_at,
                                                                                      reuse_port)
        except OSError as exc:
            await started.stop()
            raise OSError(exc.errno, f"cannot listen for OTLP/HTTP on {bind_host}:{otlp_at}: {exc.strerror}; set "
                                     "OUTAGEWATCH_COLLECTOR_OTLP_PORT (collect --otlp-port) to a free port, 0 for any, "
                                     "-1 for no OTLP listener") from None
    started.tasks.append(asyncio.create_task(health.beat_forever(collector.health, lambda: collector.sink.pending_bytes)))
    if targets:
        scraper = Scraper(targets, sink, settings.topics.server_metrics, c.scrape_timeout_seconds,
                          collector.metrics, clock)
        started.tasks.append(asyncio.create_task(scraper.run_forever(c.scrape_interval_seconds)))
    if ring.path is not None:
        started.tasks.append(asyncio.create_task(_poll_keys(ring)))
    log.info("collector listening on %s (topics %s, %s; %d key(s)%s; %d scrape target(s); OTLP/HTTP %s)",
             started.url, settings.topics.client_reports, settings.topics.server_metrics, len(ring.keys.keys),
             f" from {ring.path}" if ring.path else "", len(targets),
             f"{started.otlp_url}/v1/metrics" if started.otlp_runner else "off")
    return started


def run(settings: Settings, *, host: str | None = None, port: int | None = None, group: ProcessGroup | None = None,
        on_ready: Callable[[str], None] | None = None) -> None:
    """Run the collector until SIGINT or SIGTERM (blocking): what ``outagewatch collect`` does.

    SIGHUP re-reads ``collector.api_keys_file``. Once it listens, ``on_ready``
    gets its URL (by default printed as ``collector ready at <url>``).
    """

    async def main() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        runner = await start(settings, host=host, port=port, group=group)
        loop.add_signal_handler(signal.SIGHUP, runner.collector.ring.reload, "SIGHUP")
        LivenessGuard(runner.collector.health).start()
        (on_ready or _announce)(runner.url)
        try:
            await stopping.wait()
        finally:
            log.info("collector stopping")
            await runner.stop()

    asyncio.run(main())


def _announce(url: str) -> None:
    print(f"collector ready at {url}", flush=True)
