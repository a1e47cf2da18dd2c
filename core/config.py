"""One settings object for every outagewatch process.

Values come from, lowest precedence first: the defaults below (which point at
the local stack), an optional TOML file, then ``OUTAGEWATCH_*`` environment
variables. A field ``bootstrap`` of section ``kafka`` is set by
``OUTAGEWATCH_KAFKA_BOOTSTRAP`` or by ``[kafka] bootstrap = ...`` in the file.

>>> s = load_settings(env={"OUTAGEWATCH_STREAMS_WINDOW_SECONDS": "30"})
>>> s.streams.window_seconds
30
>>> s.topics.client_reports
'client-reports'
"""

from __future__ import annotations

import dataclasses
import os
import string
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.timeutil import ArrivalBound

ENV_PREFIX = "OUTAGEWATCH_"
CONFIG_FILE_ENV = "OUTAGEWATCH_CONFIG"
DEFAULT_CONFIG_FILE = "outagewatch.toml"


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names it."""


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "outagewatch"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "outagewatch"


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap: str = "127.0.0.1:19092"
    # Used by the local stack only: the KRaft controller listener.
    controller_port: int = 19093
    # Partitions for every topic we create; keys are rooms and services.
    partitions: int = 8
    replication_factor: int = 1
    client_id: str = "outagewatch"


@dataclass(frozen=True)
class ClickHouseSettings:
    # Native protocol (clickhouse-driver): clickhouse://user:password@host:port/database
    url: str = "clickhouse://default:@127.0.0.1:19000/outagewatch"
    http_port: int = 18123
    # Read-only user for dashboards and analysts (history/ creates it).
    reader_user: str = "outagewatch_reader"
    reader_password: str = "outagewatch_reader"
    # A cluster in the servers' <remote_servers>: migrations then create Replicated*MergeTree tables
    # (local, named <table>_local) with Distributed tables over them under the usual names, ON CLUSTER.
    # Empty: plain tables on the one server of ``url``.
    cluster: str = ""


@dataclass(frozen=True)
class TopicSettings:
    """The one place that knows topic names."""

    client_reports: str = "client-reports"
    server_metrics: str = "server-metrics"
    room_health: str = "room-health"
    service_health: str = "service-health"
    alerts: str = "alerts"
    dead_letter: str = "dead-letter"
    anomaly_scores: str = "anomaly-scores"

    def all(self) -> tuple[str, ...]:
        return tuple(str(getattr(self, f.name)) for f in dataclasses.fields(self))


@dataclass(frozen=True)
class StackSettings:
    # Where the local stack keeps its data, logs and pid files.
    data_dir: Path = field(default_factory=_default_data_dir)
    # Downloaded artefacts (Kafka jars) that survive `stack down` and re-clones.
    cache_dir: Path = field(default_factory=_default_cache_dir)
    kafka_version: str = "3.9.2"
    kafka_heap: str = "1g"
    # A first start on a slow, fresh machine (cold JVM, cold disk) has been
    # seen to need more than 90 s; a warm one takes under 10.
    ready_timeout_seconds: float = 180.0


@dataclass(frozen=True)
class EventTimeSettings:
    """How far a report's (or sample's) own ``ts`` may be from its arrival.

    The collector checks it against its receive clock, the worker against the
    Kafka record's timestamp, so nothing already in Kafka can move a
    watermark into the future either.
    """

    # A client clock a little fast is fine; 2099 is not.
    max_ahead_seconds: float = 300.0
    # A day back, so a replay of yesterday still works; 2001 does not.
    max_age_seconds: float = 86_400.0

    def __post_init__(self) -> None:
        for name in ("max_ahead_seconds", "max_age_seconds"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"OUTAGEWATCH_EVENT_TIME_{name.upper()} (event_time.{name}) must be a number of "
                                  f"seconds >= 0, got {getattr(self, name)!r}")

    def bound(self) -> ArrivalBound:
        return ArrivalBound(max_ahead_ms=int(self.max_ahead_seconds * 1000),
                            max_age_ms=int(self.max_age_seconds * 1000))


@dataclass(frozen=True)
class ClusterSettings:
    """The local cluster topology (`outagewatch stack up --topology cluster`) on one machine.

    Its own ports and data (under ``stack.data_dir``/cluster), so it runs beside the single-node
    stack. Broker ``i`` (from 0) listens on ``kafka_base_port + i``; ClickHouse server ``i`` (shard
    ``i // clickhouse_replicas + 1``, replica ``i % clickhouse_replicas + 1``) on
    ``clickhouse_base_port + i``; likewise the other bases.
    """

    kafka_brokers: int = 3
    kafka_base_port: int = 29092
    kafka_controller_base_port: int = 29192
    kafka_heap: str = "512m"
    min_insync_replicas: int = 2
    zookeeper_port: int = 22181
    clickhouse_shards: int = 2
    clickhouse_replicas: int = 2
    clickhouse_base_port: int = 29000
    clickhouse_http_base_port: int = 28123
    clickhouse_interserver_base_port: int = 29009
    clickhouse_cluster: str = "outagewatch"
    collectors: int = 2
    collector_base_port: int = 28080
    workers: int = 3
    worker_web_base_port: int = 26066
    sinks: int = 2
    # Each sink serves its own /healthz: two sinks on one machine cannot share history.sink_health_port.
    sink_health_base_port: int = 26167


@dataclass(frozen=True)
class CollectorSettings:
    host: str = "127.0.0.1"
    port: int = 18080
    # Collector processes sharing port (SO_REUSEPORT) under one supervisor (collectors/processes.py): one a
    # core. The rate limits below are the whole collector's; each process enforces its share.
    processes: int = 1
    # API keys as "name:secret[:scopes]" entries, comma-separated in the environment; scopes are
    # reports, metrics and relay joined by "+" (an entry without scopes: reports+metrics).
    # The collector keeps only their SHA-256 digests in memory.
    api_keys: tuple[str, ...] = ("demo:demo-key",)
    # A file of key entries (one a line; "name:sha256=<hex>[:scopes]" stores a digest, not the secret).
    # When set it replaces api_keys, and is re-read on SIGHUP and when it changes.
    api_keys_file: str = ""
    api_keys_reload_seconds: float = 5.0
    # The demo key is in the README: listening off loopback with it is refused unless this is true.
    allow_demo_key: bool = False
    # A report's source (and its rate bucket) is its client's network: these prefix lengths.
    source_ipv4_prefix: int = 24
    source_ipv6_prefix: int = 48
    # Keys the source hash; collectors behind one load balancer must share it (empty: random per process).
    source_secret: str = ""
    # Per-source token bucket (items/s), beside the per-key one; at most source_buckets_max sources are
    # tracked (least recently seen forgotten first).
    source_rate_per_second: float = 1000.0
    source_rate_burst: float = 10_000.0
    source_buckets_max: int = 100_000
    # Peers (addresses or CIDRs) whose client_address_header names the client: a load balancer.
    trusted_proxies: tuple[str, ...] = ()
    client_address_header: str = "X-Forwarded-For"
    max_body_bytes: int = 1024 * 1024
    max_batch_items: int = 5000
    # The OTLP/HTTP metrics listener (POST /v1/metrics in OTLP, on collector.host): 4318 is OTLP's
    # conventional port; 0 picks a free one, -1 runs none. Remote-write is POST /api/v1/write on collector.port.
    otlp_port: int = 4318
    # A pushed point (OTLP, remote-write) with more labels, or a label name or value longer, is refused.
    max_metric_labels: int = 32
    max_metric_label_length: int = 256
    rate_per_second: float = 200_000.0
    rate_burst: float = 400_000.0
    dedup_horizon_seconds: float = 300.0
    scrape_targets: tuple[str, ...] = ()
    scrape_interval_seconds: float = 15.0
    scrape_timeout_seconds: float = 5.0
    # Storm behaviour: past this many requests in flight (not counting those of flooding rooms), 503.
    max_inflight_requests: int = 64
    # Bytes handed to Kafka and not yet acknowledged; past it, 503.
    max_pending_bytes: int = 64 * 1024 * 1024
    # How long Kafka may take to acknowledge before the request gets a 503.
    send_timeout_seconds: float = 30.0
    retry_after_seconds: float = 1.0
    sample_heartbeats: bool = True
    sample_min_keep: float = 0.125
    # Fair admission in a storm (collectors/storm.py): under load, the error reports of a room sending more than
    # storm_room_share of the collector's recent reports are sampled by client (weighted), down to
    # storm_min_keep but keeping about storm_min_kept_per_second of them; other rooms are not sampled. Requests
    # of such rooms do not count toward max_inflight_requests, only toward storm_max_inflight_requests.
    storm_sampling: bool = True
    storm_room_share: float = 0.25
    storm_min_keep: float = 0.015625
    storm_min_kept_per_second: float = 1000.0
    storm_max_inflight_requests: int = 256
    dedup_max_ids: int = 1_000_000
    kafka_compression: str = "lz4"
    # The producer's client: "librdkafka" (confluent-kafka; bench kafka-clients: 40 % of kafka-python's CPU
    # per report) or "kafka-python". Both partition keys alike (murmur2), so collectors may mix them.
    kafka_client: str = "librdkafka"
    # How reports are written to Kafka: "packed" (a format marker, then MessagePack; docs/contracts.md) or
    # "json" (ReportBatch, the format before it). Workers and sinks read both: during a rolling upgrade keep
    # "json" until every worker and sink runs a version that reads "packed".
    kafka_report_format: str = "packed"
    # Reports of requests arriving this close together share one Kafka record per partition (0: per
    # request); a flush goes out early once coalesce_max_reports wait. Bigger records cost the worker and
    # the sink less per report (collectors/coalesce.py), at up to coalesce_ms more latency per request.
    coalesce_ms: float = 20.0
    coalesce_max_reports: int = 4000

    def __post_init__(self) -> None:
        if self.kafka_client not in ("librdkafka", "kafka-python"):
            raise ConfigError("OUTAGEWATCH_COLLECTOR_KAFKA_CLIENT (collector.kafka_client) must be librdkafka or "
                              f"kafka-python, got {self.kafka_client!r}")
        if not 1 <= self.processes <= 256:
            raise ConfigError("OUTAGEWATCH_COLLECTOR_PROCESSES (collector.processes, collect --processes) must be "
                              f"1-256 (about one a core), got {self.processes!r}")
        if not -1 <= self.otlp_port <= 65535:
            raise ConfigError("OUTAGEWATCH_COLLECTOR_OTLP_PORT (collector.otlp_port) must be a port (1-65535), 0 for "
                              f"a free one or -1 for no OTLP listener, got {self.otlp_port!r}")
        for name in ("max_metric_labels", "max_metric_label_length"):
            if not getattr(self, name) >= 1:
                raise ConfigError(f"OUTAGEWATCH_COLLECTOR_{name.upper()} (collector.{name}) must be at least 1, "
                                  f"got {getattr(self, name)!r}")


@dataclass(frozen=True)
class StreamsSettings:
    app_id: str = "outagewatch-streams"
    window_seconds: int = 10
    allowed_lateness_seconds: int = 10
    web_port: int = 16066
    # A key from which nothing arrives (a room whose clients all crashed, a region gone dark) keeps being
    # judged on empty windows this long after its last real one (streams.dark); then it is forgotten.
    dark_key_seconds: int = 600


RUNBOOK_FIELDS = frozenset({"base", "kind", "scope", "key", "fingerprint"})


def runbook_template_error(template: str) -> str | None:
    """Why a runbook URL template cannot be used, or None.

    >>> runbook_template_error("{base}/{kind}") is None
    True
    >>> print(runbook_template_error("{base}/{room}"))
    unknown placeholder {room}; use {base}, {fingerprint}, {key}, {kind}, {scope}
    """
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        return f"not a template ({exc}); placeholders look like {{kind}}"
    for name in names:
        if name not in RUNBOOK_FIELDS:
            known = ", ".join(f"{{{f}}}" for f in sorted(RUNBOOK_FIELDS))
            return f"unknown placeholder {{{name}}}; use {known}"
    return None


@dataclass(frozen=True)
class AlertingSettings:
    webhook_urls: tuple[str, ...] = ()
    alertmanager_url: str = ""
    slack_webhook_url: str = ""
    pagerduty_routing_key: str = ""
    pending_windows: int = 2
    # A minute clear before a firing alert resolves: an incident whose reports come in bursts dips under its
    # alarm for 30-50 s between them, and resolving after three windows re-paged it (platform_failure).
    resolve_windows: int = 6
    renotify_seconds: float = 3600.0
    # A critical decision may page sooner: on-call must hear within seconds.
    critical_pending_windows: int = 1
    # A good window scoring at least this, just before a bad one, counts as
    # one of its pending windows (0 turns this off).
    suspect_score: float = 0.4
    # A cluster/region incident needs this many alerting rooms AND this share
    # of the group's active rooms; a global one needs this many bad groups.
    group_min_rooms: int = 5
    group_min_share: float = 0.2
    global_min_groups: int = 2
    pagerduty_url: str = "https://events.pagerduty.com/v2/enqueue"
    notify_max_attempts: int = 5
    notify_backoff_seconds: float = 0.5
    # The alert engine's dead man's switch: an always-firing Watchdog alert sent to
    # alertmanager_url this often (0: never). When it stops arriving, the monitor is blind.
    watchdog_interval_seconds: float = 60.0
    # Every notification links a runbook per alert kind: this template, filled with {base}, {kind},
    # {scope}, {key} and {fingerprint} (URL-quoted); point the base at your team's runbooks.
    runbook_base_url: str = "https://runbooks.example.com/outagewatch"
    runbook_url_template: str = "{base}/{kind}"
    # Webhooks that receive Alertmanager's webhook payload (version 4) instead of the alert event,
    # so receivers written for Alertmanager work unchanged.
    alertmanager_webhook_urls: tuple[str, ...] = ()
    # Silences added with `outagewatch silence add`; the worker re-reads this file when it changes.
    silences_path: Path = field(default_factory=lambda: _default_data_dir() / "silences.json")
    # Recurring maintenance windows (YAML, Alertmanager's time_intervals shape); "" for none.
    maintenance_windows_file: str = ""

    def __post_init__(self) -> None:
        problem = runbook_template_error(self.runbook_url_template)
        if problem is not None:
            raise ConfigError(f"OUTAGEWATCH_ALERTING_RUNBOOK_URL_TEMPLATE (alerting.runbook_url_template) "
                              f"{self.runbook_url_template!r}: {problem}")


@dataclass(frozen=True)
class HistorySettings:
    # The sink's own consumer group: it reads every topic independently of the workers.
    sink_group_id: str = "outagewatch-history"
    sink_batch_rows: int = 50_000
    sink_batch_seconds: float = 1.0
    sink_retry_max_seconds: float = 30.0
    # Room-health windows remembered (by event time) so a replayed one is not re-inserted.
    sink_dedup_horizon_seconds: int = 900
    sink_log_interval_seconds: float = 10.0
    # The sink's /healthz, /readyz and /metrics (0: none).
    sink_health_port: int = 16067


@dataclass(frozen=True)
class HealthSettings:
    """Liveness of the collector, the worker and the sink (``core/health.py``)."""

    # Input waits and nothing moves (no record acknowledged, window closed, batch written) this
    # long: the process reports "not live", logs why and exits so its supervisor restarts it.
    stall_seconds: float = 120.0
    # A worker or sink still without its first partition assignment this long after start: not live.
    startup_seconds: float = 180.0
    # Off: "not live" is only reported (/healthz, logs), the process keeps running.
    exit_when_not_live: bool = True

    def __post_init__(self) -> None:
        for name in ("stall_seconds", "startup_seconds"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"OUTAGEWATCH_HEALTH_{name.upper()} (health.{name}) must be a number of seconds "
                                  f"above 0, got {getattr(self, name)!r}; to only report \"not live\" without "
                                  "exiting, set OUTAGEWATCH_HEALTH_EXIT_WHEN_NOT_LIVE=false")


@dataclass(frozen=True)
class GrafanaSettings:
    url: str = "http://127.0.0.1:3000"
    token: str = ""
    folder_uid: str = "outagewatch"


@dataclass(frozen=True)
class StatusPageSettings:
    """The public status page (`outagewatch status-page`, ``dashboards/status/``)."""

    host: str = "127.0.0.1"
    port: int = 18090
    title: str = "Service status"
    # The page's public address, for the JSON API's page.url, incident shortlinks and the Atom feed's links.
    # Empty: links are relative (a visitor's Host header is never trusted to build them).
    public_url: str = ""
    # Every visitor within this many seconds of the last ClickHouse read gets the same page: a flood of
    # visitors costs one refresh per period, not one query per visitor.
    cache_seconds: float = 15.0
    # A refresh slower than this serves the last good page (marked stale) while it finishes.
    query_timeout_seconds: float = 5.0
    # Rooms shown as components of their own, as "room_id" or "room_id=Public name" (others stay private).
    rooms: tuple[str, ...] = ()
    # Services, regions and platforms are found in the last 24 hours of data; at most this many of each.
    max_components_per_kind: int = 50
    history_days: int = 90

    def __post_init__(self) -> None:
        if not self.cache_seconds > 0:
            raise ConfigError(f"OUTAGEWATCH_STATUS_PAGE_CACHE_SECONDS (status_page.cache_seconds) must be a number "
                              f"of seconds above 0, got {self.cache_seconds!r}: the cache is what keeps a flood of "
                              "visitors off ClickHouse")
        if not self.query_timeout_seconds > 0:
            raise ConfigError("OUTAGEWATCH_STATUS_PAGE_QUERY_TIMEOUT_SECONDS (status_page.query_timeout_seconds) "
                              f"must be a number of seconds above 0, got {self.query_timeout_seconds!r}")
        if not 1 <= self.history_days <= 366:
            raise ConfigError("OUTAGEWATCH_STATUS_PAGE_HISTORY_DAYS (status_page.history_days) must be 1..366, got "
                              f"{self.history_days!r}")
        if self.public_url and not self.public_url.startswith(("http://", "https://")):
            raise ConfigError("OUTAGEWATCH_STATUS_PAGE_PUBLIC_URL (status_page.public_url) must start with http:// "
                              f"or https://, got {self.public_url!r}")


@dataclass(frozen=True)
class Settings:
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    clickhouse: ClickHouseSettings = field(default_factory=ClickHouseSettings)
    topics: TopicSettings = field(default_factory=TopicSettings)
    stack: StackSettings = field(default_factory=StackSettings)
    event_time: EventTimeSettings = field(default_factory=EventTimeSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    collector: CollectorSettings = field(default_factory=CollectorSettings)
    streams: StreamsSettings = field(default_factory=StreamsSettings)
    alerting: AlertingSettings = field(default_factory=AlertingSettings)
    history: HistorySettings = field(default_factory=HistorySettings)
    health: HealthSettings = field(default_factory=HealthSettings)
    grafana: GrafanaSettings = field(default_factory=GrafanaSettings)
    status_page: StatusPageSettings = field(default_factory=StatusPageSettings)

    def env_names(self) -> dict[str, Any]:
        """Every setting by its environment variable name, with its value."""
        out: dict[str, Any] = {}
        for section in dataclasses.fields(self):
            value = getattr(self, section.name)
            for f in dataclasses.fields(value):
                out[f"{ENV_PREFIX}{section.name}_{f.name}".upper()] = getattr(value, f.name)
        return out


def cluster_topology(settings: Settings) -> Settings:
    """``settings`` pointed at the local cluster topology: its brokers, replication, servers and data.

    >>> s = cluster_topology(Settings())
    >>> s.kafka.bootstrap, s.kafka.replication_factor
    ('127.0.0.1:29092,127.0.0.1:29093,127.0.0.1:29094', 3)
    >>> s.clickhouse.url, s.clickhouse.cluster, s.stack.data_dir.name
    ('clickhouse://default:@127.0.0.1:29000/outagewatch', 'outagewatch', 'cluster')
    """
    c = settings.cluster
    if c.kafka_brokers < c.min_insync_replicas:
        raise ConfigError(f"cluster kafka_brokers ({c.kafka_brokers}) must be at least cluster "
                          f"min_insync_replicas ({c.min_insync_replicas}), or no write could be acknowledged")
    if c.clickhouse_shards < 1 or c.clickhouse_replicas < 1:
        raise ConfigError("cluster clickhouse_shards and clickhouse_replicas must be 1 or more")
    from urllib.parse import urlsplit, urlunsplit

    url = urlsplit(settings.clickhouse.url)
    netloc = f"{url.netloc.rpartition('@')[0]}@127.0.0.1:{c.clickhouse_base_port}"
    bootstrap = ",".join(f"127.0.0.1:{c.kafka_base_port + i}" for i in range(c.kafka_brokers))
    return dataclasses.replace(
        settings,
        kafka=dataclasses.replace(settings.kafka, bootstrap=bootstrap, replication_factor=c.kafka_brokers,
                                  controller_port=c.kafka_controller_base_port),
        clickhouse=dataclasses.replace(settings.clickhouse, url=urlunsplit(url._replace(netloc=netloc)),
                                       http_port=c.clickhouse_http_base_port, cluster=c.clickhouse_cluster),
        stack=dataclasses.replace(settings.stack, data_dir=settings.stack.data_dir / "cluster",
                                  kafka_heap=c.kafka_heap),
    )


def overrides(base: Settings, changed: Settings) -> dict[str, str]:
    """The ``OUTAGEWATCH_*`` variables that turn ``base`` into ``changed`` (for child processes).

    >>> overrides(Settings(), cluster_topology(Settings()))["OUTAGEWATCH_KAFKA_REPLICATION_FACTOR"]
    '3'
    """
    before = base.env_names()
    return {name: ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
            for name, value in changed.env_names().items() if before.get(name) != value}


def _coerce(raw: Any, annotation: Any, where: str) -> Any:
    """Turn a TOML value or an environment string into the field's type."""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        if isinstance(raw, str):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if isinstance(raw, list):
            return tuple(str(item) for item in raw)
        raise ConfigError(f"{where}: expected a list or a comma-separated string, got {raw!r}")
    if annotation is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off", ""}:
            return False
        raise ConfigError(f"{where}: expected true or false, got {raw!r}")
    if annotation in (int, float):
        try:
            return annotation(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {raw!r}") from None
    if annotation is Path:
        return Path(str(raw)).expanduser()
    if annotation is str:
        return str(raw)
    raise ConfigError(f"{where}: unsupported setting type {annotation!r}")


def _section_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build_section(cls: type, file_values: Mapping[str, Any], env: Mapping[str, str], name: str) -> Any:
    hints = _section_types(cls)
    kwargs: dict[str, Any] = {}
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(file_values) - known
    if unknown:
        raise ConfigError(
            f"config file section [{name}] has unknown key(s) {sorted(unknown)}; known: {sorted(known)}"
        )
    for f in dataclasses.fields(cls):
        env_name = f"{ENV_PREFIX}{name}_{f.name}".upper()
        if env_name in env:
            kwargs[f.name] = _coerce(env[env_name], hints[f.name], env_name)
        elif f.name in file_values:
            kwargs[f.name] = _coerce(file_values[f.name], hints[f.name], f"[{name}] {f.name}")
    return cls(**kwargs)


def load_settings(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Read settings: defaults < TOML file < environment.

    The file is ``path`` if given, else ``$OUTAGEWATCH_CONFIG``, else
    ``./outagewatch.toml`` when it exists.
    """
    env = os.environ if env is None else env
    file_path = path or env.get(CONFIG_FILE_ENV)
    file_values: dict[str, Any] = {}
    if file_path:
        file_values = _read_toml(Path(file_path))
    elif Path(DEFAULT_CONFIG_FILE).is_file():
        file_values = _read_toml(Path(DEFAULT_CONFIG_FILE))

    sections = {f.name: f for f in dataclasses.fields(Settings)}
    unknown = set(file_values) - set(sections)
    if unknown:
        raise ConfigError(f"config file has unknown section(s) {sorted(unknown)}; known: {sorted(sections)}")
    hints = typing.get_type_hints(Settings)
    built = {}
    for name in sections:
        values = file_values.get(name, {})
        if not isinstance(values, dict):
            raise ConfigError(f"config file: [{name}] must be a table")
        built[name] = _build_section(hints[name], values, env, name)
    return Settings(**built)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None

