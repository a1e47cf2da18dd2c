"""Columns of generated reports -> client-report JSON, the way a client sends it.

Formatting straight from the numpy columns is several times faster than
building a ``ClientReport`` per report; ``to_client_reports`` decodes these
exact bytes with ``core.schemas``, so both views always agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.schemas import ERROR_CODES, KINDS, PLATFORMS, ClientReport, decode

from .world import REGIONS, VERSION_NAMES


@dataclass(frozen=True)
class ReportColumns:
    """One tick's reports, event-time ordered, one numpy array per field.

    ``kind``, ``code``, ``platform``, ``version``, ``region`` are indexes into
    ``schemas.KINDS``, ``schemas.ERROR_CODES`` (-1 = none), ``PLATFORMS``,
    ``world.VERSION_NAMES``, ``world.REGIONS``; ``latency`` is NaN when absent.
    ``seq`` numbers the reports of a run (their ``report_id``).
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

    def __len__(self) -> int:
        return int(self.ts.shape[0])


@dataclass(frozen=True)
class Naming:
    """How ids are spelled for one run (seeded, so two runs do not collide)."""

    room_ids: tuple[str, ...]
    report_prefix: str
    client_prefix: str


def json_lines(columns: ReportColumns, naming: Naming) -> list[bytes]:
    """One JSON object per report, in the columns' order."""
    rooms = naming.room_ids
    rprefix, cprefix = naming.report_prefix, naming.client_prefix
    lines: list[bytes] = []
    append = lines.append
    for seq, ts, kind, code, client, room, platform, version, region, latency in zip(
        columns.seq.tolist(), columns.ts.tolist(), columns.kind.tolist(), columns.code.tolist(),
        columns.client.tolist(), columns.room.tolist(), columns.platform.tolist(), columns.version.tolist(),
        columns.region.tolist(), columns.latency.tolist(), strict=True,
    ):
        error = f',"error_code":"{ERROR_CODES[code]}"' if code >= 0 else ""
        late = "" if math.isnan(latency) else f',"latency_ms":{latency:.1f}'
        append(
            f'{{"report_id":"{rprefix}{seq:x}","ts":{ts},"client_id":"{cprefix}{client:x}",'
            f'"room_id":"{rooms[room]}","kind":"{KINDS[kind]}","platform":"{PLATFORMS[platform]}"{error},'
            f'"app_version":"{VERSION_NAMES[version]}","region":"{REGIONS[region]}"{late}}}'.encode()
        )
    return lines


def to_client_reports(lines: list[bytes]) -> list[ClientReport]:
    """Validated ``ClientReport`` objects of encoded lines."""
    if not lines:
        return []
    reports: list[ClientReport] = decode(b"[" + b",".join(lines) + b"]", list[ClientReport])
    return reports
