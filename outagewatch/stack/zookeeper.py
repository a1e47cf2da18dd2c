"""A standalone ZooKeeper for the ClickHouse replicas, run from the Kafka jars we already fetch.

Kafka 3.9's Maven dependencies include ZooKeeper 3.8 (``QuorumPeerMain``),
so the cluster topology needs no extra install for its coordinator.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from outagewatch.stack.process import ManagedProcess, NotReady, StackError, port_open, wait_until

_LOG4J = """log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File={log_file}
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
"""


def zoo_cfg(data_dir: Path, port: int) -> str:
    """A standalone server's configuration; ``srvr``/``ruok`` answer the readiness probe.

    >>> print(zoo_cfg(Path("/d"), 2181).splitlines()[2])
    clientPort=2181
    """
    return "\n".join((
        "tickTime=2000",
        f"dataDir={data_dir}",
        f"clientPort={port}",
        "clientPortAddress=127.0.0.1",
        "maxClientCnxns=0",
        "admin.enableServer=false",
        "4lw.commands.whitelist=ruok,srvr,mntr",
        # Purge old snapshots so a long-lived dev cluster does not fill the disk.
        "autopurge.snapRetainCount=3",
        "autopurge.purgeInterval=1",
        "",
    ))


def four_letter(port: int, command: str, timeout: float = 2.0) -> str:
    """Send a four-letter command (``ruok``, ``srvr``) and return the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(command.encode())
        chunks = []
        while chunk := sock.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


@dataclass(frozen=True)
class ZooKeeperNode:
    """One standalone server; ``home`` holds its config, data, logs and pid file."""

    home: Path
    port: int
    libs: Path
    heap: str = "256m"

    @property
    def process(self) -> ManagedProcess:
        logs = self.home / "logs"
        return ManagedProcess("zookeeper", self.home, logs / "stdout.log", service_log=logs / "zookeeper.log")

    def start(self, timeout: float = 60.0) -> bool:
        """Start unless running; wait until it answers ``ruok`` with ``imok`` and serves (``srvr``)."""
        launched = self.process.pid() is None
        if launched:
            if port_open("127.0.0.1", self.port):
                raise StackError(f"port {self.port} is taken by a process we did not start; stop it or set "
                                 "OUTAGEWATCH_CLUSTER_ZOOKEEPER_PORT to a free port")
            for folder in ("data", "logs"):
                (self.home / folder).mkdir(parents=True, exist_ok=True)
            config = self.home / "zoo.cfg"
            config.write_text(zoo_cfg(self.home / "data", self.port))
            (self.home / "log4j.properties").write_text(_LOG4J.format(log_file=self.home / "logs" / "zookeeper.log"))
            self.process.start([
                "java", "-Xms64m", f"-Xmx{self.heap}",
                f"-Dlog4j.configuration=file:{self.home / 'log4j.properties'}",
                "-Dzookeeper.admin.enableServer=false",
                "-cp", f"{self.libs}/*", "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(config),
            ], cwd=self.home)
        wait_until(self.serves, timeout, f"ZooKeeper on 127.0.0.1:{self.port}", self.process)
        return launched

    def serves(self) -> bool:
        if not port_open("127.0.0.1", self.port):
            raise NotReady(f"nothing listens on 127.0.0.1:{self.port} yet")
        if four_letter(self.port, "ruok") != "imok":
            raise NotReady("ZooKeeper did not answer imok")
        # ``ruok`` answers before the server takes sessions; ``srvr`` only once it serves.
        if "Mode:" not in four_letter(self.port, "srvr"):
            raise NotReady("ZooKeeper is not serving yet")
        return True

    def stop(self) -> bool:
        return self.process.stop(timeout=20.0)
