"""Inhibition: the rules that keep a narrower alert from paging while a wider one is open.

Each is a ``Muter`` (Alertmanager's inhibit rules, fixed to our scopes); the
inhibited alerts are still emitted and recorded, only their pages stop.
``alerting.stage`` applies them in this order, wider reasons first:

- ``Inhibitor``: while a global incident is open nothing else pages; while
  a cluster incident is open, none of its rooms (``leaf_scopes``) do;
- ``WideFirst``: no page of the narrower alerts an open wide leaf alert (a
  platform, an app version) or incident causes;
- ``AwaitsWider``: a room's new page waits a window for a platform or version
  verdict that may name the incident the room is part of;
- ``OnePagePerKey``: one page per key at a time.
"""

from __future__ import annotations

from typing import Protocol

from alerting.correlate import group_of
from alerting.lifecycle import Tracked
from alerting.policy import GroupingPolicy
from core.schemas import Alert, Decision
from detectors.ensemble import FORGERY, HEARTBEAT_LOSS

GENERIC_KINDS = ("error_ratio", "volume")
# Aggregate keys that page as leaves (a version, a platform) yet span many rooms.
WIDE_LEAF_SCOPES = ("platform", "app_version")


class IncidentSource(Protocol):
    def open_group(self, group: str) -> Tracked | None: ...

    def open_global(self) -> Tracked | None: ...


class OpenAlerts(Protocol):
    def open_alerts(self) -> list[Tracked]: ...


class WiderVerdicts(Protocol):
    def awaited(self, kind: str, window_end: int) -> Decision | None: ...


class Inhibitor:
    def __init__(self, incidents: IncidentSource, policy: GroupingPolicy) -> None:
        self._incidents = incidents
        self._policy = policy

    def mutes(self, alert: Alert) -> str | None:
        if alert.scope != "global":
            incident = self._incidents.open_global()
            if incident is not None:
                return f"inhibited by global incident {incident.fingerprint}: {incident.summary}"
        if alert.scope in self._policy.leaf_scopes:
            group = group_of(alert.labels, self._policy.group_labels)
            incident = self._incidents.open_group(group[1]) if group else None
            if incident is not None:
                return f"inhibited by cluster incident {incident.key} ({incident.fingerprint})"
        return None


