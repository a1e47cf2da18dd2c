"""Aggregates explained by rooms already failing do not page; a real spread does; services are no cluster members."""

from __future__ import annotations

from alerting.engine import AlertEngine
from alerting.policy import AlertingPolicy, LifecyclePolicy
from alerting.residual import Explained, error_counts
from core.schemas import Decision
from core.timeutil import ManualClock
from tests.alerting.helpers import T0, WINDOW_MS, judged

POLICY = AlertingPolicy(lifecycle=LifecyclePolicy(pending_windows=1, resolve_windows=2))


def test_error_counts_reads_clients_and_listeners_from_the_evidence() -> None:
    assert error_counts(judged("global", "all", 0, 50, 10_000, bad=True)) == (50, 10_000, 0.001)


def test_one_huge_failing_room_pages_as_a_room_not_as_a_global_incident() -> None:
    engine = AlertEngine(POLICY, ManualClock(T0))
    paged = []
    for i in range(4):
        room = judged("room", "launch-1", i, 300, 10_000, bad=True, labels={"region": "us-east"})
        # the global window is the launch room plus 10k quiet listeners elsewhere
        world = judged("global", "all", i, 310, 20_000, bad=True)
        paged += [(a.scope, a.status) for a in engine.process([room, world])]
    assert ("room", "firing") in paged
    assert not any(scope == "global" for scope, _ in paged)


def test_a_spread_beyond_the_failing_room_still_pages_global() -> None:
    engine = AlertEngine(POLICY, ManualClock(T0))
    paged = []
    for i in range(4):
        room = judged("room", "launch-1", i, 300, 10_000, bad=True, labels={"region": "us-east"})
        world = judged("global", "all", i, 900, 20_000, bad=True)  # 600 more error clients among the other 10k
        paged += [(a.scope, a.status) for a in engine.process([room, world])]
    assert ("global", "firing") in paged


def test_an_aggregate_error_ratio_borrows_its_volume_siblings_counts() -> None:
    explained = Explained()
    explained.add_rooms([judged("room", "r", 0, 300, 10_000, bad=True, kind="volume"),
                         judged("room", "r", 0, 300, 10_000, bad=True, kind="error_ratio")])
    volume = judged("app_version", "7.40", 0, 305, 12_000, bad=True, kind="volume")
    ratio = Decision(scope="app_version", key="7.40", kind="error_ratio", window_start=volume.window_start,
                     window_end=volume.window_end, bad=True, evidence=[volume.evidence[1]])
    explained.add_aggregates([volume, ratio])
    assert explained.explains(ratio) and explained.explains(volume)


def test_services_do_not_form_a_cluster_incident() -> None:
    engine = AlertEngine(POLICY, ManualClock(T0))
    scopes = []
    for i in range(3):
        services = [Decision(scope="service", key=name, kind="server_anomaly", window_start=T0 + i * WINDOW_MS,
                             window_end=T0 + (i + 1) * WINDOW_MS, bad=True, severity="critical",
                             labels={"cluster": "us-east"}) for name in ("auth", "room-api", "audio-edge")]
        scopes += [a.scope for a in engine.process(services) if a.status == "firing"]
    assert scopes.count("service") == 3 and "cluster" not in scopes and "global" not in scopes


def firing(engine: AlertEngine, windows: list[list[Decision]]) -> set[tuple[str, str]]:
    return {(a.scope, a.key) for batch in windows for a in engine.process(batch) if a.status == "firing"}


def test_a_launch_room_and_its_region_are_no_global_incident() -> None:
    # The room (half of it listening from us-east) plus the rest of its cluster's region spilling over.
    windows = [[judged("room", "launch-1", i, 300, 10_000, bad=True, labels={"region": "us-east"}),
                judged("region", "us-east", i, 350, 15_000, bad=True),
                judged("global", "all", i, 470, 40_000, bad=True)] for i in range(4)]
    fired = firing(AlertEngine(POLICY, ManualClock(T0)), windows)
    assert ("room", "launch-1") in fired and ("cluster", "us-east") in fired
    assert ("global", "all") not in fired


def test_a_storm_in_every_region_is_a_global_incident() -> None:
    regions = ["us-east", "us-west", "eu-west", "ap-south", "sa-east"]
    windows = [[*(judged("region", region, i, 100, 8_000, bad=True) for region in regions),
                judged("global", "all", i, 500, 40_000, bad=True)] for i in range(4)]
    assert ("global", "all") in firing(AlertEngine(POLICY, ManualClock(T0)), windows)


