"""The Faust adapter against faust-streaming itself: where a Faust upgrade that moves an internal shows first."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import faust
import pytest

from streams.faust_io import TP, Event, FaustIO


def _io(tmp_path: Path, bootstrap: str = "127.0.0.1:1") -> FaustIO:
    app = faust.App(f"test-faust-io-{uuid.uuid4().hex[:8]}", broker=f"kafka://{bootstrap}", store="memory://",
                    web_enabled=False, datadir=str(tmp_path), topic_partitions=2,
                    consumer_auto_offset_reset="earliest", key_serializer="raw", value_serializer="raw")
    return FaustIO(app)


def test_table_store_writes_where_faust_reads_and_what_a_rebalance_drops(tmp_path: Path) -> None:
    io = _io(tmp_path)
    table = io.raw_table("windows", partitions=2)
    zero, one = io.table_store(table, 0), io.table_store(table, 1)
    zero.put(b"0|a", b"A")
    zero.put(b"0|a", b"A2")
    zero.put(b"0|b", b"B")
    zero.delete(b"0|b")
    one.put(b"1|c", b"C")
    # Faust's own reads see our writes, and the adapter's read is the same value.
    assert table[b"0|a"] == b"A2" and table[b"1|c"] == b"C" and b"0|b" not in table
    assert io.table_value(table, b"0|a") == b"A2" and zero.get(b"0|b") is None
    assert zero.pending == [(b"0|a", b"A"), (b"0|a", b"A2"), (b"0|b", b"B"), (b"0|b", None)]
    # The partition of each key is what Faust drops a key by once its partition is no longer this worker's.
    changelog = io.changelog_name(table)
    asyncio.run(table.data.on_recovery_completed({TP(changelog, 1)}, set()))
    assert io.table_value(table, b"0|a") is None and io.table_value(table, b"1|c") == b"C"


def test_declared_names_are_the_ones_the_state_topics_use(tmp_path: Path) -> None:
    io = _io(tmp_path)
    assert io.topic_name(io.raw_topic("client-reports")) == "client-reports"
    internal = io.raw_topic(f"{io.app_id}-room-progress-v4", partitions=1, internal=True)
    assert internal.internal and internal.partitions == 1
    assert io.changelog_name(io.raw_table("room-windows-v4", 4)) == f"{io.app_id}-room-windows-v4-changelog"


def _read(bootstrap: str, topic: str, count: int, timeout_s: float = 30) -> list[Any]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None, consumer_timeout_ms=1000)
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(records) < count and time.monotonic() < deadline:
            records.extend(consumer)
    finally:
        consumer.close()
    return records


@pytest.mark.integration
def test_agents_timers_sends_and_changelog_against_the_real_broker(
        topic_factory: Callable[..., str], kafka_bootstrap: str, tmp_path: Path) -> None:
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient

    from core.kafka_admin import ensure_topics

    source, output = topic_factory("io-in", partitions=2), topic_factory("io-out", partitions=1)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for index in range(20):
        producer.send(source, key=f"k{index}".encode(), value=f"v{index}".encode(), partition=index % 2)
    producer.flush()
    producer.close()

    io = _io(tmp_path, kafka_bootstrap)
    table = io.raw_table("state", partitions=2)
    changelog = io.changelog_name(table)
    ensure_topics(kafka_bootstrap, {changelog: 2})
    seen: list[tuple[int, int, bytes | None]] = []
    first: list[str] = []
    rebalanced: list[set[TP]] = []
    facts: dict[str, Any] = {}
    done = asyncio.Event()

    async def fold(events: Sequence[Event]) -> None:
        by_partition: dict[int, list[Event]] = {}
        for event in events:
            seen.append((event.message.partition, event.message.offset, event.value))
            by_partition.setdefault(event.message.partition, []).append(event)
        for partition, batch in by_partition.items():
            store = io.table_store(table, partition)
            for event in batch:
                store.put(f"{partition}|last".encode(), event.value or b"")
            await store.send_pending()
        futures = await io.send_many(output, [(b"batch", str(len(events)).encode())])
        await asyncio.gather(*futures)
        if len(seen) == 20:
            done.set()

    async def tick() -> None:
        if done.is_set() and "highwater" not in facts:
            facts["assigned"] = io.assigned(source)
            facts["highwater"] = [io.highwater(source, p) for p in (0, 1)]
            facts["fetching"] = io.fetching()
            facts["in_recovery"] = io.in_recovery()

    async def on_rebalance(tps: set[TP]) -> None:
        rebalanced.append(tps)

    io.batch_agent(io.raw_topic(source), "io-fold", 100, 0.2, fold)
    io.every(0.2, "io-tick", tick)
    io.on_first_message(source, lambda: first.append("first"))
    io.on_rebalance(on_rebalance)

    async def run() -> None:
        await io.app.start()
        try:
            await asyncio.wait_for(done.wait(), timeout=90)
            for _ in range(50):
                if "highwater" in facts:
                    break
                await asyncio.sleep(0.2)
        finally:
            await io.app.stop()

    try:
        asyncio.run(run())
        assert sorted((p, o) for p, o, _ in seen) == sorted((i % 2, i // 2) for i in range(20))
        assert first == ["first"], "the first-message callback fires once"
        assert any(TP(source, 0) in tps and TP(source, 1) in tps for tps in rebalanced), rebalanced
        assert facts == {"assigned": [0, 1], "highwater": [10, 10], "fetching": True, "in_recovery": False}
        assert io.table_value(table, b"0|last") == b"v18" and io.table_value(table, b"1|last") == b"v19"
        # Each batch's last value per key went to the key's partition of the changelog.
        records = _read(kafka_bootstrap, changelog, 2)
        last = {(r.partition, r.key): r.value for r in records}
        assert last == {(0, b"0|last"): b"v18", (1, b"1|last"): b"v19"}, records
        sent = _read(kafka_bootstrap, output, 1)
        assert sent and sum(int(r.value) for r in sent) == 20 and all(r.key == b"batch" for r in sent)
    finally:
        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        try:
            admin.delete_topics([changelog])
        except Exception:  # noqa: BLE001 - cleanup only
            pass
        finally:
            admin.close()
