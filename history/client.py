"""The one ClickHouse client factory.

>>> target = parse_url("clickhouse://writer:s3cret@db.example:9000/outagewatch")
>>> (target.host, target.port, target.user, target.database)
('db.example', 9000, 'writer', 'outagewatch')
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from clickhouse_driver import Client


@dataclass(frozen=True)
class ClickHouseTarget:
    host: str = "127.0.0.1"
    port: int = 9000
    user: str = "default"
    password: str = ""
    database: str = "default"
    secure: bool = False

    def with_database(self, database: str) -> ClickHouseTarget:
        return replace(self, database=database)

    def with_user(self, user: str, password: str) -> ClickHouseTarget:
        return replace(self, user=user, password=password)

    def describe(self) -> str:
        """Address without the password, for logs and status output."""
        return f"clickhouse://{self.user}@{self.host}:{self.port}/{self.database}"


def parse_url(url: str) -> ClickHouseTarget:
    """``clickhouse://user:password@host:port/database`` (``clickhouses://`` for TLS)."""
    parts = urlsplit(url)
    if parts.scheme not in {"clickhouse", "clickhouses"}:
        raise ValueError(
            f"ClickHouse URL {url!r} must start with clickhouse:// (native protocol, e.g. "
            "clickhouse://default:@127.0.0.1:9000/outagewatch)"
        )
    secure = parts.scheme == "clickhouses"
    return ClickHouseTarget(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or (9440 if secure else 9000),
        user=unquote(parts.username or "default"),
        password=unquote(parts.password or ""),
        database=(parts.path or "/").strip("/") or "default",
        secure=secure,
    )


def connect(target: ClickHouseTarget, **settings: Any) -> Client:
    """A clickhouse-driver client; columnar inserts and UTC are the defaults."""
    from clickhouse_driver import Client

    return Client(
        host=target.host,
        port=target.port,
        user=target.user,
        password=target.password,
        database=target.database,
        secure=target.secure,
        connect_timeout=5,
        send_receive_timeout=120,
        settings={"use_client_time_zone": False, **settings},
    )
