"""Merge per-partition partials into region/platform/app_version/global (or cluster) windows.

Rooms are spread over the source partitions, so a scope window (say
``platform:ios`` for 12:00:00-12:00:10) gets one partial from every partition
that had rooms with iOS listeners. Each partition sends ``Progress``: the
partials of the windows it closed and ``closed_upto`` (every window ending at
or before it is final there). A scope window closes when every source
partition has passed its end; partitions that never had input do not hold
it back.

Partials are stored per source partition and *replaced*, never added, so a
partition re-sending after a crash changes nothing. A partial that arrives
after its scope window was published (a partition that fell far behind)
re-publishes the corrected window; ReplacingMergeTree keeps the newest.

>>> from streams import windows
>>> merger = ScopeMerger(windows.ROOM_WINDOWS, sources=2, window_ms=10_000)
>>> merger.apply(Progress(partition=0, closed_upto=10_000, windows={0: {"global|all": windows.Partial(reports=3.0)}}))
[]
>>> [(h.scope, h.key, h.reports) for h in merger.apply(Progress(partition=1, closed_upto=10_000,
...     windows={0: {"global|all": windows.Partial(reports=4.0)}}))]
[('global', 'all', 7.0)]
>>> merger.horizon()  # every window ending by then is published: the event-time mark (streams.app)
10000
"""

from __future__ import annotations

from typing import Any

import msgspec

from streams.engine import Reducer

# How many closed scope windows to remember for corrections.
RETAIN_WINDOWS = 60


class Progress(msgspec.Struct, kw_only=True):
    """One source partition's news for the merger (the internal topic's value)."""

    partition: int
    # None while the partition has never had input: it holds nothing back.
    closed_upto: int | None
    windows: dict[int, dict[str, Any]] = {}


class MergerState(msgspec.Struct, kw_only=True):
    closed_upto_by_partition: dict[int, int | None] = {}
    # window_start -> "scope|key" -> source partition -> partial (msgpack-able)
    pending: dict[int, dict[str, dict[int, Any]]] = {}
    done: dict[int, dict[str, dict[int, Any]]] = {}
    closed_upto: int = -1
    applied_offset: int = -1


class ScopeMerger:
    """Pure: ``apply(progress)`` returns the scope windows that became final."""

    def __init__(self, reducer: Reducer[Any, Any, Any], sources: int, window_ms: int,
                 state: MergerState | None = None) -> None:
        self.reducer = reducer
        self.partial_type = reducer.partial_type
        self.sources = sources
        self.window_ms = window_ms
        self.state = state or MergerState()
        self._convert = msgspec.convert

    def apply(self, progress: Progress) -> list[Any]:
        state = self.state
        out: list[Any] = []
        for start, named in progress.windows.items():
            start = int(start)
            if start in state.done:
                corrected = self._replace(state.done[start], named, progress.partition)
                out.extend(self._results(start, state.done[start], only=corrected))
            elif start + self.window_ms <= state.closed_upto:
                continue  # older than anything retained: too late to correct
            else:
                self._replace(state.pending.setdefault(start, {}), named, progress.partition)
        state.closed_upto_by_partition[progress.partition] = progress.closed_upto
        out.extend(self._close_ready())
        return out

    def _replace(self, by_name: dict[str, dict[int, Any]], named: dict[str, Any], partition: int) -> set[str]:
        changed = set()
        for name, partial in named.items():
            plain = msgspec.to_builtins(partial) if isinstance(partial, msgspec.Struct) else partial
            by_partition = by_name.setdefault(name, {})
            if by_partition.get(partition) != plain:
                by_partition[partition] = plain
                changed.add(name)
        return changed

    def horizon(self) -> int | None:
        """How far every source partition has closed its windows (None until each has reported once).

        A partition that never had input holds nothing back; the windows of
        the others up to here are all published.
        """
        state = self.state
        if len(state.closed_upto_by_partition) < self.sources:
            return None
        marks = [mark for mark in state.closed_upto_by_partition.values() if mark is not None]
        return min(marks) if marks else None

    def _close_ready(self) -> list[Any]:
        state = self.state
        horizon = self.horizon()
        if horizon is None:
            return []
        out = []
        for start in sorted(state.pending):
            if start + self.window_ms > horizon:
                break
            by_name = state.pending.pop(start)
            out.extend(self._results(start, by_name))
            state.done[start] = by_name
            state.closed_upto = max(state.closed_upto, start + self.window_ms)
        for start in sorted(state.done)[:-RETAIN_WINDOWS]:
            del state.done[start]
        return out

    def _results(self, start: int, by_name: dict[str, dict[int, Any]], only: set[str] | None = None) -> list[Any]:
        out = []
        for name in sorted(by_name):
            if only is not None and name not in only:
                continue
            total = self.partial_type()
            # Sum in partition order so a re-publication is bit-for-bit the same.
            for partition in sorted(by_name[name]):
                self.reducer.merge(total, self._convert(by_name[name][partition], self.partial_type,
                                                        strict=False))
            scope, key = name.split("|", 1)
            out.append(self.reducer.scope_result(total, scope, key, start, start + self.window_ms))
        return out
