"""Closed windows -> decisions -> alert events: the one pipeline, live and offline.

Three pieces, each used unchanged by the Faust agents (``streams.detection_agents``)
and by ``outagewatch evaluate`` (``replay_alerts``):

- ``WindowDetection`` judges each closed ``RoomHealth``/``ServiceHealth`` with
  ``detectors.registry.RoomDetectors``. With a ``KeyStore`` (a Faust table
  partition) a key's detector state is read on first sight and written back
  after every window, one key at a time, so a restarted worker keeps its
  baselines. It also returns the ``AnomalyScore`` rows the dashboards plot.
- ``AlertStage`` runs one ``AlertEngine`` on an event-time clock (the newest
  window end seen, never wall time) and says for each alert event whether a
  muter (inhibition, silence, ``OnePagePerKey``, ``WideFirst``) keeps it from paging.
- ``replay_alerts`` chains recorded input -> ``streams.replay`` windows ->
  ``WindowDetection`` -> ``AlertStage`` in event time.

>>> from core.schemas import ClientReport
>>> T = 1_795_323_600_000
>>> def reports(window, errors):
...     for client in range(40):
...         kind = "error" if client < errors else "heartbeat"
...         yield ClientReport(report_id=f"{window}-{client}", ts=T + window * 10_000 + client, room_id="room-1",
...                            client_id=f"c{client}", kind=kind, platform="web", region="eu",
...                            error_code="crash" if kind == "error" else None)
>>> errors = [1] * 8 + [20] * 3 + [1] * 6
>>> stream = (r for window, count in enumerate(errors) for r in reports(window, count))
>>> events = list(replay_alerts(stream))
>>> for e in events:
...     if e.alert.scope in ("room", "global"):
...         print(e.alert.scope, e.alert.kind, e.alert.status, (e.alert.event_ts - T) // 1000, e.muted is not None)
room crash firing 90 False
room error_ratio firing 90 True
room crash resolved 140 False
room error_ratio resolved 140 False

Here the room is the whole world, so its global window is bad too, but the
global window is explained by the one failing room (``alerting/residual.py``):
no global incident. The room's specific ``crash`` alert pages; its generic
``error_ratio`` alert is recorded but muted while the specific one fires.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from alerting.engine import AlertEngine, restore_engine
from alerting.lifecycle import Tracked, renotify
from alerting.muter import Muter
from alerting.policy import AlertingPolicy
from core.schemas import (
    Alert,
    AnomalyScore,
    ClientReport,
    Decision,
    MetricSample,
    RoomHealth,
    ServiceHealth,
)
from detectors.cusum import Cusum
from detectors.ensemble import FORGERY, EnsembleConfig, RoomEnsemble, ServiceEnsemble
from detectors.ratio import ErrorRatio, wilson_bounds
from detectors.registry import RoomDetectors
from detectors.volume import VolumeBaseline
from streams import replay

log = logging.getLogger("outagewatch.detection")

Window = RoomHealth | ServiceHealth
Band = tuple[float, float]

_encode_state = msgspec.msgpack.Encoder().encode
_decode_state = msgspec.msgpack.Decoder(dict[str, Any]).decode


class KeyStore(Protocol):
    """Where one partition's per-key detector state lives (``streams.app.TableStore``)."""

    def get(self, key: bytes) -> bytes | None: ...

    def put(self, key: bytes, value: bytes) -> None: ...


def state_key(scope: str, key: str) -> bytes:
    return f"{scope}\x00{key}".encode()


@dataclass(frozen=True)
class Detected:
    decisions: list[Decision]
    scores: list[AnomalyScore]


