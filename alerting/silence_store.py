"""Silences added from the command line, in a file the running worker re-reads.

The store is one JSON file (``alerting.silences_path``): the ``Silences``
state (``to_state``) of every silence not yet garbage-collected. The CLI
changes it under an exclusive ``flock`` (two operators adding at once both
land) and replaces it atomically (write, fsync, rename), so the worker never
reads half a file. The worker's ``SilenceFile`` is a ``Muter``: at most once
per clock tick (a window end) it checks the file's modification stamp and
reloads it when it changed; a file that cannot be read keeps the silences it
had and logs why, so a bad edit never unmutes a maintenance or crashes the
worker.

Why a file and not a Kafka topic: the alert stage runs in one worker (the
decisions topic has one partition), the CLI runs beside it, and a file needs
no new topic, consumer or client in ``alerting``. A deployment with the CLI
elsewhere mounts the same volume.

>>> import tempfile, pathlib
>>> from core.timeutil import ManualClock
>>> from core.schemas import Alert
>>> path = pathlib.Path(tempfile.mkdtemp()) / "silences.json"
>>> sid = SilenceStore(path, ManualClock(1_000)).add(["key=room-17"], ends_at_ms=61_000, comment="deploy")
>>> muter = SilenceFile(path, ManualClock(2_000))
>>> alert = Alert(fingerprint="f", status="firing", scope="room", key="room-17", kind="crash",
...               severity="critical", starts_at=0, event_ts=0, summary="")
>>> muter.mutes(alert) == f"silenced by {sid} (deploy)"
True
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alerting.silence import Matcher, Silence, Silences
from core.schemas import Alert
from core.timeutil import Clock

log = logging.getLogger("outagewatch.alerting.silences")


def _read(path: Path, clock: Clock) -> Silences:
    silences = Silences(clock)
    if path.exists():
        state = json.loads(path.read_text() or "[]")
        if not isinstance(state, list):
            raise ValueError(f"{path}: expected a JSON list of silences")
        silences.load_state(state)
    return silences


class SilenceStore:
    """Add, list and expire the silences of one file (the CLI's side)."""

    def __init__(self, path: Path, clock: Clock) -> None:
        self.path = Path(path)
        self._clock = clock

    @contextmanager
    def _locked(self) -> Iterator[Silences]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            silences = _read(self.path, self._clock)
            yield silences
            silences.gc()
            temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            with open(temporary, "w") as handle:
                json.dump(silences.to_state(), handle, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)

    def add(self, matchers: Iterable[str | Matcher], ends_at_ms: int, comment: str = "", created_by: str = "") -> str:
        with self._locked() as silences:
            return silences.add(matchers, ends_at_ms, comment=comment, created_by=created_by)

    def expire(self, silence_id: str) -> None:
        with self._locked() as silences:
            if silence_id not in {s.id for s in silences.active()}:
                raise KeyError(silence_id)
            silences.expire(silence_id)

    def listed(self) -> list[Silence]:
        """Active silences, soonest to end first."""
        return sorted(_read(self.path, self._clock).active(), key=lambda s: s.ends_at_ms)


class SilenceFile:
    """A ``Muter`` over the store's file (the worker's side), reloaded when it changes."""

    def __init__(self, path: Path, clock: Clock) -> None:
        self.path = Path(path)
        self._clock = clock
        self._silences = Silences(clock)
        self._stamp: tuple[int, int] | None = None
        self._checked_at: int | None = None

    def _refresh(self) -> None:
        now = self._clock.now_ms()
        if now == self._checked_at:
            return
        self._checked_at = now
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._silences = None, Silences(self._clock)
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        try:
            self._silences = _read(self.path, self._clock)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("cannot read the silences in %s (%s); keeping the %d loaded before",
                      self.path, exc, len(self._silences.active()))
            return
        self._stamp = stamp
        log.info("loaded %d active silence(s) from %s", len(self._silences.active()), self.path)

    def mutes(self, alert: Alert) -> str | None:
        self._refresh()
        return self._silences.mutes(alert)
