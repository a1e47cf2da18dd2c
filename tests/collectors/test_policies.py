"""The pure parts of the collector: keys, rate limits, dedup, sampling, bodies."""

from __future__ import annotations

import gzip

import pytest

from collectors.auth import ApiKeys, KeyConfigError
from collectors.bodies import BodyError, decompress, media_type, parse_reports, parse_samples
from collectors.dedup import RecentIds
from collectors.ratelimit import RateLimiter
from collectors.sampling import SamplingPolicy, keep_probability, sample_heartbeats
from core.schemas import ClientReport
from core.timeutil import ManualClock


def test_keys_are_kept_only_as_digests_and_bad_entries_are_refused() -> None:
    keys = ApiKeys.parse(["a:first", "b:second:with:colons"])
    assert "first" not in repr(keys) and "second" not in repr(keys)
    assert keys.identify("Bearer second:with:colons").name == "b"
    assert keys.identify("bearer  first ").name == "a"
    assert keys.identify("Bearer") is None and keys.identify("first") is None
    for bad in ("nosecret", "name:", ":secret"):
        with pytest.raises(KeyConfigError):
            ApiKeys.parse([bad])


def test_token_bucket_refills_with_the_clock_and_keys_are_independent() -> None:
    clock = ManualClock(0)
    limiter = RateLimiter(rate_per_second=10, burst=10, clock=clock)
    assert limiter.take("a", 10) == 0.0
    assert limiter.take("a", 5) == pytest.approx(0.5)
    assert limiter.empty("a") == pytest.approx(0.1)
    assert limiter.take("b", 10) == 0.0
    clock.advance(500)
    assert limiter.take("a", 5) == 0.0
    assert limiter.take("a", 1000) == pytest.approx(1.0)  # charged as one whole burst


def test_dedup_memory_is_bounded_by_max_ids() -> None:
    clock = ManualClock(0)
    seen = RecentIds(horizon_ms=60_000, max_ids=1000, clock=clock)
    for start in range(0, 10_000, 100):
        seen.remember(f"id-{i}" for i in range(start, start + 100))
    assert len(seen) <= 1000
    assert seen.contains("id-9999") and not seen.contains("id-0")


def _beats(n: int, kind: str = "heartbeat") -> list[ClientReport]:
    extra = {"error_code": "crash"} if kind == "error" else {}
    return [ClientReport(report_id=f"{kind}-{i}", ts=1_795_323_600_000, client_id="c", room_id="r", kind=kind,
                         platform="ios", **extra) for i in range(n)]


def test_sampling_keeps_weighted_heartbeats_and_every_error() -> None:
    kept, dropped = sample_heartbeats(_beats(4000) + _beats(50, "error"), 0.25)
    beats = [r for r in kept if r.kind == "heartbeat"]
    assert sum(r.kind == "error" and r.weight == 1.0 for r in kept) == 50
    assert len(beats) + dropped == 4000 and all(r.weight == 4.0 for r in beats)
    assert sum(r.weight for r in beats) == pytest.approx(4000, rel=0.1)  # counts survive in expectation
    again, _ = sample_heartbeats(_beats(4000), 0.25)
    assert [r.report_id for r in again] == [r.report_id for r in beats]  # a retry gets the same decision


def test_sampling_is_off_when_disabled_or_idle() -> None:
    assert keep_probability(1.0, SamplingPolicy(enabled=False)) == 1.0
    assert keep_probability(0.49, SamplingPolicy()) == 1.0
    assert keep_probability(1.0, SamplingPolicy(min_keep=0.1)) == 0.1


def test_bodies_refuse_what_they_cannot_use() -> None:
    assert media_type("Application/JSON; charset=utf-8") == "application/json"
    with pytest.raises(BodyError) as refused:
        media_type(None)
    assert refused.value.status == 415
    with pytest.raises(BodyError) as refused:
        decompress(gzip.compress(b"x" * 2000)[:-8], "gzip", 10_000)
    assert refused.value.status == 400 and "truncated" in refused.value.reason
    with pytest.raises(BodyError) as refused:
        parse_reports(b"[]", "application/json", None, 100, 10)
    assert refused.value.status == 400
    with pytest.raises(BodyError) as refused:
        parse_reports(b"\n\n", "application/x-ndjson", None, 100, 10)
    assert refused.value.status == 400 and "empty" in refused.value.reason
    samples, errors = parse_samples(b'{"samples": [{"ts": 1795323600000, "service": "s", "name": "n", "value": 1},'
                                    b' {"service": "s"}]}', "application/json", None, 1000, 10)
    assert [s.name for s in samples] == ["n"] and errors[0][0] == 1