class WindowDetection:
    """Per-key detectors over closed windows, state optionally kept in a ``KeyStore``."""

    def __init__(self, config: EnsembleConfig | None = None) -> None:
        self.registry = RoomDetectors(config)

    def forget(self) -> None:
        """Drop every cached key (after a rebalance the store holds the truth)."""
        self.registry = RoomDetectors(self.registry.config)

    def observe(self, window: Window, store: KeyStore | None = None, scores: bool = True) -> Detected:
        """Judge ``window``, learn from it, persist the key's state; return decisions and score rows."""
        scope, key = window.scope, window.key
        ensemble = _ensemble(self.registry, scope, key)
        if ensemble is None and store is not None:
            ensemble = self._restore(store, scope, key)
        bands = _bands(ensemble, window) if scores and ensemble is not None else {}
        decisions = self.registry.observe(window)
        if store is not None:
            store.put(state_key(scope, key), _encode_state(self.registry.key_state(scope, key)))
        rows = score_rows(window, decisions, bands) if scores else []
        return Detected(decisions, rows)

    def _restore(self, store: KeyStore, scope: str, key: str) -> RoomEnsemble | ServiceEnsemble | None:
        raw = store.get(state_key(scope, key))
        if raw is None:
            return None
        try:
            self.registry.restore_key(scope, key, _decode_state(raw))
        except (msgspec.DecodeError, KeyError, TypeError, ValueError) as exc:
            # A state we cannot read (older format, corruption) costs one warm-up, not the worker.
            log.warning("detector state of %s %s is unreadable (%s); starting it afresh", scope, key, exc)
            return None
        return _ensemble(self.registry, scope, key)


def _ensemble(registry: RoomDetectors, scope: str, key: str) -> RoomEnsemble | ServiceEnsemble | None:
    # RoomDetectors has no public accessor for one key's ensemble; reading it
    # (not changing it) is all the bands need, without re-serialising the key.
    return registry._keys.get((scope, key))  # noqa: SLF001


def volume_band(volume: VolumeBaseline, ts_ms: int) -> Band | None:
    """Baseline +- the alarm distance; the upper edge is where a count starts to alarm."""
    if not volume.ready:
        return None
    level, scale = volume.expected(ts_ms)
    linear = level + volume.z_alarm * scale
    # The score is the smaller of the linear and the Poisson (Anscombe) excess, so both must pass.
    poisson = (math.sqrt(max(level, 0.0) + 0.375) + volume.z_alarm / 2.0) ** 2 - 0.375 if volume.counts else linear
    return max(0.0, level - volume.z_alarm * scale), max(linear, poisson, volume.min_volume)


def ratio_band(ratio: ErrorRatio) -> Band | None:
    """The baseline ratio's lower bound, and ``alarm_lift`` times its upper bound.

    A window alarms when the lower bound of its own ratio passes the upper
    edge, so with few listeners the observed ratio must go a little higher.
    """
    if not ratio.ready:
        return None
    return wilson_bounds(ratio.errors, ratio.trials, ratio.z)[0], ratio.alarm_lift * ratio.baseline_upper()


def cusum_band(cusum: Cusum) -> Band:
    """The reference band: a ratio above the upper edge adds to the CUSUM sum."""
    spread = cusum.k * cusum.deviation()
    return max(0.0, cusum.mean - spread), cusum.mean + spread


def _bands(ensemble: RoomEnsemble | ServiceEnsemble, window: Window) -> dict[tuple[str, str], Band]:
    """The band of each (kind, detector) the ensemble reports, before it learns this window."""
    if not isinstance(ensemble, RoomEnsemble):
        return {}
    ts = window.window_start
    found: dict[tuple[str, str], Band | None] = {
        ("error_ratio", "error_ratio"): ratio_band(ensemble.ratio),
        ("error_ratio", "cusum"): cusum_band(ensemble.cusum),
        ("volume", "volume_baseline"): volume_band(ensemble.volume, ts),
        ("volume", "error_ratio"): ratio_band(ensemble.ratio),
    }
    for code in ensemble.seen_codes:
        found[(code, "volume_baseline")] = volume_band(ensemble.code_volume[code], ts)
        found[(code, "error_ratio")] = ratio_band(ensemble.code_ratio[code])
    return {slot: band for slot, band in found.items() if band is not None}


def score_rows(window: Window, decisions: Sequence[Decision], bands: dict[tuple[str, str], Band]) -> list[AnomalyScore]:
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


