"""The sweep's table: per family and in total, and the detection targets.

Per family: draws, event hours, room-days, incidents, detected, recall;
delay p50/p95 (event time, to the first covering page) of loud incidents in
two classes: those that at some point had 5 distinct people a minute
reporting them (``loud_from``), judged from that moment (0 if paged before
it), and the others, judged from their labelled start; silent-failure recall
and delay (from the start);
false pages (firing episodes covering no incident), per 100 room-days; pages
on negative families (every one of them is false). Delays are nearest-rank
percentiles, as ``outagewatch evaluate`` prints them.

>>> from outagewatch.evaluate.sweep import DrawResult, IncidentResult
>>> T = 1_795_323_600_000
>>> # labelled at T, loud (5 people a minute) from T + 30 s, paged at T + 40 s
>>> hit = IncidentResult("a", "room", "r1", "crash", False, 12.0, 40.0, loud_from_ms=T + 30_000, fired_ms=T + 40_000)
>>> miss = IncidentResult("b", "room", "r2", "crash", False, 2.0, None)
>>> board = summarise([DrawResult("room_small", "loud", 0, 1800, 0.2, 1000, (hit, miss), 1, (), 1.0)])
>>> row = board["families"][0]
>>> row["recall"], row["loud"]["5+/min"], row["loud"]["<5/min"]["detected"]
(0.5, {'incidents': 1, 'detected': 1, 'p50': 10.0, 'p95': 10.0}, 0)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from detectors.evaluation import nearest_rank
from outagewatch.evaluate.sweep import DrawResult, IncidentResult

# The detection targets: what detection must reach on this sweep.
BAR = {"loud_recall": 0.97, "p95_5+/min_s": 45.0, "p95_<5/min_s": 90.0, "silent_recall": 0.95,
       "silent_p95_s": 60.0, "false_pages_per_100_room_days": 1.0, "negative_pages": 0,
       "min_incidents": 200, "min_negative_hours": 50.0}


def _delays(found: Sequence[IncidentResult], loud: bool = False) -> dict[str, Any]:
    delays = sorted(d for d in (i.loud_delay_s if loud else i.delay_s for i in found) if d is not None)
    return {"incidents": len(found), "detected": len(delays),
            "p50": round(nearest_rank(delays, 0.5), 1) if delays else None,
            "p95": round(nearest_rank(delays, 0.95), 1) if delays else None}


def _row(name: str, kind: str, results: Sequence[DrawResult]) -> dict[str, Any]:
    found = [i for r in results for i in r.incidents]
    loud = [i for i in found if not i.silent]
    silent = [i for i in found if i.silent]
    detected = sum(1 for i in found if i.detected)
    room_days = sum(r.room_days for r in results)
    false_pages = sum(len(r.false_pages) for r in results)
    silent_delays = _delays(silent)
    return {
        "family": name, "kind": kind, "draws": len(results),
        "hours": round(sum(r.duration_s for r in results) / 3600, 2), "room_days": round(room_days, 2),
        "incidents": len(found), "detected": detected, "recall": round(detected / len(found), 4) if found else None,
        "loud": {"incidents": len(loud), "detected": sum(1 for i in loud if i.detected),
                 "5+/min": _delays([i for i in loud if i.loud_from_ms is not None], loud=True),
                 "<5/min": _delays([i for i in loud if i.loud_from_ms is None])},
        "silent": {**silent_delays,
                   "recall": round(silent_delays["detected"] / len(silent), 4) if silent else None},
        "alerts": sum(r.alerts for r in results), "false_pages": false_pages,
        "false_pages_per_100_room_days": round(100 * false_pages / room_days, 3) if room_days else None,
        "negative_pages": sum(r.alerts for r in results if r.kind == "negative"),
        "reports": sum(r.reports for r in results), "cpu_s": round(sum(r.cpu_s for r in results), 1),
    }


def summarise(results: Iterable[DrawResult]) -> dict[str, Any]:
    """``{"families": [row...], "total": row, "bar": {...}}`` (see the module doc)."""
    ordered = sorted(results, key=lambda r: (r.family, r.seed))
    names = list(dict.fromkeys(r.family for r in ordered))
    rows = [_row(name, next(r.kind for r in ordered if r.family == name),
                 [r for r in ordered if r.family == name]) for name in names]
    total = _row("total", "", ordered)
    return {"families": rows, "total": total, "bar": bar(rows, total)}


def bar(rows: Sequence[dict[str, Any]], total: dict[str, Any]) -> dict[str, Any]:
    """Each detection target: the figure and whether it holds (None: nothing to judge it on)."""
    loud = total["loud"]
    loud_recall = loud["detected"] / loud["incidents"] if loud["incidents"] else None
    negative_hours = sum(row["hours"] for row in rows if row["kind"] == "negative")
    pages_by_negative = {row["family"]: row["negative_pages"] for row in rows if row["kind"] == "negative"}

    def check(value: float | None, limit: float, above: bool) -> dict[str, Any]:
        # No figure (no incident of that class in this run): the criterion cannot be judged.
        holds = None if value is None else (value >= limit if above else value <= limit)
        return {"value": None if value is None else round(value, 4), "limit": limit, "holds": holds}

    return {
        "loud_recall": check(loud_recall, BAR["loud_recall"], above=True),
        "p95_5+/min_s": check(loud["5+/min"]["p95"], BAR["p95_5+/min_s"], above=False),
        "p95_<5/min_s": check(loud["<5/min"]["p95"], BAR["p95_<5/min_s"], above=False),
        "silent_recall": check(total["silent"]["recall"], BAR["silent_recall"], above=True),
        "silent_p95_s": check(total["silent"]["p95"], BAR["silent_p95_s"], above=False),
        "false_pages_per_100_room_days": check(total["false_pages_per_100_room_days"],
                                               BAR["false_pages_per_100_room_days"], above=False),
        "negative_pages": {"value": pages_by_negative, "limit": 0,
                           "holds": not any(pages_by_negative.values()) if pages_by_negative else None},
        "incidents": check(float(total["incidents"]), BAR["min_incidents"], above=True),
        "negative_hours": check(negative_hours, BAR["min_negative_hours"], above=True),
    }


def _pair(group: dict[str, Any]) -> str:
    if not group["incidents"]:
        return "-"
    delays = f"{group['p50']:.0f}/{group['p95']:.0f}" if group["p50"] is not None else "-/-"
    return f"{delays} ({group['detected']}/{group['incidents']})"


def table(board: dict[str, Any]) -> str:
    """The board as a fixed-width table, a row per family, the total, then the targets."""
    head = ("family", "kind", "draws", "hours", "incidents", "detected", "recall", "delay 5+/min p50/p95",
            "delay <5/min p50/p95", "silent p50/p95", "false", "per 100 rd", "neg pages")
    lines = []
    for row in [*board["families"], board["total"]]:
        lines.append((
            row["family"], row["kind"], str(row["draws"]), f"{row['hours']:.1f}", str(row["incidents"]),
            str(row["detected"]), "-" if row["recall"] is None else f"{row['recall']:.1%}",
            _pair(row["loud"]["5+/min"]), _pair(row["loud"]["<5/min"]), _pair(row["silent"]),
            str(row["false_pages"]),
            "-" if row["false_pages_per_100_room_days"] is None else f"{row['false_pages_per_100_room_days']:.2f}",
            str(row["negative_pages"]) if row["kind"] in ("negative", "") else "",
        ))
    widths = [max(len(cells[i]) for cells in [head, *lines]) for i in range(len(head))]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) if i < 2 else cell.rjust(width)
                         for i, (cell, width) in enumerate(zip(cells, widths, strict=True))).rstrip()

    out = [fmt(head), fmt(["-" * w for w in widths]), *(fmt(cells) for cells in lines[:-1]),
           fmt(["-" * w for w in widths]), fmt(lines[-1]), "", "targets:"]
    verdicts = {True: "holds ", False: "FAILS ", None: "n/a   "}
    for name, item in board["bar"].items():
        out.append(f"  {verdicts[item['holds']]} {name}: {item['value']} (limit {item['limit']})")
    return "\n".join(out)


def misses(results: Iterable[DrawResult], quick: bool) -> dict[str, list[dict[str, Any]]]:
    """Every missed incident and false page, with the command that writes its draw's files."""
    missed, false = [], []
    for result in results:
        again = f"outagewatch simulate --family {result.family} --seed {result.seed}{' --quick' if quick else ''}"
        for incident in result.incidents:
            if not incident.detected:
                missed.append({"family": result.family, "seed": result.seed, "id": incident.id,
                               "scope": incident.scope, "key": incident.key, "kind": incident.kind,
                               "silent": incident.silent, "peak_clients_per_min": incident.peak_clients_per_min,
                               "loud": incident.loud_from_ms is not None,
                               "reproduce": again})
        for page in result.false_pages:
            false.append({"family": result.family, "seed": result.seed, **page, "reproduce": again})
    return {"missed": missed, "false_pages": false}


def miss_lines(found: dict[str, list[dict[str, Any]]]) -> str:
    """``misses`` as the lines ``--misses`` prints after the table."""
    out = [f"\nmissed incidents ({len(found['missed'])}):"]
    for item in found["missed"]:
        out.append(f"  {item['id']}  {item['scope']} {item['key']} {item['kind']}, "
                   f"at most {item['peak_clients_per_min']:g} people a minute  [{item['reproduce']} --out DIR]")
    out.append(f"false pages ({len(found['false_pages'])}):")
    for item in found["false_pages"]:
        out.append(f"  {item['family']} seed {item['seed']}: {item['scope']} {item['key']} fired {item['fired']}  "
                   f"[{item['reproduce']} --out DIR]")
    return "\n".join(out) + "\n"
