"""Synthetic history for the contract tables, generated inside ClickHouse.

Every statement is ``INSERT ... SELECT ... FROM system.numbers`` (or from
rows already generated), so 60M room windows never pass through Python; the
same SQL runs on ClickHouse 18.16 and on current ClickHouse (chdb). The panel
tests use it with a few rooms, ``outagewatch bench dashboards`` with 1,000.

What the data holds, so tests can check values, not just shapes:

- ``rooms`` rooms with 10-s windows over ``days`` days ending at ``end``,
  spread over five regions, a diurnal listener curve, 0.2 % errors;
- room ``room-1`` in an outage for the last 20 minutes (20 % errors, mostly
  ``details_not_available``), room ``room-2`` in one two days before ``end``;
- ``region`` and ``global`` windows aggregated from the rooms, as the
  stream workers emit them; the last global window re-emitted once with a
  later ``inserted_at`` and corrected listeners (``CORRECTED_LISTENERS``);
- services and clusters with metric arrays, server metrics per host, anomaly
  scores (detector ``errors`` per room, ``error_rate`` per service), and
  alert events: room-1 and service media firing, room-2 resolved.

>>> plan = SampleData(end=1795323600, days=1, rooms=3)
>>> plan.windows, plan.room_windows
(8640, 25920)
>>> len(plan.statements()) > 5
True
"""

from __future__ import annotations

from dataclasses import dataclass

from history.migrations import ERROR_CLIENT_COLUMNS, ERROR_CODE_COLUMNS

REGIONS = ("eu-west", "us-east", "us-west", "ap-south", "sa-east")
SERVICES = ("api", "media", "chat", "auth", "gateway")
CLUSTERS = ("eu-1", "us-1", "ap-1")
METRICS = ("cpu", "error_rate", "p99_latency_ms", "rps")
HOST_METRICS = ("cpu", "mem", "rps")
OUTAGE_ROOM = "room-1"
PAST_OUTAGE_ROOM = "room-2"
TROUBLED_SERVICE = "media"
CORRECTED_LISTENERS = 123456.0
# Share of errors per code, in ERROR_CODES order.
_CODE_SHARE = (0.4, 0.1, 0.1, 0.2, 0.05, 0.05, 0.05, 0.05)
_OUTAGE_CODE_SHARE = (0.85, 0.02, 0.05, 0.02, 0.02, 0.02, 0.01, 0.01)