class EventClock:
    """``Clock`` at the newest window end seen: silences and the nflog age in event time."""

    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def advance_to(self, ms: int) -> None:
        self._now = max(self._now, ms)


@dataclass(frozen=True)
class Emitted:
    """An alert event and, when it must not page, why (inhibited by an incident, silenced)."""

    alert: Alert
    muted: str | None = None


GENERIC_KINDS = ("error_ratio", "volume")
# Aggregate keys that page as leaves (a version, a platform) yet span many rooms.
WIDE_LEAF_SCOPES = ("platform", "app_version")


class OnePagePerKey:
    """``Muter``: one page per key at a time; its other alerts are recorded but do not page.

    A failing room lifts several error codes at once and, with them, its
    overall error ratio and volume: one incident would otherwise page five or
    six times. The alert that pages is the key's earliest open one (by onset;
    at the same onset an error code before a generic kind, then by
    fingerprint), so exactly one pages, and always the same one.
    """

    def __init__(self, engine: AlertEngine) -> None:
        self.engine = engine

    @staticmethod
    def _rank(onset_ms: int, kind: str, fingerprint: str) -> tuple[int, int, str]:
        # A suspected forgery never outranks: forged reports must not mute the page of a real incident.
        if kind == FORGERY:
            return 2**62, 2, fingerprint
        return onset_ms, 1 if kind in GENERIC_KINDS else 0, fingerprint

    def mutes(self, alert: Alert) -> str | None:
        mine = self._rank(alert.starts_at, alert.kind, alert.fingerprint)
        for track in self.engine.open_alerts():
            if (track.scope == alert.scope and track.key == alert.key and track.fingerprint != alert.fingerprint
                    and self._rank(track.onset_ms, track.kind, track.fingerprint) < mine):
                return f"inhibited by the {track.kind} alert {track.fingerprint} of the same {alert.scope}"
        return None


class WideFirst:
    """``Muter``: while a wide incident is open, the narrower alerts it causes do not page.

    A crashing app version lifts the crash ratio of every big room with that
    version's listeners; an eu-west outage lifts the error ratio of every room
    with eu-west listeners, wherever it is hosted. Those rooms are affected,
    but paging each would bury the one page that names the cause. Wide
    incidents are the open cluster and global incidents and the open
    ``platform``/``app_version`` alerts. While one is open:

    - a room's alert of the incident's own error code does not page;
    - a generic alert (``error_ratio``, ``volume``) of a room, platform or
      version does not page (it names no cause of its own).

    A room failing in another way still pages through its own error code.
    """

    def __init__(self, engine: AlertEngine) -> None:
        self.engine = engine

    def mutes(self, alert: Alert) -> str | None:
        if alert.scope not in ("room", *WIDE_LEAF_SCOPES):
            return None
        generic = alert.kind in GENERIC_KINDS
        for track in self.engine.open_alerts():
            if track.fingerprint == alert.fingerprint:
                continue
            wide_leaf = track.scope in WIDE_LEAF_SCOPES
            if not (wide_leaf or track.scope in ("cluster", "global")):
                continue
            same_code = wide_leaf and alert.scope == "room" and track.kind == alert.kind
            if generic or same_code:
                return f"inhibited by the wider {track.scope} {track.key} {track.kind} alert {track.fingerprint}"
        return None


