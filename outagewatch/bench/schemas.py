"""Benchmark: decode + validate client reports, msgspec (shipped) vs pydantic 2.

This is the measurement that chose msgspec for ``core.schemas``;
pydantic is only installed with the ``dev`` extra.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, Literal

from core import codec, schemas


def sample_body(count: int, seed: int = 7) -> bytes:
    """A realistic ``{"reports": [...]}`` body: mostly heartbeats, some errors."""
    rng = random.Random(seed)
    items = []
    for index in range(count):
        is_error = rng.random() < 0.1
        item: dict[str, Any] = {
            "report_id": f"r-{index}",
            "ts": 1_795_323_600_000 + index,
            "client_id": f"c-{rng.randrange(1_000_000)}",
            "room_id": f"room-{rng.randrange(1000)}",
            "kind": "error" if is_error else "heartbeat",
            "platform": rng.choice(schemas.PLATFORMS),
            "app_version": "5.12.0",
            "region": "eu-west",
            "latency_ms": rng.random() * 300,
        }
        if is_error:
            item["error_code"] = rng.choice(schemas.ERROR_CODES)
        items.append(item)
    return schemas.encode({"reports": items})


def _time_best(run: Callable[[], int], repeats: int) -> tuple[float, int]:
    best = float("inf")
    count = 0
    for _ in range(repeats):
        start = time.perf_counter()
        count = run()
        best = min(best, time.perf_counter() - start)
    return best, count


def _pydantic_runner(body: bytes) -> Callable[[], int] | None:
    try:
        import pydantic
    except ImportError:
        return None
    class Report(pydantic.BaseModel):
        report_id: pydantic.constr(min_length=1, max_length=64)  # type: ignore[valid-type]
        ts: int | str
        client_id: pydantic.constr(min_length=1, max_length=64)  # type: ignore[valid-type]
        room_id: pydantic.constr(min_length=1, max_length=64)  # type: ignore[valid-type]
        kind: Literal["heartbeat", "join", "leave", "error"]
        platform: Literal["ios", "android", "web", "other"]
        error_code: str | None = None
        app_version: pydantic.constr(max_length=32) | None = None  # type: ignore[valid-type]
        region: pydantic.constr(max_length=32) | None = None  # type: ignore[valid-type]
        latency_ms: pydantic.confloat(ge=0) | None = None  # type: ignore[valid-type]
        weight: float = 1.0

    class Batch(pydantic.BaseModel):
        reports: list[Report]

    return lambda: len(Batch.model_validate_json(body).reports)


def run(settings: object = None, quick: bool = False, count: int = 100_000, repeats: int = 5) -> list[dict[str, Any]]:
    if quick:
        count, repeats = 10_000, 2
    body = sample_body(count)
    results: list[dict[str, Any]] = []
    seconds, decoded = _time_best(lambda: len(schemas.decode_report_batch(body).reports), repeats)
    results.append({"bench": "schemas", "library": "msgspec", "reports": decoded,
                    "seconds": round(seconds, 4), "reports_per_s": round(decoded / seconds)})
    seconds, decoded = _time_best(lambda: len(codec.decode_items(schemas.decode(body, schemas.RawReportBatch).reports)[0]),
                                  repeats)
    results.append({"bench": "schemas", "library": "msgspec-per-item", "reports": decoded,
                    "seconds": round(seconds, 4), "reports_per_s": round(decoded / seconds)})
    pydantic_run = _pydantic_runner(body)
    if pydantic_run is not None:
        seconds, decoded = _time_best(pydantic_run, repeats)
        results.append({"bench": "schemas", "library": "pydantic", "reports": decoded,
                        "seconds": round(seconds, 4), "reports_per_s": round(decoded / seconds)})
        results[-1]["msgspec_ratio"] = round(results[0]["reports_per_s"] / results[-1]["reports_per_s"], 2)
    return results
