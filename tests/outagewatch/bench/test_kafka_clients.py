"""`bench kafka-clients` on the real broker: both clients move every record, and what each wrote is our format."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from core import codec
from outagewatch.bench import kafka_clients

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("client", kafka_clients.CLIENTS)
def test_each_client_produces_and_reads_back_every_packed_record(client: str, kafka_bootstrap: str,
                                                                  topic_factory: Callable[..., str]) -> None:
    topic = topic_factory(f"kafka-clients-{client}")
    produced = kafka_clients._produce(client, kafka_bootstrap, topic, records=20, per_record=50)
    assert produced["cpu_s"] > 0 and produced["wall_s"] > 0
    consumed = kafka_clients._consume(client, kafka_bootstrap, topic, records=20)
    assert consumed["cpu_s"] > 0
    # Asking for more than the topic holds is an error, not a figure over too few records.
    with pytest.raises(RuntimeError, match=f"{client} read 20 of 21 records"):
        kafka_clients._consume(client, kafka_bootstrap, topic, records=21, timeout_s=5)
    from tests.collectors.helpers import read_topic

    batches = read_topic(kafka_bootstrap, topic, 20 * 50)
    assert sum(len(batch.reports) for _, batch in batches) == 20 * 50
    assert all(key == batch.reports[0].room_id.encode() for key, batch in batches)


def test_the_records_are_packed_client_reports() -> None:
    [(key, value)] = kafka_clients._records(1, per_record=40)
    reports, rejected = codec.decode_value(value)
    assert len(reports) == 40 and not rejected and {r.room_id.encode() for r in reports} == {key}
    assert all((r.kind == "error") == (r.error_code is not None) for r in reports)
