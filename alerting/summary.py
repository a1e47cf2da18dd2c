"""One line an on-call engineer understands at 3 am.

>>> from core.schemas import Decision, Evidence
>>> d = Decision(scope="room", key="room-17", kind="details_not_available", window_start=0,
...              window_end=10_000, bad=True, severity="critical", score=9.1,
...              evidence=[Evidence(detector="volume", observed=1260, baseline=30, score=9.1)])
>>> decision_summary(d)
'room-17: details_not_available reports 42x baseline (1,260 clients in 10 s)'
>>> d.evidence[0] = Evidence(detector="error_ratio", observed=0.12, baseline=0.004, score=5)
>>> decision_summary(d)
'room-17: details_not_available error ratio 12.0% vs 0.4% baseline (10 s window)'
>>> d.evidence[0] = Evidence(detector="isolation_forest", observed=0.03, baseline=0.002, score=0.97,
...                          detail="error_rate 0.03 (normal 0.002, z 9.1)")
>>> decision_summary(d)
'room-17: details_not_available: error_rate 0.03 (normal 0.002, z 9.1) (10 s window)'
>>> incident_summary("eu-west", ["room-1", "room-2", "room-3", "room-4"], 40, {"crash": 3, "timeout": 1}, limit=2)
'eu-west: 4 of 40 active rooms alerting (crash x3, timeout x1): room-1, room-2 +2 more'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from core.schemas import Decision, Evidence


def strongest(evidence: Sequence[Evidence]) -> Evidence | None:
    return max(evidence, key=lambda e: e.score, default=None)


def decision_summary(decision: Decision) -> str:
    return f"{decision.key}: {describe(decision)}{sampled(decision)}"


def sampled(decision: Decision) -> str:
    """What a summary adds when the collector sampled the window's errors (a room flooding it).

    >>> sampled(Decision(scope="room", key="r", kind="crash", window_start=0, window_end=1, bad=True,
    ...                  error_keep=0.015625))
    '; counts sampled: 1 in 64 error reports kept, weighted'
    """
    if decision.error_keep >= 1.0:
        return ""
    return f"; counts sampled: 1 in {round(1 / decision.error_keep):,} error reports kept, weighted"


def describe(decision: Decision) -> str:
    """What the decision saw, without the key: ``decision_summary`` and incident summaries share it."""
    seconds = max(0, (decision.window_end - decision.window_start) // 1000)
    head = decision.kind
    # A server decision lists first the forest its verdict rests on (a cluster's, when the
    # service-wide one only saw load); the strongest score may be a load-only forest's.
    best = decision.evidence[0] if decision.kind == "server_anomaly" and decision.evidence else strongest(
        decision.evidence)
    if best is None:
        return f"{head} judged bad (score {decision.score:.2f}, {seconds} s window)"
    if best.detector == "source_cap":  # a suspected forgery: its detail says what the counts mean
        return f"{head}: {best.detail} ({seconds} s window)"
    if best.detector.startswith("isolation_forest"):  # the service-wide forest, or a cluster's ("@ap-south")
        return f"{head}: {best.detail} ({seconds} s window)" if best.detail else f"{head} (score {best.score:.2f})"
    if best.detector == "error_span":  # a trickle over a minute or five: its detail has the sums
        return f"{head}: {best.detail}"
    if best.detector == "audience":  # a silent failure: people, not reports
        return f"{head}: {best.detail} ({seconds} s window)"
    if best.detector == "cusum":
        return (f"{head} error ratio {best.observed:.1%} vs {best.baseline:.1%} mean, "
                f"a sustained rise ({seconds} s window)")
    if "ratio" in best.detector:
        return f"{head} error ratio {best.observed:.1%} vs {best.baseline:.1%} baseline ({seconds} s window)"
    if best.baseline > 0:
        factor = best.observed / best.baseline
        shown = f"{factor:.0f}x" if factor >= 10 else f"{factor:.1f}x"
        return f"{head} reports {shown} baseline ({best.observed:,.0f} clients in {seconds} s)"
    return f"{head} {best.observed:,.0f} reports in {seconds} s, no baseline yet ({best.detector})"


def _kinds(kinds: Mapping[str, int]) -> str:
    ranked = sorted(kinds.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{kind} x{count}" for kind, count in ranked)


def _listing(names: Sequence[str], limit: int) -> str:
    shown = ", ".join(names[:limit])
    rest = len(names) - limit
    return f"{shown} +{rest} more" if rest > 0 else shown


def incident_summary(group: str, rooms: Sequence[str], active: int, kinds: Mapping[str, int], limit: int = 5,
                     own: Sequence[Decision] = ()) -> str:
    """
    >>> from core.schemas import Evidence
    >>> region = Decision(scope="region", key="eu-west", kind="audio_dropout", window_start=0, window_end=10_000,
    ...                   bad=True, evidence=[Evidence(detector="error_ratio", observed=0.05, baseline=0.003, score=0.9)])
    >>> incident_summary("eu-west", [], 40, {}, own=[region])
    'eu-west: region-wide audio_dropout error ratio 5.0% vs 0.3% baseline (10 s window)'
    """
    if not rooms:
        if own:
            worst = max(own, key=lambda d: d.score)
            return f"{group}: {worst.scope}-wide {describe(worst)}{sampled(worst)}"
        return f"{group}: judged bad by its own aggregate window"
    return f"{group}: {len(rooms)} of {active} active rooms alerting ({_kinds(kinds)}): {_listing(rooms, limit)}"


def global_summary(groups: Sequence[str], rooms: int, from_global_window: bool) -> str:
    """
    >>> global_summary(["eu-west", "us-east"], 57, False)
    'GLOBAL: 2 regions/clusters alerting (eu-west, us-east); 57 rooms affected'
    """
    if groups:
        text = f"GLOBAL: {len(groups)} regions/clusters alerting ({_listing(groups, 5)}); {rooms} rooms affected"
    else:
        text = f"GLOBAL: {rooms} rooms affected"
    return text + (" and the global window is bad" if from_global_window else "")
