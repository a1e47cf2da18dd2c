"""The ensemble on synthetic rooms: real spikes page fast, benign surges and spammers do not."""

from __future__ import annotations

import json

import msgspec
import numpy as np

from alerting.policy import LifecyclePolicy
from core.schemas import Decision, RoomHealth, ServiceHealth
from detectors.ensemble import EnsembleConfig, RoomEnsemble, ServiceEnsemble
from outagewatch.simulator.synthetic import Spike, room_windows, service_windows

RAMP = [float(min(100 + 8300 * i, 700_000)) for i in range(300)]  # +50k listeners a minute up to 700k


def _bad(windows: list[RoomHealth]) -> list[set[str]]:
    ensemble = RoomEnsemble(EnsembleConfig())
    return [{d.kind for d in ensemble.observe(window) if d.bad} for window in windows]


def test_spike_in_a_steady_room_is_bad_from_its_first_window_and_only_then() -> None:
    windows = room_windows(np.random.default_rng(1), [5000.0] * 400, spikes=[Spike(300, 330, "details_not_available", 0.05)])
    bad = _bad(windows)
    assert all("details_not_available" in kinds for kinds in bad[300:330])
    assert not any(bad[:300]) and not any(bad[332:])


def test_spike_during_the_launch_ramp_is_caught_within_one_window() -> None:
    windows = room_windows(np.random.default_rng(2), RAMP, spikes=[Spike(60, 90, "crash", 0.03)])
    bad = _bad(windows)
    assert "crash" in bad[60] and "crash" in bad[61]
    assert not any(bad[:60])


def test_benign_surge_of_listeners_stays_quiet() -> None:
    assert not any(_bad(room_windows(np.random.default_rng(3), RAMP)))


def test_one_client_spamming_errors_stays_quiet() -> None:
    windows = room_windows(np.random.default_rng(4), [300.0] * 200, spam_windows=range(50, 150))
    assert sum(w.errors_by_code.get("other", 0.0) for w in windows[50:150]) > 50_000
    assert not any(_bad(windows))


def _crashes(index: int, count: int, listeners: int = 480) -> RoomHealth:
    """Window ``index`` of a small room with ``count`` crashing clients."""
    return RoomHealth(key="room-7", window_start=index * 10_000, window_end=(index + 1) * 10_000, listeners=listeners,
                      error_clients=count, error_clients_by_code={"crash": count})


def _small_room(listeners: int = 480) -> RoomEnsemble:
    """An ensemble that has learned 60 quiet windows of that room (one crash in 8)."""
    ensemble = RoomEnsemble(EnsembleConfig())
    for i in range(60):
        ensemble.observe(_crashes(i, 1 if i % 8 == 0 else 0, listeners))
    return ensemble


def _crash_verdicts(ensemble: RoomEnsemble, first: int, counts: list[int], listeners: int = 480) -> list[Decision]:
    return [d for i, count in enumerate(counts, first)
            for d in ensemble.observe(_crashes(i, count, listeners)) if d.kind == "crash"]


def _joins(index: int, listeners: float, joins: float, failed: int) -> RoomHealth:
    """Window ``index`` of a region: ``joins`` people joined, ``failed`` clients failed to."""
    return RoomHealth(scope="region", key="us-east", window_start=index * 10_000, window_end=(index + 1) * 10_000,
                      listeners=listeners, joins=joins, error_clients=failed,
                      error_clients_by_code={"join_failed": failed})


def _join_verdicts(windows: list[RoomHealth]) -> list[Decision]:
    ensemble = RoomEnsemble(EnsembleConfig(), scope="region")
    return [d for window in windows for d in ensemble.observe(window) if d.kind == "join_failed"]