def test_a_crashing_version_pages_as_itself_not_as_its_platform_or_global() -> None:
    windows = [[judged("app_version", "7.41.0", i, 400, 5_000, bad=True, kind="crash"),
                judged("platform", "ios", i, 410, 10_000, bad=True, kind="crash"),
                judged("global", "all", i, 450, 30_000, bad=True, kind="crash")] for i in range(4)]
    fired = firing(AlertEngine(POLICY, ManualClock(T0)), windows)
    assert ("app_version", "7.41.0") in fired
    assert ("platform", "ios") not in fired and ("global", "all") not in fired


def test_of_two_aggregates_explaining_each_other_the_narrower_one_pages() -> None:
    # A crash only on one version, and that version is only used in one region.
    windows = [[judged("app_version", "7.41.0", i, 400, 5_000, bad=True, kind="crash"),
                judged("region", "sa-east", i, 400, 6_000, bad=True, kind="crash")] for i in range(4)]
    fired = firing(AlertEngine(POLICY, ManualClock(T0)), windows)
    assert ("app_version", "7.41.0") in fired and ("cluster", "sa-east") not in fired


def _release(room_listeners: float, version_listeners: float, everyone: float) -> bool:
    """Whether three bad rooms (60 crash clients each, ``room_listeners`` in all) explain a version holding
    all their crash clients, with ``version_listeners`` of ``everyone``."""
    explained = Explained()
    explained.add_rooms([judged("room", f"big-{i}", 0, 60, room_listeners / 3, bad=True, kind="crash")
                         for i in range(3)])
    version = judged("app_version", "7.40.2", 0, 185, version_listeners, bad=True, kind="crash")
    explained.add_aggregates([version, judged("global", "all", 0, 200, everyone, bad=True, kind="crash")])
    return explained.explains(version)


def test_a_minority_version_holding_every_bad_rooms_errors_is_their_cause() -> None:
    assert not _release(room_listeners=30_000, version_listeners=9_000, everyone=60_000)  # fewer than the rooms'
    assert not _release(room_listeners=3_000, version_listeners=9_000, everyone=60_000)   # a minority of everyone
    # Small rooms may all be on the version; a version most listeners run may be all of the rooms.
    assert _release(room_listeners=90, version_listeners=9_000, everyone=60_000)
    assert _release(room_listeners=3_000, version_listeners=40_000, everyone=60_000)


def test_a_room_failing_whole_still_explains_the_versions_it_lifts() -> None:
    explained = Explained()
    explained.add_rooms([judged("room", "big-1", 0, 300, 10_000, bad=True, kind="crash")])
    # The version is 15 % of the room: it got 45 of its 300 crash clients, plus its own normal 9.
    version = judged("app_version", "7.40.2", 0, 54, 9_000, bad=True, kind="crash")
    assert explained.explains(version)


def test_several_bad_rooms_of_a_region_do_not_explain_that_region_but_one_does() -> None:
    def region_with(rooms: int) -> bool:
        explained = Explained()
        explained.add_rooms([judged("room", f"r{i}", 0, 400 // rooms, 6_000 // rooms, bad=True, kind="crash",
                                    labels={"cluster": "us-east"}) for i in range(rooms)])
        return explained.explains(judged("region", "us-east", 0, 402, 7_000, bad=True, kind="crash"))
    assert region_with(1)        # one big room of us-east failing: a room page
    assert not region_with(3)    # three of them at once: the region's incident


def test_a_room_bad_only_as_a_suspected_forgery_is_no_room_of_the_regions_incident() -> None:
    explained = Explained()
    genuine = judged("room", "room-3", 0, 200, 3_000, bad=True, kind="crash", labels={"cluster": "eu"})
    forged = [judged("room", "room-7", 0, 200, 3_000, bad=False, kind="crash", labels={"cluster": "eu"}),
              judged("room", "room-7", 0, 200, 3_000, bad=True, kind="suspected_forgery", labels={"cluster": "eu"})]
    explained.add_rooms([genuine, *forged])
    # Both rooms' errors still explain the region they lift: one genuine room is no region outage.
    assert explained.explains(judged("region", "eu", 0, 402, 7_000, bad=True, kind="crash"))


def test_a_room_just_clear_still_explains_its_tail_then_stops() -> None:
    explained = Explained()
    explained.add_rooms([judged("room", "big-1", 0, 900, 170_000, bad=True)])
    # Clear again, but 38 of its listeners on a small platform still see the error.
    platform = [judged("platform", "other", i, 40, 1_200, bad=True, baseline=0.004) for i in (1, 5)]
    explained.add_aggregates(platform)
    explained.add_rooms([judged("room", "big-1", 1, 38, 170_000, bad=False)])
    assert explained.explains(platform[0])
    explained.add_rooms([judged("room", "big-1", 5, 38, 170_000, bad=False)])  # four windows on: its own
    assert not explained.explains(platform[1])
