"""`dashboards build` writes the tree deploy/docker-compose.yml mounts, unchanged."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from core.config import load_settings
from dashboards import provisioning
from outagewatch.cli import main

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "docker-compose.yml"


def test_build_writes_what_the_compose_file_mounts(tmp_path: Path, capsys: object) -> None:
    out = tmp_path / "grafana"
    assert main(["dashboards", "build", "--out", str(out)]) == 0
    compose = yaml.safe_load(COMPOSE.read_text())
    volumes = compose["services"]["grafana"]["volumes"]
    mounts = dict(v.split(":")[:2] for v in volumes)
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    assert mounts["./grafana/dashboards"] == provisioning.CONTAINER_DASHBOARDS_PATH
    assert "grafana-clickhouse-datasource" in compose["services"]["grafana"]["environment"]["GF_INSTALL_PLUGINS"]

    sources = yaml.safe_load((out / "provisioning/datasources/outagewatch.yaml").read_text())
    source = sources["datasources"][0]
    assert sources["apiVersion"] == 1 and source["type"] == "grafana-clickhouse-datasource"
    assert source["jsonData"]["host"] == "clickhouse"  # the compose service
    assert source["jsonData"]["port"] == 9000 and source["jsonData"]["protocol"] == "native"
    settings = load_settings(env={})
    assert source["jsonData"]["username"] == settings.clickhouse.reader_user
    assert source["secureJsonData"]["password"] == settings.clickhouse.reader_password
    assert source["jsonData"]["defaultDatabase"] == "outagewatch"
    assert "database" not in source["jsonData"] and "server" not in source["jsonData"]

    providers = yaml.safe_load((out / "provisioning/dashboards/outagewatch.yaml").read_text())["providers"]
    assert providers[0]["type"] == "file"
    assert providers[0]["options"]["path"] == mounts["./grafana/dashboards"]
    boards = sorted(p.name for p in (out / "dashboards").glob("*.json"))
    assert boards == sorted(f"{b['uid']}.json" for b in provisioning.dashboards())
    for path in (out / "dashboards").glob("*.json"):
        board = json.loads(path.read_text())
        refs = set(re.findall(r'"uid": "([^"]+)"', json.dumps([p.get("datasource") for p in board["panels"]])))
        assert refs <= {source["uid"]}


def test_host_and_port_are_overridable_and_rebuilds_are_idempotent(tmp_path: Path, capsys: object) -> None:
    args = ["dashboards", "build", "--out", str(tmp_path), "--clickhouse-host", "ch.internal",
            "--clickhouse-port", "9440"]
    assert main(args) == 0
    capsys.readouterr()  # type: ignore[attr-defined]
    source = yaml.safe_load((tmp_path / "provisioning/datasources/outagewatch.yaml").read_text())["datasources"][0]
    assert (source["jsonData"]["host"], source["jsonData"]["port"]) == ("ch.internal", 9440)
    assert main(args) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]  # type: ignore[attr-defined]
    assert lines and {line["action"] for line in lines} == {"unchanged"}


def test_generated_files_are_git_ignored() -> None:
    ignore = (Path(__file__).resolve().parents[2] / ".gitignore").read_text().splitlines()
    assert "deploy/grafana/" in ignore
