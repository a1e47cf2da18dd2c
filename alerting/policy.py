"""Alerting policies: frozen, built once from ``settings.alerting``.

>>> from core.config import load_settings
>>> policy = AlertingPolicy.from_settings(load_settings(env={}).alerting, live_silences=False)
>>> policy.lifecycle.windows_to_fire("warning"), policy.lifecycle.windows_to_fire("critical")
(2, 1)
>>> policy.grouping.min_rooms, policy.grouping.group_labels
(5, ('cluster', 'region'))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from alerting.maintenance import MaintenanceWindow, load_windows
from core.config import AlertingSettings
from core.schemas import Alert
from detectors.ensemble import FORGERY

SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}
# Kinds routed to a ticket queue rather than to on-call (deploy/prometheus/alertmanager.example.yml): a
# suspected forgery is abuse to look into by day, not an outage to wake anyone for.
NOTICE_KINDS = frozenset({FORGERY})


def pages_on_call(alert: Alert) -> bool:
    """Whether an alert (not muted) reaches on-call: what an evaluation counts as a page.

    >>> import msgspec
    >>> crash = Alert(fingerprint="f", status="firing", scope="room", key="room-7", kind="crash",
    ...               severity="warning", starts_at=0, event_ts=0, summary="")
    >>> pages_on_call(crash), pages_on_call(Alert(**{**msgspec.structs.asdict(crash), "kind": FORGERY}))
    (True, False)
    """
    return alert.kind not in NOTICE_KINDS


@dataclass(frozen=True)
class LifecyclePolicy:
    """When one (scope, key, kind) goes pending, fires, re-notifies and resolves.

    Counts are of consecutive windows (event time), so the same input always
    gives the same alerts, live or in a replay.
    """

    pending_windows: int = 2
    critical_pending_windows: int = 1
    resolve_windows: int = 6
    renotify_seconds: float = 3600.0
    # A window that was not bad but scored at least this (evidence short of
    # proof, e.g. the first ten seconds of a ramp) counts as one of the pending
    # windows when the next one is bad: 2 windows can still fire on the 2nd
    # window of a rising incident. So does the window before a bad verdict
    # whose evidence covers it (``Decision.since``). None disables both.
    suspect_score: float | None = 0.4
    # A key that stops sending decisions (room closed, detector gone) must not
    # stay firing forever: resolve it after this much event time of silence.
    stale_seconds: float = 120.0
    # A page a wider alert or incident held back is released after this many
    # window ends in a row bad with nothing holding it: two minutes, so the
    # rooms of a platform or region incident that just resolved do not page
    # one by one while their last minutes of errors (a span's evidence, the
    # incident's tail) wear off; a room still failing after that pages.
    release_windows: int = 12

    def __post_init__(self) -> None:
        for name in ("pending_windows", "critical_pending_windows", "resolve_windows", "release_windows"):
            if getattr(self, name) < 1:
                raise ValueError(f"alerting {name} must be >= 1, got {getattr(self, name)}")
        if self.renotify_seconds <= 0 or self.stale_seconds <= 0:
            raise ValueError("alerting renotify_seconds and stale_seconds must be > 0")
        if self.suspect_score is not None and not 0.0 < self.suspect_score < 1.0:
            raise ValueError(f"alerting suspect_score must be in (0, 1), got {self.suspect_score}")

    def clear(self, score: float) -> bool:
        """Whether a good window scored low enough to count as a recovery, not a lull of a firing incident.

        A firing alert resolves on clear windows: a failing room whose error
        share dips under its alarm line for a window or two is still suspect
        there (``suspect_score``), and resolving on those windows re-paged the
        same incident a minute later.
        """
        return self.suspect_score is None or score < self.suspect_score

    def recovered(self, clear_streak: int, good_streak: int) -> bool:
        """Whether a firing alert resolves after this many good windows in a row, and clear ones among the last.

        ``resolve_windows`` clear windows in a row, or twice as many good ones
        of any score: a key that stays elevated but unproven (a baseline
        still catching up after a long incident) does not stay firing forever.

        >>> policy = LifecyclePolicy(resolve_windows=3)
        >>> [policy.recovered(clear, good) for clear, good in ((2, 5), (3, 3), (0, 6))]
        [False, True, True]
        """
        return clear_streak >= self.resolve_windows or good_streak >= 2 * self.resolve_windows

    def windows_to_fire(self, severity: str) -> int:
        if severity == "critical":
            return min(self.critical_pending_windows, self.pending_windows)
        return self.pending_windows


@dataclass(frozen=True)
class GroupingPolicy:
    """When many leaf alerts (rooms, services) become one cluster or global incident."""

    # The first of these labels a decision carries names its group.
    group_labels: tuple[str, ...] = ("cluster", "region")
    min_rooms: int = 5
    min_share: float = 0.2
    global_min_groups: int = 2
    # A room counts as active in its group if it sent a decision this recently.
    active_seconds: float = 60.0
    # Incidents derive from rooms that already passed their own pending
    # windows, so one window of agreement is enough.
    pending_windows: int = 1
    # Rooms only: a service window spans every cluster, so a service alert is
    # not a member of one cluster's incident (it pages on its own).
    leaf_scopes: tuple[str, ...] = ("room",)
    # A room's new page waits this many window ends while a platform or app version verdict of its kind
    # may yet name the incident the room is part of (``alerting.inhibit.AwaitsWider``); 0 never waits.
    await_wider_windows: int = 1

    def __post_init__(self) -> None:
        if self.await_wider_windows < 0:
            raise ValueError(f"grouping await_wider_windows must be >= 0, got {self.await_wider_windows}")
        if self.min_rooms < 1 or self.global_min_groups < 1 or self.pending_windows < 1:
            raise ValueError("grouping min_rooms, global_min_groups and pending_windows must be >= 1")
        if not 0.0 <= self.min_share <= 1.0:
            raise ValueError(f"grouping min_share must be within 0..1, got {self.min_share}")


@dataclass(frozen=True)
class NotifyPolicy:
    """Retries of one notification: exponential backoff with full jitter."""

    max_attempts: int = 5
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 10.0
    timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"notify max_attempts must be >= 1, got {self.max_attempts}")

    def backoff(self, attempt: int, jitter: float) -> float:
        """Delay before try ``attempt + 1`` (attempt counts from 1), ``jitter`` in [0, 1).

        >>> NotifyPolicy(backoff_seconds=0.5).backoff(3, 0.999)
        1.998
        """
        ceiling = min(self.max_backoff_seconds, self.backoff_seconds * 2.0 ** (attempt - 1))
        return round(ceiling * jitter, 6)


@dataclass(frozen=True)
class AlertingPolicy:
    lifecycle: LifecyclePolicy = field(default_factory=LifecyclePolicy)
    grouping: GroupingPolicy = field(default_factory=GroupingPolicy)
    notify: NotifyPolicy = field(default_factory=NotifyPolicy)
    # Recurring windows that mute matching alerts (``alerting.maintenance``).
    maintenance: tuple[MaintenanceWindow, ...] = ()
    # The file ``outagewatch silence add`` writes; None: CLI silences are not read.
    silences_path: Path | None = None

    @classmethod
    def from_settings(cls, settings: AlertingSettings, *, live_silences: bool) -> AlertingPolicy:
        """The policy of ``settings``; ``live_silences``: mute with the silences of ``settings.silences_path``.

        Those are an operator's, set in wall time with ``outagewatch silence add``
        on one machine: the worker reads them, a replay must not (the same
        recording would score differently wherever it runs). No default, so
        every caller says which it is.
        """
        return cls(
            lifecycle=LifecyclePolicy(
                pending_windows=settings.pending_windows,
                critical_pending_windows=settings.critical_pending_windows,
                resolve_windows=settings.resolve_windows,
                renotify_seconds=settings.renotify_seconds,
                suspect_score=settings.suspect_score if settings.suspect_score > 0 else None,
            ),
            grouping=GroupingPolicy(
                min_rooms=settings.group_min_rooms,
                min_share=settings.group_min_share,
                global_min_groups=settings.global_min_groups,
            ),
            notify=NotifyPolicy(
                max_attempts=settings.notify_max_attempts,
                backoff_seconds=settings.notify_backoff_seconds,
            ),
            maintenance=load_windows(settings.maintenance_windows_file) if settings.maintenance_windows_file else (),
            silences_path=settings.silences_path if live_silences else None,
        )
