"""Closed windows -> decisions -> alert events: the one pipeline, live and offline.

The glue between detection and alerting, used unchanged by the Faust agents
(``streams.detection_agents``) and by ``outagewatch evaluate`` (``replay_alerts``):

- ``WindowDetection`` judges each closed ``RoomHealth``/``ServiceHealth`` with
  ``detectors.registry.RoomDetectors``. With a ``KeyStore`` (a Faust table
  partition) a key's detector state is read on first sight and written back
  after every window, one key at a time, so a restarted worker keeps its
  baselines. It also returns the ``AnomalyScore`` rows the dashboards plot.
- ``replay_alerts`` chains recorded input -> ``streams.replay`` windows ->
  ``WindowDetection`` -> ``alerting.stage.AlertStage`` in event time.
- ``WindowDetection.judge_dark(upto_end)`` judges the windows known keys
  missed (``streams.dark``): in a replay each window end the other keys
  closed is how far event time has got; in the live worker, the event-time
  mark read on the key's partition.

>>> from core.schemas import ClientReport
>>> T = 1_795_323_600_000
>>> def reports(window, errors):
...     for client in range(40):
...         kind = "error" if client < errors else "heartbeat"
...         yield ClientReport(report_id=f"{window}-{client}", ts=T + window * 10_000 + client, room_id="room-1",
...                            client_id=f"c{client}", kind=kind, platform="web", region="eu",
...                            error_code="crash" if kind == "error" else None)
>>> errors = [1] * 8 + [20] * 3 + [1] * 9
>>> stream = (r for window, count in enumerate(errors) for r in reports(window, count))
>>> events = list(replay_alerts(stream))
>>> for e in events:
...     if e.alert.scope in ("room", "global"):
...         print(e.alert.scope, e.alert.kind, e.alert.status, (e.alert.event_ts - T) // 1000, e.muted is not None)
room crash firing 90 False
room error_ratio firing 90 True
room crash resolved 170 False
room error_ratio resolved 170 False

Here the room is the whole world, so its global window is bad too, but the
global window is explained by the one failing room (``alerting/residual.py``):
no global incident. The room's specific ``crash`` alert pages; its generic
``error_ratio`` alert is recorded but muted while the specific one fires.
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from alerting.forward import DecisionForwarder
from alerting.policy import AlertingPolicy
from alerting.stage import AlertStage, Emitted
from core.config import EventTimeSettings
from core.schemas import (
    AnomalyScore,
    ClientReport,
    Decision,
    MetricSample,
    RoomHealth,
    ServiceHealth,
)
from core.timeutil import ArrivalBound
from detectors.ensemble import Bands, EnsembleConfig
from detectors.registry import RoomDetectors
from streams import replay
from streams.dark import DarkKeys
from streams.recorded_arrival import RecordedArrival

log = logging.getLogger("outagewatch.detection")

Window = RoomHealth | ServiceHealth

_encode_state = msgspec.msgpack.Encoder().encode
_decode_state = msgspec.msgpack.Decoder(dict[str, Any]).decode


class KeyStore(Protocol):
    """Where one partition's per-key detector state lives (``streams.faust_io.TableStore``)."""

    def get(self, key: bytes) -> bytes | None: ...

    def put(self, key: bytes, value: bytes) -> None: ...


def state_key(scope: str, key: str) -> bytes:
    return f"{scope}\x00{key}".encode()


@dataclass(frozen=True)
class Detected:
    decisions: list[Decision]
    scores: list[AnomalyScore]
    # The partition of each decision's key, in order (its forwarder: ``alerting.forward``)
    partitions: list[int] = dataclasses.field(default_factory=list)


