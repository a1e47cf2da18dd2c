"""The load of the whole-pipeline benchmarks: background rooms, watched rooms, onsets and surges, over HTTP.

Runs in its own process (``run_plan`` through a spawn pool) so it does not
share the bench's GIL; ``run_plan(plan, "background")`` and ``run_plan(plan,
"surges")`` split it over two, so a surge's clients are not the background's
event loop too (what ``bench storm`` does: else the load generator, not the
collector, would slow the background down in a surge). Everything follows one event clock: ``ts`` =
``event_start_ms + (wall - start) * speed``, so windows close while the load
runs and a compressed warm-up (``speed`` > 1) trains the detectors quickly.

- **background**: ``connections`` keep-alive connections posting batches of
  ``batch`` reports paced to ``rate`` reports/s in total (0: as fast as
  answered); Zipf-spread rooms, 96% heartbeats, 2% joins, 2% errors. A
  request the collector refuses (503/429) is counted, not retried: the
  bench reports the rate the pipeline actually took. A connection that falls
  behind its pace sends at once but never banks the debt. Besides its whole
  tally, the background is tallied per phase: ``background:calm`` (as long as
  the first surge, right before it) and ``background:surge:<name>`` (during
  each surge), so a surge's cost to everyone else is measured in the same run.
- **watched rooms**: steady listeners (``watched_listeners`` distinct
  clients, each heartbeating once per window) with a 1% error background,
  posted every 250 ms and retried until accepted (a real client retries),
  so their signal survives a storm.
- **onsets**: from ``at_s``, ``clients_per_window`` distinct new clients of a
  watched room report ``details_not_available`` per window.
- **surges**: from ``at_s`` for ``seconds``, ``connections`` connections post
  batches of error reports from distinct clients of a watched room as fast as
  answered (every failing client reports at once), paced to ``rate`` if set.

Report ids start with ``prefix``, so ClickHouse can count exactly this run,
then a request key (``request_key``: the traffic class and the request's
number) shared by every report of one request body and no other: the
acknowledged requests' keys and counts (``Tally.acked``) let a run check,
request by request, that everything acknowledged was stored.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MARK = b"RQ0000000000"
TS_MARK = b"9999999999999"
ERROR_CODES = ("details_not_available", "crash", "join_failed")
ONSET_CODE = "details_not_available"


@dataclass(frozen=True)
class Onset:
    room: str
    at_s: float
    event_seconds: float
    clients_per_window: int


@dataclass(frozen=True)
class Surge:
    name: str
    room: str
    at_s: float
    seconds: float
    connections: int
    rate: float = 0.0
    batch: int = 50


@dataclass(frozen=True)
class LoadPlan:
    url: str
    api_key: str
    prefix: str
    seconds: float
    rate: float
    event_start_ms: int
    speed: float = 1.0
    window_s: int = 10
    connections: int = 8
    batch: int = 500
    rooms: int = 1000
    watched_rooms: tuple[str, ...] = ()
    watched_listeners: int = 400
    onsets: tuple[Onset, ...] = ()
    surges: tuple[Surge, ...] = ()
    seed: int = 7


def request_key(prefix: str, kind: str, number: int) -> str:
    """The start of every report id of one request body.

    >>> request_key("chaos-ab12-", "b", 42)
    'chaos-ab12-bRQ0000000042'
    """
    return f"{prefix}{kind}RQ{number:010d}"


@dataclass
class Tally:
    """What one traffic class sent and what the collector answered."""

    requests: int = 0
    offered: int = 0
    accepted: int = 0
    sampled_out: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)
    seconds: float | None = None
    # (request key, rows it must have in ClickHouse: accepted minus sampled out) per 202.
    acked: list[tuple[str, int]] = field(default_factory=list)

    def count(self, status: int, offered: int, answer: dict[str, Any] | None, latency_s: float,
              key: str = "") -> None:
        self.requests += 1
        self.offered += offered
        self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1
        if status == 202 and answer is not None:
            accepted, sampled_out = int(answer["accepted"]), int(answer.get("sampled_out", 0))
            self.accepted += accepted
            self.sampled_out += sampled_out
            self.latencies_s.append(latency_s)
            if key:
                self.acked.append((key, accepted - sampled_out))

    def summary(self, seconds: float) -> dict[str, Any]:
        from outagewatch.bench.pipeline.figures import percentile

        seconds = self.seconds if self.seconds is not None else seconds
        ms = [s * 1000 for s in self.latencies_s]
        return {"requests": self.requests, "offered": self.offered, "accepted": self.accepted,
                "sampled_out": self.sampled_out, "statuses": dict(sorted(self.statuses.items())),
                "shed_503": self.statuses.get("503", 0), "rate_limited_429": self.statuses.get("429", 0),
                "accepted_per_s": round(self.accepted / seconds) if seconds > 0 else 0,
                "latency_ms_p50": _round(percentile(ms, 50)), "latency_ms_p99": _round(percentile(ms, 99))}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


class EventClock:
    """Event time of the load: starts at ``start_ms`` and runs ``speed`` times as fast as the wall clock.

    >>> clock = EventClock(start_ms=1_000_000, speed=10.0, wall0=5.0)
    >>> clock.at(5.0), clock.at(6.5)
    (1000000, 1015000)
    """

    def __init__(self, start_ms: int, speed: float, wall0: float) -> None:
        self.start_ms, self.speed, self.wall0 = start_ms, speed, wall0

    def at(self, wall: float) -> int:
        return self.start_ms + int((wall - self.wall0) * 1000 * self.speed)


def background_templates(plan: LoadPlan, count: int = 16) -> list[bytes]:
    """Request bodies with ``MARK`` (request number, in every report_id) and ``TS_MARK`` (event time) to fill in."""
    from core import schemas

    rng = random.Random(plan.seed)
    weights = [1 / (rank + 1) ** 1.1 for rank in range(plan.rooms)]
    out = []
    for t in range(count):
        reports = []
        for i, room in enumerate(rng.choices(range(plan.rooms), weights, k=plan.batch)):
            roll = rng.random()
            report: dict[str, Any] = {
                "report_id": f"{plan.prefix}b{MARK.decode()}-{t}-{i}", "ts": int(TS_MARK),
                "client_id": f"c{room}-{rng.randrange(5000)}", "room_id": f"room-{room}",
                "platform": rng.choice(("ios", "android", "web")), "kind": "heartbeat",
                "app_version": "5.2.1", "region": rng.choice(("eu-west", "us-east", "ap-south")),
            }
            if roll > 0.98:
                report.update(kind="error", error_code=rng.choice(ERROR_CODES))
            elif roll > 0.96:
                report["kind"] = "join"
            reports.append(report)
        out.append(schemas.encode({"reports": reports}))
    return out


def surge_template(plan: LoadPlan, surge: Surge) -> bytes:
    from core import schemas

    reports = [{"report_id": f"{plan.prefix}s{MARK.decode()}-{i}", "ts": int(TS_MARK),
                "client_id": f"s-{surge.name}-{MARK.decode()}-{i}", "room_id": surge.room, "platform": "ios",
                "kind": "error", "error_code": ONSET_CODE, "app_version": "5.2.1", "region": "eu-west"}
               for i in range(surge.batch)]
    return schemas.encode({"reports": reports})


def fill(template: bytes, request_number: int, event_ms: int) -> bytes:
    """A template with its request number and event time filled in.

    >>> fill(b'{"id":"RQ0000000000-1","ts":9999999999999}', 42, 1795323600000)
    b'{"id":"RQ0000000042-1","ts":1795323600000}'
    """
    return template.replace(MARK, b"RQ%010d" % request_number).replace(TS_MARK, b"%013d" % event_ms)


class _Load:
    def __init__(self, plan: LoadPlan) -> None:
        self.plan = plan
        self.tallies: dict[str, Tally] = {"background": Tally(), "watched": Tally()}
        if plan.surges:
            first = min(plan.surges, key=lambda s: s.at_s)
            self.tallies["background:calm"] = Tally(seconds=min(first.seconds, first.at_s))
        for surge in plan.surges:
            self.tallies[f"background:surge:{surge.name}"] = Tally(seconds=surge.seconds)
        self.onsets: dict[int, dict[str, Any]] = {}
        self.surges: list[dict[str, Any]] = []
        self.counter = 0
        self.headers = {"Authorization": f"Bearer {plan.api_key}", "Content-Type": "application/json"}

    def background_phase(self, elapsed: float) -> tuple[Tally, ...]:
        """The phase tallies a background request sent ``elapsed`` s into the load counts in, besides its own."""
        surges = sorted(self.plan.surges, key=lambda s: s.at_s)
        for surge in surges:
            if surge.at_s <= elapsed < surge.at_s + surge.seconds:
                return (self.tallies[f"background:surge:{surge.name}"],)
        if surges and surges[0].at_s - surges[0].seconds <= elapsed < surges[0].at_s:
            return (self.tallies["background:calm"],)
        return ()

    async def post(self, session: Any, body: bytes, offered: int, tally: Tally, key: str = "",
                   phases: tuple[Tally, ...] = ()) -> int:
        import aiohttp
        import msgspec

        sent = time.perf_counter()
        answer = None
        try:
            async with session.post(f"{self.plan.url}/v1/reports", data=body, headers=self.headers) as response:
                payload = await response.read()
                status = int(response.status)
            if status == 202:
                answer = msgspec.json.decode(payload)
        except (TimeoutError, aiohttp.ClientError):
            status = 599
        latency = time.perf_counter() - sent
        tally.count(status, offered, answer, latency, key)
        for counted in phases:
            counted.count(status, offered, answer, latency)
        return status

    def next_number(self) -> int:
        self.counter += 1
        return self.counter

    async def paced(self, session: Any, templates: list[bytes], batch: int, rate: float, connections: int,
                    start: float, end: float, tally: Tally, kind: str = "b",
                    phase: Callable[[float], tuple[Tally, ...]] | None = None) -> None:
        interval = batch * connections / rate if rate > 0 else 0.0

        async def connection(index: int) -> None:
            due = start + interval * index / connections
            while True:
                now = time.perf_counter()
                if interval:
                    if due > now:
                        await asyncio.sleep(due - now)
                        now = time.perf_counter()
                    due = max(due + interval, now)
                if now >= end:
                    return
                number = self.next_number()
                body = fill(templates[number % len(templates)], number, self.clock.at(now))
                phases = phase(now - start) if phase is not None else ()
                status = await self.post(session, body, batch, tally, request_key(self.plan.prefix, kind, number), phases)
                if status in (429, 503, 599) and not interval:
                    await asyncio.sleep(0.05)  # a polite client backs off a little

        await asyncio.gather(*(connection(i) for i in range(connections)))

    async def watched(self, session: Any, start: float, end: float) -> None:
        """Steady traffic of the watched rooms, and their onsets; retried until accepted."""
        from core import schemas

        plan = self.plan
        rng = random.Random(plan.seed + 1)
        per_event_s = plan.watched_listeners / plan.window_s
        carry = {room: 0.0 for room in plan.watched_rooms}
        onset_carry: dict[int, float] = {}
        next_client = {room: 0 for room in plan.watched_rooms}
        last_event = self.clock.at(start)
        while (now := time.perf_counter()) < end:
            event_ms = self.clock.at(now)
            span_s = (event_ms - last_event) / 1000
            last_event = event_ms
            for room in plan.watched_rooms:
                carry[room] += span_s * per_event_s
                beats, carry[room] = int(carry[room]), carry[room] - int(carry[room])
                reports: list[dict[str, Any]] = []
                key = request_key(plan.prefix, "w", self.next_number())
                for _ in range(beats):
                    client = next_client[room] % plan.watched_listeners
                    next_client[room] += 1
                    kind = "error" if rng.random() < 0.01 else "heartbeat"
                    reports.append({"report_id": f"{key}-{len(reports)}", "ts": event_ms,
                                    "client_id": f"w-{room}-{client}", "room_id": room, "platform": "android",
                                    "kind": kind, **({"error_code": rng.choice(ERROR_CODES)} if kind == "error" else {}),
                                    "app_version": "5.2.1", "region": "eu-west"})
                for index, onset in enumerate(plan.onsets):
                    if onset.room != room or now - start < onset.at_s:
                        continue
                    record = self.onsets.get(index)
                    if record is None:
                        record = self.onsets[index] = {
                            "room": room, "onset_event_ms": event_ms, "onset_wall_ms": int(time.time() * 1000),
                            "clients_per_window": onset.clients_per_window}
                        onset_carry[index] = 0.0
                    if event_ms - record["onset_event_ms"] >= onset.event_seconds * 1000:
                        continue
                    onset_carry[index] += span_s * onset.clients_per_window / plan.window_s
                    fresh = int(onset_carry[index])
                    onset_carry[index] -= fresh
                    for _ in range(fresh):
                        number = self.next_number()
                        reports.append({"report_id": f"{key}-{len(reports)}", "ts": event_ms,
                                        "client_id": f"o-{room}-{index}-{number}", "room_id": room,
                                        "platform": "android", "kind": "error", "error_code": ONSET_CODE,
                                        "app_version": "5.2.1", "region": "eu-west"})
                if reports:
                    body = schemas.encode({"reports": reports})
                    while await self.post(session, body, len(reports), self.tallies["watched"], key) != 202:
                        if time.perf_counter() > end + 30:
                            break
                        await asyncio.sleep(0.2)
            await asyncio.sleep(0.25)

    async def surge(self, session: Any, surge: Surge, start: float) -> None:
        await asyncio.sleep(max(0.0, start + surge.at_s - time.perf_counter()))
        tally = self.tallies.setdefault(f"surge:{surge.name}", Tally())
        began = time.perf_counter()
        self.surges.append({"name": surge.name, "room": surge.room, "event_ms": self.clock.at(began),
                            "wall_ms": int(time.time() * 1000), "connections": surge.connections})
        await self.paced(session, [surge_template(self.plan, surge)], surge.batch, surge.rate, surge.connections,
                         began, began + surge.seconds, tally, kind="s")
        tally.seconds = time.perf_counter() - began
        self.surges[-1]["seconds"] = round(tally.seconds, 2)

    async def run(self, part: str = "all") -> dict[str, Any]:
        import aiohttp

        plan = self.plan
        background, surges = part in ("all", "background"), part in ("all", "surges")
        templates = background_templates(plan)
        connections = (plan.connections + 1 if background else 0) + (sum(s.connections for s in plan.surges)
                                                                     if surges else 0)
        connector = aiohttp.TCPConnector(limit=connections, force_close=False)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            start = time.perf_counter()
            self.clock = EventClock(plan.event_start_ms, plan.speed, start)
            end = start + plan.seconds
            parts = [self.paced(session, templates, plan.batch, plan.rate, plan.connections, start, end,
                                self.tallies["background"], phase=self.background_phase),
                     self.watched(session, start, end)] if background else []
            parts += [self.surge(session, surge, start) for surge in plan.surges] if surges else []
            await asyncio.gather(*parts)
            elapsed = time.perf_counter() - start
        # The background's phase tallies count requests the background tally counts too: totals skip them.
        counted = [tally for name, tally in self.tallies.items() if not name.startswith("background:")]
        return {"seconds": round(elapsed, 2), "event_end_ms": self.clock.at(start + elapsed),
                "tallies": {name: tally.summary(elapsed) for name, tally in self.tallies.items()},
                "accepted": sum(t.accepted for t in counted),
                "acked": [pair for tally in counted for pair in tally.acked],
                "sampled_out": sum(t.sampled_out for t in counted),
                "onsets": list(self.onsets.values()), "surges": self.surges}


def run_plan(plan: LoadPlan, part: str = "all") -> dict[str, Any]:
    """Run the load, or its ``background`` (with the watched rooms) or its ``surges`` part (blocking; meant for
    a child process) and summarise it, with the CPU seconds the load generator itself used."""
    cpu = time.process_time()
    result = asyncio.run(_Load(plan).run(part))
    result["load_cpu_seconds"] = round(time.process_time() - cpu, 2)
    return result


def merge_parts(background: dict[str, Any], surges: dict[str, Any]) -> dict[str, Any]:
    """One summary of a load run in two parts: the background's tallies and onsets, the surges' own.

    >>> merged = merge_parts({"seconds": 10.0, "event_end_ms": 5, "tallies": {"background": {}}, "accepted": 3,
    ...                       "sampled_out": 1, "onsets": [], "surges": [], "load_cpu_seconds": 2.0},
    ...                      {"seconds": 10.5, "event_end_ms": 6, "tallies": {"surge:100x": {}}, "accepted": 4,
    ...                       "sampled_out": 2, "onsets": [], "surges": [{"name": "100x"}], "load_cpu_seconds": 3.0})
    >>> sorted(merged["tallies"]), merged["accepted"], merged["event_end_ms"], merged["load_cpu_seconds"]
    (['background', 'surge:100x'], 7, 6, 5.0)
    """
    surge_tallies = {name: tally for name, tally in surges["tallies"].items() if name.startswith("surge:")}
    return {"seconds": max(background["seconds"], surges["seconds"]),
            "event_end_ms": max(background["event_end_ms"], surges["event_end_ms"]),
            "tallies": {**background["tallies"], **surge_tallies},
            "accepted": background["accepted"] + surges["accepted"],
            "sampled_out": background["sampled_out"] + surges["sampled_out"],
            "onsets": background["onsets"], "surges": surges["surges"],
            "load_cpu_seconds": round(background["load_cpu_seconds"] + surges["load_cpu_seconds"], 2)}
