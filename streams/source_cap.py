"""Distinct error clients counted at most ``CLIENTS_PER_SOURCE`` per source: what one script cannot inflate.

The detectors count distinct error clients (Downdetector's method: one
spamming client counts once). A client id is whatever the client writes, so
one script with the public app key could report errors under a thousand
invented ids. The collector stamps every report with the *source* it came
from (a keyed hash of the client's /24 or /48 network and the key,
``collectors.sources``); here each source counts for at most
``CLIENTS_PER_SOURCE`` distinct error clients. Real listeners of a room sit
in many networks, so their count hardly moves; a script's thousand ids are
two. Reports without a stamp (a recording, a replay written straight to
Kafka) are their client's own source: ``streams.windows`` counts them from
its distinct error clients as before, and only stamped reports come here.

The cap is on clients, not on weights: a source counts its kept clients (at
most two) at their weights. Under the collector's storm sampling by client
(a client kept with probability ``p`` carries ``1 / p``) that is unbiased for
every source of one or two clients, which is what real listeners' networks
are; a source of more clients is overestimated, by up to ``1 / p`` for one
of many (a script's network, a carrier NAT), and only in a room being sampled.
A source whose clients were sampled stands for many sources, so, like the
sources of a bottom-k sample, it is not named in the scope partials.

``SourceCapped`` keeps, per source, its first ``CLIENTS_PER_SOURCE`` clients
(client hash -> (smallest weight, cell), as ``streams.distinct`` does for error
clients) over a
bottom-k sample of source hashes: exact up to ``k`` sources, above that every
source below the sample's threshold stands for ``1 / tau`` sources (unbiased,
relative error about ``1 / sqrt(k)``; 4.4 % for k = 512, in a room window
with more than 512 networks reporting one error code). Stored size: 9 bytes
per source and 18 per kept client, so at most ~14 KB per error code.

A room window's scope partials (region, platform, app_version, global) carry
the capped counts summed over rooms, and each room's ``TOP_SOURCES`` largest
sources by name (``top_sources`` / ``merge_top``): a script spreading its ids
over many rooms, one or two a room, is one of the largest sources of every
scope it reaches, and the scope caps it again when the partials are merged.

>>> capped = SourceCapped(k=64)
>>> for client in range(1000):  # one script, a thousand invented ids
...     capped.add(source_hash("script"), client_hash(f"fake-{client}"), 1.0, "ios")
>>> for client in range(30):  # thirty listeners in thirty networks
...     capped.add(client_hash(f"real-{client}"), client_hash(f"real-{client}"), 1.0, "web")
>>> capped.totals(), round(capped.sources())
({'web': 30.0, 'ios': 2.0}, 31)
>>> SourceCapped.decode(capped.encode()).totals() == capped.totals()
True
"""

from __future__ import annotations

import sys
from array import array
from typing import Any

from xxhash import xxh3_64_intdigest as xxh3_64

from core.schemas import CLIENTS_PER_SOURCE
from streams.distinct import client_hash

__all__ = ["CLIENTS_PER_SOURCE", "SourceCapped", "client_hash", "merge_top", "source_hash", "top_sources"]

SOURCES_K = 512
# Sources per (scope partial, code) kept by name for merging across rooms; trimmed at four times as many.
TOP_SOURCES = 4

_HASH_SPACE = float(2**64)
_NO_LIMIT = 2**64


def source_hash(source: str) -> int:
    """A stable 64-bit hash of a collector's source stamp (XXH3, as ``client_hash``)."""
    return xxh3_64(source.encode())


