"""The inhibition muters on their own: OnePagePerKey's ranking, WideFirst's reach (a fake set of open alerts)."""

from __future__ import annotations

from alerting.inhibit import AwaitsWider, OnePagePerKey, WideFirst
from alerting.lifecycle import Tracked
from core.schemas import Alert, Decision
from tests.alerting.helpers import T0


class OpenAlerts:
    def __init__(self, *tracks: Tracked) -> None:
        self.tracks = list(tracks)

    def open_alerts(self) -> list[Tracked]:
        return self.tracks


def track(scope: str, key: str, kind: str, onset_ms: int = T0) -> Tracked:
    opened = Tracked.new(scope, key, kind)
    opened.phase, opened.onset_ms = "firing", onset_ms
    return opened


def firing(scope: str, key: str, kind: str, onset_ms: int = T0) -> Alert:
    return track(scope, key, kind, onset_ms).alert("firing", onset_ms + 20_000)


class Release:
    """A version crash verdict that every room is awaited for, 10 s windows."""

    def awaited(self, kind: str, window_end: int) -> Decision | None:
        return Decision(scope="app_version", key="5.2.1", kind=kind, window_start=window_end - 10_000,
                        window_end=window_end, bad=False, score=0.7)


def test_awaits_wider_holds_a_room_one_window_and_forgets_rooms_that_stop_asking() -> None:
    muter = AwaitsWider(Release(), windows=1)
    assert muter.mutes(firing("room", "room-1", "crash", T0)) is not None
    # room-1 never asks again (it resolved); a thousand rooms wait after it, one window each.
    for n in range(1_000):
        now = T0 + 10_000 * (n + 1)
        held = firing("room", f"room-{n + 2}", "crash", now - 20_000)
        assert muter.mutes(held) is not None
        assert muter.mutes(firing("room", f"room-{n + 2}", "crash", now - 10_000)) is None
    assert len(muter._since) <= 3
    # Forgotten, room-1 waits afresh rather than paging at once on a start long gone.
    assert muter.mutes(firing("room", "room-1", "crash", T0 + 20_000_000)) is not None


def test_one_page_per_key_pages_the_earliest_then_the_error_code_then_the_fingerprint() -> None:
    crash, ratio = track("room", "room-3", "crash"), track("room", "room-3", "error_ratio")
    later = track("room", "room-3", "audio_dropout", onset_ms=T0 + 10_000)
    muter = OnePagePerKey(OpenAlerts(crash, ratio, later))
    assert muter.mutes(firing("room", "room-3", "crash")) is None
    assert muter.mutes(firing("room", "room-3", "error_ratio")) == (
        f"inhibited by the crash alert {crash.fingerprint} of the same room")
    assert "crash alert" in (muter.mutes(firing("room", "room-3", "audio_dropout", T0 + 10_000)) or "")
    # Two error codes with the same onset: the smaller fingerprint pages, whichever fired first.
    both = OnePagePerKey(OpenAlerts(track("room", "room-4", "crash"), track("room", "room-4", "timeout")))
    verdicts = [both.mutes(firing("room", "room-4", kind)) for kind in ("crash", "timeout")]
    assert sorted(verdict is None for verdict in verdicts) == [False, True]


def test_one_page_per_key_leaves_other_keys_and_scopes_alone() -> None:
    muter = OnePagePerKey(OpenAlerts(track("room", "room-3", "crash")))
    assert muter.mutes(firing("room", "room-4", "error_ratio")) is None
    assert muter.mutes(firing("region", "room-3", "error_ratio")) is None


def test_wide_first_mutes_the_incident_code_and_generic_kinds_under_a_wide_alert() -> None:
    version = track("app_version", "7.41.0", "crash")
    muter = WideFirst(OpenAlerts(version))
    reason = f"inhibited by the wider app_version 7.41.0 crash alert {version.fingerprint}"
    assert muter.mutes(firing("room", "room-1", "crash")) == reason
    assert muter.mutes(firing("room", "room-2", "error_ratio")) == reason
    assert muter.mutes(firing("platform", "ios", "volume")) == reason
    assert muter.mutes(firing("room", "room-3", "details_not_available")) is None  # a cause of its own
    assert muter.mutes(firing("app_version", "7.41.0", "crash")) is None  # not by itself
    assert muter.mutes(firing("service", "room-api", "server_anomaly")) is None