def test_a_crowd_joining_at_the_usual_failure_rate_is_no_join_outage() -> None:
    # 5,000 listeners, 100 joins a window, 1% failing; then a new room fills: 4,000 joins a window in lumps
    # (a sampled crowd's reports stand for 2,700 people each), heartbeats lagging, and still 1% of the
    # attempts fail: six times the failures per listener this region knows.
    rng = np.random.default_rng(11)
    steady = [_joins(i, 5_000.0, 100.0, int(rng.binomial(100, 0.01))) for i in range(60)]
    lumps = [2_700.0 * int(rng.poisson(1.5)) for _ in range(30)]
    lumps[0] = 2_700.0  # the crowd's first joins come with its first failures (a window of failures alone pages)
    filling = [_joins(60 + i, 5_000.0 + 1_000.0 * i, lump, int(rng.binomial(4_000, 0.01)))
               for i, lump in enumerate(lumps)]
    verdicts = _join_verdicts(steady + filling)
    assert not any(d.bad for d in verdicts)
    per_attempt, per_listener = verdicts[-1].evidence[1:3]
    assert (per_attempt.detector, per_listener.detector) == ("error_ratio", "listener_ratio")
    assert "join attempts" in per_attempt.detail and "listeners" in per_listener.detail


def test_joins_failing_page_as_join_failed() -> None:
    rng = np.random.default_rng(12)
    steady = [_joins(i, 50_000.0, 500.0, int(rng.binomial(500, 0.01))) for i in range(60)]
    failing = [_joins(60 + i, 50_000.0, 250.0, 250) for i in range(3)]  # half of the attempts fail
    verdicts = _join_verdicts(steady + failing)
    assert not any(d.bad for d in verdicts[:60]) and all(d.bad for d in verdicts[60:])


def test_join_attempts_survive_a_restart() -> None:
    ensemble = RoomEnsemble(EnsembleConfig(), scope="region")
    for i in range(20):
        ensemble.observe(_joins(i, 50_000.0, 500.0 + i, 5))
    restored = RoomEnsemble.from_state(json.loads(json.dumps(ensemble.to_state())), EnsembleConfig(), scope="region")
    assert restored.to_state() == ensemble.to_state()
    assert list(restored.recent_joins) == [514.0, 515.0, 516.0, 517.0, 518.0, 519.0]


def test_a_rise_that_began_in_the_window_before_reaches_back_to_it() -> None:
    # 5 crashing clients: proven above normal, short of the alarm; then 8: bad.
    before, now = _crash_verdicts(_small_room(), 60, [5, 8])
    assert not before.bad and before.score > 0
    assert now.bad and now.since == before.window_start
    assert "with the window before: 13 error clients" in now.evidence[-1].detail


def test_a_one_window_blip_rests_on_its_own_window() -> None:
    quiet, blip = _crash_verdicts(_small_room(), 60, [0, 8])
    assert not quiet.bad and quiet.score == 0
    assert blip.bad and blip.since == 0


def test_a_window_with_too_few_error_clients_to_judge_is_no_onset() -> None:
    # 3 of 88 is above this room's normal, but below min_error_clients: nothing rests on it.
    before, now = _crash_verdicts(_small_room(88), 60, [3, 7], 88)
    assert before.score > 0 and now.bad
    assert now.since == 0


def test_the_window_before_survives_a_restart() -> None:
    ensemble = _small_room()
    _crash_verdicts(ensemble, 60, [5])
    restored = RoomEnsemble.from_state(json.loads(json.dumps(ensemble.to_state())), EnsembleConfig())
    assert [d.since for d in _crash_verdicts(restored, 61, [8])] == [600_000]


def _region_of_96(index: int, by_code: dict[str, int]) -> RoomHealth:
    return RoomHealth(scope="region", key="eu-west", window_start=index * 10_000, window_end=(index + 1) * 10_000,
                      listeners=96, error_clients=sum(by_code.values()), error_clients_by_code=by_code)


