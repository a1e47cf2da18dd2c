"""The Grafana provisioning tree: datasource, dashboard provider, dashboard JSON.

Layout written under ``--out`` (``deploy/grafana`` by default), as
``deploy/docker-compose.yml`` mounts it::

    provisioning/datasources/outagewatch.yaml   -> /etc/grafana/provisioning/datasources/
    provisioning/dashboards/outagewatch.yaml    -> /etc/grafana/provisioning/dashboards/
    dashboards/<uid>.json                       -> /var/lib/grafana/dashboards/

The datasource uses the read-only ClickHouse user over the native protocol,
with the plugin's own jsonData keys (``host``, ``port``, ``protocol``,
``username``, ``defaultDatabase``; the password in ``secureJsonData``).

>>> source = datasource(DatasourceTarget(host="clickhouse", port=9000, database="outagewatch",
...                                      user="outagewatch_reader", password="pw"))
>>> source["jsonData"]["protocol"], source["jsonData"]["defaultDatabase"], source["secureJsonData"]
('native', 'outagewatch', {'password': 'pw'})
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.config import Settings
from dashboards.boards import BOARDS
from dashboards.grafana import DATASOURCE_UID, PLUGIN_ID, to_json
from history.client import parse_url

DATASOURCE_NAME = "outagewatch ClickHouse"
FOLDER_TITLE = "outagewatch"
# Where the compose file mounts ./grafana/dashboards inside the Grafana container.
CONTAINER_DASHBOARDS_PATH = "/var/lib/grafana/dashboards"


@dataclass(frozen=True)
class DatasourceTarget:
    """How Grafana reaches ClickHouse: not necessarily how this machine does (compose: ``clickhouse:9000``)."""

    host: str
    port: int
    database: str
    user: str
    password: str
    secure: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, host: str | None = None, port: int | None = None) -> DatasourceTarget:
        target = parse_url(settings.clickhouse.url)
        return cls(host=host or target.host, port=port or target.port, database=target.database,
                   user=settings.clickhouse.reader_user, password=settings.clickhouse.reader_password,
                   secure=target.secure)


def datasource(target: DatasourceTarget) -> dict[str, Any]:
    """The datasource as both the provisioning file and the HTTP API take it."""
    return {
        "name": DATASOURCE_NAME,
        "uid": DATASOURCE_UID,
        "type": PLUGIN_ID,
        "access": "proxy",
        "isDefault": False,
        "jsonData": {
            "host": target.host,
            "port": target.port,
            "protocol": "native",
            "secure": target.secure,
            "username": target.user,
            "defaultDatabase": target.database,
            "dialTimeout": "10",
            "queryTimeout": "60",
        },
        "secureJsonData": {"password": target.password},
    }


def datasources_file(target: DatasourceTarget) -> dict[str, Any]:
    return {"apiVersion": 1, "datasources": [{**datasource(target), "editable": False}]}


def dashboard_provider_file(path: str = CONTAINER_DASHBOARDS_PATH, folder: str = FOLDER_TITLE,
                            folder_uid: str = "outagewatch") -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "providers": [{
            "name": "outagewatch",
            "orgId": 1,
            "folder": folder,
            "folderUid": folder_uid,
            "type": "file",
            "disableDeletion": False,
            "allowUiUpdates": False,
            "updateIntervalSeconds": 30,
            "options": {"path": path, "foldersFromFilesStructure": False},
        }],
    }


def dashboards(window_seconds: int = 10) -> list[dict[str, Any]]:
    return [to_json(board.build(window_seconds)) for board in BOARDS]


def _write(path: Path, text: str) -> bool:
    """Write only when the content changes; returns whether it did."""
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return True


def write_tree(out: Path, target: DatasourceTarget, boards: Sequence[Mapping[str, Any]],
               folder_uid: str = "outagewatch") -> dict[str, str]:
    """Write the provisioning tree; returns each file (relative) with ``written`` or ``unchanged``."""
    files: dict[Path, str] = {
        out / "provisioning" / "datasources" / "outagewatch.yaml":
            yaml.safe_dump(datasources_file(target), sort_keys=False),
        out / "provisioning" / "dashboards" / "outagewatch.yaml":
            yaml.safe_dump(dashboard_provider_file(folder_uid=folder_uid), sort_keys=False),
    }
    for board in boards:
        files[out / "dashboards" / f"{board['uid']}.json"] = json.dumps(board, indent=2, sort_keys=True) + "\n"
    return {str(path.relative_to(out)): ("written" if _write(path, text) else "unchanged")
            for path, text in files.items()}