def test_wide_first_pages_a_platform_and_its_version_failing_with_one_code_once() -> None:
    platform = track("platform", "web", "crash")
    muter = WideFirst(OpenAlerts(platform))
    assert muter.mutes(firing("app_version", "web-2026.47", "crash")) == (
        f"inhibited by the wider platform web crash alert {platform.fingerprint}")
    assert platform.held_keys == ["web-2026.47"]  # the platform's page names the version it holds
    assert platform.alert("firing", T0).affected == ["web-2026.47"]
    assert muter.mutes(firing("app_version", "7.41.0", "timeout")) is None  # another failure
    assert muter.mutes(firing("platform", "ios", "crash")) is None  # same dimension: its own
    # A held alert holds nothing: the version's page, held by the platform, must not hold the platform back.
    version = track("app_version", "web-2026.47", "crash")
    version.held = True
    assert WideFirst(OpenAlerts(version)).mutes(firing("platform", "web", "crash")) is None


def test_wide_first_under_an_incident_mutes_only_generic_kinds() -> None:
    muter = WideFirst(OpenAlerts(track("cluster", "eu-west", "correlated")))
    assert muter.mutes(firing("room", "room-1", "error_ratio")) is not None
    assert muter.mutes(firing("room", "room-1", "crash")) is None
    assert WideFirst(OpenAlerts(track("room", "room-9", "crash"))).mutes(firing("room", "room-1", "volume")) is None


def test_wide_first_under_an_incident_mutes_rooms_of_its_codes_in_any_group() -> None:
    incident = track("cluster", "ap-south", "correlated")
    incident.codes = ["timeout"]
    muter = WideFirst(OpenAlerts(incident))
    elsewhere = Tracked.new("room", "room-9", "timeout")
    elsewhere.labels = {"region": "eu-west"}  # hosted in the failing cluster, listened to from eu-west
    assert muter.mutes(elsewhere.alert("firing", T0)) == (
        f"inhibited by the wider cluster ap-south correlated alert {incident.fingerprint}")
    assert muter.mutes(firing("room", "room-9", "crash")) is None  # a failure of its own
    assert muter.mutes(firing("app_version", "7.41.0", "timeout")) is None  # only rooms
    assert incident.held_keys == ["room-9"]  # the incident names the room it holds (lifecycle re-notifies)


def test_a_suspected_forgery_never_mutes_a_real_alert_of_its_room() -> None:
    forgery = track("room", "room-7", "suspected_forgery", onset_ms=T0)
    real = track("room", "room-7", "details_not_available", onset_ms=T0 + 80_000)
    muter = OnePagePerKey(OpenAlerts(forgery, real))
    assert muter.mutes(firing("room", "room-7", "details_not_available", T0 + 80_000)) is None
    assert muter.mutes(firing("room", "room-7", "suspected_forgery")) == (
        f"inhibited by the details_not_available alert {real.fingerprint} of the same room")


def test_wide_first_holds_a_cluster_incident_whose_every_code_a_version_pages() -> None:
    version = track("app_version", "7.40.2", "crash")
    region = track("cluster", "eu-west", "correlated")
    region.codes = ["crash", "error_ratio", "volume"]  # its rooms crash (the generic kinds name no cause)
    muter = WideFirst(OpenAlerts(version, region))
    assert muter.mutes(region.alert("firing", T0 + 300_000)) == (
        f"inhibited by the wider app_version 7.40.2 crash alert {version.fingerprint}: every code this cluster "
        "fails with (crash) pages there")
    region.codes = ["crash", "timeout"]  # a failure of its own besides the release's
    assert muter.mutes(region.alert("firing", T0 + 300_000)) is None
    region.codes = []  # nothing known of its codes: it pages
    assert muter.mutes(region.alert("firing", T0 + 300_000)) is None
    region.codes = ["heartbeat_loss"]
    silent = track("platform", "android", "heartbeat_loss")
    assert WideFirst(OpenAlerts(silent, region)).mutes(region.alert("firing", T0)) is None  # a region gone dark
