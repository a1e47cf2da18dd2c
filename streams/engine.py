"""Tumbling event-time windows of one source partition, over a key-value store.

``PartitionWindows`` folds decoded items (client reports or metric samples)
into per-key windows with a reducer (``streams.windows`` or
``streams.metrics``), keeps a per-partition watermark (the highest event time
seen, advanced with the wall clock once the partition has been idle), and
closes windows that end at least ``lateness`` before the watermark. It is the
same code in the Faust agent (store = a Faust table) and in the offline
replay (store = a dict).

Exactly-once over restarts rests on three rules, because a crash can leave
any prefix of one flush's writes in the changelog:

1. every window value carries ``applied_offset``, the highest source offset
   folded into it; a replayed message at or below it is skipped for that value;
2. a closed window is first overwritten by a small *closed marker* (with its
   offset), and deleted only at the next flush, after the partition's meta
   (``closed_upto``, ``applied_offset``) has been written behind it;
3. windows are published (and delivery awaited) before they are marked closed,
   so a crash re-publishes them, identical, and never loses one.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import msgspec

from core.timeutil import Clock


class WindowState(Protocol):
    """What the engine itself reads of a reducer's window state."""

    closed: bool
    applied_offset: int


S = TypeVar("S", bound=WindowState)
P = TypeVar("P")
I = TypeVar("I")  # noqa: E741 - the item type

# The stored format of what the engine itself writes (PartitionMeta, closed markers) and of the scope
# merger's Progress and MergerState. See ``state_format``.
ENGINE_FORMAT = 4


class Reducer(ABC, Generic[I, S, P]):
    """One kind of window: fold items of type ``I`` into a state ``S``, close it into a result and partials ``P``.

    In the Quix Streams style: ``initialize() -> state``, ``add_many(state,
    items)``, ``result(...)``; the engine only persists the state (msgpack,
    with the reducer's hooks for custom types). ``partials`` are the window's
    contribution to each scope window (``(scope, key)``), which
    ``merge`` adds up and ``scope_result`` closes (``streams.scopes``).

    ``format_version`` is the stored format of ``state_type`` and
    ``partial_type``: changing either (a field, a hook's encoding) sets it to
    ``state_format(...) + 1``, which renames every state topic so an upgraded
    worker starts new changelogs instead of failing to decode old ones
    (docs/design.md, "Stored formats").
    """

    scope: ClassVar[str]
    state_type: type[S]
    partial_type: type[P]
    format_version: ClassVar[int]
    # The key and event time of an item in one call: an ``operator.attrgetter``, in C, on the hot path.
    key_and_ts: Callable[[I], tuple[str, int]]

    @abstractmethod
    def initialize(self) -> S: ...

    @abstractmethod
    def add_many(self, state: S, items: Sequence[I]) -> S:
        """Fold ``items`` (one key, one window: a message's group) into ``state``; mutates and returns it."""

    def add(self, state: S, item: I) -> S:
        return self.add_many(state, (item,))

    @abstractmethod
    def add_late(self, state: S, item: I) -> S:
        """Count an item whose own window had closed, in this (open) window."""

    @abstractmethod
    def result(self, state: S, scope: str, key: str, window_start: int, window_end: int) -> Any:
        """The closed window as published."""

    @abstractmethod
    def partials(self, state: S) -> dict[tuple[str, str], P]: ...

    def result_and_partials(self, state: S, scope: str, key: str, window_start: int,
                            window_end: int) -> tuple[Any, dict[tuple[str, str], P]]:
        """Both at once (what the engine closes a window with); override when one pass can do both."""
        return self.result(state, scope, key, window_start, window_end), self.partials(state)

    @abstractmethod
    def merge(self, into: P, other: P) -> P:
        """Add ``other`` into ``into`` (mutates and returns it)."""

    @abstractmethod
    def scope_result(self, part: P, scope: str, key: str, window_start: int, window_end: int) -> Any:
        """A scope window (region, cluster, ...) as published, from its merged partials."""

    def closed_marker(self, applied_offset: int) -> S:
        """The small value a published window is replaced by until it is purged."""
        return self.state_type(applied_offset=applied_offset, closed=True)  # type: ignore[call-arg]

    def enc_hook(self, value: Any) -> Any:
        """msgpack for a custom type in the state (msgspec's ``enc_hook``): none by default."""
        raise NotImplementedError(f"objects of type {type(value).__name__} are not supported")

    def dec_hook(self, kind: type, value: Any) -> Any:
        """The inverse of ``enc_hook`` (msgspec's ``dec_hook``)."""
        raise NotImplementedError(f"objects of type {kind.__name__} are not supported")


