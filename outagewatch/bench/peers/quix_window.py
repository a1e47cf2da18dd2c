"""Quix Streams: the library a Python user would pick instead of Faust.

Idiomatic Quix: explode each batch into rows, take the event time from the
report, a tumbling 10 s window with ``reduce`` per message key (the room),
emitting closed windows with ``final()``.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

from quixstreams import Application

from outagewatch.bench.peers.common import add_report, emit, new_window, parse_args


def main() -> None:
    args = parse_args(__doc__ or "")
    progress: dict[str, Any] = {"reports": 0, "first": None, "seconds": None, "windows": 0}

    app = Application(
        broker_address=args.bootstrap, consumer_group=args.group or f"peer-quix-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest", state_dir=f"{args.state_dir}/quix-{uuid.uuid4().hex[:6]}",
        loglevel="WARNING",
    )
    topic = app.topic(args.topic, value_deserializer="json", key_deserializer="str")
    frame = app.dataframe(topic)

    def count(batch: dict[str, Any]) -> list[dict[str, Any]]:
        if progress["first"] is None:
            progress["first"] = time.perf_counter()
        reports: list[dict[str, Any]] = batch["reports"]
        progress["reports"] += len(reports)
        if progress["reports"] >= args.expect and progress["seconds"] is None:
            progress["seconds"] = time.perf_counter() - progress["first"]
            app.stop()
        return reports

    def reduce(window: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
        return add_report(window, report)

    def initialize(report: dict[str, Any]) -> dict[str, Any]:
        return add_report(new_window(), report)

    def closed(window: Any) -> None:
        progress["windows"] += 1

    frame = frame.apply(count, expand=True)
    frame = frame.set_timestamp(lambda value, key, timestamp, headers: int(value["ts"]))
    frame = frame.tumbling_window(timedelta(seconds=10), grace_ms=timedelta(seconds=10)).reduce(
        reducer=reduce, initializer=initialize).final()
    frame = frame.update(closed)
    app.run(frame)
    emit({"peer": "quix_streams", "reports": progress["reports"], "seconds": round(progress["seconds"] or 0, 3),
          "windows_closed": progress["windows"]})


if __name__ == "__main__":
    main()