class WindowDetection:
    """Per-key detectors over closed windows, state optionally kept in a ``KeyStore``.

    ``dark_give_up_s``: how long a key from which nothing arrives keeps being
    judged (``streams.dark``); ``window_s`` the windows' length.
    """

    def __init__(self, config: EnsembleConfig | None = None, *, window_s: int = 10,
                 dark_give_up_s: int = 600) -> None:
        config = config or EnsembleConfig()
        # The audience counts a window's share of each listener's heartbeats: it must know the windows' length.
        config = dataclasses.replace(config, audience={"window_s": float(window_s), **config.audience})
        self.registry = RoomDetectors(config)
        self.dark = DarkKeys(window_s * 1000, dark_give_up_s * 1000, self.registry.config.max_keys)

    def forget(self) -> None:
        """Drop every cached key (after a rebalance the store holds the truth, and keys may have moved)."""
        self.registry = RoomDetectors(self.registry.config)
        self.dark.forget()

    def observe(self, window: Window, store: KeyStore | None = None, scores: bool = True,
                partition: int = 0) -> Detected:
        """Judge ``window``, learn from it, persist the key's state; return decisions and score rows.

        A room-health key's windows missed since it was last judged (a gap
        no event-time mark covered yet) are judged dark first, in order.
        """
        scope, key = window.scope, window.key
        if store is not None and (scope, key) not in self.registry:
            self._restore(store, scope, key)
        detected = Detected([], [])
        if isinstance(window, RoomHealth):
            for empty in self.dark.missed(window):
                self._judge_empty(empty, partition, store, scores, detected)
        bands = self.registry.bands(window) if scores else {}
        decisions = self.registry.observe(window)
        if store is not None:
            store.put(state_key(scope, key), _encode_state(self.registry.key_state(scope, key)))
        if isinstance(window, RoomHealth):
            self.dark.seen(window, partition)
        detected.decisions.extend(decisions)
        detected.partitions.extend(partition for _ in decisions)
        if scores:
            detected.scores.extend(score_rows(window, decisions, bands))
        return detected

    def judge_dark(self, upto_end: int, stores: Callable[[int], KeyStore | None] | None = None,
                   scores: bool = True, partition: int | None = None) -> Detected:
        """Judge every window up to ``upto_end`` that a known key missed (nothing arrived for it).

        ``stores`` gives the ``KeyStore`` of a key's partition (live);
        ``partition``: only the keys of that partition (``DarkKeys.due``).
        The decisions come oldest window first.
        """
        detected = Detected([], [], [])
        for window, part in self.dark.due(upto_end, partition):
            store = stores(part) if stores is not None else None
            if store is not None and (window.scope, window.key) not in self.registry:
                self._restore(store, window.scope, window.key)
            self._judge_empty(window, part, store, scores, detected)
        return detected

    def _judge_empty(self, window: RoomHealth, partition: int, store: KeyStore | None, scores: bool,
                     detected: Detected) -> None:
        """One empty window a known key missed -> its decisions (and their partitions, score rows) in ``detected``."""
        scope, key = window.scope, window.key
        bands = self.registry.bands(window) if scores else {}
        judged = self.registry.observe_dark(window)
        if store is not None and judged:
            store.put(state_key(scope, key), _encode_state(self.registry.key_state(scope, key)))
        detected.decisions.extend(judged)
        detected.partitions.extend(partition for _ in judged)
        if scores:
            detected.scores.extend(score_rows(window, judged, bands))

    def _restore(self, store: KeyStore, scope: str, key: str) -> None:
        raw = store.get(state_key(scope, key))
        if raw is None:
            return
        try:
            self.registry.restore_key(scope, key, _decode_state(raw))
        except (msgspec.DecodeError, KeyError, TypeError, ValueError) as exc:
            # A state we cannot read (older format, corruption) costs one warm-up, not the worker.
            log.warning("detector state of %s %s is unreadable (%s); starting it afresh", scope, key, exc)


def score_rows(window: Window, decisions: Sequence[Decision], bands: Bands) -> list[AnomalyScore]:
    """One ``AnomalyScore`` per (decision, evidence); no band known (warm-up) -> lower = upper = baseline."""
    rows = []
    for decision in decisions:
        for evidence in decision.evidence:
            lower, upper = bands.get((decision.kind, evidence.detector), (evidence.baseline, evidence.baseline))
            rows.append(AnomalyScore(
                scope=window.scope, key=window.key, window_start=window.window_start, window_end=window.window_end,
                detector=f"{decision.kind}/{evidence.detector}", observed=evidence.observed,
                baseline=evidence.baseline, lower=round(lower, 6), upper=round(upper, 6), score=evidence.score))
    return rows


