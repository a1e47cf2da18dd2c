"""Weighted distinct clients in bounded memory: exact up to ``k`` clients, a bottom-k sample above.

A room window counts *listeners*: distinct clients, each with the largest
weight it reported. Kept exactly, a 700k-listener room's window is a ~20 MB
set, re-written to the changelog on every flush and larger than Kafka's 1 MB
message limit. ``Distinct`` keeps instead the ``k`` clients with the smallest
64-bit hash (XXH3 of the client id, stable across processes and versions, never Python's randomized
``hash()``), each with its largest weight and its cell (region, platform,
app version):

- up to ``k`` distinct clients it holds them all, so small rooms are exact
  (a 64-bit collision among k = 2,048 clients has probability ~1e-13);
- above ``k`` it is a *bottom-k sample* (Cohen & Kaplan, PODC 2007): with
  ``tau`` the k-th smallest hash scaled to (0, 1], every client of the k-1
  below it was sampled with probability ``tau``, so ``sum(weight) / tau`` over
  them is an unbiased estimate of the weighted distinct count, for the whole
  window and for each cell. Its relative standard error is at most
  ``sqrt(1 + cv**2) / sqrt(k - 2)``, where ``cv`` is the coefficient of
  variation of the clients' weights: 2.2 % for k = 2,048 with equal weights
  (6.6 % at three standard errors), 3.1 % for k = 1,024. A cell holding a
  fraction ``p`` of the clients is estimated from ~``p * k`` of them: its
  error is about ``1 / sqrt(p * k)`` (4.4 % for a quarter of k = 2,048).

Error clients keep their *smallest* weight instead (``add_smallest``): the
collector samples a flooding room's errors by client (``collectors.storm``),
keeping a client when a fixed hash of it falls under the keep ratio ``p`` of
the moment, with weight ``1 / p``. The ratios nest, so a client is seen at all
with probability ``max p`` over its reports, which is ``1 / (its smallest
weight)``: counting each client at that weight estimates the distinct error
clients without bias even when the ratio changed within the window (the
largest weight would count a client seen at 1 and at 1/64 as 64). The
sampling hash is keyed and salted by room, so it is independent of the
bottom-k hash here.

Why it is safe under at-least-once replay: adding a (client, weight) twice
changes nothing (the largest, or smallest, weight wins, the same hash is the same entry),
and the estimate depends only on the final bottom-k set, never on the order
of arrival or on when the set was trimmed. A client whose hash is in the final
bottom-k was below the threshold at every one of its reports, so its weight is
exact too.

Stored size: 18 bytes per kept client (hash, weight, cell index), so at most
~37 KB for k = 2,048 whatever the room size.

>>> seen = Distinct(k=4)
>>> for client, weight in [("a", 1.0), ("b", 1.0), ("a", 3.0), ("c", 2.0)]:
...     seen.add(client_hash(client), weight, "ios")
>>> seen.totals(), seen.exact
({'ios': 6.0}, True)
>>> big = Distinct(k=256)
>>> for i in range(100_000):
...     big.add(client_hash(f"c{i}"), 1.0, "web")
>>> big.exact, abs(big.total() / 100_000 - 1) < 3 / (256 - 2) ** 0.5
(False, True)
>>> Distinct.decode(big.encode()).totals() == big.totals()
True
"""

from __future__ import annotations

import sys
from array import array
from typing import Any

from xxhash import xxh3_64_intdigest as xxh3_64

# Sample sizes: listeners get more room than each error code's clients, which
# are fewer and of which a window keeps one set per code.
LISTENERS_K = 2048
ERROR_CLIENTS_K = 1024

_HASH_SPACE = float(2**64)
_NO_LIMIT = 2**64


def client_hash(client: str) -> int:
    """A stable 64-bit hash of a client id (XXH3, seed 0: the same in every process, run and version).

    >>> client_hash("c1") == client_hash("c1"), 0 <= client_hash("c1") < 2**64
    (True, True)
    """
    return xxh3_64(client.encode())