def test_a_small_region_pages_on_what_is_beyond_chance_at_its_normal_not_on_a_lift_alone() -> None:
    # A region of 96 listeners, 1 % of them erring (about one a window), 3 codes.
    rng = np.random.default_rng(5)
    codes = ("crash", "details_not_available", "audio_garbled")
    ensemble = RoomEnsemble(EnsembleConfig(), scope="region")
    for i in range(300):
        counts = rng.multinomial(int(rng.binomial(96, 0.01)), [1 / 3] * 3)
        assert not any(d.bad for d in ensemble.observe(_region_of_96(i, dict(zip(codes, counts.tolist(), strict=True)))))
    # 7 of 96: a proven lift of 2, and a Poisson chance of 6e-5 that a sweep's many small keys met.
    chance = ensemble.observe(_region_of_96(300, {"crash": 3, "details_not_available": 2, "audio_garbled": 2}))
    assert [d.kind for d in chance if d.bad] == []
    ratio = next(d for d in chance if d.kind == "error_ratio")
    assert ratio.evidence[0].score >= 0.5  # the lift alone would have paged
    outage = ensemble.observe(_region_of_96(301, {"crash": 6, "details_not_available": 3, "audio_garbled": 3}))
    assert {d.kind for d in outage if d.bad} >= {"error_ratio"}


def test_two_windows_prove_what_one_window_of_a_small_room_cannot() -> None:
    # A room of 52 listeners, about 1 % of them erring; then 7 error clients a window, each a proven lift of
    # 3 but a Poisson chance of 3e-6 alone, and of 3e-11 with the window before.
    rng = np.random.default_rng(3)
    ensemble = RoomEnsemble(EnsembleConfig())
    for i in range(300):
        errors = int(rng.poisson(0.012 * 52))
        ensemble.observe(RoomHealth(key="room-5", window_start=i * 10_000, window_end=(i + 1) * 10_000,
                                    listeners=52, error_clients=errors, error_clients_by_code={"timeout": errors}))
    verdicts = [next(d for d in ensemble.observe(RoomHealth(
        key="room-5", window_start=i * 10_000, window_end=(i + 1) * 10_000, listeners=52, error_clients=7,
        error_clients_by_code={"timeout": 7})) if d.kind == "timeout") for i in (300, 301)]
    assert [d.bad for d in verdicts] == [False, True]
    assert verdicts[0].evidence[1].score >= 0.5  # the lift alone would have paged the first
    assert verdicts[1].since == verdicts[0].window_start


def test_a_window_of_errors_and_no_listeners_is_judged_on_its_errors() -> None:
    # Everyone crashed before heartbeating: the errors are the trials, and the exact test must not divide by 0.
    ensemble = _small_room()
    verdicts = _crash_verdicts(ensemble, 60, [40, 40], listeners=0)
    assert [d.bad for d in verdicts] == [True, True]


def test_a_crowds_heavy_heartbeat_in_one_window_of_three_does_not_make_its_errors_a_spike_in_the_other_two() -> None:
    # A region of 96 listeners plus 3,000 of a surging room, sampled as one heartbeat of weight 3,000 every
    # 30 s; their errors, 1 % of the people a window sees, arrive one by one in every window.
    rng = np.random.default_rng(8)
    ensemble = RoomEnsemble(EnsembleConfig(), scope="region")
    bad = []
    for i in range(300):
        errors = int(rng.poisson(0.01 * (96 + 1_000)))
        window = RoomHealth(scope="region", key="ap-south", window_start=i * 10_000, window_end=(i + 1) * 10_000,
                            listeners=96 + (3_000 if i % 3 == 0 else 0), error_clients=errors,
                            error_clients_by_code={"audio_dropout": errors})
        bad += [d.kind for d in ensemble.observe(window) if d.bad and d.kind != "heartbeat_loss"]
    assert bad == []  # (heartbeats are the audience's to judge: its own tests)
    restored = RoomEnsemble.from_state(json.loads(json.dumps(ensemble.to_state())), EnsembleConfig(), scope="region")
    assert list(restored.recent_listeners) == [3_096.0, 96.0, 96.0]


