"""Pure reducers for one event-time window of client reports (no Faust here).

``RoomWindows`` is a ``streams.engine.Reducer`` in the Quix Streams style:
``initialize() -> state``, ``add(state, report) -> state`` and
``result(state, ...) -> RoomHealth``. The state of a room's
window is split into *cells*, one per (region, platform, app_version) seen
in the room, so the same state also yields the room's contribution to the
region, platform, app_version and global windows (``partials``) without a
second pass over the reports.

Definitions (every count is a sum of report weights):

- ``listeners``: distinct clients with a heartbeat or join in the window, each
  counted with the largest weight it reported (a sampled heartbeat of weight N
  stands for N listeners, a client heartbeating twice still counts once).
- ``error_clients_by_code[c]``: distinct clients that reported code ``c``, once
  per window and code (one spamming client counts once, as Downdetector counts
  one report per user), each with the smallest weight it reported (the
  collector samples a flooding room's errors by client: ``streams.distinct``);
  ``error_clients`` is their sum over codes.
- ``error_keep``: the smallest share of error reports the collector kept for
  the window (1 / the largest error weight; 1.0 when none was sampled): below
  1, the error counts are weighted estimates of a room flooding the collector.
- ``capped_error_clients_by_code[c]``: the same, but each source (the
  collector's stamp of the client's network, ``streams.source_cap``) counting
  for at most two clients: one script's thousand invented ids are two. What
  the detectors judge. A report without a stamp is its client's own source:
  a window of unstamped reports has exactly its error clients' counts here.
  ``error_sources`` is the distinct sources, per code, summed.
- ``error_ratio``: ``errors / listeners``; when nobody heartbeated but errors
  came in (everyone crashed), ``errors / error_clients``; 0 with no errors.
- latency: p50/p99 of ``latency_ms`` where reported, from a 1 % sketch.
- ``late_reports``: reports whose window had already closed; they are counted
  in the room's window at the watermark instead of being dropped (a late
  ``leave`` in its ``leaves`` too).

>>> from core.schemas import ClientReport
>>> def r(i, kind, client, **kw):
...     return ClientReport(report_id=f"r{i}", ts=1_795_323_600_000 + i, client_id=client,
...                         room_id="room-1", kind=kind, platform="ios", **kw)
>>> rooms = RoomWindows()
>>> state = rooms.initialize()
>>> for report in [r(1, "heartbeat", "a"), r(2, "heartbeat", "a"), r(3, "join", "b", weight=5),
...                r(4, "error", "a", error_code="crash"), r(5, "error", "a", error_code="crash"),
...                r(6, "error", "c", error_code="crash", latency_ms=40)]:
...     state = rooms.add(state, report)
>>> health = rooms.result(state, "room", "room-1", 0, 10_000)
>>> health.listeners, health.joins, health.errors, health.error_clients, health.error_ratio
(6.0, 5.0, 3.0, 2.0, 0.5)
>>> health.errors_by_code, round(health.latency_p50_ms, 1)  # the sketch is within 1 %
({'crash': 3.0}, 40.0)
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

import msgspec
from xxhash import xxh3_64_intdigest as xxh3_64

from core.schemas import ClientReport, RoomHealth
from streams import distinct, sketch
from streams.distinct import ERROR_CLIENTS_K, Distinct, client_hash
from streams.engine import Reducer
from streams.source_cap import SourceCapped, capped_total, merge_top, source_hash, top_sources

UNKNOWN = "unknown"
CELL_SEPARATOR = "\x1f"
# Ends the cell of an error client whose report carried the collector's source stamp.
STAMPED = "\x1e"
# A room window lists the sources of a code's error clients up to this many (RoomHealth.error_tokens_by_code).
ERROR_TOKENS_MAX = 32
# Scopes derived from a room window's cells, with the cell field that keys them.
SCOPES: tuple[str, ...] = ("region", "platform", "app_version", "global")


class Cell(msgspec.Struct, kw_only=True):
    """Counters of one (region, platform, app_version) slice of a window."""

    reports: float = 0.0
    joins: float = 0.0
    leaves: float = 0.0
    errors: float = 0.0
    errors_by_code: dict[str, float] = {}
    latency: dict[int, float] = {}
    late_reports: int = 0
    # The largest weight of an error report here: 1 / the collector's keep ratio (collectors.storm).
    error_weight: float = 1.0


class WindowState(msgspec.Struct, kw_only=True):
    """One room's window: what ``add`` folds into and a Faust table stores.

    ``applied_offset`` is the highest source offset folded in (replays at or
    below it are skipped); ``closed`` marks a window already published.
    Distinct clients are ``streams.distinct.Distinct`` sets: exact up to a few
    thousand clients, a bounded sample above, so a 700k-listener room's stored
    window stays ~40 KB.
    """

    cells: dict[str, Cell] = {}
    # Distinct listeners, each with its largest weight and the cell it counts in.
    listeners: Distinct = msgspec.field(default_factory=Distinct)
    # error_code -> distinct clients that reported it.
    error_clients: dict[str, Distinct] = {}
    # error_code -> the clients of stamped reports per source (at most two each): their capped count.
    error_sources: dict[str, SourceCapped] = {}
    applied_offset: int = -1
    closed: bool = False


class Partial(msgspec.Struct, kw_only=True):
    """A room window's (or many rooms') contribution to one scope window; adds up."""

    listeners: float = 0.0
    joins: float = 0.0
    leaves: float = 0.0
    reports: float = 0.0
    errors: float = 0.0
    errors_by_code: dict[str, float] = {}
    error_clients_by_code: dict[str, float] = {}
    # The capped count per code: the named sources' (their largest few, kept so a script spread over many
    # rooms is capped once more in the scope it lifts), plus the capped count of every other source.
    top_sources_by_code: dict[str, dict[int, float]] = {}
    capped_error_clients_by_code: dict[str, float] = {}
    error_sources: float = 0.0
    latency: dict[int, float] = {}
    late_reports: int = 0
    error_weight: float = 1.0


def cell_key(report: ClientReport) -> str:
    return CELL_SEPARATOR.join((report.region or UNKNOWN, report.platform, report.app_version or UNKNOWN))


def _cell(state: WindowState, key: str) -> Cell:
    cell = state.cells.get(key)
    if cell is None:
        cell = state.cells[key] = Cell()
    return cell


def _source_partials(by_cell: dict[str, Partial], code: str, capped: SourceCapped) -> None:
    """One code's capped counts into the cells' partials: each cell names its largest sources."""
    scale = capped.scale()
    named: dict[str, dict[int, float]] = {}
    for source, cells in capped.per_source().items():
        biggest = max(cells, key=lambda cell: (cells[cell], cell))
        weight = capped.weight_of(source)
        by_cell[biggest].error_sources += scale * weight
        for cell, value in cells.items():
            if scale == 1.0 and weight == 1.0:
                named.setdefault(cell, {})[source] = value
            else:  # a sample of a huge room's sources, or of a flooding room's clients: they stand for many
                rest = by_cell[cell].capped_error_clients_by_code
                rest[code] = rest.get(code, 0.0) + value * scale
    for cell, values in named.items():
        top, folded = top_sources(values)
        part = by_cell[cell]
        part.top_sources_by_code[code] = top
        part.capped_error_clients_by_code[code] = part.capped_error_clients_by_code.get(code, 0.0) + folded


def health_of(part: Partial, scope: str, key: str, window_start: int, window_end: int, region: str = "") -> RoomHealth:
    """A ``RoomHealth`` from summed counters (rooms and the other scopes share this)."""
    error_clients = sum(part.error_clients_by_code.values())
    codes = set(part.capped_error_clients_by_code) | set(part.top_sources_by_code)
    capped = {code: capped_total(part.top_sources_by_code.get(code, {}), part.capped_error_clients_by_code.get(code, 0.0))
              for code in sorted(codes)}
    if part.listeners > 0:
        error_ratio = part.errors / part.listeners
    elif error_clients > 0:
        error_ratio = part.errors / error_clients
    else:
        error_ratio = 0.0
    return RoomHealth(
        scope=scope,  # type: ignore[arg-type]
        key=key,
        window_start=window_start,
        window_end=window_end,
        listeners=part.listeners,
        joins=part.joins,
        leaves=part.leaves,
        reports=part.reports,
        errors=part.errors,
        error_ratio=error_ratio,
        errors_by_code=dict(sorted(part.errors_by_code.items())),
        error_clients=error_clients,
        error_clients_by_code=dict(sorted(part.error_clients_by_code.items())),
        capped_error_clients=sum(capped.values()),
        capped_error_clients_by_code=capped,
        error_sources=part.error_sources,
        latency_p50_ms=sketch.quantile(part.latency, 0.5),
        latency_p99_ms=sketch.quantile(part.latency, 0.99),
        late_reports=part.late_reports,
        region=region,
        error_keep=1.0 / part.error_weight if part.error_weight > 1.0 else 1.0,
    )


def error_tokens(state: WindowState) -> dict[str, list[int]]:
    """Per code, the sources of the window's error clients as sorted 32-bit tokens, while they are few.

    A stamped client counts as its source (``SourceCapped`` keeps every source it saw), an unstamped one
    as itself. A code is left out when it has more than ``ERROR_TOKENS_MAX`` of them, or when the
    collector sampled its clients (a weight above 1 stands for people the window never saw).

    >>> from core.schemas import ClientReport
    >>> state = RoomWindows().initialize()
    >>> for i, (client, source) in enumerate([("a", "net-1"), ("b", "net-1"), ("c", None), ("c", None)]):
    ...     state = ROOM_WINDOWS.add(state, ClientReport(report_id=f"r{i}", ts=1_795_323_600_000, client_id=client,
    ...                                                  room_id="room-1", kind="error", error_code="crash",
    ...                                                  platform="ios", source=source))
    >>> [len(tokens) for tokens in error_tokens(state).values()]   # net-1 and c
    [2]
    """
    out: dict[str, list[int]] = {}
    for code, clients in state.error_clients.items():
        entries = clients.entries
        if len(entries) > 4 * ERROR_TOKENS_MAX or not clients.exact:
            continue
        tokens: set[int] = set()
        for hashed, (weight, cell) in entries.items():
            if weight > 1.0:
                break
            if not cell.endswith(STAMPED):
                tokens.add(hashed >> 32)
        else:
            sources = state.error_sources.get(code)
            if sources is not None:
                tokens.update(source >> 32 for source in sources.entries)
            if len(tokens) <= ERROR_TOKENS_MAX:
                out[code] = sorted(tokens)
    return out


class RoomWindows(Reducer[ClientReport, WindowState, Partial]):
    """The reducer of a room's window of client reports (``streams.engine.Reducer``)."""

    scope = "room"
    state_type = WindowState
    partial_type = Partial
    # 4: error clients per source (streams.source_cap).
    format_version = 4
    # Both at once, in C: what the engine groups a message's reports by.
    key_and_ts = operator.attrgetter("room_id", "ts")

    def initialize(self) -> WindowState:
        return WindowState()

    def add(self, state: WindowState, report: ClientReport) -> WindowState:
        """Fold one report into the window (mutates and returns ``state``)."""
        return self.add_many(state, (report,))

    def add_many(self, state: WindowState, reports: Sequence[ClientReport]) -> WindowState:
        """Fold reports into the window: the hot path, so everything is a local here."""
        cells = state.cells
        # Distinct.add inlined for listeners (most reports are heartbeats); see streams.distinct.
        listeners = state.listeners
        seen, threshold, trim_at = listeners.entries, listeners.threshold, 2 * listeners.k
        error_clients = state.error_clients
        error_sources = state.error_sources
        # (region, platform, app_version) -> (cell, its key), for this call only.
        local: dict[tuple[str | None, str, str | None], tuple[Cell, str]] = {}
        log, ceil, inverse_log_gamma = math.log, math.ceil, sketch.INVERSE_LOG_GAMMA
        min_value, zero_bucket = sketch.MIN_VALUE, sketch.ZERO_BUCKET
        for report in reports:
            triple = (report.region, report.platform, report.app_version)
            found = local.get(triple)
            if found is None:
                key = CELL_SEPARATOR.join((report.region or UNKNOWN, report.platform, report.app_version or UNKNOWN))
                cell = cells.get(key)
                if cell is None:
                    cell = cells[key] = Cell()
                found = local[triple] = (cell, key)
            cell, key = found
            weight = report.weight
            kind = report.kind
            cell.reports += weight
            if kind == "heartbeat" or kind == "join":
                if kind == "join":
                    cell.joins += weight
                hashed = xxh3_64(report.client_id.encode())
                previous = seen.get(hashed)
                if previous is None:
                    if hashed < threshold:
                        seen[hashed] = (weight, key)
                        if len(seen) >= trim_at:
                            listeners.trim()
                            threshold = listeners.threshold
                elif weight > previous[0]:
                    seen[hashed] = (weight, previous[1])
            elif kind == "leave":
                cell.leaves += weight
            else:
                code = report.error_code or "other"
                cell.errors += weight
                if weight > cell.error_weight:
                    cell.error_weight = weight
                by_code = cell.errors_by_code
                by_code[code] = by_code.get(code, 0.0) + weight
                clients = error_clients.get(code)
                if clients is None:
                    clients = error_clients[code] = Distinct(ERROR_CLIENTS_K)
                hashed = client_hash(report.client_id)
                source = report.source
                if source:
                    # Marked in its cell: the partials count it through its source, capped, not as it is.
                    clients.add_smallest(hashed, weight, key + STAMPED)
                    capped = error_sources.get(code)
                    if capped is None:
                        capped = error_sources[code] = SourceCapped()
                    capped.add(source_hash(source), hashed, weight, key)
                else:  # a recording, a replay straight into Kafka: the client is its own source, never capped
                    clients.add_smallest(hashed, weight, key)
            latency = report.latency_ms
            if latency is not None:
                bucket = ceil(log(latency) * inverse_log_gamma) if latency > min_value else zero_bucket
                buckets = cell.latency
                buckets[bucket] = buckets.get(bucket, 0.0) + weight
        return state

    def add_late(self, state: WindowState, report: ClientReport) -> WindowState:
        """Count a report whose own window had closed, in this (open) window.

        A late ``leave`` still counts as a leave here: the people it stands for
        are gone, and the expected audience (``detectors.audience``) must not
        take their missing heartbeats for a silent failure.
        """
        cell = _cell(state, cell_key(report))
        cell.late_reports += 1
        if report.kind == "leave":
            cell.leaves += report.weight
        return state

    def partials(self, state: WindowState) -> dict[tuple[str, str], Partial]:
        """The window's contribution to every region/platform/app_version/global window."""
        by_cell: dict[str, Partial] = {}
        for key, cell in state.cells.items():
            by_cell[key] = Partial(reports=cell.reports, joins=cell.joins, leaves=cell.leaves, errors=cell.errors,
                                   errors_by_code=dict(cell.errors_by_code), latency=dict(cell.latency),
                                   late_reports=cell.late_reports, error_weight=cell.error_weight)
        for key, weight in state.listeners.totals().items():
            by_cell[key].listeners += weight
        for code, clients in state.error_clients.items():
            for key, weight in clients.totals().items():
                stamped = key.endswith(STAMPED)
                part = by_cell[key[:-1] if stamped else key]
                counts = part.error_clients_by_code
                counts[code] = counts.get(code, 0.0) + weight
                if not stamped:
                    rest = part.capped_error_clients_by_code
                    rest[code] = rest.get(code, 0.0) + weight
                    part.error_sources += weight
        for code, sources in state.error_sources.items():
            _source_partials(by_cell, code, sources)
        out: dict[tuple[str, str], Partial] = {}
        for key, part in by_cell.items():
            region, platform, app_version = key.split(CELL_SEPARATOR)
            for scope_key in (("region", region), ("platform", platform), ("app_version", app_version), ("global", "all")):
                self.merge(out.setdefault(scope_key, Partial()), part)
        return out

    def merge(self, into: Partial, other: Partial) -> Partial:
        into.listeners += other.listeners
        into.joins += other.joins
        into.leaves += other.leaves
        into.reports += other.reports
        into.errors += other.errors
        into.late_reports += other.late_reports
        into.error_weight = max(into.error_weight, other.error_weight)
        for code, value in other.errors_by_code.items():
            into.errors_by_code[code] = into.errors_by_code.get(code, 0.0) + value
        for code, value in other.error_clients_by_code.items():
            into.error_clients_by_code[code] = into.error_clients_by_code.get(code, 0.0) + value
        for code, value in other.capped_error_clients_by_code.items():
            into.capped_error_clients_by_code[code] = into.capped_error_clients_by_code.get(code, 0.0) + value
        merge_top(into.top_sources_by_code, other.top_sources_by_code, into.capped_error_clients_by_code)
        into.error_sources += other.error_sources
        sketch.merge(into.latency, other.latency)
        return into

    def result(self, state: WindowState, scope: str, key: str, window_start: int, window_end: int) -> RoomHealth:
        """The closed window of a room as published on ``room-health``."""
        return self.result_and_partials(state, scope, key, window_start, window_end)[0]

    def result_and_partials(self, state: WindowState, scope: str, key: str, window_start: int,
                            window_end: int) -> tuple[RoomHealth, dict[tuple[str, str], Partial]]:
        """``result`` and ``partials`` from one pass over the window (what the engine closes with)."""
        parts = self.partials(state)
        total = Partial()
        region_reports: dict[str, float] = {}
        for part_key, part in parts.items():
            if part_key[0] == "global":
                total = part
            elif part_key[0] == "region":
                region_reports[part_key[1]] = part.reports
        # A room's region is where most of its reports come from (ties: by name).
        region = min(region_reports, key=lambda name: (-region_reports[name], name)) if region_reports else ""
        # health_of copies what it keeps: the scope merger may add into these partials afterwards.
        health = health_of(total, scope, key, window_start, window_end, region=region)
        if state.error_clients:
            health.error_tokens_by_code = error_tokens(state)
        return health, parts

    def scope_result(self, part: Partial, scope: str, key: str, window_start: int, window_end: int) -> RoomHealth:
        """A region, platform, app_version or global window; a region's window names its region."""
        return health_of(part, scope, key, window_start, window_end, region=key if scope == "region" else "")

    def enc_hook(self, value: Any) -> Any:
        """How the engine's msgspec codecs store the ``Distinct`` and ``SourceCapped`` sets of a WindowState."""
        if isinstance(value, SourceCapped):
            return value.encode()
        return distinct.enc_hook(value)

    def dec_hook(self, kind: type, value: Any) -> Any:
        if kind is SourceCapped:
            return SourceCapped.decode(value)
        return distinct.dec_hook(kind, value)


# Stateless: one instance serves every partition, the worker's and the replay's.
ROOM_WINDOWS = RoomWindows()
