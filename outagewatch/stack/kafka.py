"""A single-node Apache Kafka (KRaft) run from jars fetched with Maven.

Kafka is plain Java published to Maven Central, so no tarball download is
needed: a throw-away POM and ``mvn dependency:copy-dependencies`` put every
jar the broker needs in one cached folder.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from core.kafka_admin import ensure_topics
from outagewatch.stack.process import ManagedProcess, NotReady, StackError, port_open, wait_until

log = logging.getLogger(__name__)

# The logging binding is not in Kafka's POM; without it the broker logs nothing.
_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.outagewatch</groupId>
  <artifactId>kafka-broker-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{version}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
"""

_LOG4J = """log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File={log_file}
log4j.appender.file.MaxFileSize=50MB
log4j.appender.file.MaxBackupIndex=3
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.controller=WARN
log4j.logger.org.apache.kafka.controller=WARN
"""


def ensure_jars(cache_dir: Path, version: str) -> Path:
    """The folder holding every broker jar, downloading it with mvn on first use."""
    libs = cache_dir / f"kafka-{version}" / "libs"
    done_marker = libs.parent / ".complete"
    if done_marker.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError("Maven (mvn) is needed to fetch the Kafka jars: apt-get install -y maven")
    java = shutil.which("java")
    if java is None:
        raise StackError("Java 17 is needed to run Kafka: apt-get install -y openjdk-17-jre-headless")
    libs.parent.mkdir(parents=True, exist_ok=True)
    pom = libs.parent / "pom.xml"
    pom.write_text(_POM.format(version=version))
    log.warning("fetching Kafka %s jars from Maven Central into %s (first use only)", version, libs)
    started = time.monotonic()
    result = subprocess.run(  # noqa: S603
        [mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
         "-DincludeScope=runtime", f"-DoutputDirectory={libs}"],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise StackError(f"mvn could not fetch Kafka {version}:\n{(result.stdout + result.stderr)[-3000:]}")
    done_marker.write_text(f"fetched in {time.monotonic() - started:.0f}s\n")
    return libs


def new_cluster_id() -> str:
    """KRaft cluster ids are URL-safe base64 of 16 bytes, without padding."""
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate


@dataclass(frozen=True)
class KafkaNode:
    """One broker+controller. ``home`` holds its config, data, logs and pid file.

    Alone by default; in a cluster, ``voters`` names every controller
    (``id@host:port,...``), all nodes share ``cluster_id``, and ``replication``
    / ``min_isr`` are the internal topics' and the defaults' replication.
    """

    home: Path
    port: int
    controller_port: int
    libs: Path
    heap: str = "1g"
    partitions: int = 8
    node_id: int = 1
    voters: str = ""
    cluster_id: str = ""
    replication: int = 1
    min_isr: int = 1

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def process(self) -> ManagedProcess:
        logs = self.home / "logs"
        return ManagedProcess("kafka", self.home, logs / "server.log", service_log=logs / "kafka.log")

    def properties(self) -> dict[str, str]:
        """The broker's ``server.properties``.

        >>> node = KafkaNode(Path("/k"), 29092, 29192, Path("/libs"), node_id=2, replication=3, min_isr=2,
        ...                  voters="1@127.0.0.1:29191,2@127.0.0.1:29192")
        >>> p = node.properties()
        >>> p["node.id"], p["controller.quorum.voters"], p["min.insync.replicas"], p["default.replication.factor"]
        ('2', '1@127.0.0.1:29191,2@127.0.0.1:29192', '2', '3')
        """
        data = self.home / "data"
        replication, min_isr = str(self.replication), str(self.min_isr)
        return {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.voters or f"{self.node_id}@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(data),
            "num.partitions": str(self.partitions),
            "default.replication.factor": replication,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": replication,
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": replication,
            "transaction.state.log.min.isr": min_isr,
            "group.initial.rebalance.delay.ms": "0",
            # A development box: keep a week, but in small segments so
            # retention can actually free disk.
            "log.retention.hours": "168",
            "log.segment.bytes": str(256 * 1024 * 1024),
            "message.max.bytes": str(8 * 1024 * 1024),
            "auto.create.topics.enable": "true",
        }

    def _write_config(self) -> Path:
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        config = self.home / "server.properties"
        config.write_text("".join(f"{key}={value}\n" for key, value in self.properties().items()))
        (self.home / "log4j.properties").write_text(_LOG4J.format(log_file=self.home / "logs" / "kafka.log"))
        return config

    def _java_argv(self, main: str, *args: str) -> list[str]:
        return [
            "java", "-Xms256m", f"-Xmx{self.heap}", "-XX:+UseG1GC",
            f"-Dlog4j.configuration=file:{self.home / 'log4j.properties'}",
            "-cp", f"{self.libs}/*", main, *args,
        ]

    def format_storage(self, config: Path) -> None:
        if (self.home / "data" / "meta.properties").exists():
            return
        cluster_id = self.cluster_id or new_cluster_id()
        result = subprocess.run(  # noqa: S603
            self._java_argv("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config),
                            "--ignore-formatted"),
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise StackError(f"Kafka storage format failed:\n{result.stdout}{result.stderr}")

    def start(self, timeout: float = 90.0) -> bool:
        """Start unless already running; wait until a produce/consume round trip works."""
        launched = self.launch()
        self.wait_ready(timeout)
        return launched

    def launch(self) -> bool:
        """Start the process unless it runs; returns whether it was started. A cluster's nodes are
        all launched before any is waited for: none serves until a majority of controllers runs."""
        launched = self.process.pid() is None
        if launched:
            if port_open("127.0.0.1", self.port):
                raise StackError(
                    f"port {self.port} is taken by a process we did not start; "
                    f"stop it or set OUTAGEWATCH_KAFKA_BOOTSTRAP to use it as is"
                )
            config = self._write_config()
            self.format_storage(config)
            env = dict(os.environ, KAFKA_HEAP_OPTS=f"-Xmx{self.heap}")
            self.process.start(self._java_argv("kafka.Kafka", str(config)), env=env, cwd=self.home)
        return launched

    def wait_ready(self, timeout: float = 90.0) -> None:
        wait_until(self._serves, timeout, f"Kafka at {self.bootstrap}", self.process)

    def _serves(self) -> bool:
        if not port_open("127.0.0.1", self.port):
            raise NotReady(f"nothing listens on {self.bootstrap} yet")
        if not round_trip(self.bootstrap, replication=self.replication):
            raise NotReady("the broker took a test message but did not give it back")
        return True

    def stop(self) -> bool:
        return self.process.stop(timeout=30.0)


READY_TOPIC = "_outagewatch_ready"


def round_trip(bootstrap: str, timeout_s: float = 10.0, replication: int = 1) -> bool:
    """Produce one message (``acks=all``) and read it back: the broker works end to end.

    A cluster's ready topic is replicated like its own topics: with
    ``min.insync.replicas`` 2 a one-replica topic could take no ``acks=all`` write.
    """
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    ensure_topics(bootstrap, {READY_TOPIC: 1}, replication)
    token = uuid.uuid4().hex.encode()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=int(timeout_s * 1000))
    try:
        metadata = producer.send(READY_TOPIC, token).get(timeout=timeout_s)
    finally:
        producer.close(timeout=2)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=int(timeout_s * 1000))
    try:
        partition = TopicPartition(READY_TOPIC, metadata.partition)
        consumer.assign([partition])
        consumer.seek(partition, metadata.offset)
        return any(message.value == token for message in consumer)
    finally:
        consumer.close()
