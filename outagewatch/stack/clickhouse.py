"""A ClickHouse server run as a plain process from Debian's package.

Debian ships ClickHouse 18.16; every statement the project ships is also
checked on current ClickHouse (chdb), see history/.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from history.client import ClickHouseTarget, connect
from outagewatch.stack.packages import ensure_binary
from outagewatch.stack.process import ManagedProcess, NotReady, StackError, port_open, wait_until

_CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger>
    <level>information</level>
    <log>{home}/log/clickhouse-server.log</log>
    <errorlog>{home}/log/clickhouse-server.err.log</errorlog>
    <size>100M</size>
    <count>3</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>{tcp_port}</tcp_port>
  <http_port>{http_port}</http_port>
  <path>{home}/data/</path>
  <tmp_path>{home}/data/tmp/</tmp_path>
  <user_files_path>{home}/data/user_files/</user_files_path>
  <format_schema_path>{home}/data/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>536870912</mark_cache_size>
  <max_concurrent_queries>200</max_concurrent_queries>
{extra}</yandex>
"""

# The reader profile is readonly=2: no writes or DDL, but the Grafana plugin
# may still set per-query settings such as max_execution_time.
_USERS = """<?xml version="1.0"?>
<yandex>
  <profiles>
    <default><max_memory_usage>8000000000</max_memory_usage>{profile}</default>
    <reader><readonly>2</readonly><max_execution_time>60</max_execution_time>{profile}</reader>
  </profiles>
  <users>
    <{writer}>
      <password_sha256_hex>{writer_sha}</password_sha256_hex>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile><quota>default</quota>
    </{writer}>
    <{reader}>
      <password_sha256_hex>{reader_sha}</password_sha256_hex>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>reader</profile><quota>default</quota>
    </{reader}>
  </users>
  <quotas>
    <default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
      <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default>
  </quotas>
</yandex>
"""


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class ClickHouseNode:
    """One server; ``home`` holds its config, data, logs and pid file."""

    home: Path
    target: ClickHouseTarget
    http_port: int
    reader_user: str
    reader_password: str
    # More top-level config: a cluster's <remote_servers>, <macros>, <zookeeper>; and settings for every
    # user's profile.
    extra_config: str = ""
    profile_settings: str = ""

    @property
    def process(self) -> ManagedProcess:
        logs = self.home / "log"
        return ManagedProcess("clickhouse", self.home, logs / "stdout.log", service_log=logs / "clickhouse-server.err.log")

    def _write_config(self) -> Path:
        for folder in ("data", "log"):
            (self.home / folder).mkdir(parents=True, exist_ok=True)
        config = self.home / "config.xml"
        config.write_text(_CONFIG.format(home=escape(str(self.home)), tcp_port=self.target.port,
                                         http_port=self.http_port, extra=self.extra_config))
        (self.home / "users.xml").write_text(_USERS.format(
            writer=self.target.user, writer_sha=_sha256(self.target.password),
            reader=self.reader_user, reader_sha=_sha256(self.reader_password), profile=self.profile_settings,
        ))
        return config

    def start(self, timeout: float = 60.0) -> bool:
        """Start unless running; wait for ``SELECT 1``; create the database."""
        launched = self.launch()
        self.wait_ready(timeout)
        return launched

    def launch(self) -> bool:
        """Start the process unless it runs; returns whether it was started."""
        launched = self.process.pid() is None
        if launched:
            if port_open("127.0.0.1", self.target.port):
                raise StackError(
                    f"port {self.target.port} is taken by a process we did not start; stop it or "
                    "set OUTAGEWATCH_CLICKHOUSE_URL to use that server as is"
                )
            binary = ensure_binary("clickhouse-server", ("clickhouse-server", "clickhouse-client"))
            config = self._write_config()
            self.process.start([binary, f"--config-file={config}"], cwd=self.home)
        return launched

    def wait_ready(self, timeout: float = 60.0) -> None:
        wait_until(self._serves, timeout, f"ClickHouse at {self.target.describe()}", self.process)
        ensure_database(self.target)

    def _serves(self) -> bool:
        if not port_open("127.0.0.1", self.target.port):
            raise NotReady(f"nothing listens on port {self.target.port} yet")
        return select_one(self.target.with_database("default"))

    def stop(self) -> bool:
        return self.process.stop(timeout=30.0)


def select_one(target: ClickHouseTarget) -> bool:
    client = connect(target)
    try:
        return bool(client.execute("SELECT 1") == [(1,)])
    finally:
        client.disconnect()


def server_version(target: ClickHouseTarget) -> str:
    client = connect(target.with_database("default"))
    try:
        return str(client.execute("SELECT version()")[0][0])
    finally:
        client.disconnect()


def ensure_database(target: ClickHouseTarget) -> None:
    client = connect(target.with_database("default"))
    try:
        client.execute(f"CREATE DATABASE IF NOT EXISTS `{target.database}`")
    except Exception as exc:  # noqa: BLE001
        raise StackError(f"could not create database {target.database!r}: {exc}") from exc
    finally:
        client.disconnect()
