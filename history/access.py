"""The read-only ClickHouse user for dashboards and analysts.

On servers with SQL-driven access control (20.5+) ``migrate
--create-reader`` creates it with ``readonly = 2`` (no writes or DDL; query
settings such as ``max_execution_time`` allowed) and grants SELECT on the
database. Older servers (the local 18.16) define users only in
``users.xml``; the local stack writes the reader there.

>>> supports_sql_users("18.16.1"), supports_sql_users("20.5.2.7"), supports_sql_users("25.8.1")
(False, True, True)
>>> [s.split(" BY ")[0] for s in reader_statements("outagewatch", "outagewatch_reader")]
['CREATE USER IF NOT EXISTS `outagewatch_reader` IDENTIFIED WITH sha256_password', 'ALTER USER `outagewatch_reader` SETTINGS readonly = 2', 'GRANT SELECT ON `outagewatch`.* TO `outagewatch_reader`']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def _version(version: str) -> tuple[int, int]:
    parts = [int(p) for p in version.split(".")[:2] if p.isdigit()]
    return tuple((parts + [0, 0])[:2])  # type: ignore[return-value]


def supports_sql_users(version: str) -> bool:
    """``CREATE USER`` and ``GRANT`` arrived in ClickHouse 20.5."""
    return _version(version) >= (20, 5)


def _ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def reader_statements(database: str, user: str) -> list[str]:
    """DDL for the reader; the password is bound as ``%(password)s`` by the driver."""
    return [
        f"CREATE USER IF NOT EXISTS {_ident(user)} IDENTIFIED WITH sha256_password BY %(password)s",
        f"ALTER USER {_ident(user)} SETTINGS readonly = 2",
        f"GRANT SELECT ON {_ident(database)}.* TO {_ident(user)}",
    ]


def ensure_reader(execute: Callable[[str, Mapping[str, Any]], object], version: str, database: str, user: str,
                  password: str) -> str:
    """Create the reader where the server allows it; returns what was done, for the operator."""
    if not supports_sql_users(version):
        return (f"reader user {user!r}: ClickHouse {version} has no CREATE USER (20.5+); it must be defined in "
                "users.xml with a readonly=2 profile (the local stack does this)")
    for statement in reader_statements(database, user):
        execute(statement, {"password": password})
    return f"reader user {user!r}: created if missing, readonly=2, SELECT on {database}.*"