def test_tiny_room_never_pages_even_when_most_listeners_err() -> None:
    window = RoomHealth(key="tiny", window_start=0, window_end=10_000, listeners=5, error_clients=3,
                        error_clients_by_code={"crash": 3})
    ensemble = RoomEnsemble(EnsembleConfig())
    for start in range(10):
        ensemble.observe(RoomHealth(key="tiny", window_start=start, window_end=start + 1, listeners=5))
    assert not any(d.bad for d in ensemble.observe(window))


def test_slow_degradation_is_caught_by_the_cusum() -> None:
    creep = [Spike(100 + i, 101 + i, code, 0.00004 * i) for i in range(300) for code in ("timeout", "audio_dropout")]
    windows = room_windows(np.random.default_rng(5), [20_000.0] * 400, spikes=creep)
    ensemble = RoomEnsemble(EnsembleConfig())
    flagged = None
    for index, window in enumerate(windows):
        for decision in ensemble.observe(window):
            if decision.kind == "error_ratio" and decision.bad and flagged is None:
                flagged = (index, decision)
    assert flagged is not None and flagged[0] > 100
    cusum = next(e for e in flagged[1].evidence if e.detector == "cusum")
    assert cusum.score > 0


def test_decisions_carry_severity_evidence_and_labels_and_are_emitted_when_good() -> None:
    windows = room_windows(np.random.default_rng(6), [50_000.0] * 60, spikes=[Spike(50, 60, "crash", 0.2)])
    ensemble = RoomEnsemble(EnsembleConfig())
    decisions: list[list[Decision]] = [ensemble.observe(window) for window in windows]
    quiet = {d.kind: d for d in decisions[40]}
    assert {"error_ratio", "volume", "crash", "details_not_available"} <= set(quiet)
    assert all(not d.bad and d.severity == "info" for d in quiet.values())
    crash = next(d for d in decisions[50] if d.kind == "crash")
    assert crash.bad and crash.severity == "critical" and crash.labels == {"region": "eu-west"}
    assert {e.detector for e in crash.evidence} == {"volume_baseline", "error_ratio"}
    ratio = next(e for e in crash.evidence if e.detector == "error_ratio")
    assert ratio.observed > 0.1 and ratio.baseline < 0.01 and 0.5 <= ratio.score <= 1.0


def test_a_window_the_collector_sampled_says_so_in_every_decision_on_it() -> None:
    windows = room_windows(np.random.default_rng(6), [50_000.0] * 60, spikes=[Spike(50, 60, "crash", 0.2)])
    windows[50] = msgspec.structs.replace(windows[50], error_keep=1 / 64)
    ensemble = RoomEnsemble(EnsembleConfig())
    decisions = [ensemble.observe(window) for window in windows[:52]]
    assert {d.error_keep for d in decisions[50]} == {1 / 64}
    assert any(d.bad for d in decisions[50])
    assert {d.error_keep for d in decisions[49] + decisions[51]} == {1.0}


def test_many_quiet_rooms_produce_no_two_consecutive_bad_windows() -> None:
    """The false-alert rate: alerting fires after 2 bad windows in a row; 50 room-hours, none."""
    rng = np.random.default_rng(7)
    for room in range(25):
        size = float(rng.choice([20, 200, 2000, 20_000, 200_000, 700_000]))
        listeners = [size * float(rng.uniform(0.9, 1.1)) for _ in range(720)]
        bad = _bad(room_windows(rng, listeners, key=f"room-{room}", dispersion=float(rng.choice([10, 30]))))
        assert not any(bad[i] & bad[i - 1] for i in range(1, len(bad))), f"room {room} of {size:.0f}"


