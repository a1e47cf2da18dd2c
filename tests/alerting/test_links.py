"""Links in notifications: the boards they name exist, every format carries them."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import msgspec
import pytest

from alerting.links import INCIDENTS_BOARD, OVERVIEW_BOARD, ROOM_BOARD, SERVICE_BOARD, Links
from alerting.notify.alertmanager import payload as alertmanager_payload
from alerting.notify.amwebhook import payload as amwebhook_payload
from alerting.notify.pagerduty import payload as pagerduty_payload
from alerting.notify.slack import payload as slack_payload
from alerting.notify.webhook import payload as webhook_payload
from alerting.silence import Matcher, Silences
from core.config import ConfigError, load_settings
from core.schemas import Alert
from core.timeutil import ManualClock
from dashboards.boards import exec_overview, incidents, room, services
from tests.alerting.helpers import T0

LINKS = Links(grafana_url="https://grafana.example/", alertmanager_url="https://am.example",
              runbook_base="https://wiki.example/runbooks", runbook_template="{base}/{scope}/{kind}")
ROOM_ALERT = Alert(fingerprint="4676650f04e6de4c", status="firing", scope="room", key="room-17",
                   kind="details_not_available", severity="critical", starts_at=T0, event_ts=T0 + 20_000,
                   summary="room-17: details_not_available reports 42x baseline", labels={"region": "eu-west"})


def _variables(board: dict[str, object]) -> set[str]:
    templating = board.get("templating", {})
    assert isinstance(templating, dict)
    return {str(v["name"]) for v in templating.get("list", [])}


def test_board_uids_and_variables_are_the_dashboards_own() -> None:
    assert ROOM_BOARD[0] == room.UID and SERVICE_BOARD[0] == services.UID
    assert OVERVIEW_BOARD == exec_overview.UID and INCIDENTS_BOARD == incidents.UID
    from dashboards.grafana import to_json

    assert ROOM_BOARD[1] in _variables(to_json(room.build(10)))
    assert SERVICE_BOARD[1] in _variables(to_json(services.build(10)))


def test_room_board_url_sets_the_room_and_the_time_range() -> None:
    url = urlsplit(LINKS.board(ROOM_ALERT))
    assert (url.scheme, url.netloc, url.path) == ("https", "grafana.example", f"/d/{room.UID}")
    query = parse_qs(url.query)
    assert query["var-room"] == ["room-17"] and query["to"] == ["now"]
    assert int(query["from"][0]) == T0 - 30 * 60_000
    resolved = msgspec.structs.replace(ROOM_ALERT, status="resolved", ends_at=T0 + 60_000)
    assert parse_qs(urlsplit(LINKS.board(resolved)).query)["to"] == [str(T0 + 60_000 + 10 * 60_000)]


def test_service_and_incident_boards() -> None:
    service = msgspec.structs.replace(ROOM_ALERT, scope="service", key="auth api", kind="server_anomaly")
    assert parse_qs(urlsplit(LINKS.board(service)).query)["var-service"] == ["auth api"]
    incident = msgspec.structs.replace(ROOM_ALERT, scope="cluster", key="eu-west", kind="correlated")
    assert urlsplit(LINKS.board(incident)).path == f"/d/{incidents.UID}"


def test_runbook_template_and_its_config_error() -> None:
    assert LINKS.runbook(ROOM_ALERT) == "https://wiki.example/runbooks/room/details_not_available"
    settings = load_settings(env={"OUTAGEWATCH_ALERTING_RUNBOOK_BASE_URL": "https://rb.example/"})
    assert Links.from_settings(settings.alerting, settings.grafana).runbook(ROOM_ALERT) == (
        "https://rb.example/details_not_available")
    with pytest.raises(ConfigError, match=r"OUTAGEWATCH_ALERTING_RUNBOOK_URL_TEMPLATE.*\{room\}"):
        load_settings(env={"OUTAGEWATCH_ALERTING_RUNBOOK_URL_TEMPLATE": "{base}/{room}"})


def test_the_silence_command_silences_exactly_this_alert() -> None:
    import shlex

    words = shlex.split(LINKS.silence_command(ROOM_ALERT))
    assert words[:3] == ["outagewatch", "silence", "add"]
    matchers = [Matcher.parse(words[i + 1]) for i, word in enumerate(words) if word == "--match"]
    silences = Silences(ManualClock(T0))
    silences.add(matchers, ends_at_ms=T0 + 7_200_000)
    assert silences.mutes(ROOM_ALERT) is not None
    assert silences.mutes(msgspec.structs.replace(ROOM_ALERT, key="room-18")) is None
    assert silences.mutes(msgspec.structs.replace(ROOM_ALERT, kind="crash")) is None


def test_alertmanager_silence_url_prefills_the_labels() -> None:
    from urllib.parse import unquote

    url = LINKS.silence_url(ROOM_ALERT)
    assert url.startswith("https://am.example/#/silences/new?filter=")
    assert unquote(url.split("filter=", 1)[1]) == (
        '{alertname="details_not_available",scope="room",key="room-17"}')
    assert Links().silence_url(ROOM_ALERT) == ""


def test_every_format_carries_board_runbook_and_silence() -> None:
    links = LINKS.of(ROOM_ALERT)
    wanted = (links.board, links.runbook, links.silence_command)
    generic = msgspec.json.encode(webhook_payload(ROOM_ALERT, links)).decode()
    slack = msgspec.json.encode(slack_payload(ROOM_ALERT, links)).decode()
    pagerduty = pagerduty_payload(ROOM_ALERT, "key", links)
    am = alertmanager_payload(ROOM_ALERT, links=links)[0]
    v4 = amwebhook_payload(ROOM_ALERT, "hook", LINKS)
    assert webhook_payload(ROOM_ALERT, links)["links"]["board"] == links.board
    for url in wanted:
        assert msgspec.json.encode(url).decode()[1:-1] in generic
    assert links.board.replace("&", "&amp;") in slack and links.runbook in slack
    assert links.silence_command.replace("<", "&lt;").replace(">", "&gt;") in slack
    assert [link["href"] for link in pagerduty["links"]] == [links.board, links.runbook, links.silence_url]
    assert pagerduty["payload"]["custom_details"]["silence_command"] == links.silence_command
    for notes in (am["annotations"], v4["alerts"][0]["annotations"]):
        assert (notes["dashboard"], notes["runbook_url"], notes["silence_command"]) == wanted
        assert notes["silence_url"] == links.silence_url
    assert am["generatorURL"] == v4["alerts"][0]["generatorURL"] == links.board
