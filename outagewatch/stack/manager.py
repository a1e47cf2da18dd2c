"""`outagewatch stack up | down | status`: the local Kafka and ClickHouse.

A component is *managed* (started and stopped by us) when its configured
address is on this machine and nothing else already answers there; otherwise
it is *external* and used as is. ``down`` stops only what ``up`` started,
which is whatever has a live pid file in the data directory.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from core.config import Settings
from core.kafka_admin import ensure_topics
from history.client import parse_url
from outagewatch.stack.clickhouse import ClickHouseNode, ensure_database, select_one, server_version
from outagewatch.stack.kafka import KafkaNode, ensure_jars, round_trip
from outagewatch.stack.process import StackError, is_loopback, port_open

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Address:
    host: str
    port: int


def kafka_address(settings: Settings) -> Address:
    first = settings.kafka.bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if not host or not port.isdigit():
        raise StackError(f"OUTAGEWATCH_KAFKA_BOOTSTRAP {settings.kafka.bootstrap!r} must be host:port[,host:port]")
    return Address(host.strip("[]"), int(port))


def kafka_node(settings: Settings, fetch_jars: bool = True) -> KafkaNode:
    address = kafka_address(settings)
    cache = settings.stack.cache_dir
    libs = (ensure_jars(cache, settings.stack.kafka_version) if fetch_jars
            else cache / f"kafka-{settings.stack.kafka_version}" / "libs")
    return KafkaNode(
        home=settings.stack.data_dir / "kafka",
        port=address.port,
        controller_port=settings.kafka.controller_port,
        libs=libs,
        heap=settings.stack.kafka_heap,
        partitions=settings.kafka.partitions,
    )


def clickhouse_node(settings: Settings) -> ClickHouseNode:
    return ClickHouseNode(
        home=settings.stack.data_dir / "clickhouse",
        target=parse_url(settings.clickhouse.url),
        http_port=settings.clickhouse.http_port,
        reader_user=settings.clickhouse.reader_user,
        reader_password=settings.clickhouse.reader_password,
    )


def topic_partitions(settings: Settings) -> dict[str, int]:
    """Every topic we own, with its partition count."""
    return {name: settings.kafka.partitions for name in settings.topics.all()}


def up(settings: Settings) -> dict[str, Any]:
    """Start what is ours and missing, wait for readiness, create topics and the database."""
    timeout = settings.stack.ready_timeout_seconds
    started: dict[str, float] = {}

    address = kafka_address(settings)
    kafka = kafka_node(settings, fetch_jars=False)
    if kafka.process.pid() is None and (port_open(address.host, address.port) or not is_loopback(address.host)):
        log.info("Kafka at %s is external; using it as is", settings.kafka.bootstrap)
        if not round_trip(settings.kafka.bootstrap):
            raise StackError(f"Kafka at {settings.kafka.bootstrap} did not return a test message")
    else:
        begin = time.monotonic()
        kafka = kafka_node(settings)
        if kafka.start(timeout=timeout):
            started["kafka"] = round(time.monotonic() - begin, 1)
    created = ensure_topics(settings.kafka.bootstrap, topic_partitions(settings), settings.kafka.replication_factor)
    if created:
        log.info("created topics %s", ", ".join(created))

    target = parse_url(settings.clickhouse.url)
    clickhouse = clickhouse_node(settings)
    if clickhouse.process.pid() is None and (port_open(target.host, target.port) or not is_loopback(target.host)):
        log.info("ClickHouse at %s is external; using it as is", target.describe())
        ensure_database(target)
    else:
        begin = time.monotonic()
        if clickhouse.start(timeout=timeout):
            started["clickhouse"] = round(time.monotonic() - begin, 1)
    result = status(settings)
    result["started_seconds"] = started
    return result


def down(settings: Settings) -> dict[str, bool]:
    """Stop only the processes ``up`` started (live pid files); data stays."""
    return {
        "kafka": kafka_node(settings, fetch_jars=False).stop(),
        "clickhouse": clickhouse_node(settings).stop(),
    }


def status(settings: Settings) -> dict[str, Any]:
    kafka = kafka_node(settings, fetch_jars=False)
    clickhouse = clickhouse_node(settings)
    target = parse_url(settings.clickhouse.url)

    kafka_state: dict[str, Any] = {
        "address": settings.kafka.bootstrap,
        "managed": kafka.process.pid() is not None,
        "pid": kafka.process.pid(),
        "log": str(kafka.process.service_log),
    }
    address = kafka_address(settings)
    kafka_state.update(_probe(lambda: _reachable(address) and round_trip(settings.kafka.bootstrap, timeout_s=5.0)))

    clickhouse_state: dict[str, Any] = {
        "address": target.describe(),
        "managed": clickhouse.process.pid() is not None,
        "pid": clickhouse.process.pid(),
        "log": str(clickhouse.process.service_log),
    }
    clickhouse_state.update(_probe(
        lambda: _reachable(Address(target.host, target.port)) and select_one(target.with_database("default"))))
    if clickhouse_state["healthy"]:
        clickhouse_state["version"] = server_version(target)
    return {"kafka": kafka_state, "clickhouse": clickhouse_state}


def _reachable(address: Address) -> bool:
    if not port_open(address.host, address.port, timeout=2.0):
        raise StackError(f"nothing listens on {address.host}:{address.port}; run `outagewatch stack up`")
    return True


def _probe(check: Any) -> dict[str, Any]:
    try:
        healthy = bool(check())
        return {"healthy": healthy} if healthy else {"healthy": False, "error": "probe returned no data"}
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy; say which
        return {"healthy": False, "error": f"{type(exc).__name__}: {exc}"}