class OnePagePerKey:
    """``Muter``: one page per key at a time; its other alerts are recorded but do not page.

    A failing room lifts several error codes at once and, with them, its
    overall error ratio and volume: one incident would otherwise page five or
    six times. The alert that pages is the key's earliest open one (by onset;
    at the same onset an error code before a generic kind, then by
    fingerprint), so exactly one pages, and always the same one.
    """

    def __init__(self, alerts: OpenAlerts) -> None:
        self._alerts = alerts

    @staticmethod
    def _rank(onset_ms: int, kind: str, fingerprint: str) -> tuple[int, int, str]:
        # A suspected forgery never outranks: forged reports must not mute the page of a real incident.
        if kind == FORGERY:
            return 2**62, 2, fingerprint
        return onset_ms, 1 if kind in GENERIC_KINDS else 0, fingerprint

    def mutes(self, alert: Alert) -> str | None:
        mine = self._rank(alert.starts_at, alert.kind, alert.fingerprint)
        for track in self._alerts.open_alerts():
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

    - a room's alert of the incident's own error code does not page: a
      platform's or version's, or one a cluster incident is bad on
      (``Tracked.codes``) whichever group the room's listeners put it in, as
      the rooms hosted in a failing cluster have listeners in every region;
    - a generic alert (``error_ratio``, ``volume``) of a room, platform or
      version does not page (it names no cause of its own);
    - nor does a platform's or version's alert of the code an open alert of
      the other dimension pages with (a version, a platform): one failure seen
      twice, and a version can be all of its platform (web has one); the
      holder names it among the keys it affects;
    - nor does a ``heartbeat_loss`` one while the wide alert is an incident or
      itself a silence: a region gone dark takes the listeners it had from
      every platform, version and room it feeds;
    - nor does a cluster incident every error code of which (``Tracked.codes``)
      an open platform or version alert pages: a failing release is in every
      region, and a region where most rooms carry it sees all of them fail; it
      is the release's incident seen from that region (version_failure and
      platform_failure paged a region cluster minutes after the version).

    A room failing in another way still pages through its own error code, and
    a held cluster pages once the wider alert resolves while it is still open.
    """

    def __init__(self, alerts: OpenAlerts) -> None:
        self._alerts = alerts

    def mutes(self, alert: Alert) -> str | None:
        if alert.scope == "cluster":
            return self._cluster_of_a_leaf(alert)
        if alert.scope not in ("room", *WIDE_LEAF_SCOPES):
            return None
        generic = alert.kind in GENERIC_KINDS
        for track in self._alerts.open_alerts():
            if track.fingerprint == alert.fingerprint:
                continue
            wide_leaf = track.scope in WIDE_LEAF_SCOPES
            if not (wide_leaf or track.scope in ("cluster", "global")):
                continue
            same_code = alert.scope == "room" and (track.kind == alert.kind if wide_leaf else alert.kind in track.codes)
            # A platform and one of its versions failing with the same code are one failure seen twice (a
            # version may be its platform's every client): the first to page names the other. Only an alert
            # that paged holds: two held by each other would stay silent.
            other_dimension = (alert.scope in WIDE_LEAF_SCOPES and wide_leaf and track.scope != alert.scope
                               and track.kind == alert.kind and not track.held)
            silenced = alert.kind == HEARTBEAT_LOSS and (not wide_leaf or track.kind == HEARTBEAT_LOSS)
            if generic or same_code or silenced or other_dimension:
                if ((alert.scope == "room" and not wide_leaf) or other_dimension) and alert.key not in track.held_keys:
                    # The holder names the key it holds: its next firing event says so (``lifecycle``).
                    track.held_keys.append(alert.key)
                return f"inhibited by the wider {track.scope} {track.key} {track.kind} alert {track.fingerprint}"
        return None

    def _cluster_of_a_leaf(self, alert: Alert) -> str | None:
        tracks = self._alerts.open_alerts()
        mine = next((track for track in tracks if track.fingerprint == alert.fingerprint), None)
        codes = set(mine.codes).difference(GENERIC_KINDS) if mine is not None else set()
        leaves = {track.kind: track for track in tracks
                  if track.scope in WIDE_LEAF_SCOPES and track.kind not in (*GENERIC_KINDS, HEARTBEAT_LOSS)}
        if not codes or not codes <= leaves.keys():
            return None
        leaf = leaves[min(codes)]
        return (f"inhibited by the wider {leaf.scope} {leaf.key} {leaf.kind} alert {leaf.fingerprint}: "
                f"every code this cluster fails with ({', '.join(sorted(codes))}) pages there")


class AwaitsWider:
    """``Muter``: a room's new page waits up to ``windows`` window ends for a wider verdict still to come.

    A crashing release lifts the crash ratio of every big room with its
    listeners, and a big room's verdict can be proven a window before the
    release's own: the rooms would page first, one by one, and only then the
    version whose page names the cause (``WideFirst`` keeps later rooms back).
    So while a platform or app version verdict of the room's kind may yet name
    the incident (``alerting.residual.Explained.awaited`` says when), the
    room's page waits. When the wider alert fires, ``WideFirst`` keeps it
    back; when it does not, the room pages at the first window end after the
    wait (``alerting.lifecycle.wait``): a window late, never lost.

    The wait is counted in memory only: a restarted worker waits afresh. A
    room that resolves (or stops asking) while it waits leaves its start
    behind; starts older than twice the wait are forgotten, so the map holds
    only the rooms of the last few windows however many rooms ever waited.
    """

    def __init__(self, verdicts: WiderVerdicts, windows: int) -> None:
        self._verdicts = verdicts
        self._windows = windows
        self._since: dict[str, int] = {}  # fingerprint -> the window end its wait began
        self._prune_at = 0  # event time of the next sweep over _since

    def mutes(self, alert: Alert) -> str | None:
        if alert.scope != "room" or self._windows == 0 or alert.kind in (FORGERY, HEARTBEAT_LOSS):
            return None
        awaited = self._verdicts.awaited(alert.kind, alert.event_ts)
        if awaited is None:
            self._since.pop(alert.fingerprint, None)
            return None
        wait_ms = self._windows * (awaited.window_end - awaited.window_start)
        self._forget_old(alert.event_ts, wait_ms)
        since = self._since.setdefault(alert.fingerprint, alert.event_ts)
        if alert.event_ts - since >= wait_ms:
            del self._since[alert.fingerprint]
            return None
        return (f"waiting a window for the {awaited.scope} {awaited.key} {awaited.kind} verdict "
                f"(score {awaited.score:.2f}), which may name the incident this room is part of")

    def _forget_old(self, now_ms: int, wait_ms: int) -> None:
        # A sweep at most once per wait length keeps the cost O(1) per wait, amortised.
        if now_ms < self._prune_at:
            return
        horizon = now_ms - 2 * wait_ms
        self._since = {fingerprint: since for fingerprint, since in self._since.items() if since >= horizon}
        self._prune_at = now_ms + wait_ms