def replay_alerts(
    reports: Iterable[ClientReport],
    samples: Iterable[MetricSample] = (),
    *,
    window_s: int = 10,
    lateness_s: int = 10,
    config: EnsembleConfig | None = None,
    policy: AlertingPolicy | None = None,
    dark_give_up_s: int = 600,
    forward: bool = True,
    bound: ArrivalBound | None = None,
) -> Iterator[Emitted]:
    """Recorded reports (and metric samples), in arrival order, to alert events in event time.

    Windows closing at the same instant (rooms, their aggregates, services)
    reach the engine as one batch, as a live worker sees them at best. A
    known key missing from a batch, and every window end no report reached
    (the whole stream dark), is judged as a dark window (``judge_dark``):
    the replay has no wall clock, so the windows the other keys close, or
    the first ones after the silence, are its clock.

    A recording's last window, cut off by its end, is not judged: its
    missing seconds are no audience loss. A report or sample dated too far
    from the recording's arrival clock (``bound``, the worker's
    ``event_time`` bound by default) is refused, as the worker refuses it
    (``streams.recorded_arrival``): one client dated 2099 cannot close every
    window at once.

    ``forward``: the room decisions pass through a ``DecisionForwarder`` as
    the worker's detector partitions send them (only those that can change an
    alert, plus a ``LeafSummary``); False feeds the engine every decision.
    The alert events are the same either way.
    """
    detection = WindowDetection(config, window_s=window_s, dark_give_up_s=dark_give_up_s)
    policy = policy or AlertingPolicy()
    stage = AlertStage(policy)
    forwarder = DecisionForwarder(policy, "replay") if forward else None
    bound = bound or EventTimeSettings().bound()
    report_clock, sample_clock = RecordedArrival(bound), RecordedArrival(bound)
    windows: Iterator[Window] = heapq.merge(
        replay.windows(report_clock.admit(reports), window_s, lateness_s, complete_only=True),
        replay.service_windows(sample_clock.admit(samples), window_s, lateness_s, complete_only=True),
        key=lambda window: window.window_end)
    batch: list[Decision] = []
    batch_end: int | None = None
    for window in windows:
        if batch_end is not None and window.window_end != batch_end:
            yield from _step_with_dark(stage, forwarder, detection, batch, batch_end,
                                       window.window_end - window_s * 1000)
            batch = []
        batch_end = window.window_end
        batch.extend(detection.observe(window, scores=False).decisions)
    if batch_end is not None:
        yield from _step_with_dark(stage, forwarder, detection, batch, batch_end, batch_end)
    for name, clock in (("reports", report_clock), ("metric samples", sample_clock)):
        if clock.refused:
            log.warning("%d %s refused, dated too far from the recording's time (broken clocks?); first: %s",
                        clock.refused, name, "; ".join(clock.reasons[:2]))


def _step_with_dark(stage: AlertStage, forwarder: DecisionForwarder | None, detection: WindowDetection,
                    batch: list[Decision], batch_end: int, upto_end: int) -> Iterator[Emitted]:
    """Step ``batch`` with the dark windows of its end, then every dark window end up to ``upto_end``."""
    dark = detection.judge_dark(max(batch_end, upto_end), scores=False).decisions
    yield from _step(stage, forwarder, [*batch, *(d for d in dark if d.window_end == batch_end)])
    later: dict[int, list[Decision]] = {}
    for decision in dark:
        if decision.window_end != batch_end:
            later.setdefault(decision.window_end, []).append(decision)
    for end in sorted(later):
        yield from _step(stage, forwarder, later[end])


def _step(stage: AlertStage, forwarder: DecisionForwarder | None, decisions: list[Decision]) -> list[Emitted]:
    if forwarder is None or not decisions:
        return stage.step(decisions)
    forwarded, summary = forwarder.forward(decisions)
    return stage.step(forwarded, [summary])
