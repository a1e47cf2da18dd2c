"""Columns of generated reports -> client-report JSON, the way a client sends it.

Formatting straight from the numpy columns is several times faster than
building a ``ClientReport`` per report; ``to_client_reports`` decodes these
exact bytes with ``core.schemas``, so both views always agree.

A report's ``weight`` is written only when it is not 1, so a run whose every
simulated client is one listener looks exactly as it always did. ``source``
(the sender's network, which the collector stamps) is written only for
recordings replayed without a collector (``Naming.sources``, the families),
and only when ``core.schemas.ClientReport`` has that field: what goes to a
collector never carries one.

>>> import numpy as np
>>> one = lambda value: np.array([value])
>>> columns = ReportColumns(ts=one(1795392000123), kind=one(0), code=one(-1), client=one(42), room=one(0),
...                         platform=one(0), version=one(0), region=one(0), latency=one(81.25), seq=one(7),
...                         weight=one(250.0))
>>> print(json_lines(columns, Naming(("room-1",), "r-", "c-"))[0].decode())  # doctest: +ELLIPSIS
{"report_id":"r-7","ts":1795392000123,"client_id":"c-2a",...,"latency_ms":81.2,"weight":250.0}
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from core.schemas import ERROR_CODES, KINDS, PLATFORMS, ClientReport, decode

from .world import REGIONS, VERSION_NAMES

# Client numbers: a simulated listener is below SPAMMER_CLIENTS; the ids a
# spammer invents are from SPAMMER_CLIENTS up (all behind one network); a
# listener standing for several people (weight > 1) reports errors for each
# of them as ``listener + j * SUB_CLIENT`` (j >= 1), each a person of its own.
SPAMMER_CLIENTS = 10**12
SUB_CLIENT = 2**44
SPAMMER_SOURCE = "net-spam"
WRITES_SOURCE = "source" in ClientReport.__struct_fields__


def _none() -> np.ndarray:
    return np.zeros(0)


@dataclass(frozen=True)
class ReportColumns:
    """One tick's reports, event-time ordered, one numpy array per field.

    ``kind``, ``code``, ``platform``, ``version``, ``region`` are indexes into
    ``schemas.KINDS``, ``schemas.ERROR_CODES`` (-1 = none), ``PLATFORMS``,
    ``world.VERSION_NAMES``, ``world.REGIONS``; ``latency`` is NaN when absent.
    ``seq`` numbers the reports of a run (their ``report_id``).

    Not on the wire: ``origin`` is the index of the scenario effect that
    caused a report (-1: the normal background), and ``hold_ms`` the event
    time before which a report cannot arrive (0: none; a client that queued
    it while its network was down). Empty ``weight``/``origin``/``hold_ms``
    mean 1, -1 and 0 for every report.
    """

    ts: np.ndarray
    kind: np.ndarray
    code: np.ndarray
    client: np.ndarray
    room: np.ndarray
    platform: np.ndarray
    version: np.ndarray
    region: np.ndarray
    latency: np.ndarray
    seq: np.ndarray
    weight: np.ndarray = field(default_factory=_none)
    origin: np.ndarray = field(default_factory=_none)
    hold_ms: np.ndarray = field(default_factory=_none)

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def weights(self) -> np.ndarray:
        return self.weight if self.weight.shape[0] else np.ones(len(self))

    def origins(self) -> np.ndarray:
        return self.origin if self.origin.shape[0] else np.full(len(self), -1, dtype=np.int64)

    def holds(self) -> np.ndarray:
        return self.hold_ms if self.hold_ms.shape[0] else np.zeros(len(self), dtype=np.int64)


@dataclass(frozen=True)
class Naming:
    """How ids are spelled for one run (seeded, so two runs do not collide)."""

    room_ids: tuple[str, ...]
    report_prefix: str
    client_prefix: str
    sources: bool = False  # write the collector's source stamp (see the module doc)


def source_of(client: int) -> str:
    """The network a simulated client sends from: a few neighbours share one.

    >>> source_of(17), source_of(SPAMMER_CLIENTS + 5)
    ('net-2', 'net-spam')
    """
    if SPAMMER_CLIENTS <= client < SUB_CLIENT:
        return SPAMMER_SOURCE
    return f"net-{client >> 3:x}"


def json_lines(columns: ReportColumns, naming: Naming) -> list[bytes]:
    """One JSON object per report, in the columns' order."""
    rooms = naming.room_ids
    rprefix, cprefix = naming.report_prefix, naming.client_prefix
    weights = columns.weight.tolist() if columns.weight.shape[0] else [1.0] * len(columns)
    stamped = naming.sources and WRITES_SOURCE
    lines: list[bytes] = []
    append = lines.append
    for seq, ts, kind, code, client, room, platform, version, region, latency, weight in zip(
        columns.seq.tolist(), columns.ts.tolist(), columns.kind.tolist(), columns.code.tolist(),
        columns.client.tolist(), columns.room.tolist(), columns.platform.tolist(), columns.version.tolist(),
        columns.region.tolist(), columns.latency.tolist(), weights, strict=True,
    ):
        error = f',"error_code":"{ERROR_CODES[code]}"' if code >= 0 else ""
        late = "" if math.isnan(latency) else f',"latency_ms":{latency:.1f}'
        weighted = "" if weight == 1.0 else f',"weight":{round(weight, 3)!r}'
        source = f',"source":"{source_of(client)}"' if stamped else ""
        append(
            f'{{"report_id":"{rprefix}{seq:x}","ts":{ts},"client_id":"{cprefix}{client:x}",'
            f'"room_id":"{rooms[room]}","kind":"{KINDS[kind]}","platform":"{PLATFORMS[platform]}"{error},'
            f'"app_version":"{VERSION_NAMES[version]}","region":"{REGIONS[region]}"{late}{weighted}{source}}}'.encode()
        )
    return lines


def to_client_reports(lines: list[bytes]) -> list[ClientReport]:
    """Validated ``ClientReport`` objects of encoded lines."""
    if not lines:
        return []
    reports: list[ClientReport] = decode(b"[" + b",".join(lines) + b"]", list[ClientReport])
    return reports
