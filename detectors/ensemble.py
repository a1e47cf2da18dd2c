"""From detector scores to decisions: what one key's window means for on-call.

Every detector scores 0.5 at its own alarm line (see ``detectors.base``);
this module combines them, per kind, into one ``Decision`` per kind judged,
bad or not (the good ones let alerting resolve). For a ``RoomHealth`` window
(a room, or a region/platform/app_version/global aggregate):

- one kind per error code seen on this key (``details_not_available``,
  ``crash``...): the code's distinct error clients are far above their
  baseline (``VolumeBaseline``, Downdetector's method) **and** the code's
  share of listeners is proven above its normal (``ErrorRatio``). The ratio is
  what keeps a benign surge of listeners quiet: more listeners, more error
  clients, same ratio. Counting distinct clients is what keeps one client
  spamming errors quiet. A volume detector still in warm-up (a new room) does
  not veto the ratio.
- ``join_failed`` is judged as a share of join attempts (the window's joins,
  at least the mean of the key's last ``JOIN_WINDOWS`` and the most of
  its last ``JOIN_LUMP_WINDOWS``, plus its failed
  joins) **and** as a share of listeners: both must be proven up. A room
  filling at 50k a minute makes far more attempts than its listeners'
  rhythm; a sampled crowd's joins come in lumps while its failures come one
  by one (``PER_ATTEMPT_CODES``).
- ``error_ratio``: all distinct error clients but failed joins over listeners, proven above
  normal by ``ErrorRatio``, or a sustained rise by ``Cusum`` (slow
  degradations the baselines would absorb) while the current window is still
  above the CUSUM reference and the ratio score is at least ``confirm_score``.
  The CUSUM sees only windows expecting ``cusum_min_expected`` error clients,
  each counting at most the deviations its own binomial noise allows.
- ``volume``: all distinct error clients above baseline, confirmed by a ratio
  score of at least ``confirm_score`` (the surge is not just more listeners).
- ``heartbeat_loss``: the key's heartbeats fell short of its expected
  audience (``Audience``), unexplained by leaves: a silent failure. A window
  in which nothing arrived for a known key (``streams.dark``) is judged on
  this kind alone (``observe_dark``): errors cannot be judged on nothing.

Listeners, wherever a share is of them, are the window's, at least their
mean over the key's last heartbeat period (the audience's ``span``): a
sampled crowd's heavy heartbeat is in one window of three, its errors in
all. And no error verdict is bad unless its count is beyond chance at the
key's learned normal (``proven``: an exact Poisson tail at most
``window_alpha``), which the Wilson bounds are too kind to small counts
to promise.

A bad error-code or ``error_ratio`` verdict whose previous window was
already elevated (scored above 0: proven above normal, short of the alarm,
with at least ``min_error_clients``, the least any verdict rests on) is
judged once more on both windows' counts together. If that pooled ratio
is past the alarm too, the decision's ``since`` reaches back to the previous
window: the rise began there, and alerting counts it as a pending window. A
one-window blip has no elevated window before it, so it still waits.

Nothing is bad below ``min_error_clients`` distinct error clients: tiny rooms
never page. Error clients are counted at most ``CLIENTS_PER_SOURCE`` per
source (``RoomHealth.capped_error_clients``: the collector stamps each report
with its client's network), so one script's invented client ids cannot page
an outage. When a room's uncapped count exceeds its capped one by at least
``forgery_min_clients`` and by at least the capped count itself (most of its
error clients come from a few networks), the room gets one more kind,
``suspected_forgery``: a warning, never critical, and without the region or
cluster label that would group it into an incident.

For a ``ServiceHealth`` window, the one kind is ``server_anomaly``
(``ServerAnomaly``: IsolationForest plus per-metric robust z), bad only
when a symptom metric (``symptom_lifts``: error rates at 1.3 times their
normal, p99 latency at 2 times) is that far up and past the z alarm on its
own: a load rise moves CPU, connections and a little latency, and is not an
incident; errors a third above normal, beyond noise, are. A ``service``
window spanning several clusters is also judged per cluster, each with its
own forest (``ServiceEnsemble``): a service failing in one cluster is
diluted in its service-wide means.

Learning happens after judging, so a window never judges itself: volume
baselines learn every window (their own clipping keeps spikes out), the
ratio learns a window it finds anomalous at ``anomalous_weight``, the server
forest learns only normal windows (and one anomalous window in
``anomalous_learn_every``, so a permanent new normal is eventually accepted).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal, Self

import msgspec

from core.schemas import CLIENTS_PER_SOURCE, ERROR_CODES, Decision, Evidence, RoomHealth, ServiceHealth
from detectors.audience import Audience
from detectors.base import Band, poisson_deviance, poisson_tail, squash
from detectors.cusum import Cusum
from detectors.ratio import ErrorRatio
from detectors.server import ServerAnomaly
from detectors.span import NOTHING, ErrorSpans, SpanVerdict
from detectors.volume import VolumeBaseline

Severity = Literal["info", "warning", "critical"]
# (decision kind, evidence detector) -> that detector's band, e.g. ("crash", "error_ratio")
Bands = dict[tuple[str, str], Band]


@dataclass(frozen=True)
class EnsembleConfig:
    """How detectors are built and combined; the detector parameter dicts override their defaults."""

    threshold: float = 0.5
    confirm_score: float = 0.4
    min_error_clients: float = 5.0
    # The most a bad error verdict's count may be chance at the key's normal ratio (``proven``). At most one
    # false page per 100 room-days is about 1e-6 per key and window; a warning pages on a second window bad
    # or suspect, so 1e-6 per kind keeps chance pages well inside it. Without it a region of 96 listeners
    # paged on 7 error clients against 0.96 expected (6e-5); 1e-7 held a region failure's second room
    # (7 of 154 against 0.46, 5e-7) a minute, and its cluster incident with it.
    window_alpha: float = 1e-6
    critical_score: float = 0.8
    critical_error_clients: float = 1000.0
    anomalous_weight: float = 0.05
    anomalous_learn_every: int = 10
    cusum_min_listeners: float = 50.0
    # Error clients a window must expect at the key's normal ratio for the CUSUM to judge or learn it. Below
    # that a window's ratio is mostly 0 and now and then one client over a few dozen listeners: skewed
    # far past the normal the CUSUM assumes, its reference (each step clipped) learns low and the sum
    # wanders up on noise (a version down to 79 listeners, its sum at 87, paged on 5 error clients).
    cusum_min_expected: float = 2.0
    # Error clients beyond the capped count (CLIENTS_PER_SOURCE per source) that make a suspected forgery.
    forgery_min_clients: float = 20.0
    max_keys: int = 100_000
    # Per-cluster forests a service keeps (``ServiceEnsemble``); clusters past it are judged only in the
    # whole. A forest's state is ~36 KB of training rows, and a service's state is one message of the
    # worker's changelog (Kafka's default limit is 1 MB): 16 keeps it near 600 KB.
    max_clusters_per_service: int = 16
    volume: dict[str, Any] = field(default_factory=lambda: {"warmup": 12, "half_life": 90.0, "z_alarm": 4.0})
    ratio: dict[str, Any] = field(default_factory=lambda: {"warmup": 3, "alarm_lift": 2.0, "z": 3.0})
    cusum: dict[str, Any] = field(default_factory=lambda: {"warmup": 30, "h": 10.0, "rel_floor": 0.25})
    # The expected audience (``detectors.audience``): heartbeat_s and window_s must match the clients and
    # the windows (``streams.window_seconds``).
    audience: dict[str, Any] = field(default_factory=lambda: {"warmup": 6})
    # A room's error kinds judged over the last minute and five minutes too (``detectors.span``), when set
    # (``SPANS_ON`` is the tuned setting). Off by default: on the seven scenarios it paged rooms inside
    # regional_outage and a cluster of app_version_crash's rooms (6 false pages against none), and the
    # sweep's small-room misses stay missed; see docs/evaluation.md.
    span: dict[str, Any] | None = None
    # A kind whose span scores this much (its Chernoff bound near 2 %, its lift a quarter) is learned at
    # ``anomalous_weight``: learned whole, a five-minute trickle tripled a small room's baseline before it proved.
    span_suspect_score: float = 0.2
    # What changes for a region, platform, app_version or the global window: its window must be 60% short.
    # A partial drop there is a room's or a narrower slice's to page (each pages its own), and a slice of a
    # few heavy sampled heartbeats loses half of them when one leave report comes minutes late; a slice gone
    # dark is still bad in its first empty window, with its rooms, so its wide incident holds their pages.
    aggregate_audience: dict[str, Any] = field(default_factory=lambda: {"window_drop": 0.6})
    server: dict[str, Any] = field(default_factory=dict)
    # A service under more load is not an incident: a server window is bad only
    # when a symptom metric (its name contains one of these keys) is at least
    # the key's value times its normal and itself past the server's z alarm (CPU and
    # connections alone never page; nor does noise on a small count). Latency
    # rises with load, so it must double; errors do not, and a third more of
    # them is the first sign of a slow degradation (slow_degradation: the
    # cluster pages at 19 s instead of 59 s).
    symptom_lifts: dict[str, float] = field(default_factory=lambda: {"error": 1.3, "latency": 2.0})


FORGERY = "suspected_forgery"
# ``EnsembleConfig.span`` with the spans on: one and five minutes, alpha 1e-7, three sources.
SPANS_ON: dict[str, Any] = {"spans": (6, 30), "alpha": 1e-7, "min_sources": 3}
# The kind of a silent failure: a key's heartbeats fell short of its expected audience (or stopped).
HEARTBEAT_LOSS = "heartbeat_loss"
# Windows a room keeps judging ``suspected_forgery`` (good) after its last bad one, so the alert can resolve.
FORGERY_FOLLOW_UP = 10
# Codes a client reports instead of joining: a share of the join attempts (joins plus those failures), not of
# the listeners. A room filling at 50k a minute makes far more attempts than its listeners' normal rhythm, and
# at the usual one failure in a hundred its failed joins lifted its region, platform and version over a
# baseline learned per listener (mega_room's false pages). Nor are they in ``error_ratio``, which is per listener.
PER_ATTEMPT_CODES = frozenset({"join_failed"})
# Windows whose mean joins a window's join attempts are at least. Joins of a sampled crowd arrive in lumps
# (one report standing for 2,700 people): a region can see none for a window while its failed joins,
# reported one by one, keep coming.
JOIN_WINDOWS = 6
# ... and at least the largest of its last windows up to this many: a lump stands for people arriving over
# the next windows too. A room born a mega-room has no mean yet (its first lump is most of its key's joins,
# and the region's earlier windows dilute it), and a window without a lump made its usual one failure in a
# hundred a 6% join failure of its region and versions (mega_room seed 6).
JOIN_LUMP_WINDOWS = 3
# The evidence of a per-attempt code's share of listeners (its ``error_ratio`` evidence is per attempt).
LISTENER_RATIO = "listener_ratio"


def exposure(code: str, clients: float, listeners: float, joins: float) -> float:
    """What ``code``'s ``clients`` are a share of: the window's listeners, or its join attempts.

    >>> exposure("crash", 12.0, 4_000.0, 900.0), exposure("join_failed", 12.0, 4_000.0, 900.0)
    (4000.0, 912.0)
    """
    return joins + clients if code in PER_ATTEMPT_CODES else listeners


def error_clients(window: RoomHealth) -> tuple[float, dict[str, float]]:
    """The distinct error clients a window is judged on, in all and by code: capped per source when the
    window counted sources, as published before that otherwise."""
    if window.capped_error_clients is None or window.capped_error_clients_by_code is None:
        return window.error_clients, window.error_clients_by_code
    return window.capped_error_clients, window.capped_error_clients_by_code


def proven(ratio: ErrorRatio, errors: float, trials: float, alpha: float) -> bool:
    """Whether ``errors`` among ``trials`` are beyond chance (at most ``alpha``) at ``ratio``'s normal, exactly.

    The ratio's Wilson bounds are an approximation that is kind to small
    counts: 7 of 96 against a 1 % normal proves a lift of 2, and is a
    Poisson chance of 6e-5, which the many small keys of a day will meet.

    >>> normal = ErrorRatio()
    >>> for _ in range(200):  # a region at 1 %
    ...     normal.learn_one(1.0, 100.0)
    >>> proven(normal, 7.0, 96.0, 1e-6), proven(normal, 10.0, 96.0, 1e-6), proven(normal, 30.0, 700.0, 1e-6)
    (False, True, True)
    """
    # At the learned normal, not its floor: the floor asks a big lift of a near-zero normal, which the
    # ratio's score already does; 8 crashes among 480 listeners who crash once in 80 s are no chance.
    # More error clients than listeners (everyone crashed, nobody heartbeated) count the errors as the
    # trials, as the ratio does.
    expected = ratio.baseline_ratio * max(trials, errors)
    if expected <= 0.0:
        return errors > 0.0
    # The Chernoff bound is above the exact tail: where it proves, the exact sum need not run.
    return errors > expected and (-poisson_deviance(errors, expected) <= math.log(alpha)
                                  or poisson_tail(errors, expected) <= alpha)


def _of(kind: str) -> str:
    """What a kind's ratio evidence counts its error clients among."""
    return "join attempts" if kind in PER_ATTEMPT_CODES else "listeners"


