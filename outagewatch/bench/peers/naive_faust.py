"""The naive Faust agent: one event at a time, a table write per report.

This is how the Faust documentation's examples aggregate: iterate the stream,
update a changelog-backed table entry for every event. It is the baseline our
batched worker is compared with.

It reads with ``windows.get(key)``: ``Table(default=None)`` has *no* default,
so ``windows[key]`` on a new window raises ``KeyError`` and the supervisor
restarts the agent every 5 s forever. Table and topic have the same number of
partitions, as Faust requires for a table written from that stream.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import faust

from outagewatch.bench.peers.common import WINDOW_MS, add_report, emit, new_window, parse_args


def main() -> None:
    args = parse_args(__doc__ or "")
    app = faust.App(
        args.group or f"peer-naive-{uuid.uuid4().hex[:8]}", broker=f"kafka://{args.bootstrap}", store="memory://",
        web_enabled=False, datadir=f"{args.state_dir}/naive-{uuid.uuid4().hex[:6]}",
        consumer_auto_offset_reset="earliest", topic_partitions=8,
    )
    topic = app.topic(args.topic, value_serializer="raw", key_serializer="raw")
    windows = app.Table("naive-windows", default=None, partitions=8)
    progress: dict[str, Any] = {"reports": 0, "first": None, "done": asyncio.Event(), "windows": set()}

    @app.agent(topic)
    async def aggregate(stream: Any) -> None:
        async for _room, value in stream.items():
            if progress["first"] is None:
                progress["first"] = time.perf_counter()
            for report in json.loads(value)["reports"]:
                key = f"{report['room_id']}|{report['ts'] // WINDOW_MS * WINDOW_MS}"
                windows[key] = add_report(windows.get(key) or new_window(), report)
                progress["windows"].add(key)
                progress["reports"] += 1
            if progress["reports"] >= args.expect:
                progress["done"].set()

    async def run() -> None:
        await app.start()
        try:
            await progress["done"].wait()
            seconds = time.perf_counter() - progress["first"]
        finally:
            await app.stop()
        emit({"peer": "naive_faust", "reports": progress["reports"], "seconds": round(seconds, 3),
              "windows": len(progress["windows"])})

    asyncio.run(run())


if __name__ == "__main__":
    main()