def test_service_anomaly_pages_and_resolves() -> None:
    ensemble = ServiceEnsemble(EnsembleConfig())
    windows = service_windows(np.random.default_rng(8), 260, incident=range(200, 220))
    decisions = [ensemble.observe(window)[0] for window in windows]
    # A service window spans every cluster: it carries no cluster label (it is no member of one).
    assert all(d.kind == "server_anomaly" and d.labels == {} for d in decisions)
    assert all(d.bad for d in decisions[200:220])
    assert not any(d.bad for d in decisions[60:200]) and not any(d.bad for d in decisions[225:])
    assert "latency_p99_ms" in decisions[205].evidence[0].detail


def test_service_under_more_load_does_not_page() -> None:
    """CPU, connections and a little latency rising with load is not an incident; errors and latency are."""
    ensemble = ServiceEnsemble(EnsembleConfig())
    rng = np.random.default_rng(3)
    decisions = []
    for index, window in enumerate(service_windows(rng, 300)):
        if index >= 200:  # load doubles: CPU pinned, twice the connections, latency +40%
            metrics = dict(window.metrics, cpu=0.95, connections=window.metrics["connections"] * 2.0,
                           latency_p99_ms=window.metrics["latency_p99_ms"] * 1.4)
            window = ServiceHealth(key=window.key, cluster=window.cluster, window_start=window.window_start,
                                   window_end=window.window_end, metrics=metrics)
        decisions.append(ensemble.observe(window)[0])
    assert max(d.evidence[0].score for d in decisions[200:210]) >= 0.5  # the forest does see it
    assert not any(d.bad for d in decisions)
    # ... and it is not a suspect window either: else a one-window blip after it would page at once.
    assert max(d.score for d in decisions[200:]) < LifecyclePolicy().suspect_score


def test_service_errors_a_third_above_normal_page_before_they_double() -> None:
    """A slow degradation's first sign: the error rate 40% up, far beyond its noise, with nothing else moving."""
    ensemble = ServiceEnsemble(EnsembleConfig())
    rng = np.random.default_rng(5)
    decisions = []
    for index, window in enumerate(service_windows(rng, 240)):
        rate = 0.002 * (1.4 if index >= 200 else 1.0) + float(rng.normal(0, 0.0001))
        window = ServiceHealth(key=window.key, cluster=window.cluster, window_start=window.window_start,
                               window_end=window.window_end, metrics=dict(window.metrics, error_rate=rate))
        decisions.append(ensemble.observe(window)[0])
    assert not any(d.bad for d in decisions[60:200])
    assert all(d.bad for d in decisions[200:203])
    assert decisions[200].evidence[0].detail.startswith("error_rate")


def test_cluster_server_window_is_labelled_with_its_cluster() -> None:
    ensemble = ServiceEnsemble(EnsembleConfig())
    window = service_windows(np.random.default_rng(1), 1)[0]
    cluster = ServiceHealth(scope="cluster", key="eu-1", cluster="eu-1", window_start=window.window_start,
                            window_end=window.window_end, metrics=window.metrics)
    assert ensemble.observe(cluster)[0].labels == {"cluster": "eu-1"}


def _service_in_clusters(rng: np.random.Generator, count: int, failing: str, lift: float,
                         from_index: int) -> list[ServiceHealth]:
    """One service in five clusters; ``failing``'s error rate is ``lift`` times normal from ``from_index``."""
    clusters = ("ap-south", "eu-west", "sa-east", "us-east", "us-west")
    per_cluster = {cluster: service_windows(rng, count, key="room-api") for cluster in clusters}
    windows = []
    for index in range(count):
        slices = {}
        for cluster in clusters:
            lifted = lift if cluster == failing and index >= from_index else 1.0
            rate = 0.002 * lifted + float(rng.normal(0, 0.0001))
            slices[cluster] = dict(per_cluster[cluster][index].metrics, error_rate=rate)
        whole = {name: float(np.mean([values[name] for values in slices.values()])) for name in slices[failing]}
        first = per_cluster[failing][index]
        windows.append(ServiceHealth(key="room-api", window_start=first.window_start, window_end=first.window_end,
                                     metrics=whole, clusters=slices))
    return windows