class SourceCapped:
    """Per source (by hash): its first ``CLIENTS_PER_SOURCE`` clients, over a bottom-``k`` sample of sources."""

    __slots__ = ("k", "entries", "threshold")

    def __init__(self, k: int = SOURCES_K) -> None:
        self.k = k
        # source hash -> client hash -> (largest weight, cell)
        self.entries: dict[int, dict[int, tuple[float, str]]] = {}
        self.threshold = _NO_LIMIT

    def add(self, source: int, client: int, weight: float, cell: str) -> None:
        if source >= self.threshold:
            return
        clients = self.entries.get(source)
        if clients is None:
            self.entries[source] = {client: (weight, cell)}
            if len(self.entries) >= 2 * self.k:
                self.trim()
            return
        previous = clients.get(client)
        if previous is not None:
            if weight < previous[0]:
                clients[client] = (weight, previous[1])
        elif len(clients) < CLIENTS_PER_SOURCE:
            clients[client] = (weight, cell)

    def trim(self) -> None:
        """Keep the ``k`` smallest source hashes (never changes an estimate)."""
        if len(self.entries) <= self.k:
            return
        ordered = sorted(self.entries)
        for source in ordered[self.k:]:
            del self.entries[source]
        self.threshold = ordered[self.k - 1]

    @property
    def exact(self) -> bool:
        return self.threshold == _NO_LIMIT and len(self.entries) <= self.k

    def _sample(self) -> tuple[list[int], float]:
        """The sources the estimate sums over (in hash order) and the scale each stands for."""
        ordered = sorted(self.entries)
        if self.exact:
            return ordered, 1.0
        return ordered[: self.k - 1], _HASH_SPACE / (ordered[self.k - 1] + 1)

    def per_source(self) -> dict[int, dict[str, float]]:
        """Each sampled source's capped count per cell (unscaled): the weights of its kept clients, of which
        there are at most ``CLIENTS_PER_SOURCE``."""
        out: dict[int, dict[str, float]] = {}
        ordered, _ = self._sample()
        for source in ordered:
            cells: dict[str, float] = {}
            for weight, cell in self.entries[source].values():
                cells[cell] = cells.get(cell, 0.0) + weight
            out[source] = cells
        return out

    def weight_of(self, source: int) -> float:
        """The smallest weight of a source's kept clients: above 1, they were sampled (and the source stands for
        about that many like it)."""
        return min(weight for weight, _ in self.entries[source].values())

    def scale(self) -> float:
        return self._sample()[1]

    def totals(self) -> dict[str, float]:
        """Capped distinct error clients per cell: exact up to ``k`` sources, else the bottom-k estimate."""
        scale = self.scale()
        out: dict[str, float] = {}
        for cells in self.per_source().values():
            for cell, value in cells.items():
                out[cell] = out.get(cell, 0.0) + value
        return {cell: total * scale for cell, total in out.items()} if scale != 1.0 else out

    def sources(self) -> float:
        """Distinct sources (estimated above ``k``)."""
        ordered, scale = self._sample()
        return len(ordered) * scale

    # -- storage ---------------------------------------------------------------------------------
    def encode(self) -> list[Any]:
        if len(self.entries) > self.k:
            self.trim()
        cells: dict[str, int] = {}
        sources, counts, clients, weights, cell_ids = array("Q"), array("B"), array("Q"), array("d"), array("H")
        for source, kept in self.entries.items():
            sources.append(source)
            counts.append(len(kept))
            for client, (weight, cell) in kept.items():
                clients.append(client)
                weights.append(weight)
                cell_ids.append(cells.setdefault(cell, len(cells)))
        packed = (sources, counts, clients, weights, cell_ids)
        if sys.byteorder == "big":  # the changelog is little-endian on every machine
            for column in packed:
                column.byteswap()
        return [self.k, self.threshold != _NO_LIMIT, list(cells), *(column.tobytes() for column in packed)]

    @classmethod
    def decode(cls, raw: list[Any]) -> SourceCapped:
        k, sampled, cells, *columns = raw
        sources, counts, clients, weights, cell_ids = array("Q"), array("B"), array("Q"), array("d"), array("H")
        packed: tuple[array[Any], ...] = (sources, counts, clients, weights, cell_ids)
        for column, data in zip(packed, columns, strict=True):
            column.frombytes(data)
            if sys.byteorder == "big":
                column.byteswap()
        out = cls(k)
        at = 0
        for source, count in zip(sources, counts, strict=True):
            out.entries[source] = {clients[i]: (weights[i], cells[cell_ids[i]]) for i in range(at, at + count)}
            at += count
        if sampled:
            out.threshold = max(sources)
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SourceCapped) and self.k == other.k and self.entries == other.entries

    def __repr__(self) -> str:
        return f"SourceCapped(k={self.k}, sources={len(self.entries)}, exact={self.exact})"


def top_sources(values: dict[int, float]) -> tuple[dict[int, float], float]:
    """The ``TOP_SOURCES`` largest sources (ties: the smaller hash) and the capped sum of the others.

    >>> top_sources({1: 2.0, 2: 1.0, 3: 1.0, 4: 0.5, 5: 2.0, 6: 1.0})
    ({1: 2.0, 5: 2.0, 2: 1.0, 3: 1.0}, 1.5)
    """
    if len(values) <= TOP_SOURCES:
        return dict(values), 0.0
    ordered = sorted(values.items(), key=lambda item: (-item[1], item[0]))
    rest = sum(min(value, CLIENTS_PER_SOURCE) for _, value in ordered[TOP_SOURCES:])
    return dict(ordered[:TOP_SOURCES]), rest


def merge_top(into: dict[str, dict[int, float]], other: dict[str, dict[int, float]],
              rest: dict[str, float]) -> None:
    """Add ``other``'s named sources into ``into`` (per code); past ``4 * TOP_SOURCES`` keep the largest,
    folding the others' capped counts into ``rest``.

    >>> into, rest = {"crash": {7: 1.0}}, {"crash": 0.0}
    >>> merge_top(into, {"crash": {7: 1.0, 8: 1.0}}, rest)
    >>> into, rest
    ({'crash': {7: 2.0, 8: 1.0}}, {'crash': 0.0})
    """
    for code, sources in other.items():
        mine = into.setdefault(code, {})
        for source, value in sources.items():
            mine[source] = mine.get(source, 0.0) + value
        if len(mine) > 4 * TOP_SOURCES:
            kept, folded = top_sources(mine)
            into[code] = kept
            rest[code] = rest.get(code, 0.0) + folded


def capped_total(named: dict[int, float], rest: float) -> float:
    """A scope's capped count: the named sources capped once more, plus what was folded.

    >>> capped_total({7: 40.0, 8: 1.0}, 3.0)
    6.0
    """
    return rest + sum(min(value, CLIENTS_PER_SOURCE) for value in named.values())
