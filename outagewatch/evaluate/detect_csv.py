"""`outagewatch detect-csv IN.csv OUT.csv`: score a series with the room volume detector's class.

IN has the header ``timestamp,value``; OUT gets ``timestamp,value,anomaly_score``,
one row per input row, the score in [0, 1] from ``VolumeBaseline`` (the class
that watches a room's report volume) in its general profile: rises and drops,
a new level flagged once and then followed, scores calibrated by the series'
own past (``SeriesProfile``; the flags change it). It is computed streaming: row i is scored
against rows before it, then learned, so it never sees the future. Timestamps
are copied as they are; when they parse (epoch seconds or milliseconds, RFC
3339, ``YYYY-MM-DD HH:MM:SS`` taken as UTC) they also feed the time-of-day
baseline. OUT is written to a temporary file and renamed at the end, so a bad
input leaves no half-written output.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from core.config import Settings
from detectors.volume import VolumeBaseline

log = logging.getLogger("outagewatch.detect_csv")


@dataclass(frozen=True)
class SeriesProfile:
    """``VolumeBaseline`` settings for a series we know nothing about (the room volume keeps its own).

    A room's report volume only matters going up, and an outage must never become its baseline; a series in
    general can fail by dropping, settles on new levels that are news once, and has tails of its own. So
    both directions, a baseline that restarts after ``shift_after`` rows at a new level, a half-life short
    enough to follow a drifting series, and scores calibrated by the series' own record of excesses.
    """

    warmup: int = 12
    half_life: float = 20.0
    z_alarm: float = 4.0
    direction: Literal["up", "both"] = "both"
    shift_after: int = 6
    calibrate: bool = True
    tail_prior: float = 20.0
    # Half-hour time-of-day buckets: a series sampled every few minutes still fills one in a few days.
    season_bucket_s: int = 1_800

    def as_kwargs(self) -> dict[str, Any]:
        return asdict(self)


GENERAL = SeriesProfile()


class InputError(ValueError):
    """The input file is not ``timestamp,value`` CSV; the message names the line."""


def parse_timestamp(text: str) -> int | None:
    """Epoch milliseconds, or ``None`` when the timestamp is not a time we understand.

    >>> parse_timestamp("1795323600"), parse_timestamp("1795323600000"), parse_timestamp("2014-04-01 00:00:00")
    (1795323600000, 1795323600000, 1396310400000)
    >>> parse_timestamp("step 7") is None
    True
    """
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            return None
        return int(number if abs(number) >= 1e11 else number * 1000)
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def detect_csv(source: Path, target: Path, detector: VolumeBaseline) -> int:
    """Score every row of ``source`` into ``target``; returns the number of rows."""
    target_dir = target.resolve().parent
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target_dir)
    rows = 0
    try:
        with open(source, newline="", encoding="utf-8-sig") as infile, os.fdopen(handle, "w", newline="") as outfile:
            reader = csv.reader(infile)
            header = next(reader, None)
            if header is None or [cell.strip().lower() for cell in header] != ["timestamp", "value"]:
                raise InputError(f"{source} line 1: header must be 'timestamp,value', got {','.join(header or [])!r}")
            writer = csv.writer(outfile, lineterminator="\n")
            writer.writerow(["timestamp", "value", "anomaly_score"])
            score_one, learn_one = detector.score_one, detector.learn_one
            for row in reader:
                line = reader.line_num
                if not row:
                    continue
                if len(row) != 2:
                    raise InputError(f"{source} line {line}: expected 2 columns (timestamp,value), got {len(row)}")
                stamp_text, value_text = row
                try:
                    value = float(value_text)
                except ValueError:
                    raise InputError(f"{source} line {line}: value {value_text!r} is not a number") from None
                if not math.isfinite(value):
                    raise InputError(f"{source} line {line}: value {value_text!r} is not a finite number")
                ts_ms = parse_timestamp(stamp_text)
                score = score_one(value, ts_ms)
                learn_one(value, ts_ms)
                writer.writerow([stamp_text, value_text, f"{score:.6f}"])
                rows += 1
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes it private; OUT is an ordinary file
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return rows


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "detect-csv",
        help="score a timestamp,value CSV with the volume detector's general profile (rises, drops, level shifts)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    parser.add_argument("source", metavar="IN.csv", type=Path, help="input CSV with the header timestamp,value")
    parser.add_argument("target", metavar="OUT.csv", type=Path, help="output CSV: timestamp,value,anomaly_score")
    parser.add_argument("--warmup", type=int, default=GENERAL.warmup,
                        help=f"rows learned before scoring starts (score 0 until then; default {GENERAL.warmup})")
    parser.add_argument("--half-life", type=float, default=GENERAL.half_life,
                        help=f"half-life of the baseline, in rows (default {GENERAL.half_life:g})")
    parser.add_argument("--z-alarm", type=float, default=GENERAL.z_alarm,
                        help="with --no-calibrate: excess over the baseline, in scales, that scores 0.5 "
                             f"(default {GENERAL.z_alarm:g})")
    parser.add_argument("--min-volume", type=float, default=0.0, help="values below this score 0 (default 0: score everything)")
    parser.add_argument("--direction", choices=("up", "both"), default=GENERAL.direction,
                        help="'both' scores rises and drops (the default); 'up' only rises, as for report volume")
    parser.add_argument("--counts", choices=("auto", "yes", "no"), default="auto",
                        help="the values are counts, so Poisson noise floors the scale; 'auto' (the default) "
                             "decides at the end of the warm-up: yes when every warm-up value is a whole number >= 0")
    parser.add_argument("--shift-after", type=int, default=GENERAL.shift_after,
                        help="rows in a row beyond the baseline, on one side, that make it a new level: the baseline "
                             f"restarts there (default {GENERAL.shift_after}; 0 never, as for report volume)")
    parser.add_argument("--calibrate", action=argparse.BooleanOptionalAction, default=GENERAL.calibrate,
                        help="score by how rare the excess is among the series' own past excesses, so a series with "
                             "heavy tails and a smooth one alarm equally often (default on; --no-calibrate scores "
                             "the excess in scales, as for report volume)")
    parser.set_defaults(func=_run)


def _run(settings: Settings, args: argparse.Namespace) -> int:
    counts: bool | Literal["auto"] = {"auto": "auto", "yes": True, "no": False}[args.counts]  # type: ignore[assignment]
    detector = VolumeBaseline(**{
        **GENERAL.as_kwargs(), "warmup": args.warmup, "half_life": args.half_life, "z_alarm": args.z_alarm,
        "min_volume": args.min_volume, "direction": args.direction, "counts": counts,
        "shift_after": args.shift_after, "calibrate": args.calibrate,
    })
    started = time.perf_counter()
    try:
        rows = detect_csv(args.source, args.target, detector)
    except (InputError, OSError, UnicodeDecodeError) as exc:
        log.error("detect-csv: %s", exc)
        return 1
    seconds = time.perf_counter() - started
    log.info("detect-csv: scored %d rows of %s into %s in %.2f s", rows, args.source, args.target, seconds)
    return 0