def state_format(*reducers: Reducer[Any, Any, Any]) -> int:
    """The version in the state topics' names: the newest of the reducers' stored formats and the engine's.

    Versions count up on one scale: a part whose stored format changes takes
    the current ``state_format`` + 1, so the maximum moves whichever changed.
    """
    return max(ENGINE_FORMAT, *(reducer.format_version for reducer in reducers))


class StateStore(Protocol):
    """Bytes in, bytes out; a dict, or a Faust table writing one partition's changelog."""

    def get(self, key: bytes) -> bytes | None: ...
    def put(self, key: bytes, value: bytes) -> None: ...
    def delete(self, key: bytes) -> None: ...


class DictStore:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self.data[key] = value

    def delete(self, key: bytes) -> None:
        self.data.pop(key, None)


# A progress mark below every window: "nothing is final here yet".
HOLD_BACK = 0


@dataclass(frozen=True)
class WindowPolicy:
    window_ms: int = 10_000
    lateness_ms: int = 10_000
    # Wall time without input after which a partition's watermark moves on
    # with the clock, so a quiet partition still closes its windows.
    idle_ms: int = 5_000


def read_to_end(applied_offset: int, highwater: int | None) -> bool:
    """Whether a partition's engine is known to have folded every record Kafka holds for it.

    Only then may its quiet time count as idle (``PartitionWindows.advance_idle``): a partition with
    records still unread is busy, not idle, and one whose high watermark is not known yet (assigned,
    but no fetch answered since: a worker just restarted) may be too. Closing its windows by the wall
    clock then would publish them without the reports waiting in Kafka; a restarted worker whose
    first fetch took two seconds did that to the window its predecessor died in.

    >>> read_to_end(9, 10)  # offsets 0..9 folded, the next record would be offset 10
    True
    >>> read_to_end(7, 10)
    False
    >>> read_to_end(9, None)  # never fetched since assigned: not known to be idle
    False
    """
    return highwater is not None and applied_offset + 1 >= highwater


class PartitionMeta(msgspec.Struct, kw_only=True):
    max_ts: int = -1
    watermark: int = -1
    closed_upto: int = -1
    applied_offset: int = -1
    # window_start -> keys: windows holding state, and closed markers to purge.
    open: dict[int, list[str]] = {}
    closing: dict[int, list[str]] = {}


@dataclass
class Closed(Generic[P]):
    """Windows ready to publish: results per key and partials per scope window."""

    results: list[Any]
    partials: dict[int, dict[str, P]]
    starts: list[int]
    closed_upto: int


_meta_codec = (msgspec.msgpack.Encoder(), msgspec.msgpack.Decoder(PartitionMeta))