def test_a_service_failing_in_one_cluster_of_five_pages_in_that_clusters_slice() -> None:
    """ap-south's error rate 1.75x normal is 1.15x in the service-wide mean: only its own slice shows it."""
    windows = _service_in_clusters(np.random.default_rng(11), 230, failing="ap-south", lift=1.75, from_index=200)
    sliced, whole_only = ServiceEnsemble(EnsembleConfig()), ServiceEnsemble(EnsembleConfig())
    decisions = [sliced.observe(window)[0] for window in windows]
    unsliced = [whole_only.observe(ServiceHealth(key=w.key, window_start=w.window_start, window_end=w.window_end,
                                                 metrics=w.metrics))[0] for w in windows]
    assert not any(d.bad for d in unsliced)
    assert not any(d.bad for d in decisions[60:200])
    assert all(d.bad for d in decisions[200:205])
    assert decisions[200].labels == {"cluster": "ap-south"}
    strongest = max(decisions[200].evidence, key=lambda e: e.score)
    assert (strongest.detector, strongest.detail[:23]) == ("isolation_forest@ap-south", "in ap-south: error_rate")


def test_cluster_slices_survive_a_restart() -> None:
    windows = _service_in_clusters(np.random.default_rng(12), 230, failing="eu-west", lift=2.0, from_index=215)
    running, restarted = ServiceEnsemble(EnsembleConfig()), ServiceEnsemble(EnsembleConfig())
    for window in windows[:150]:
        running.observe(window)
    restarted = ServiceEnsemble.from_state(json.loads(json.dumps(running.to_state())), EnsembleConfig())
    assert sorted(restarted.slices) == ["ap-south", "eu-west", "sa-east", "us-east", "us-west"]
    for window in windows[150:]:
        assert restarted.observe(window) == running.observe(window)
    assert restarted.observe(windows[-1])[0].labels == {"cluster": "eu-west"}


def test_a_service_state_saved_before_cluster_slices_still_loads() -> None:
    ensemble = ServiceEnsemble(EnsembleConfig())
    for window in service_windows(np.random.default_rng(2), 50):
        ensemble.observe(window)
    state = ensemble.to_state()
    del state["slices"]
    assert ServiceEnsemble.from_state(state, EnsembleConfig()).slices == {}


def test_a_service_keeps_at_most_max_clusters_per_service_slices() -> None:
    """Each slice is a forest in the service's state (one changelog message): the count is bounded."""
    ensemble = ServiceEnsemble(EnsembleConfig(max_clusters_per_service=2))
    window = service_windows(np.random.default_rng(3), 1)[0]
    slices = {name: dict(window.metrics) for name in ("c", "a", "b")}
    ensemble.observe(ServiceHealth(key=window.key, window_start=window.window_start, window_end=window.window_end,
                                   metrics=window.metrics, clusters=slices))
    assert sorted(ensemble.slices) == ["a", "b"]


def _counted(index: int, raw: int, capped: int, sources: int, listeners: int = 480) -> RoomHealth:
    """A window whose ``raw`` distinct crash clients count ``capped`` at most two per source."""
    return RoomHealth(key="room-7", region="eu", window_start=index * 10_000, window_end=(index + 1) * 10_000,
                      listeners=listeners, error_clients=raw, error_clients_by_code={"crash": raw},
                      capped_error_clients=capped, capped_error_clients_by_code={"crash": capped},
                      error_sources=sources)