def _severity(config: EnsembleConfig, bad: bool, score: float, clients: float) -> Severity:
    if not bad:
        return "info"
    if score >= config.critical_score or clients >= config.critical_error_clients:
        return "critical"
    return "warning"


class RoomEnsemble:
    """The detectors of one ``RoomHealth`` key."""

    def __init__(self, config: EnsembleConfig, scope: str = "room") -> None:
        self.config = config
        self.volume = VolumeBaseline(**config.volume)
        self.ratio = ErrorRatio(**config.ratio)
        self.cusum = Cusum(**config.cusum)
        self.code_volume = {code: VolumeBaseline(**config.volume) for code in ERROR_CODES}
        self.code_ratio = {code: ErrorRatio(**config.ratio) for code in ERROR_CODES}
        # A per-attempt code's share of listeners too: both must be proven up (``PER_ATTEMPT_CODES``).
        self.listener_ratio = {code: ErrorRatio(**config.ratio) for code in PER_ATTEMPT_CODES}
        self.audience = Audience(**(config.audience if scope == "room"
                                    else {**config.audience, **config.aggregate_audience}))
        # The region of the key's last window with its usual audience: a room whose listeners in one region
        # went dark reports from the others, and its silence belongs to the region that went quiet.
        self.home_region = ""
        self.seen_codes: set[str] = set()
        # kind -> the previous window's (window_start, window_end, error clients, listeners), if it was elevated
        self.previous: dict[str, tuple[int, int, float, float]] = {}
        # Windows left to judge suspected_forgery after the last bad one (FORGERY_FOLLOW_UP).
        self.forgery_follow_up = 0
        # A room's recent windows, for the trickle no single window proves; aggregates have no sources.
        self.spans = ErrorSpans(**config.span) if scope == "room" and config.span is not None else None
        # The joins of the key's last windows (``JOIN_WINDOWS``): what a failed join is a share of.
        self.recent_joins: deque[float] = deque(maxlen=JOIN_WINDOWS)
        # The listeners of its last heartbeat period: what its error clients are a share of (``observe``).
        self.recent_listeners: deque[float] = deque(maxlen=self.audience.span)

    def observe(self, window: RoomHealth) -> list[Decision]:
        config = self.config
        # A window's errors are a share of its listeners, at least of their mean over one heartbeat period:
        # a sampled crowd's heavy heartbeat (one report standing for 3,000 people) lands in one window of
        # three while its error clients, one by one, come in all three, and a region of 99 listeners the
        # other two windows paged a 10% error ratio on a benign surge's normal errors (benign_surge seed 8).
        self.recent_listeners.append(max(float(window.listeners), 0.0))
        listeners = max(self.recent_listeners[-1], sum(self.recent_listeners) / len(self.recent_listeners))
        self.recent_joins.append(max(float(window.joins), 0.0))
        joins = max(max(itertools.islice(reversed(self.recent_joins), JOIN_LUMP_WINDOWS)),
                    sum(self.recent_joins) / len(self.recent_joins))
        judged, by_code = error_clients(window)
        all_clients = max(float(judged), 0.0)
        # error_ratio, volume and the CUSUM judge the share of listeners; failed joins have their own kind.
        clients = max(all_clients - sum(max(float(by_code.get(code, 0.0)), 0.0) for code in PER_ATTEMPT_CODES), 0.0)
        labels = {"region": window.region} if window.region else {}

        def decision(kind: str, bad: bool, score: float, kind_clients: float, evidence: list[Evidence]) -> Decision:
            return Decision(scope=window.scope, key=window.key, kind=kind, window_start=window.window_start,
                            window_end=window.window_end, bad=bad, score=round(score, 4), evidence=evidence,
                            severity=_severity(config, bad, score, kind_clients), labels=labels,
                            error_keep=window.error_keep)

        def pooled(made: Decision, ratio: ErrorRatio, errors: float, trials: float, score: float) -> Decision:
            """``made`` reaching back to the previous window if the rise began there (see the module doc)."""
            before = self.previous.pop(made.kind, None)
            if score > 0 and errors >= config.min_error_clients:  # elevated: the next window may pool with it
                self.previous[made.kind] = (window.window_start, window.window_end, errors, trials)
            if not made.bad or before is None or before[1] != window.window_start:
                return made
            both_errors, both_trials = before[2] + errors, before[3] + trials
            both_score = ratio.score_one(both_errors, both_trials)
            if both_score < config.threshold:
                return made
            evidence = self._ratio_evidence(ratio, both_errors, both_trials, both_score, _of(made.kind))
            evidence.detail = f"with the window before: {evidence.detail}"
            return msgspec.structs.replace(made, evidence=[*made.evidence, evidence], since=before[0])

        spans, tokens = self.spans, window.error_tokens_by_code
        suspicious: set[str] = set()  # kinds whose spans are elevated: their ratios learn them only partly
        if spans is not None:
            spans.window(window.window_start, listeners)

        def over_spans(kind: str, ratio: ErrorRatio, count: float, codes: list[str]) -> SpanVerdict:
            """``kind``'s span verdict, its count made of ``codes``' error clients (nothing when spans are off)."""
            if spans is None:
                return NOTHING
            sources: frozenset[int] | None = frozenset()
            for code in codes:  # None as soon as one code had too many sources to list
                listed = tokens.get(code) if tokens is not None else None
                sources = None if listed is None or sources is None else sources | frozenset(listed)
            spans.add(kind, window.window_start, count, sources)
            if not ratio.ready:
                return NOTHING
            verdict = spans.judge(kind, (ratio.errors, ratio.trials), ratio.min_ratio, ratio.alarm_lift,
                                  config.min_error_clients)
            if verdict.score >= config.span_suspect_score:  # a trickle must not become the baseline it is judged on
                suspicious.add(kind)
            return verdict

        decisions: list[Decision] = []
        self.seen_codes.update(code for code, count in by_code.items() if count > 0 and code in self.code_volume)
        for code in ERROR_CODES:
            if code not in self.seen_codes:
                continue
            count = max(float(by_code.get(code, 0.0)), 0.0)
            trials = exposure(code, count, listeners, joins)
            volume, ratio = self.code_volume[code], self.code_ratio[code]
            volume_score, ratio_score = volume.score_one(count, window.window_start), ratio.score_one(count, trials)
            evidence = [self._volume_evidence(volume, count, volume_score, window.window_start),
                        self._ratio_evidence(ratio, count, trials, ratio_score, _of(code))]
            per_listener = self.listener_ratio.get(code)
            if per_listener is not None:
                listener_score = per_listener.score_one(count, listeners)
                # Its own detector name: anomaly-score rows are keyed by it, each with its own band.
                evidence.append(self._ratio_evidence(per_listener, count, listeners, listener_score,
                                                     detector=LISTENER_RATIO))
                ratio_score = min(ratio_score, listener_score)
            volume_agrees = volume_score >= config.threshold or not volume.ready
            bad = (count >= config.min_error_clients and ratio_score >= config.threshold and volume_agrees
                   and self._proven(code, ratio, count, trials, window))
            score = min(ratio_score, volume_score) if volume.ready else ratio_score
            # A window bad on its own is its own evidence: leaving its errors out of the spans keeps the end
            # of a loud incident, with a background blip, from paging as a five-minute trickle. The spans
            # count exposure in listeners, so a per-attempt code is judged window by window only.
            spanned = 0.0 if bad or code in PER_ATTEMPT_CODES else count
            span = over_spans(code, ratio, spanned, [code] if spanned > 0 else [])
            if span.bad and not bad:  # the trickle no one window proves
                bad, score = True, max(score, span.score)
                evidence.append(self._span_evidence(span, window))
            decisions.append(pooled(decision(code, bad, score, count, evidence), ratio, count, trials, score))

        volume_score, ratio_score = self.volume.score_one(clients, window.window_start), self.ratio.score_one(clients, listeners)
        observed_ratio = clients / max(listeners, clients) if clients > 0 else 0.0
        use_cusum = (listeners >= config.cusum_min_listeners
                     and listeners * self.ratio.baseline_ratio >= config.cusum_min_expected)
        # The window's ratio is only as precise as its listeners allow (binomial, at the reference ratio).
        reference = min(max(self.cusum.mean, 1e-6), 1.0)
        noise = math.sqrt(reference * (1.0 - reference) / max(listeners, 1.0))
        cusum_score = self.cusum.score_one(observed_ratio, noise) if use_cusum else 0.0
        shift_now = observed_ratio > self.cusum.mean + self.cusum.k * max(self.cusum.deviation(), noise)
        enough = clients >= config.min_error_clients
        # What this window proves alone must be beyond chance (the exact test runs only where it may page);
        # the CUSUM's sustained rise speaks for many windows, each short of that by design (slow_ramp).
        window_proven = (enough and ratio_score >= config.confirm_score
                         and max(ratio_score, volume_score) >= config.threshold
                         and self._proven("error_ratio", self.ratio, clients, listeners, window))
        ratio_bad = ((ratio_score >= config.threshold and window_proven)
                     or (enough and cusum_score >= config.threshold and shift_now
                         and ratio_score >= config.confirm_score))
        ratio_evidence = [self._ratio_evidence(self.ratio, clients, listeners, ratio_score),
                          Evidence(detector="cusum", observed=round(observed_ratio, 6),
                                   baseline=round(self.cusum.mean, 6), score=round(cusum_score, 4),
                                   detail=f"sum {self.cusum.total:.1f}, alarm at {self.cusum.h:g} deviations")]
        # The CUSUM sum speaks for many windows, not this one: it scores the
        # decision only when it made it bad (a good window's score is what this
        # window alone proves, which is what alerting weighs as suspect).
        ratio_decision_score = max(ratio_score, cusum_score) if ratio_bad else ratio_score
        span = over_spans("error_ratio", self.ratio, 0.0 if ratio_bad else clients,
                          [code for code, count in by_code.items() if count > 0 and code not in PER_ATTEMPT_CODES])
        if span.bad and not ratio_bad:
            ratio_bad, ratio_decision_score = True, max(ratio_decision_score, span.score)
            ratio_evidence = [*ratio_evidence, self._span_evidence(span, window)]
        decisions.append(pooled(decision("error_ratio", ratio_bad, ratio_decision_score, clients, ratio_evidence),
                                self.ratio, clients, listeners, ratio_score))
        volume_bad = window_proven and volume_score >= config.threshold
        decisions.append(decision("volume", volume_bad, volume_score, clients, [
            self._volume_evidence(self.volume, clients, volume_score, window.window_start), ratio_evidence[0]]))
        forgery = self._forgery(window, all_clients)
        if forgery is not None:
            decisions.append(forgery)
        decisions.append(self._audience(window))

        self._learn(window, by_code, listeners, joins, clients, observed_ratio, noise if use_cusum else None,
                    suspicious)
        return decisions

    def _proven(self, kind: str, ratio: ErrorRatio, errors: float, trials: float, window: RoomHealth) -> bool:
        """``proven`` on the window, or on it with the elevated window before it (``previous``): a rise
        that began there has two windows of evidence (6 of 52, then 12 of 102, in a slow ramp's small room)."""
        alpha = self.config.window_alpha
        if proven(ratio, errors, trials, alpha):
            return True
        before = self.previous.get(kind)
        return (before is not None and before[1] == window.window_start
                and proven(ratio, errors + before[2], trials + before[3], alpha))

    def observe_dark(self, window: RoomHealth) -> list[Decision]:
        """Judge a window in which nothing arrived for this key (``streams.dark``): only its audience.

        The error detectors have nothing to judge and must not learn zeros:
        their baselines wait for the key's next real window.
        """
        return [self._audience(window)]

    def _audience(self, window: RoomHealth) -> Decision:
        """``heartbeat_loss``: the window's heartbeats against the key's expected audience; learns after."""
        audience = self.audience
        # A client reporting an error is not silent, heartbeat or not (Audience.seen).
        listeners, reporting = max(float(window.listeners), 0.0), max(float(error_clients(window)[0]), 0.0)
        joins, leaves = max(float(window.joins), 0.0), max(float(window.leaves), 0.0)
        score, people, expected = audience.evidence(listeners, joins, leaves, reporting)
        bad = score >= self.config.threshold
        detail = (f"heartbeats of {people:,.0f} people vs {expected:,.0f} expected "
                  f"({leaves:,.0f} left, {joins:,.0f} joined); alarm at a {audience.min_drop:.0%} drop beyond noise")
        audience.learn_one(listeners, joins, leaves, reporting)
        if score < audience.suspect and window.region:
            self.home_region = window.region
        region = self.home_region or window.region
        return Decision(scope=window.scope, key=window.key, kind=HEARTBEAT_LOSS, window_start=window.window_start,
                        window_end=window.window_end, bad=bad, score=round(score, 4),
                        severity=_severity(self.config, bad, score, 0.0), error_keep=window.error_keep,
                        labels={"region": region} if region else {},
                        evidence=[Evidence(detector="audience", observed=round(people, 3),
                                           baseline=round(expected, 3), score=round(score, 4), detail=detail)])

    def bands(self, ts_ms: int) -> Bands:
        """The band of each (kind, detector) in this key's decisions, for a window starting at ``ts_ms``.

        Read before ``observe`` learns the window, they are the bands it is
        judged against. A detector still warming up has none, nor has the
        forgery check (``source_cap``), nor a span (``error_span``: its alarm
        count is the span's listeners times the ratio's band).
        """
        found: dict[tuple[str, str], Band | None] = {
            ("error_ratio", "error_ratio"): self.ratio.band(),
            ("error_ratio", "cusum"): self.cusum.band(),
            ("volume", "volume_baseline"): self.volume.band(ts_ms),
            ("volume", "error_ratio"): self.ratio.band(),
            (HEARTBEAT_LOSS, "audience"): self.audience.band(),
        }
        for code in self.seen_codes:
            found[(code, "volume_baseline")] = self.code_volume[code].band(ts_ms)
            found[(code, "error_ratio")] = self.code_ratio[code].band()
            if code in self.listener_ratio:
                found[(code, LISTENER_RATIO)] = self.listener_ratio[code].band()
        return {slot: band for slot, band in found.items() if band is not None}

    def _forgery(self, window: RoomHealth, capped: float) -> Decision | None:
        """``suspected_forgery`` for a room whose error clients mostly come from a few networks; None when
        there is nothing to judge (no client was capped, and no such alert may be open)."""
        excess = max(float(window.error_clients), 0.0) - capped
        if window.scope != "room" or (excess < 1 and self.forgery_follow_up == 0):
            return None
        floor = max(capped, self.config.forgery_min_clients)
        bad = excess >= floor
        self.forgery_follow_up = FORGERY_FOLLOW_UP if bad else max(0, self.forgery_follow_up - 1)
        score = round(excess / (excess + floor), 4) if excess > 0 else 0.0
        detail = (f"{window.error_clients:.0f} distinct error clients from {window.error_sources:.0f} source "
                  f"network(s); {capped:.0f} counting at most {CLIENTS_PER_SOURCE} per network: client ids "
                  "invented by a few senders (a script with the app key?), not an outage")
        return Decision(scope=window.scope, key=window.key, kind=FORGERY, window_start=window.window_start,
                        window_end=window.window_end, bad=bad, severity="warning" if bad else "info", score=score,
                        error_keep=window.error_keep, evidence=[Evidence(detector="source_cap", observed=float(window.error_clients),
                                           baseline=capped, score=score, detail=detail)])

    def _learn(self, window: RoomHealth, by_code: dict[str, float], listeners: float, joins: float,
               clients: float, observed_ratio: float, cusum_noise: float | None, suspicious: set[str]) -> None:
        """Learn the window (after judging it); ``cusum_noise`` None: too few listeners for the CUSUM."""
        spans = self.spans
        for code in ERROR_CODES:
            count = max(float(by_code.get(code, 0.0)), 0.0)
            weight = self._learn_ratio(self.code_ratio[code], count, exposure(code, count, listeners, joins),
                                       code in suspicious)
            if spans is not None:
                spans.learned(code, window.window_start, weight * count)
            if code in self.listener_ratio:
                self._learn_ratio(self.listener_ratio[code], count, listeners, code in suspicious)
            self.code_volume[code].learn_one(count, window.window_start)
        weight = self._learn_ratio(self.ratio, clients, listeners, "error_ratio" in suspicious)
        if spans is not None:
            spans.learned("error_ratio", window.window_start, weight * clients)
        self.volume.learn_one(clients, window.window_start)
        if cusum_noise is not None:
            self.cusum.learn_one(observed_ratio, cusum_noise)

    def _learn_ratio(self, ratio: ErrorRatio, errors: float, listeners: float, span_suspicious: bool) -> float:
        """Learn one window into ``ratio``; returns the weight it was learned at."""
        suspicious = span_suspicious or ratio.score_one(errors, listeners) >= self.config.threshold
        weight = self.config.anomalous_weight if suspicious else 1.0
        ratio.learn_one(errors, listeners, weight)
        return weight

    @staticmethod
    def _span_evidence(span: SpanVerdict, window: RoomHealth) -> Evidence:
        window_s = max(window.window_end - window.window_start, 1) / 1000
        return Evidence(detector="error_span", observed=span.errors, baseline=round(span.expected, 3),
                        score=round(span.score, 4), detail=span.detail(window_s))

    @staticmethod
    def _volume_evidence(volume: VolumeBaseline, count: float, score: float, ts_ms: int) -> Evidence:
        level, scale = volume.expected(ts_ms)
        state = "warming up" if not volume.ready else f"scale {scale:.1f}, alarm at {volume.z_alarm:g} scales"
        return Evidence(detector="volume_baseline", observed=count, baseline=round(level, 3),
                        score=round(score, 4), detail=f"distinct error clients; {state}")

    @staticmethod
    def _ratio_evidence(ratio: ErrorRatio, errors: float, listeners: float, score: float,
                        of: str = "listeners", detector: str = "error_ratio") -> Evidence:
        trials = max(listeners, errors)
        observed = errors / trials if trials > 0 else 0.0
        return Evidence(detector=detector, observed=round(observed, 6), baseline=round(ratio.baseline_ratio, 6),
                        score=round(score, 4),
                        detail=f"{errors:.0f} error clients of {listeners:.0f} {of}, "
                               f"proven lift x{ratio.lift(errors, listeners):.2f} (alarm x{ratio.alarm_lift:g})")

    def to_state(self) -> dict[str, Any]:
        return {
            "volume": self.volume.to_state(), "ratio": self.ratio.to_state(), "cusum": self.cusum.to_state(),
            "code_volume": {code: d.to_state() for code, d in self.code_volume.items()},
            "code_ratio": {code: d.to_state() for code, d in self.code_ratio.items()},
            "listener_ratio": {code: d.to_state() for code, d in self.listener_ratio.items()},
            "seen_codes": sorted(self.seen_codes),
            "previous": {kind: list(window) for kind, window in self.previous.items()},
            "forgery_follow_up": self.forgery_follow_up,
            "audience": self.audience.to_state(),
            "home_region": self.home_region,
            "recent_joins": list(self.recent_joins),
            "recent_listeners": list(self.recent_listeners),
            **({"spans": self.spans.to_state()} if self.spans is not None else {}),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], config: EnsembleConfig, scope: str = "room") -> Self:
        ensemble = cls(config, scope)
        ensemble.volume = VolumeBaseline.from_state(state["volume"])
        ensemble.ratio = ErrorRatio.from_state(state["ratio"])
        ensemble.cusum = Cusum.from_state(state["cusum"])
        ensemble.code_volume.update({c: VolumeBaseline.from_state(s) for c, s in state["code_volume"].items()})
        ensemble.code_ratio.update({c: ErrorRatio.from_state(s) for c, s in state["code_ratio"].items()})
        ensemble.listener_ratio.update({c: ErrorRatio.from_state(s) for c, s in state.get("listener_ratio", {}).items()})
        ensemble.seen_codes = set(state["seen_codes"])
        ensemble.previous = {kind: (int(w[0]), int(w[1]), float(w[2]), float(w[3]))
                             for kind, w in state.get("previous", {}).items()}
        ensemble.forgery_follow_up = int(state.get("forgery_follow_up", 0))
        if "audience" in state:  # a state saved before the audience existed: it warms up afresh (one minute)
            ensemble.audience = Audience.from_state(state["audience"])
        ensemble.home_region = str(state.get("home_region", ""))
        ensemble.recent_joins.extend(float(joins) for joins in state.get("recent_joins", ()))
        ensemble.recent_listeners.extend(float(listeners) for listeners in state.get("recent_listeners", ()))
        if ensemble.spans is not None and "spans" in state:  # a state saved before spans: they fill in 5 minutes
            ensemble.spans = ErrorSpans.from_state(state["spans"])
        return ensemble


