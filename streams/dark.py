"""Windows that never closed: a known key from which nothing arrives still gets judged.

A window exists only when a report for its key arrives, so a room whose
clients all crashed, a region whose network is down, or the whole ingest
gone quiet produce no window at all, and detectors that wait for windows
never see the loudest silent failure there is. ``DarkKeys`` remembers every
``RoomHealth`` key judged (room, region, platform, app_version, global) and
the last window end it was judged at, and returns one empty window for
every window end a key missed, oldest first, so its expected audience
(``detectors.audience``) judges the silence:

- ``missed(window)``: a key's real window arrived after a gap: the windows
  of the gap were closed without it (a key's windows close in order), judged
  before it;
- ``due(upto_end, partition)``: how far event time has got. In a replay,
  the windows other keys closed; in the live worker, the ``EventTimeMark``
  read on the key's partition (``core.schemas``): every window ending by
  then was published before it, so a key with none there has none. Wall
  time never enters: a worker catching up on a backlog, or a cluster
  reading its partitions unevenly, judges the same windows dark as a
  replay does.

A key keeps being judged for ``give_up_ms`` after its last real window (a
room that ended has been judged quiet by then); then it is forgotten, and so
is every key when the worker loses its partitions (``forget``): a key whose
partition moved to another worker must not look dark here.

>>> from core.schemas import RoomHealth
>>> dark = DarkKeys(window_ms=10_000, give_up_ms=30_000)
>>> dark.seen(RoomHealth(key="room-1", window_start=0, window_end=10_000, region="eu"), partition=3)
>>> dark.seen(RoomHealth(key="room-2", window_start=10_000, window_end=20_000), partition=0)
>>> [(w.key, w.window_end, w.region, p) for w, p in dark.due(20_000)]
[('room-1', 20000, 'eu', 3)]
>>> [w.window_end for w in dark.missed(RoomHealth(key="room-2", window_start=40_000, window_end=50_000))]
[30000, 40000]
>>> dark.seen(RoomHealth(key="room-2", window_start=40_000, window_end=50_000), partition=0)
>>> [(w.key, w.window_end) for w, _ in dark.due(60_000, partition=3)]   # given up 30 s after its last window
[('room-1', 30000), ('room-1', 40000)]
>>> [(w.key, w.window_end) for w, _ in dark.due(60_000)]
[('room-2', 60000)]
>>> len(dark)
1
"""

from __future__ import annotations

from dataclasses import dataclass

from core.schemas import RoomHealth

KeyId = tuple[str, str]


@dataclass
class _Known:
    judged_end: int  # the last window end judged, real or dark
    real_end: int  # the last window end a report arrived for
    region: str
    partition: int


class DarkKeys:
    def __init__(self, window_ms: int, give_up_ms: int = 600_000, max_keys: int = 100_000) -> None:
        if window_ms <= 0 or give_up_ms < window_ms:
            raise ValueError(f"dark keys need window_ms > 0 and give_up_ms >= window_ms, got {window_ms}, {give_up_ms}")
        self.window_ms, self.give_up_ms, self.max_keys = window_ms, give_up_ms, max_keys
        self._known: dict[KeyId, _Known] = {}
        # partition -> judged window end -> the keys last judged there: ``due`` touches only the keys behind.
        self._by_end: dict[int, dict[int, set[KeyId]]] = {}

    def __len__(self) -> int:
        return len(self._known)

    def forget(self) -> None:
        self._known.clear()
        self._by_end.clear()

    def missed(self, window: RoomHealth) -> list[RoomHealth]:
        """The empty windows of ``window``'s key between its last judged end and ``window`` (none if unknown).

        Judge them before ``window``: the key's earlier windows all closed
        before it, so these had no report. Marks them judged.
        """
        key_id = (window.scope, window.key)
        known = self._known.get(key_id)
        if known is None or window.window_start <= known.judged_end:
            return []
        last = min(window.window_start, known.real_end + self.give_up_ms)
        gap = self._empty(key_id, known, last)
        self._move(key_id, known, max(known.judged_end, last - (last - known.judged_end) % self.window_ms))
        return gap

    def seen(self, window: RoomHealth, partition: int = 0) -> None:
        """A real window was judged: the key is alive up to its end."""
        key_id = (window.scope, window.key)
        known = self._known.get(key_id)
        if known is None:
            if len(self._known) >= self.max_keys:
                return  # the detectors keep at most as many keys; a new one past it is not watched for silence
            known = self._known[key_id] = _Known(window.window_end, window.window_end, window.region, partition)
            self._by_end.setdefault(partition, {}).setdefault(known.judged_end, set()).add(key_id)
            return
        known.real_end = max(known.real_end, window.window_end)
        known.region = window.region or known.region
        if partition != known.partition:
            self._unindex(key_id, known)
            known.partition = partition
            self._by_end.setdefault(partition, {}).setdefault(known.judged_end, set()).add(key_id)
        self._move(key_id, known, max(known.judged_end, window.window_end))

    def due(self, upto_end: int, partition: int | None = None) -> list[tuple[RoomHealth, int]]:
        """An empty window (and its key's partition) for each window end up to ``upto_end`` a key missed.

        ``partition``: only the keys last seen on it (the live worker's marks
        are per partition); None: every key (a replay).
        """
        out: list[tuple[RoomHealth, int]] = []
        partitions = sorted(self._by_end) if partition is None else [partition]
        for part in partitions:
            by_end = self._by_end.get(part, {})
            for end in sorted(end for end in by_end if end < upto_end):
                for key_id in sorted(by_end.pop(end)):
                    known = self._known[key_id]
                    last = min(upto_end, known.real_end + self.give_up_ms)
                    out.extend((window, part) for window in self._empty(key_id, known, last))
                    known.judged_end = max(known.judged_end, last - (last - known.judged_end) % self.window_ms)
                    if known.judged_end + self.window_ms > known.real_end + self.give_up_ms:
                        del self._known[key_id]
                    else:
                        by_end.setdefault(known.judged_end, set()).add(key_id)
        out.sort(key=lambda item: (item[0].window_end, item[0].scope, item[0].key))
        return out

    def _empty(self, key_id: KeyId, known: _Known, last: int) -> list[RoomHealth]:
        """The key's empty windows after its judged end, up to the one ending at ``last``."""
        return [RoomHealth(scope=key_id[0], key=key_id[1],  # type: ignore[arg-type]
                           window_start=window_end - self.window_ms, window_end=window_end, region=known.region)
                for window_end in range(known.judged_end + self.window_ms, last + 1, self.window_ms)]

    def _unindex(self, key_id: KeyId, known: _Known) -> None:
        by_end = self._by_end.get(known.partition, {})
        bucket = by_end.get(known.judged_end)
        if bucket is not None:
            bucket.discard(key_id)
            if not bucket:
                del by_end[known.judged_end]

    def _move(self, key_id: KeyId, known: _Known, judged_end: int) -> None:
        if judged_end == known.judged_end:
            return
        self._unindex(key_id, known)
        known.judged_end = judged_end
        self._by_end.setdefault(known.partition, {}).setdefault(judged_end, set()).add(key_id)
