"""Decision builders shared by the alerting tests."""

from __future__ import annotations

from core.schemas import Decision, Evidence

WINDOW_MS = 10_000
T0 = 1_795_323_600_000  # 2026-11-22T05:00:00Z


def decision(
    key: str,
    window: int,
    bad: bool,
    *,
    scope: str = "room",
    kind: str = "details_not_available",
    severity: str = "warning",
    region: str | None = "eu-west",
    observed: float = 1260.0,
    baseline: float = 30.0,
    score: float | None = None,
) -> Decision:
    labels = {"region": region} if region else {}
    return Decision(
        scope=scope,  # type: ignore[arg-type]
        key=key,
        kind=kind,
        window_start=T0 + window * WINDOW_MS,
        window_end=T0 + (window + 1) * WINDOW_MS,
        bad=bad,
        severity=severity,  # type: ignore[arg-type]
        score=score if score is not None else observed / baseline if bad else 0.1,
        evidence=[
            Evidence(
                detector="volume", observed=observed if bad else baseline, baseline=baseline, score=5.0 if bad else 0.1
            )
        ],
        labels=labels,
    )


def judged(scope: str, key: str, window: int, clients: float, listeners: float, *, bad: bool,
           kind: str = "details_not_available", baseline: float = 0.001, labels: dict[str, str] | None = None,
           score: float = 0.0) -> Decision:
    """A verdict with the counts ``alerting.residual`` reads: ``clients`` error clients of ``listeners``."""
    evidence = [Evidence(detector="volume_baseline", observed=clients, baseline=1.0, score=0.9 if bad else 0.1),
                Evidence(detector="error_ratio", observed=clients / listeners, baseline=baseline,
                         score=0.9 if bad else 0.1)]
    return Decision(scope=scope, key=key, kind=kind, window_start=T0 + window * WINDOW_MS,  # type: ignore[arg-type]
                    window_end=T0 + (window + 1) * WINDOW_MS, bad=bad, severity="critical" if bad else "info",
                    score=score, evidence=evidence, labels=labels or {})