@dataclass
class _Judged:
    """One metric vector judged by one forest.

    ``score`` is the forest's; ``near`` how close a symptom metric already
    past its lift is to the z alarm (0.5 there): what a good window scores
    for alerting's suspect rule. Load alone (CPU, connections) scores high
    with the forest and is no symptom, so it must not make a window suspect.
    """

    score: float
    near: float
    top: list[tuple[str, float, float, float]]
    bad: bool

    def evidence(self, detector: str, where: str = "") -> Evidence:
        """The forest's view as evidence: its top metric, its score, and the top metrics in words."""
        if not self.top:
            return Evidence(detector=detector, observed=0.0, baseline=0.0, score=round(self.score, 4),
                            detail="warming up")
        detail = "; ".join(f"{name} {value:.4g} (normal {normal:.4g}, z {z:.1f})" for name, value, normal, z in self.top)
        return Evidence(detector=detector, observed=round(self.top[0][1], 6), baseline=round(self.top[0][2], 6),
                        score=round(self.score, 4), detail=f"{where}{detail}")


class _ServerJudge:
    """A ``ServerAnomaly`` with the ensemble's symptom rule and its learning schedule."""

    def __init__(self, config: EnsembleConfig, server: ServerAnomaly | None = None, streak: int = 0) -> None:
        self.config = config
        self.server = server or ServerAnomaly(**config.server)
        self.anomalous_streak = streak

    def judge(self, metrics: dict[str, float]) -> _Judged:
        server, lifts = self.server, self.config.symptom_lifts
        score = server.score_one(metrics) if metrics else 0.0
        explained = server.explain(metrics, max(len(metrics), 3))  # furthest from normal first
        lifted = [(name, value, normal, z) for name, value, normal, z in explained
                  if any(part in name and value >= lift * max(normal, 1e-9) for part, lift in lifts.items())]
        symptoms = [metric for metric in lifted if metric[3] >= server.z_alarm]
        bad = score >= self.config.threshold and bool(symptoms)
        near = max((squash(z, server.z_alarm) for *_, z in lifted), default=0.0)
        return _Judged(score, near, symptoms or explained[:3], bad)

    def learn(self, metrics: dict[str, float], judged: _Judged) -> None:
        """After judging: normal windows, and one anomalous window in ``anomalous_learn_every``."""
        self.anomalous_streak = self.anomalous_streak + 1 if judged.bad else 0
        if metrics and (not judged.bad or self.anomalous_streak % self.config.anomalous_learn_every == 0):
            self.server.learn_one(metrics)

    def to_state(self) -> dict[str, Any]:
        return {"server": self.server.to_state(), "anomalous_streak": self.anomalous_streak}

    @classmethod
    def from_state(cls, state: dict[str, Any], config: EnsembleConfig) -> Self:
        return cls(config, ServerAnomaly.from_state(state["server"]), int(state["anomalous_streak"]))


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {name: value for name, value in metrics.items() if math.isfinite(value)}


