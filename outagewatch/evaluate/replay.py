"""`outagewatch evaluate`: recorded input through production's pipeline, alerts scored against labels.

The reports (and metric samples) are streamed from NDJSON in file order,
which stands for the order of arrival, through ``streams.detection.replay_alerts``:
the same windowing (``streams.replay``), detectors (``RoomDetectors``) and
alert engine (``AlertEngine``) a worker runs, in event time. What is scored
is what would have paged: alert events that no muter held back (an inhibited
room page under a cluster incident is covered by that incident instead).
The maintenance windows of the settings apply; the silences an operator set
with ``outagewatch silence`` do not (``live_silences=False``): they belong to
one machine and to wall time, and a replay must score the same everywhere.
``room_days`` is the rooms seen times the days the reports span.

>>> import json, pathlib, tempfile
>>> from core.schemas import ClientReport, encode
>>> T = 1_795_323_600_000
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> with open(folder / "r.ndjson", "wb") as out:
...     for window in range(20):
...         for client in range(40):
...             errors = 15 if 8 <= window < 11 else 1
...             kind = "error" if client < errors else "heartbeat"
...             _ = out.write(encode(ClientReport(report_id=f"{window}-{client}", ts=T + window * 10_000 + client,
...                 client_id=f"c{client}", room_id="room-1", kind=kind, platform="web",
...                 error_code="crash" if kind == "error" else None)) + b"\\n")
>>> _ = (folder / "l.json").write_text(json.dumps({"incidents": [{"id": "i1", "scope": "room", "key": "room-1",
...     "kind": "crash", "start": "2026-11-22T05:01:20Z", "end": "2026-11-22T05:01:50Z"}]}))
>>> result = evaluate(folder / "r.ndjson", folder / "l.json")
>>> result["recall"], result["precision"], result["delay_s"]["p50"], result["false_alerts"]
(1.0, 1.0, 20.0, 0)

Twenty seconds: 15 of the room's 40 crash, and are shares of the listeners
of its last heartbeat period (34 on average, not the 25 still
heartbeating, ``detectors.ensemble``), a warning that pages on its second
window.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import msgspec

from alerting.policy import AlertingPolicy
from core.config import Settings, load_settings
from core.schemas import ClientReport, MetricSample, ReportBatch
from detectors.ensemble import EnsembleConfig
from detectors.evaluation import parse_labels, score_alerts
from outagewatch.evaluate.pages import on_call_pages, page_records
from streams.detection import replay_alerts

log = logging.getLogger("outagewatch.evaluate")

DAY_MS = 86_400_000
CONTRACT_KEYS = ("incidents", "detected", "recall", "precision", "f1", "delay_s", "false_alerts",
                 "false_alerts_per_room_day", "alerts")


class EvaluateError(ValueError):
    """Input evaluate cannot use; the message names the file and line."""


def _open(path: Path) -> IO[bytes]:
    try:
        return cast(IO[bytes], gzip.open(path, "rb")) if path.suffix == ".gz" else path.open("rb")
    except OSError as exc:
        raise EvaluateError(f"{path}: {exc.strerror or exc}") from None


def read_reports(path: Path) -> Iterator[ClientReport]:
    """Client reports, one JSON object per line (a ``{"reports": [...]}`` batch per line also works)."""
    one, batch = msgspec.json.Decoder(ClientReport), msgspec.json.Decoder(ReportBatch)
    with _open(path) as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                if line.lstrip().startswith(b'{"reports"'):
                    yield from batch.decode(line).reports
                else:
                    yield one.decode(line)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                raise EvaluateError(f"{path}:{number}: not a client report: {exc}") from None


def read_samples(path: Path) -> Iterator[MetricSample]:
    """Server metric samples, one JSON object per line."""
    decoder = msgspec.json.Decoder(MetricSample)
    with _open(path) as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield decoder.decode(line)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                raise EvaluateError(f"{path}:{number}: not a metric sample: {exc}") from None


# A minute holding fewer reports than this share of the median minute's is not part of the
# recording's span: a few reports dated 2099 or 2001 (broken client clocks) would otherwise
# stretch a one-hour recording over a century of room-days.
STRAY_MINUTE_SHARE = 0.05


@dataclass
class Coverage:
    """Rooms and event-time span of the reports that went by.

    The span runs from the first to the last report of the minutes that hold
    at least ``STRAY_MINUTE_SHARE`` of the median minute's reports; the
    reports of the other minutes are counted in ``strays``.

    >>> coverage = Coverage()
    >>> ts = [1_795_323_600_000 + i * 1000 for i in range(600)] + [4_070_908_800_000]  # 10 min, one from 2099
    >>> for _ in coverage.track(type("R", (), {"ts": t, "room_id": "r"})() for t in ts): pass
    >>> round(coverage.room_days(10_000) * 1440, 2), coverage.strays
    (9.98, 1)
    """

    rooms: set[str] = field(default_factory=set)
    reports: int = 0
    strays: int = 0
    # minute -> [reports, first ts, last ts]
    minutes: dict[int, list[int]] = field(default_factory=dict)

    def track(self, reports: Iterable[ClientReport]) -> Iterator[ClientReport]:
        rooms, minutes = self.rooms, self.minutes
        for report in reports:
            ts = int(report.ts)
            minute = minutes.get(ts // 60_000)
            if minute is None:
                minutes[ts // 60_000] = [1, ts, ts]
            else:
                minute[0] += 1
                if ts < minute[1]:
                    minute[1] = ts
                elif ts > minute[2]:
                    minute[2] = ts
            rooms.add(report.room_id)
            self.reports += 1
            yield report

    def span_ms(self) -> tuple[int, int]:
        """(first, last) event time of the recording, stray minutes left out."""
        if not self.minutes:
            raise EvaluateError("the reports file holds no report: nothing to evaluate")
        counts = sorted(count for count, _, _ in self.minutes.values())
        floor = STRAY_MINUTE_SHARE * counts[len(counts) // 2]
        kept = sorted(minute for minute, (count, _, _) in self.minutes.items() if count >= floor)
        self.strays = sum(count for minute, (count, _, _) in self.minutes.items() if count < floor)
        return self.minutes[kept[0]][1], self.minutes[kept[-1]][2]

    def room_days(self, window_ms: int) -> float:
        first, last = self.span_ms()
        # A recording shorter than one window still covers that window.
        return len(self.rooms) * max(last - first, window_ms) / DAY_MS


def write_pages(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """One JSON object per line."""
    try:
        with path.open("w") as handle:
            for record in records:
                handle.write(json.dumps(record) + "\n")
    except OSError as exc:
        raise EvaluateError(f"{path}: {exc.strerror or exc}") from None


def load_labels(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        raise EvaluateError(f"{path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise EvaluateError(f"{path}: not JSON: {exc}") from None
    try:
        parse_labels(document)
    except ValueError as exc:
        raise EvaluateError(f"{path}: {exc}") from None
    return dict(document)


def evaluate(reports: Path, labels: Path, metrics: Path | None = None, settings: Settings | None = None,
             config: EnsembleConfig | None = None, alerts_out: Path | None = None) -> dict[str, Any]:
    """The JSON object docs/design.md specifies, for one recording and its labels; every page to ``alerts_out``."""
    settings = settings or load_settings(env={})
    document = load_labels(labels)  # fail on bad labels before a long replay
    coverage = Coverage()
    window_s, lateness_s = settings.streams.window_seconds, settings.streams.allowed_lateness_seconds
    emitted = replay_alerts(coverage.track(read_reports(reports)), read_samples(metrics) if metrics else (),
                            window_s=window_s, lateness_s=lateness_s, config=config,
                            policy=AlertingPolicy.from_settings(settings.alerting, live_silences=False),
                            dark_give_up_s=settings.streams.dark_key_seconds, bound=settings.event_time.bound())
    pages = on_call_pages(emitted)
    room_days = coverage.room_days(window_s * 1000)
    log.info("evaluated %d reports of %d rooms (%.3f room-days): %d alert events paged",
             coverage.reports, len(coverage.rooms), room_days, len(pages))
    if coverage.strays:
        log.warning("%d reports are dated far from the rest of the recording (broken client clocks?): "
                    "room-days leave their minutes out", coverage.strays)
    result = score_alerts(pages, document, room_days)
    if alerts_out is not None:
        write_pages(alerts_out, page_records(pages, parse_labels(document)))
    return {key: result[key] for key in CONTRACT_KEYS}