def _array(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


@dataclass(frozen=True)
class SampleData:
    end: int
    days: float = 7.0
    rooms: int = 1000
    window_seconds: int = 10
    anomaly_rooms: int = 20
    metrics_hours: float = 24.0
    hosts_per_service: int = 3

    def __post_init__(self) -> None:
        if self.end % self.window_seconds:
            raise ValueError(f"end must be a multiple of the window length ({self.window_seconds} s)")
        if self.rooms < 3:
            raise ValueError("rooms must be at least 3 (room-1 and room-2 carry the outages)")

    @property
    def windows(self) -> int:
        return int(self.days * 86400) // self.window_seconds

    @property
    def room_windows(self) -> int:
        return self.windows * self.rooms

    @property
    def start(self) -> int:
        return self.end - self.windows * self.window_seconds

    def _room_rows(self) -> str:
        w = self.window_seconds
        ts = f"({self.start} + intDiv(number, {self.rooms}) * {w})"
        room = f"(number % {self.rooms})"
        outage = (f"(({room} = 1 AND {ts} >= {self.end - 1200}) OR "
                  f"({room} = 2 AND {ts} >= {self.end - 2 * 86400} AND {ts} < {self.end - 2 * 86400 + 1800}))")
        codes = ", ".join(
            f"errors * if(outage, {o}, {n}) AS {col}, errors * if(outage, {o}, {n}) * 0.8 AS {client_col}"
            for col, client_col, n, o in zip(ERROR_CODE_COLUMNS, ERROR_CLIENT_COLUMNS, _CODE_SHARE,
                                              _OUTAGE_CODE_SHARE, strict=True)
        )
        return f"""
INSERT INTO room_health (window_start, window_end, scope, key, region, listeners, joins, leaves, reports,
    errors, error_ratio, error_clients, late_reports, {", ".join(c for pair in zip(ERROR_CODE_COLUMNS, ERROR_CLIENT_COLUMNS, strict=True) for c in pair)},
    latency_p50_ms, latency_p99_ms, inserted_at)
SELECT window_start, window_end, 'room', key, region, listeners, joins, leaves, reports,
    errors, errors / reports, errors * 0.8, toUInt32(0), {", ".join(c for pair in zip(ERROR_CODE_COLUMNS, ERROR_CLIENT_COLUMNS, strict=True) for c in pair)},
    latency_p50_ms, latency_p99_ms, window_end
FROM (
    SELECT toDateTime({ts}) AS window_start, toDateTime({ts} + {w}) AS window_end,
        concat('room-', toString({room})) AS key,
        {_array(REGIONS)}[{room} % {len(REGIONS)} + 1] AS region,
        {outage} AS outage,
        floor((20 + (cityHash64({room}) % 2000) + if({room} = 0, 50000, 0))
              * (1 + 0.5 * sin(2 * pi() * ({ts} % 86400) / 86400))) AS listeners,
        floor(listeners * 0.02) AS joins, floor(listeners * 0.019) AS leaves,
        listeners / 3 + 1 AS reports,
        floor(reports * if(outage, 0.2, 0.002)) + 0 AS errors,
        {codes},
        80 + {room} % 50 AS latency_p50_ms, 300 + {room} % 200 AS latency_p99_ms
    FROM system.numbers LIMIT {self.room_windows}
)"""

    def _aggregate_rows(self, scope: str, key_expr: str, region_expr: str) -> str:
        sums = ", ".join(f"sum({c})" for pair in zip(ERROR_CODE_COLUMNS, ERROR_CLIENT_COLUMNS, strict=True) for c in pair)
        columns = ", ".join(c for pair in zip(ERROR_CODE_COLUMNS, ERROR_CLIENT_COLUMNS, strict=True) for c in pair)
        return f"""
INSERT INTO room_health (window_start, window_end, scope, key, region, listeners, joins, leaves, reports,
    errors, error_ratio, error_clients, late_reports, {columns}, latency_p50_ms, latency_p99_ms, inserted_at)
SELECT window_start, any(window_end), '{scope}', {key_expr}, {region_expr}, sum(listeners), sum(joins), sum(leaves),
    sum(reports), sum(errors), sum(errors) / sum(reports), sum(error_clients), toUInt32(0), {sums},
    avg(latency_p50_ms), max(latency_p99_ms), any(window_end)
FROM room_health WHERE scope = 'room'
GROUP BY window_start{", region" if scope == "region" else ""}"""

    def _corrected_global_window(self) -> str:
        last = self.end - self.window_seconds
        return f"""
INSERT INTO room_health (window_start, window_end, scope, key, listeners, reports, errors, error_ratio, inserted_at)
SELECT window_start, window_end, scope, key, {CORRECTED_LISTENERS}, reports, errors, error_ratio,
    inserted_at + 30
FROM room_health WHERE scope = 'global' AND window_start = toDateTime({last})"""

    def _service_rows(self) -> str:
        w = self.window_seconds
        services = len(SERVICES)
        ts = f"({self.start} + intDiv(number, {services}) * {w})"
        index = f"(number % {services})"
        troubled = SERVICES.index(TROUBLED_SERVICE)
        outage = f"({index} = {troubled} AND {ts} >= {self.end - 1200})"
        return f"""
INSERT INTO service_health (window_start, window_end, scope, key, cluster, samples, hosts, metric_names,
    metric_values, inserted_at)
SELECT toDateTime({ts}), toDateTime({ts} + {w}), 'service', {_array(SERVICES)}[{index} + 1],
    {_array(CLUSTERS)}[{index} % {len(CLUSTERS)} + 1], toUInt32(24), toUInt32({self.hosts_per_service}),
    {_array(METRICS)},
    [0.3 + 0.2 * sin(2 * pi() * ({ts} % 86400) / 86400) + 0.05 * {index},
     if({outage}, 0.2, 0.001), if({outage}, 2500, 120 + 10 * {index}),
     1000 * (1 + {index}) * (1 + 0.5 * sin(2 * pi() * ({ts} % 86400) / 86400))],
    toDateTime({ts} + {w})
FROM system.numbers LIMIT {self.windows * services}"""

    def _cluster_rows(self) -> str:
        return f"""
INSERT INTO service_health (window_start, window_end, scope, key, cluster, samples, hosts, metric_names,
    metric_values, inserted_at)
SELECT window_start, any(window_end), 'cluster', cluster, cluster, toUInt32(sum(samples)), toUInt32(sum(hosts)),
    {_array(METRICS)},
    [avg(metric_values[1]), max(metric_values[2]), max(metric_values[3]), sum(metric_values[4])],
    any(inserted_at)
FROM service_health WHERE scope = 'service' GROUP BY window_start, cluster"""

    def _server_metric_rows(self) -> str:
        step = 15
        samples = int(self.metrics_hours * 3600) // step
        per_step = len(SERVICES) * self.hosts_per_service * len(HOST_METRICS)
        ts = f"({self.end - samples * step} + intDiv(number, {per_step}) * {step})"
        service = f"(number % {len(SERVICES)})"
        host = f"(intDiv(number, {len(SERVICES)}) % {self.hosts_per_service})"
        metric = f"(intDiv(number, {len(SERVICES) * self.hosts_per_service}) % {len(HOST_METRICS)})"
        return f"""
INSERT INTO server_metrics (ts, ts_ms, service, cluster, host, name, value, label_names, label_values, inserted_at)
SELECT toDateTime({ts}), toUInt64({ts}) * 1000, {_array(SERVICES)}[{service} + 1],
    {_array(CLUSTERS)}[{service} % {len(CLUSTERS)} + 1],
    concat({_array(SERVICES)}[{service} + 1], '-', toString({host})),
    {_array(HOST_METRICS)}[{metric} + 1],
    multiIf({metric} = 0, 0.2 + 0.1 * {host}, {metric} = 1, 0.5 + 0.05 * {service}, 100 + 50 * {host}),
    ['job'], ['node'], toDateTime({ts})
FROM system.numbers LIMIT {samples * per_step}"""

    def _anomaly_rows(self) -> list[str]:
        rooms = min(self.anomaly_rooms, self.rooms)
        keys = ", ".join(f"'room-{i}'" for i in range(rooms))
        return [f"""
INSERT INTO anomaly_scores (window_start, scope, key, detector, observed, baseline, lower, upper, score, inserted_at)
SELECT window_start, 'room', key, 'errors', errors, reports * 0.002, reports * 0.001, reports * 0.004 + 2,
    least(1, greatest(0, (errors - (reports * 0.004 + 2)) / (reports * 0.004 + 2))), inserted_at
FROM room_health WHERE scope = 'room' AND key IN ({keys})""", """
INSERT INTO anomaly_scores (window_start, scope, key, detector, observed, baseline, lower, upper, score, inserted_at)
SELECT window_start, 'service', key, 'error_rate', metric_values[2], 0.001, 0, 0.01,
    least(1, greatest(0, (metric_values[2] - 0.01) * 10)), inserted_at
FROM service_health WHERE scope = 'service'"""]

    def _alert(self, fingerprint: str, status: str, scope: str, key: str, kind: str, severity: str,
               starts_at: int, event_ts: int, ends_at: int, summary: str, affected: tuple[str, ...]) -> str:
        return f"""
INSERT INTO alerts (event_ts, fingerprint, status, scope, key, kind, severity, starts_at, ends_at, summary,
    labels_json, evidence_json, affected, inserted_at)
SELECT toDateTime({event_ts}), '{fingerprint}', '{status}', '{scope}', '{key}', '{kind}', '{severity}',
    toDateTime({starts_at}), toDateTime({ends_at}), '{summary}', '{{}}', '[]', {_array(affected)},
    toDateTime({event_ts})"""

    def alert_statements(self) -> list[str]:
        past = self.end - 2 * 86400
        room1 = self.end - 1200
        media = self.end - 1200
        return [
            self._alert("fp-room-1", "firing", "room", OUTAGE_ROOM, "details_not_available", "critical",
                        room1, room1 + 40, 0, "room-1: Details not available spike", (OUTAGE_ROOM,)),
            self._alert("fp-room-2", "firing", "room", PAST_OUTAGE_ROOM, "details_not_available", "warning",
                        past, past + 30, 0, "room-2: Details not available spike", (PAST_OUTAGE_ROOM,)),
            self._alert("fp-room-2", "resolved", "room", PAST_OUTAGE_ROOM, "details_not_available", "warning",
                        past, past + 1830, past + 1830, "room-2: Details not available spike", (PAST_OUTAGE_ROOM,)),
            # A replay of the sink inserts the same event twice: the panels must count it once.
            self._alert("fp-room-2", "resolved", "room", PAST_OUTAGE_ROOM, "details_not_available", "warning",
                        past, past + 1830, past + 1830, "room-2: Details not available spike", (PAST_OUTAGE_ROOM,)),
            self._alert("fp-media", "firing", "service", TROUBLED_SERVICE, "error_rate", "critical",
                        media, media + 60, 0, "media: error rate 20%", (OUTAGE_ROOM, "room-0")),
        ]

    def statements(self) -> list[str]:
        return [
            self._room_rows(),
            self._aggregate_rows("region", "region", "region"),
            self._aggregate_rows("global", "'all'", "''"),
            self._corrected_global_window(),
            self._service_rows(),
            self._cluster_rows(),
            self._server_metric_rows(),
            *self._anomaly_rows(),
            *self.alert_statements(),
        ]
