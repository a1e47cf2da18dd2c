"""The notification log: what each receiver was told, so nothing pages twice.

Consulted before every notification and written after every delivery. It is
the reason a retry, a replayed decision or a restarted worker (which restores
the log) does not page again, and why a "resolved" is only sent to a receiver
that was told "firing".

>>> from core.schemas import Alert
>>> from core.timeutil import ManualClock
>>> log = Nflog(ManualClock(0), renotify_seconds=3600)
>>> firing = Alert(fingerprint="f1", status="firing", scope="room", key="r", kind="crash",
...                severity="warning", starts_at=0, event_ts=20_000, summary="r: crash")
>>> log.skip_reason("slack", firing) is None
True
>>> log.record("slack", firing)
>>> log.skip_reason("slack", firing)
'already notified firing at event time 20000'
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from alerting.policy import SEVERITY_RANK
from core.schemas import Alert
from core.timeutil import Clock


@dataclass(frozen=True)
class Entry:
    status: str
    starts_at: int
    event_ts: int
    severity: str
    sent_at_ms: int  # wall clock, for garbage collection only


class Nflog:
    def __init__(self, clock: Clock, renotify_seconds: float = 3600.0, retention_seconds: float = 86_400.0) -> None:
        self._clock = clock
        self._renotify_ms = int(renotify_seconds * 1000)
        self._retention_ms = int(retention_seconds * 1000)
        self._entries: dict[str, Entry] = {}

    @staticmethod
    def _slot(receiver: str, fingerprint: str) -> str:
        return f"{receiver}\x00{fingerprint}"

    def last(self, receiver: str, fingerprint: str) -> Entry | None:
        return self._entries.get(self._slot(receiver, fingerprint))

    def skip_reason(self, receiver: str, alert: Alert) -> str | None:
        """Why ``alert`` must not go to ``receiver`` again, or None to send it."""
        entry = self.last(receiver, alert.fingerprint)
        if alert.status == "resolved":
            if entry is None or entry.starts_at != alert.starts_at:
                return "firing was never notified to this receiver"
            if entry.status == "resolved":
                return "already notified resolved"
            return None
        if entry is None:
            return None
        if entry.status == "resolved":
            # The same episode resolved already: this firing is a replay. A new
            # episode has a later starts_at.
            return "episode already resolved" if alert.starts_at <= entry.starts_at else None
        escalated = SEVERITY_RANK.get(alert.severity, 0) > SEVERITY_RANK.get(entry.severity, 0)
        if not escalated and alert.event_ts - entry.event_ts < self._renotify_ms:
            return f"already notified firing at event time {entry.event_ts}"
        return None

    def record(self, receiver: str, alert: Alert) -> None:
        self._entries[self._slot(receiver, alert.fingerprint)] = Entry(
            alert.status, alert.starts_at, alert.event_ts, alert.severity, self._clock.now_ms()
        )

    def gc(self) -> int:
        """Forget resolved entries older than the retention; returns how many."""
        cutoff = self._clock.now_ms() - self._retention_ms
        stale = [k for k, e in self._entries.items() if e.status == "resolved" and e.sent_at_ms < cutoff]
        for slot in stale:
            del self._entries[slot]
        return len(stale)

    def to_state(self) -> dict[str, Any]:
        return {slot: asdict(entry) for slot, entry in self._entries.items()}

    def load_state(self, state: dict[str, Any]) -> None:
        self._entries = {slot: Entry(**entry) for slot, entry in state.items()}

    def save(self, path: Path) -> None:
        """Write atomically (temp file + rename): a crash leaves the old log or the new one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump(self.to_state(), handle)
        os.replace(tmp, path)

    def load(self, path: Path) -> None:
        if path.exists():
            self.load_state(json.loads(path.read_text()))