class PartitionWindows(Generic[I, S, P]):
    def __init__(self, reducer: Reducer[I, S, P], partition: int, policy: WindowPolicy,
                 store: StateStore, clock: Clock) -> None:
        self.reducer = reducer
        self.partition = partition
        self.policy = policy
        self.store = store
        self.clock = clock
        # A reducer whose state holds custom types (streams.distinct) stores them through its hooks.
        self._encode = msgspec.msgpack.Encoder(enc_hook=reducer.enc_hook).encode
        self._decode_state = msgspec.msgpack.Decoder(reducer.state_type, dec_hook=reducer.dec_hook).decode
        self._prefix = f"{partition}|".encode()
        self._key_and_ts = reducer.key_and_ts
        raw = store.get(self._prefix + b"meta")
        self.meta = _meta_codec[1].decode(raw) if raw else PartitionMeta()
        self._open_sets: dict[int, set[str]] = {start: set(keys) for start, keys in self.meta.open.items()}
        self._cache: dict[tuple[str, int], S] = {}
        self._dirty: set[tuple[str, int]] = set()
        # Window starts closed logically (results in ``pending``) or as markers.
        self._collected: set[int] = set(self.meta.closing)
        self.pending: list[Closed[P]] = []
        self._last_input_wall = clock.now_ms()
        # The earliest window start not yet closed (None: none, or not known yet).
        self._earliest_open: int | None = None
        self.late_items = 0
        self.skipped_items = 0

    # -- folding ----------------------------------------------------------
    def add_message(self, items: Sequence[I], offset: int) -> None:
        """Fold every item of the message at ``offset`` (skips replays already applied).

        Items are grouped by (key, window) first and each group is folded with
        one ``add_many`` call: a collector message is one room's reports, so
        this is usually one group, and the per-item Python is the reducer's.
        """
        self._last_input_wall = self.clock.now_ms()
        meta = self.meta
        if offset <= meta.applied_offset:
            self.skipped_items += len(items)
            return
        window_ms = self.policy.window_ms
        closed_upto = meta.closed_upto
        reducer = self.reducer
        key_and_ts = self._key_and_ts
        groups: dict[tuple[str, int], list[I] | None] = {}  # None: the window has closed
        late: list[tuple[str, int, I]] = []
        max_ts = meta.max_ts
        for item in items:
            key, ts = key_and_ts(item)
            start = ts - ts % window_ms
            group_key = (key, start)
            try:
                group = groups[group_key]
            except KeyError:
                group = None if start + window_ms <= closed_upto or self._window(key, start).closed else []
                groups[group_key] = group
            if group is None:
                # Late: into the key's window at the watermark as of this item.
                watermark = max(meta.watermark, max_ts)
                late.append((key, watermark - watermark % window_ms, item))
                continue
            group.append(item)
            if ts > max_ts:
                max_ts = ts
        # Decide what a crashed run already applied before changing anything.
        touched = {group_key: self._window(*group_key) for group_key, group in groups.items() if group is not None}
        for key, start, _ in late:
            touched.setdefault((key, start), self._window(key, start))
        applied = {group_key for group_key, state in touched.items() if offset <= state.applied_offset}
        add_many = reducer.add_many
        for group_key, group in groups.items():
            if group is None:
                continue
            if group_key in applied:
                self.skipped_items += len(group)
            else:
                add_many(touched[group_key], group)
        for key, start, item in late:
            if (key, start) in applied:
                self.skipped_items += 1
            else:
                self.late_items += 1
                reducer.add_late(touched[(key, start)], item)
        dirty = self._dirty
        for group_key, state in touched.items():
            if group_key not in applied:
                state.applied_offset = offset
                dirty.add(group_key)
        meta.max_ts = max_ts
        meta.watermark = max(meta.watermark, max_ts)
        meta.applied_offset = offset
        # Close by offset, not by batch: a replay after a crash then closes the
        # same windows after the same message and re-publishes them identical.
        self.close_due()

    def _window(self, key: str, start: int) -> S:
        cache_key = (key, start)
        state = self._cache.get(cache_key)
        if state is None:
            raw = self.store.get(self._state_key(key, start))
            state = self._decode_state(raw) if raw else self.reducer.initialize()
            self._cache[cache_key] = state
            keys = self._open_sets.get(start)
            if keys is None:
                keys = self._open_sets[start] = set()
                if start not in self._collected and (self._earliest_open is None or start < self._earliest_open):
                    self._earliest_open = start
            keys.add(key)
        return state

    def _state_key(self, key: str, start: int) -> bytes:
        return self._prefix + f"{start}|{key}".encode()

    # -- closing ------------------------------------------------------------
    def restart_idle_clock(self) -> None:
        """The partition is not being fetched (recovery, rebalance): not being idle either."""
        self._last_input_wall = self.clock.now_ms()

    def progress_mark(self) -> int | None:
        """What this partition tells the scope merger: every window ending at or before it is final here.

        Final with reports (closed and published) or without: the watermark,
        less the lateness, has passed it. So a partition whose rooms all went
        quiet moves its mark on as its watermark follows the wall clock
        (``advance_idle``), and the merger's horizon, the event-time mark
        detection judges silence by (``streams.dark``), with it.

        A partition that never had input holds no scope window back (None), but only once it has been
        idle for ``idle_ms``: until then its input may be on its way (a worker that was just assigned
        it, or is still starting, while the others already fold theirs), and a scope window closed
        without it would be published without its partials. ``HOLD_BACK`` holds every window back.
        """
        if self.meta.max_ts >= 0:
            window_ms = self.policy.window_ms
            passed = (self.meta.watermark - self.policy.lateness_ms) // window_ms * window_ms
            return max(self.meta.closed_upto, passed)
        if self.clock.now_ms() - self._last_input_wall >= self.policy.idle_ms:
            return None
        return HOLD_BACK

    def advance_idle(self) -> None:
        """Let the watermark follow the wall clock while the partition gets no input."""
        idle = self.clock.now_ms() - self._last_input_wall
        if idle >= self.policy.idle_ms and self.meta.max_ts >= 0:
            self.meta.watermark = max(self.meta.watermark, self.meta.max_ts + idle)
            self.close_due()

    def close_due(self, final: bool = False, complete_only: bool = False) -> None:
        """Close (logically) every window the watermark has passed by ``lateness``.

        ``final``: every open window, due or not (the end of a replay's input);
        with ``complete_only``, only those the input reached the end of (a
        recording's last, cut-off window is no window: its missing seconds
        would read as an audience gone dark).

        Their results wait in ``pending`` until the caller has published them
        and called ``mark_closed``; from now on reports for them are late.
        """
        horizon = self.meta.watermark - self.policy.lateness_ms
        # Called after every message: skip the scan while the earliest uncollected window is not due.
        if not final and self._earliest_open is not None and self._earliest_open + self.policy.window_ms > horizon:
            return
        # The latest window end that closes now: the horizon; at the end, the input's end, or anything.
        upto = (self.meta.watermark + 1 if complete_only else math.inf) if final else horizon
        ready = [start for start in self._open_sets
                 if start not in self._collected and start + self.policy.window_ms <= upto]
        if not ready:
            self._earliest_open = min((start for start in self._open_sets if start not in self._collected),
                                      default=None)
            return
        closed = self.collect(sorted(ready))
        self._collected.update(ready)
        self._earliest_open = min((start for start in self._open_sets if start not in self._collected), default=None)
        self.meta.closed_upto = closed.closed_upto
        self.pending.append(closed)

    def take_pending(self) -> list[Closed[P]]:
        pending, self.pending = self.pending, []
        return pending

    def collect(self, starts: list[int]) -> Closed[P]:
        """Results and scope partials of the windows at ``starts`` (nothing changes yet)."""
        reducer = self.reducer
        results: list[Any] = []
        partials: dict[int, dict[str, P]] = {}
        both = reducer.result_and_partials
        for start in starts:
            merged: dict[str, P] = {}
            for key in sorted(self._open_sets[start]):
                state = self._window(key, start)
                if state.closed:
                    continue
                end = start + self.policy.window_ms
                health, parts = both(state, reducer.scope, key, start, end)
                results.append(health)
                for (scope, scope_key), part in parts.items():
                    name = f"{scope}|{scope_key}"
                    if name in merged:
                        reducer.merge(merged[name], part)
                    else:
                        merged[name] = part
            partials[start] = merged
        closed_upto = self.meta.closed_upto
        if starts:
            closed_upto = max(closed_upto, max(starts) + self.policy.window_ms)
        return Closed(results=results, partials=partials, starts=starts, closed_upto=closed_upto)

    def mark_closed(self, closed: Closed[P]) -> None:
        """After publishing: replace the windows by closed markers."""
        closed_marker = self.reducer.closed_marker
        for start in closed.starts:
            keys = sorted(self._open_sets.get(start, ()))
            for key in keys:
                previous = self._window(key, start)
                marker = closed_marker(previous.applied_offset)
                self._cache[(key, start)] = marker
                self._dirty.add((key, start))
            self.meta.closing[start] = keys
        self.meta.closed_upto = max(self.meta.closed_upto, closed.closed_upto)

    # -- persistence --------------------------------------------------------
    def flush(self) -> None:
        """Write changed windows, purge markers closed at the previous flush, then the meta."""
        store, encode = self.store, self._encode
        purge = {start: keys for start, keys in self.meta.closing.items()
                 if not any((key, start) in self._dirty for key in keys)}
        for key, start in self._dirty:
            if start in purge:
                continue
            store.put(self._state_key(key, start), encode(self._cache[(key, start)]))
        self._dirty.clear()
        for start, keys in purge.items():
            for key in keys:
                store.delete(self._state_key(key, start))
                self._cache.pop((key, start), None)
            self._open_sets.pop(start, None)
            self._collected.discard(start)
            del self.meta.closing[start]
        self.meta.open = {start: sorted(keys) for start, keys in self._open_sets.items()}
        store.put(self._prefix + b"meta", _meta_codec[0].encode(self.meta))

    def open_windows(self) -> int:
        return sum(len(keys) for keys in self._open_sets.values())