class AlertStage:
    """The one ``AlertEngine`` that sees every decision, driven by event time."""

    def __init__(self, policy: AlertingPolicy, state: dict[str, Any] | None = None) -> None:
        self.clock = EventClock(int(state["watermark"][1]) if state else 0)
        self.engine: AlertEngine = restore_engine(policy, self.clock, state)
        # Wider reasons first: an alert muted by both is held for the wider one.
        self.muters: list[Muter] = [*self.engine.muters, WideFirst(self.engine), OnePagePerKey(self.engine)]

    def step(self, decisions: Sequence[Decision]) -> list[Emitted]:
        """Feed one batch of decisions; return its alert events, each with its mute reason.

        A firing alert that was muted and is still open pages once its muter
        has let go for ``pending_windows`` window ends: a room that keeps
        failing after its region's incident resolved must not wait for the
        re-notification interval to be heard.
        """
        if not decisions:
            return []
        self.clock.advance_to(max(decision.window_end for decision in decisions))
        emitted = [Emitted(alert, self.mute_reason(alert)) for alert in self.engine.process(decisions)]
        fresh = {e.alert.fingerprint: e.alert for e in emitted if e.alert.status == "firing"}
        for track in self.engine.open_alerts():
            if track.fingerprint in fresh:
                # Held only by a wider alert or a silence: muted under an
                # earlier alert of its own key, the key has had its page.
                muter = self._muter_of(fresh[track.fingerprint])
                track.held, track.clear_steps = muter is not None and not isinstance(muter, OnePagePerKey), 0
            elif track.held:
                emitted.extend(self._release(track))
        return emitted

    def _release(self, track: Tracked) -> list[Emitted]:
        now = self.clock.now_ms()
        if not (track.last_bad and track.last_window_end == now):
            return []  # only a key still judged bad right now pages (not a closed room awaiting its stale expiry)
        muter = self._muter_of(track.alert("firing", now))
        if muter is not None:
            track.clear_steps = 0
            track.held = not isinstance(muter, OnePagePerKey)
            return []
        track.clear_steps += 1
        if track.clear_steps < self.engine.policy.lifecycle.pending_windows:
            return []
        track.held, track.clear_steps = False, 0
        return [Emitted(renotify(track, now))]

    def mute_reason(self, alert: Alert) -> str | None:
        # As the dispatcher does: a resolved always goes where its firing went.
        if alert.status == "resolved":
            return None
        for muter in self.muters:
            reason = muter.mutes(alert)
            if reason is not None:
                return reason
        return None

    def _muter_of(self, alert: Alert) -> Muter | None:
        return next((muter for muter in self.muters if muter.mutes(alert) is not None), None)

    def to_state(self) -> dict[str, Any]:
        return self.engine.to_state()


def by_window_end(decisions: Iterable[Decision]) -> list[list[Decision]]:
    """Split decisions into one batch per window end, oldest first (stable within a batch).

    A worker catching up receives many windows at once; stepping the engine
    (and the muters) window by window keeps what pages the same as live.

    >>> d = lambda key, end: Decision(scope="room", key=key, kind="crash", window_start=end - 10, window_end=end, bad=False)
    >>> [[x.key for x in batch] for batch in by_window_end([d("a", 20), d("b", 10), d("c", 20)])]
    [['b'], ['a', 'c']]
    """
    batches: dict[int, list[Decision]] = {}
    for decision in decisions:
        batches.setdefault(decision.window_end, []).append(decision)
    return [batches[end] for end in sorted(batches)]


def replay_alerts(
    reports: Iterable[ClientReport],
    samples: Iterable[MetricSample] = (),
    *,
    window_s: int = 10,
    lateness_s: int = 10,
    config: EnsembleConfig | None = None,
    policy: AlertingPolicy | None = None,
) -> Iterator[Emitted]:
    """Recorded reports (and metric samples), in arrival order, to alert events in event time.

    Windows closing at the same instant (rooms, their aggregates, services)
    reach the engine as one batch, as a live worker sees them at best.
    """
    detection = WindowDetection(config)
    stage = AlertStage(policy or AlertingPolicy())
    windows: Iterator[Window] = heapq.merge(
        replay.windows(reports, window_s, lateness_s), replay.service_windows(samples, window_s, lateness_s),
        key=lambda window: window.window_end)
    batch: list[Decision] = []
    batch_end: int | None = None
    for window in windows:
        if batch_end is not None and window.window_end != batch_end:
            yield from stage.step(batch)
            batch = []
        batch_end = window.window_end
        batch.extend(detection.observe(window, scores=False).decisions)
    yield from stage.step(batch)