class ServiceEnsemble:
    """The detector of one ``ServiceHealth`` key: kind ``server_anomaly``.

    A service window spanning several clusters is judged as a whole and per
    cluster (``ServiceHealth.clusters``), each with its own forest: room-api
    failing in ap-south alone is bad in ap-south's slice long before the
    service-wide mean moves. The decision is bad when any of them is; a bad
    cluster slice names its cluster in the evidence, and in the ``cluster``
    label when it is the only one.
    """

    def __init__(self, config: EnsembleConfig) -> None:
        self.config = config
        self.whole = _ServerJudge(config)
        self.slices: dict[str, _ServerJudge] = {}

    def observe(self, window: ServiceHealth) -> list[Decision]:
        config = self.config
        metrics = _finite(window.metrics)
        whole = self.whole.judge(metrics)
        sliced = {cluster: _finite(values) for cluster, values in sorted(window.clusters.items())}
        for cluster in sliced:
            if cluster not in self.slices and len(self.slices) < config.max_clusters_per_service:
                self.slices[cluster] = _ServerJudge(config)
        judged = {cluster: self.slices[cluster].judge(values) for cluster, values in sliced.items()
                  if cluster in self.slices}
        bad_clusters = [cluster for cluster, verdict in judged.items() if verdict.bad]
        bad = whole.bad or bool(bad_clusters)
        # Its own detector name per cluster: each is its own series in ``anomaly_scores``. What the
        # verdict rests on comes first (``alerting.summary`` describes a server decision by it): the
        # cluster's forest when the failure is confined to one cluster, or the service-wide one saw none.
        evidence = [judged[c].evidence(f"isolation_forest@{c}", where=f"in {c}: ") for c in bad_clusters]
        confined = len(bad_clusters) == 1 or not whole.bad
        evidence.insert(len(evidence) if confined else 0, whole.evidence("isolation_forest"))
        verdicts = [whole, *judged.values()]
        score = max(v.score for v in verdicts if v.bad) if bad else max(v.near for v in verdicts)
        if window.scope == "cluster":
            labels = {"cluster": window.key}
        else:
            labels = {"cluster": bad_clusters[0]} if len(bad_clusters) == 1 else {}
        decision = Decision(scope=window.scope, key=window.key, kind="server_anomaly",
                            window_start=window.window_start, window_end=window.window_end, bad=bad,
                            severity=_severity(config, bad, score, 0.0), score=round(score, 4),
                            evidence=evidence, labels=labels)
        self.whole.learn(metrics, whole)
        for cluster, verdict in judged.items():
            self.slices[cluster].learn(sliced[cluster], verdict)
        return [decision]

    def bands(self, ts_ms: int) -> Bands:
        """No bands: a forest's alarm is no interval of one metric (its score rows show lower = upper = baseline)."""
        return {}

    def to_state(self) -> dict[str, Any]:
        return {**self.whole.to_state(), "slices": {c: judge.to_state() for c, judge in self.slices.items()}}

    @classmethod
    def from_state(cls, state: dict[str, Any], config: EnsembleConfig) -> Self:
        ensemble = cls(config)
        ensemble.whole = _ServerJudge.from_state(state, config)
        ensemble.slices = {c: _ServerJudge.from_state(s, config) for c, s in state.get("slices", {}).items()}
        return ensemble
