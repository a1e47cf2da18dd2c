"""The worker's own topics: which Faust would create, and that the worker makes them usable before it joins."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from core.config import Settings
from core.kafka_admin import unready_topics
from streams.app import STATE_FORMAT, StreamsApp
from streams.detection_agents import DetectionAgents
from streams.topics import CHANGELOG_CONFIG, faust_topics, prepare


@pytest.fixture
def worker_app(settings: Settings, tmp_path: object) -> Iterator[tuple[Settings, StreamsApp]]:
    from outagewatch.pipeline.isolation import isolated

    run_settings, _ = isolated(settings, f"topics{uuid.uuid4().hex[:8]}")
    streams = StreamsApp(run_settings, report_partitions=4, metric_partitions=2, room_health_partitions=4,
                         service_health_partitions=2)
    DetectionAgents(streams, run_settings, room_partitions=4, service_partitions=2, notifiers=[])
    yield run_settings, streams


def test_faust_topics_are_the_changelogs_internal_topics_and_leader_topic(
        worker_app: tuple[Settings, StreamsApp]) -> None:
    settings, streams = worker_app
    app_id = settings.streams.app_id
    specs = faust_topics(streams.io)
    assert specs[f"{app_id}-room-windows-v{STATE_FORMAT}-changelog"].partitions == 4
    assert specs[f"{app_id}-room-windows-v{STATE_FORMAT}-changelog"].config == {"cleanup.policy": "compact", **CHANGELOG_CONFIG}
    assert specs[f"{app_id}-service-windows-v{STATE_FORMAT}-changelog"].partitions == 2
    assert specs[f"{app_id}-decisions"].partitions == 1 and specs[f"{app_id}-decisions"].config == {}
    assert specs[f"{app_id}-room-progress-v{STATE_FORMAT}"].partitions == 1
    assert specs[f"{app_id}-__assignor-__leader"].partitions == 1
    assert settings.topics.client_reports not in specs, "inputs are created from the settings, not as Faust's"
    assert {settings.topics.client_reports, settings.topics.room_health, f"{app_id}-decisions"} <= set(
        streams.io.subscribed_topics())


@pytest.mark.integration
def test_prepare_leaves_every_topic_listed_with_leaders_and_changelogs_compacted(
        worker_app: tuple[Settings, StreamsApp], kafka_bootstrap: str) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    from core.kafka_admin import ensure_topics

    settings, streams = worker_app
    topics = settings.topics
    ensure_topics(kafka_bootstrap, dict.fromkeys(topics.all(), 2))
    specs = faust_topics(streams.io)
    try:
        prepare(settings, streams.io, also=topics.all(), timeout_s=30)
        assert unready_topics(kafka_bootstrap)([*specs, *topics.all()]) == {}
        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        try:
            changelog = f"{settings.streams.app_id}-room-windows-v{STATE_FORMAT}-changelog"
            described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, changelog)])
            # kafka-python 3 lists the settings that differ from the broker's defaults.
            assert described["topic"][changelog]["cleanup.policy"]["value"] == "compact", described
            assert described["topic"][changelog]["segment.ms"]["value"] == "60000", described
            # A changelog made before these settings existed gets them on the next start.
            admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, changelog, configs={"segment.ms": "604800000"})])
            prepare(settings, streams.io, also=topics.all(), timeout_s=30)
            again = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, changelog)])
            assert again["topic"][changelog]["segment.ms"]["value"] == "60000", again
        finally:
            admin.close()
    finally:
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        try:
            admin.delete_topics([*specs, *topics.all()])
        finally:
            admin.close()