def test_invented_client_ids_from_one_network_are_a_suspected_forgery_not_an_outage() -> None:
    ensemble = _small_room()
    verdicts = {d.kind: d for d in ensemble.observe(_counted(60, raw=1000, capped=3, sources=2))}
    assert not any(d.bad for kind, d in verdicts.items() if kind != "suspected_forgery")
    forgery = verdicts["suspected_forgery"]
    assert forgery.bad and forgery.severity == "warning" and forgery.labels == {}  # never grouped
    assert "1000 distinct error clients from 2 source network(s)" in forgery.evidence[0].detail
    # The same thousand crashing clients in a thousand networks are an outage.
    genuine = {d.kind: d for d in _small_room().observe(_counted(60, raw=1000, capped=1000, sources=1000))}
    assert genuine["crash"].bad and genuine["crash"].severity == "critical"
    assert "suspected_forgery" not in genuine


def test_a_suspected_forgery_is_judged_until_it_can_resolve_and_survives_a_restart() -> None:
    ensemble = _small_room()
    ensemble.observe(_counted(60, raw=400, capped=2, sources=1))
    restored = RoomEnsemble.from_state(json.loads(json.dumps(ensemble.to_state())), EnsembleConfig())
    later = [[d for d in restored.observe(_counted(61 + i, raw=0, capped=0, sources=0))
              if d.kind == "suspected_forgery"] for i in range(12)]
    assert all(len(found) == 1 and not found[0].bad for found in later[:10])
    assert later[10:] == [[], []]  # nothing left to resolve: no decision at all
    # Windows published before sources were counted are judged on their error clients, as before.
    assert RoomEnsemble(EnsembleConfig()).observe(_crashes(0, 3))[0].evidence[0].observed == 3


def test_bands_cover_every_evidence_of_a_warm_room_and_a_spike_lies_above_its_band() -> None:
    windows = room_windows(np.random.default_rng(6), [50_000.0] * 60, spikes=[Spike(50, 60, "crash", 0.2)])
    ensemble = RoomEnsemble(EnsembleConfig())
    assert all(detector == "cusum" for _, detector in ensemble.bands(windows[0].window_start))  # nothing learned
    for window in windows[:50]:
        ensemble.observe(window)
    spike = windows[50]
    bands = ensemble.bands(spike.window_start)
    before = json.dumps(ensemble.to_state())
    assert ensemble.bands(spike.window_start) == bands and json.dumps(ensemble.to_state()) == before
    decisions = ensemble.observe(spike)
    assert {(d.kind, e.detector) for d in decisions for e in d.evidence} <= set(bands)
    crash = next(d for d in decisions if d.kind == "crash")
    ratio = next(e for e in crash.evidence if e.detector == "error_ratio")
    assert crash.bad and ratio.observed > bands[("crash", "error_ratio")][1]
    assert bands[("crash", "volume_baseline")][1] < next(e for e in crash.evidence
                                                          if e.detector == "volume_baseline").observed


def test_a_service_reports_no_bands() -> None:
    ensemble = ServiceEnsemble(EnsembleConfig())
    for window in service_windows(np.random.default_rng(8), 80):
        ensemble.observe(window)
    assert ensemble.bands(0) == {}


def test_the_cusum_leaves_windows_expecting_under_two_error_clients_alone() -> None:
    config = EnsembleConfig()
    ensemble = RoomEnsemble(config, scope="app_version")
    for i in range(100):  # 70 listeners at the prior ratio of 1%: 0.7 error clients expected a window
        ensemble.observe(RoomHealth(scope="app_version", key="7.39.1", window_start=i * 10_000,
                                    window_end=(i + 1) * 10_000, listeners=70.0, error_clients=1 if i % 3 == 0 else 0,
                                    error_clients_by_code={"crash": 1} if i % 3 == 0 else {}))
    assert ensemble.cusum.n == 0 and not ensemble.cusum.ready
    big = RoomEnsemble(config, scope="app_version")
    for i in range(100):  # 700 listeners: 7 expected, the CUSUM learns
        big.observe(RoomHealth(scope="app_version", key="7.39.1", window_start=i * 10_000,
                               window_end=(i + 1) * 10_000, listeners=700.0, error_clients=7,
                               error_clients_by_code={"crash": 7}))
    assert big.cusum.n == 100
