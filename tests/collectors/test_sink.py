"""``KafkaSink.send_all`` with a fake producer: it returns only once the broker acknowledged every record.

The real broker's side of the rule is in test_server_outage.py (a broker stopped mid-stream).
"""

from __future__ import annotations

import asyncio

import pytest
from kafka.errors import KafkaTimeoutError

from collectors.sink import KafkaSink, ProducerSettings, Record, SinkUnavailable
from core.timeutil import ManualClock
from tests.collectors.fakes import FakeProducer

T = 1_795_323_600_000
RECORDS = [Record("client-reports", f"room-{i}".encode(), b'{"reports": []}') for i in range(3)]


async def _started(producer: FakeProducer, clock: ManualClock) -> KafkaSink:
    sink = KafkaSink(ProducerSettings(bootstrap="127.0.0.1:1", cooldown_ms=1_000), clock, make_producer=producer)
    await sink.start(["client-reports"])
    return sink


async def _settle() -> None:
    for _ in range(20):  # the acks' call_soon_threadsafe callbacks, and anything that would answer early
        await asyncio.sleep(0)


def test_send_all_returns_only_when_the_broker_acknowledged_every_record() -> None:
    async def scenario() -> None:
        producer = FakeProducer()
        sink = await _started(producer, ManualClock(T))
        sending = asyncio.create_task(sink.send_all(RECORDS))
        await _settle()
        assert [key for _, key, _ in producer.sent] == [r.key for r in RECORDS] and not sending.done()
        assert sink.pending_bytes == sum(len(r.value) for r in RECORDS)
        first, *others = producer.waiting
        first.succeed()
        await _settle()
        assert not sending.done()  # two of three still unanswered
        producer.waiting = others
        producer.acknowledge_all()
        await asyncio.wait_for(sending, 1)
        assert sink.pending_bytes == 0

    asyncio.run(scenario())


@pytest.mark.parametrize("how", ["errback", "send raises"])
def test_a_record_the_broker_did_not_take_fails_the_whole_send_and_then_fails_fast(how: str) -> None:
    async def scenario() -> None:
        producer = FakeProducer()
        clock = ManualClock(T)
        sink = await _started(producer, clock)
        if how == "send raises":
            producer.refuse_sends = KafkaTimeoutError("Failed to allocate memory within the configured max blocking time")
            sending = asyncio.create_task(sink.send_all(RECORDS))
        else:
            sending = asyncio.create_task(sink.send_all(RECORDS))
            await _settle()
            producer.waiting[0].succeed()
            producer.waiting = producer.waiting[1:]
            producer.fail_all(KafkaTimeoutError("Batch for client-reports-0 containing 1 record(s) expired"))
        with pytest.raises(SinkUnavailable, match="Kafka did not acknowledge: KafkaTimeoutError") as refused:
            await asyncio.wait_for(sending, 1)
        assert refused.value.retry_after == 1.0 and sink.pending_bytes == 0
        producer.refuse_sends = None
        sent = len(producer.sent)
        with pytest.raises(SinkUnavailable, match="Kafka is failing"):  # the circuit breaker: nothing sent
            await sink.send_all(RECORDS)
        assert len(producer.sent) == sent and not await sink.ready()
        clock.advance(1_000)
        again = asyncio.create_task(sink.send_all(RECORDS))
        await _settle()
        producer.acknowledge_all()
        await asyncio.wait_for(again, 1)
        assert len(producer.sent) == sent + len(RECORDS)

    asyncio.run(scenario())


def test_send_all_before_start_is_unavailable_not_lost() -> None:
    sink = KafkaSink(ProducerSettings(bootstrap="127.0.0.1:1"), ManualClock(T), make_producer=FakeProducer())
    with pytest.raises(SinkUnavailable, match="not started"):
        asyncio.run(sink.send_all(RECORDS))
