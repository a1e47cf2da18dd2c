"""Push the folder, datasource and dashboards to a running Grafana, idempotently.

Uses ``grafana-client`` (``GrafanaApi.from_url(url, credential=TokenAuth(token))``)
against Grafana's HTTP API:

- folder: ``GET /api/folders/<uid>``, created (``POST /api/folders``) or
  renamed (``PUT /api/folders/<uid>``) when needed;
- datasource: ``GET /api/datasources/uid/<uid>``, created (``POST``) or
  updated (``PUT /api/datasources/uid/<uid>``) when its settings differ, then
  ``GET /api/datasources/uid/<uid>/health`` (the plugin connects to ClickHouse);
- dashboards: ``GET /api/dashboards/uid/<uid>``, saved with
  ``POST /api/dashboards/db`` (overwrite) only when different.

Grafana never returns a datasource password, so a changed password alone is
not detected: ``force=True`` (``--force``) re-sends everything.

>>> _differs({"a": 1, "jsonData": {"x": 1}}, {"a": 1, "jsonData": {"x": 1, "extra": 2}, "id": 9})
False
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"
# Fields Grafana adds or bumps on save; they say nothing about our content.
_VOLATILE_DASHBOARD_KEYS = ("id", "version")


class GrafanaLike(Protocol):
    """The part of ``grafana_client.GrafanaApi`` we call."""

    folder: Any
    datasource: Any
    dashboard: Any


@dataclass(frozen=True)
class Change:
    kind: str  # folder | datasource | dashboard | health
    uid: str
    action: str  # created | updated | unchanged | ok | failed
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "uid": self.uid, "action": self.action, "detail": self.detail}


def _is_not_found(error: Exception) -> bool:
    return getattr(error, "status_code", None) == 404


def _differs(wanted: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    """True when a field we set has another value; fields Grafana adds are ignored."""
    for key, value in wanted.items():
        if isinstance(value, Mapping) and isinstance(current.get(key), Mapping):
            if _differs(value, current[key]):
                return True
        elif current.get(key) != value:
            return True
    return False


def push_folder(api: GrafanaLike, uid: str, title: str) -> Change:
    try:
        current = api.folder.get_folder(uid)
    except Exception as error:  # grafana_client raises GrafanaClientError with status_code
        if not _is_not_found(error):
            raise
        api.folder.create_folder(title, uid=uid)
        return Change("folder", uid, CREATED, title)
    if current.get("title") != title:
        api.folder.update_folder(uid, title=title, overwrite=True)
        return Change("folder", uid, UPDATED, f"renamed to {title!r}")
    return Change("folder", uid, UNCHANGED, title)


def push_datasource(api: GrafanaLike, payload: Mapping[str, Any], force: bool = False) -> Change:
    uid = str(payload["uid"])
    try:
        current = api.datasource.get_datasource_by_uid(uid)
    except Exception as error:
        if not _is_not_found(error):
            raise
        api.datasource.create_datasource(dict(payload))
        return Change("datasource", uid, CREATED, str(payload["name"]))
    comparable = {k: v for k, v in payload.items() if k != "secureJsonData"}
    if force or _differs(comparable, current):
        api.datasource.update_datasource_by_uid(uid, dict(payload))
        return Change("datasource", uid, UPDATED, str(payload["name"]))
    return Change("datasource", uid, UNCHANGED, str(payload["name"]))


def check_health(api: GrafanaLike, uid: str) -> Change:
    """The plugin's own check: it connects to ClickHouse with the datasource's settings."""
    try:
        result = api.datasource.health(uid)
    except Exception as error:  # a failing check answers 400/500 with a message
        message = getattr(error, "message", str(error))
        return Change("health", uid, "failed", message)
    status = str(result.get("status", "")) if isinstance(result, Mapping) else ""
    message = str(result.get("message", "")) if isinstance(result, Mapping) else str(result)
    return Change("health", uid, "ok" if status.upper() == "OK" else "failed", message)


def _comparable_dashboard(board: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in board.items() if k not in _VOLATILE_DASHBOARD_KEYS}


def push_dashboard(api: GrafanaLike, board: Mapping[str, Any], folder_uid: str, force: bool = False) -> Change:
    uid = str(board["uid"])
    action = CREATED
    try:
        current = api.dashboard.get_dashboard(uid)
    except Exception as error:
        if not _is_not_found(error):
            raise
    else:
        same_content = _comparable_dashboard(current.get("dashboard", {})) == _comparable_dashboard(board)
        same_folder = current.get("meta", {}).get("folderUid") == folder_uid
        if same_content and same_folder and not force:
            return Change("dashboard", uid, UNCHANGED, str(board.get("title", "")))
        action = UPDATED
    api.dashboard.update_dashboard({
        "dashboard": {**_comparable_dashboard(board), "id": None},
        "folderUid": folder_uid,
        "overwrite": True,
        "message": "outagewatch dashboards push",
    })
    return Change("dashboard", uid, action, str(board.get("title", "")))


def push_all(api: GrafanaLike, datasource: Mapping[str, Any], boards: Sequence[Mapping[str, Any]],
             folder_uid: str, folder_title: str, force: bool = False) -> list[Change]:
    """Folder, then datasource and its health, then dashboards; one Change per object."""
    changes = [push_folder(api, folder_uid, folder_title), push_datasource(api, datasource, force)]
    changes.append(check_health(api, str(datasource["uid"])))
    for board in boards:
        changes.append(push_dashboard(api, board, folder_uid, force))
    for change in changes:
        log.info("%s %s: %s %s", change.kind, change.uid, change.action, change.detail)
    return changes


def connect(url: str, token: str) -> Any:
    """A ``grafana_client.GrafanaApi`` with a service-account token."""
    from grafana_client.api import GrafanaApi
    from grafana_client.client import TokenAuth

    # grafana-client ships py.typed but leaves TokenAuth's __init__ unannotated.
    credential = TokenAuth(token=token)  # type: ignore[no-untyped-call]
    return GrafanaApi.from_url(url, credential=credential, timeout=15.0)