class Distinct:
    """A set of (client hash -> largest weight, cell), trimmed to its ``k`` smallest hashes."""

    __slots__ = ("k", "entries", "threshold")

    def __init__(self, k: int = LISTENERS_K) -> None:
        self.k = k
        self.entries: dict[int, tuple[float, str]] = {}
        # Hashes at or above this can never be in the bottom-k again.
        self.threshold = _NO_LIMIT

    def add(self, hashed: int, weight: float, cell: str) -> None:
        entries = self.entries
        previous = entries.get(hashed)
        if previous is None:
            if hashed >= self.threshold:
                return
            entries[hashed] = (weight, cell)
            # Trimming lazily at 2k keeps adds O(1) amortised.
            if len(entries) >= 2 * self.k:
                self.trim()
        elif weight > previous[0]:
            entries[hashed] = (weight, previous[1])

    def add_smallest(self, hashed: int, weight: float, cell: str) -> None:
        """``add``, keeping the client's smallest weight: for clients sampled by client (see the module doc).

        >>> seen = Distinct(k=4)
        >>> seen.add_smallest(client_hash("a"), 64.0, "ios"); seen.add_smallest(client_hash("a"), 1.0, "ios")
        >>> seen.totals()
        {'ios': 1.0}
        """
        entries = self.entries
        previous = entries.get(hashed)
        if previous is None:
            if hashed >= self.threshold:
                return
            entries[hashed] = (weight, cell)
            if len(entries) >= 2 * self.k:
                self.trim()
        elif weight < previous[0]:
            entries[hashed] = (weight, previous[1])

    def trim(self) -> None:
        """Drop everything above the k smallest hashes (never changes an estimate)."""
        if len(self.entries) <= self.k:
            return
        # In place: RoomWindows.add_many holds on to this dict.
        ordered = sorted(self.entries)
        for hashed in ordered[self.k:]:
            del self.entries[hashed]
        self.threshold = ordered[self.k - 1]

    @property
    def exact(self) -> bool:
        """True while no client was ever dropped: the totals are exact sums."""
        return self.threshold == _NO_LIMIT and len(self.entries) <= self.k

    def totals(self) -> dict[str, float]:
        """Weighted distinct clients per cell: exact up to ``k`` clients, else the bottom-k estimate."""
        entries = self.entries
        ordered = sorted(entries)  # sums in hash order: the same bits after any replay
        scale = 1.0
        if not self.exact:
            scale = _HASH_SPACE / (ordered[self.k - 1] + 1)
            ordered = ordered[: self.k - 1]
        out: dict[str, float] = {}
        for hashed in ordered:
            weight, cell = entries[hashed]
            out[cell] = out.get(cell, 0.0) + weight
        if scale != 1.0:
            out = {cell: total * scale for cell, total in out.items()}
        return out

    def total(self) -> float:
        return sum(self.totals().values())

    # -- storage: packed arrays, 18 bytes per client ---------------------------
    def encode(self) -> list[Any]:
        """Packed arrays, in dict order (``totals`` sorts; every flush pays for this, so no sort here)."""
        if len(self.entries) > self.k:
            self.trim()
        entries = self.entries
        cells: dict[str, int] = {}
        pairs = entries.values()
        hashes = array("Q", entries)
        weights = array("d", [weight for weight, _ in pairs])
        cell_ids = array("H", [cells.setdefault(cell, len(cells)) for _, cell in pairs])
        if sys.byteorder == "big":  # the changelog is little-endian on every machine
            for packed in (hashes, weights, cell_ids):
                packed.byteswap()
        sampled = self.threshold != _NO_LIMIT
        return [self.k, sampled, list(cells), hashes.tobytes(), weights.tobytes(), cell_ids.tobytes()]

    @classmethod
    def decode(cls, raw: list[Any]) -> Distinct:
        k, sampled, cells, hash_bytes, weight_bytes, cell_bytes = raw
        hashes, weights, cell_ids = array("Q"), array("d"), array("H")
        hashes.frombytes(hash_bytes)
        weights.frombytes(weight_bytes)
        cell_ids.frombytes(cell_bytes)
        if sys.byteorder == "big":
            for packed in (hashes, weights, cell_ids):
                packed.byteswap()
        out = cls(k)
        out.entries = {hashed: (weight, cells[cell]) for hashed, weight, cell in zip(hashes, weights, cell_ids, strict=True)}
        if sampled:
            out.threshold = max(hashes)
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Distinct) and self.k == other.k and self.totals() == other.totals()

    def __repr__(self) -> str:
        return f"Distinct(k={self.k}, clients={len(self.entries)}, exact={self.exact})"


def enc_hook(value: Any) -> Any:
    """msgspec hook: how a ``Distinct`` inside a window state is written."""
    if isinstance(value, Distinct):
        return value.encode()
    raise NotImplementedError(f"cannot encode {type(value).__name__}")


def dec_hook(kind: type, value: Any) -> Any:
    """msgspec hook: how a ``Distinct`` inside a window state is read back."""
    if kind is Distinct:
        return Distinct.decode(value)
    raise NotImplementedError(f"cannot decode {kind}")
