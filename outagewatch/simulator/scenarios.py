"""Scenarios: what happens to the world, when, and what the ground truth says.

A scenario is data, not code: special rooms with an audience curve, and
effects (extra errors, failed joins, slower audio, strained servers) on a
selection of listeners, each with an intensity curve over event time. The
engine applies them; ``labels`` reads the same curves, so the labels cannot
drift from what was injected.

Times are seconds since the scenario start. Every scenario begins with
``warmup_s`` of normal traffic so online detectors can learn a baseline.

>>> sorted(SCENARIOS)[:3]
['app_version_crash', 'benign_surge', 'launch_night']
>>> launch = SCENARIOS["launch_night"]
>>> launch.rooms["launch-1"].audience_at(WARMUP_S + 14 * 60)
700000.0
>>> [effect.labels[0].scope for effect in launch.effects if effect.labels]
['room', 'cluster', 'global']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

# 45 minutes of normal traffic before anything happens: long enough for a
# detector that keeps a 30-minute baseline of 10-second windows.
WARMUP_S = 45 * 60

Curve = tuple[tuple[float, float], ...]


def curve_at(curve: Curve, t: float | np.ndarray) -> float | np.ndarray:
    """Piecewise-linear value of ``curve`` at ``t``: 0 before it, its last value after it.

    >>> float(curve_at(((10, 0.0), (20, 1.0)), 15)), float(curve_at(((10, 0.0), (20, 1.0)), 99))
    (0.5, 1.0)
    """
    xs = [x for x, _ in curve]
    ys = [y for _, y in curve]
    return np.interp(t, xs, ys, left=0.0, right=ys[-1])


@dataclass(frozen=True)
class Selector:
    """Which listeners an effect touches; every given field must match.

    ``region`` is the listener's region (its audio edge); ``cluster`` is where
    the room is hosted (its room-api servers). Empty = any. ``fraction`` keeps
    that share of the matching listeners, chosen by a hash of the listener and
    ``salt``: the same listeners for as long as they stay, and the same ones
    for two effects with the same fraction and salt.
    """

    rooms: tuple[str, ...] = ()
    exclude_rooms: tuple[str, ...] = ()
    cluster: str = ""
    region: str = ""
    platform: str = ""
    app_version: str = ""
    fraction: float = 1.0
    salt: int = 0


@dataclass(frozen=True)
class Label:
    """A ground-truth incident an effect causes (the labels format of docs/design.md)."""

    scope: str
    key: str
    kind: str


@dataclass(frozen=True)
class Strain:
    """A service (in one cluster, or ``*`` for all) made slow and failing."""

    service: str
    cluster: str
    level: float = 1.0


@dataclass(frozen=True)
class Effect:
    """Something going wrong for the selected listeners.

    Rates are extra error reports per listener per second at intensity 1 (a
    listener heartbeats every 30 s, so 0.01/s is ~30 errors per 100
    heartbeats). ``join_failure`` is the fraction of join attempts that fail.
    ``spam_per_s`` > 0 makes this a single misbehaving client instead, under
    ``spam_ids`` client ids it invents (all from one network).
    The labelled interval is where the intensity is above 0.

    ``silence`` makes the selected listeners send nothing (the intensity is the
    share of the selection that is silent): crashed apps, or a network that
    drops their reports. A listener going silent first sends ``final_code`` (if
    set); one coming back sends a join if ``rejoin``. With ``backfill``, what a
    silent listener would have sent (but its heartbeats) arrives after the
    silence ends, as a client's retry queue delivers it.
    ``repeats`` more reports of each error follow it from the same client
    within ``repeat_within_ms`` (an app retrying and failing again).
    """

    name: str
    selector: Selector
    intensity: Curve
    error_rates: Mapping[str, float] = field(default_factory=dict)
    join_failure: float = 0.0
    latency_factor: float = 1.0
    strain: tuple[Strain, ...] = ()
    labels: tuple[Label, ...] = ()
    spam_per_s: float = 0.0
    spam_code: str = "details_not_available"
    spam_ids: int = 1
    silence: bool = False
    final_code: str = ""
    rejoin: bool = False
    backfill: bool = False
    repeats: int = 0
    repeat_within_ms: int = 10_000

    def intensity_at(self, t: float) -> float:
        return float(curve_at(self.intensity, t))


@dataclass(frozen=True)
class SpecialRoom:
    """A room with a scripted audience (full-size listeners), hosted in ``cluster``."""

    cluster: str
    audience: Curve
    main_region_share: float = 0.6

    def audience_at(self, t: float) -> float:
        return float(curve_at(self.audience, t))


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    duration_s: int
    rooms_default: int = 200
    warmup_s: int = WARMUP_S
    rooms: Mapping[str, SpecialRoom] = field(default_factory=dict)
    effects: tuple[Effect, ...] = ()

    @property
    def should_alert(self) -> bool:
        return any(effect.labels for effect in self.effects)


def _plateau(start: float, ramp_up: float, hold_until: float, ramp_down: float) -> Curve:
    return ((start, 0.0), (start + ramp_up, 1.0), (hold_until, 1.0), (hold_until + ramp_down, 0.0))


def _launch_night() -> Scenario:
    t0 = WARMUP_S
    # 0 -> 700k listeners at 50k/min takes 14 minutes; the room-api of the
    # hosting cluster saturates at 450k (minute 9). The room is closed at
    # minute 20 and the host re-opens in another cluster at minute 24.
    peak, capacity, per_min = 700_000.0, 450_000.0, 50_000.0
    at_peak = t0 + peak / per_min * 60
    saturated = t0 + capacity / per_min * 60
    closed = t0 + 20 * 60
    reopened = t0 + 24 * 60
    rooms = {
        "launch-1": SpecialRoom("us-east", ((t0, 0.0), (at_peak, peak), (closed, peak), (closed + 1, 0.0))),
        "launch-2": SpecialRoom("us-west", ((reopened, 0.0), (reopened + 12 * 60, 600_000.0))),
    }
    strain_room = ((saturated, 0.0), (at_peak, 1.0), (closed, 1.0), (closed + 1, 0.0))
    effects = (
        Effect(
            "launch room overloaded", Selector(rooms=("launch-1",)), strain_room,
            error_rates={"details_not_available": 0.012, "audio_garbled": 0.004, "timeout": 0.003, "audio_dropout": 0.002},
            join_failure=0.6, latency_factor=6.0,
            strain=(Strain("room-api", "us-east", 1.0), Strain("audio-edge", "us-east", 0.8)),
            labels=(Label("room", "launch-1", "details_not_available"), Label("service", "room-api", "error_rate")),
        ),
        Effect(
            "android client crashes in the launch room", Selector(rooms=("launch-1",), platform="android"),
            ((saturated + 120, 0.0), (at_peak, 1.0), (closed, 1.0), (closed + 1, 0.0)),
            error_rates={"crash": 0.006},
        ),
        Effect(
            # The cluster's room-api saturates with the launch room: every room
            # it hosts degrades from then on, less at first.
            "room-api saturation spills over the cluster", Selector(cluster="us-east", exclude_rooms=("launch-1",)),
            ((saturated, 0.0), (at_peak, 1.0), (closed, 1.0), (closed + 120, 0.0)),
            error_rates={"details_not_available": 0.004, "timeout": 0.001},
            join_failure=0.3, latency_factor=3.0,
            labels=(Label("cluster", "us-east", "details_not_available"),),
        ),
        Effect(
            "auth overloaded: logged-out storm everywhere", Selector(),
            ((saturated + 180, 0.0), (at_peak + 30, 1.0), (closed - 60, 1.0), (closed + 60, 0.0)),
            error_rates={"logged_out": 0.003},
            strain=(Strain("auth", "*", 1.0),),
            labels=(Label("global", "all", "logged_out"), Label("service", "auth", "error_rate")),
        ),
    )
    return Scenario(
        "launch_night",
        "a 100M-follower host's room ramps 0->700k at 50k/min, saturates its cluster (details not available, "
        "failed joins, android crashes, logged-out storm, garbled audio), is closed, and re-opens in another cluster",
        duration_s=t0 + 45 * 60, rooms=rooms, effects=effects,
    )


def _room_failure() -> Scenario:
    t0 = WARMUP_S
    effect = Effect(
        "one room's audio server fails", Selector(rooms=("room-3",)), _plateau(t0, 60, t0 + 600, 60),
        error_rates={"details_not_available": 0.006, "audio_dropout": 0.005},
        join_failure=0.5, latency_factor=4.0,
        labels=(Label("room", "room-3", "details_not_available"),),
    )
    return Scenario("room_failure", "one popular room fails alone for 10 minutes; every other room is healthy",
                    duration_s=t0 + 30 * 60, effects=(effect,))


def _regional_outage() -> Scenario:
    t0 = WARMUP_S
    effect = Effect(
        "eu-west audio edge down", Selector(region="eu-west"), _plateau(t0, 30, t0 + 900, 60),
        error_rates={"audio_dropout": 0.008, "timeout": 0.005, "details_not_available": 0.002},
        join_failure=0.7, latency_factor=5.0,
        strain=(Strain("audio-edge", "eu-west", 1.0), Strain("room-api", "eu-west", 0.4)),
        labels=(Label("cluster", "eu-west", "audio_dropout"), Label("service", "audio-edge", "error_rate")),
    )
    return Scenario("regional_outage", "the eu-west audio edge fails for 15 minutes: every listener in eu-west, in every room",
                    duration_s=t0 + 30 * 60, effects=(effect,))


def _app_version_crash() -> Scenario:
    t0 = WARMUP_S
    effect = Effect(
        "ios 7.41.0 crashes", Selector(platform="ios", app_version="7.41.0"), _plateau(t0, 120, t0 + 1200, 60),
        error_rates={"crash": 0.004},
        labels=(Label("app_version", "7.41.0", "crash"),),
    )
    return Scenario("app_version_crash", "crashes spike on ios 7.41.0 only, in every room, for 20 minutes",
                    duration_s=t0 + 35 * 60, effects=(effect,))


def _slow_degradation() -> Scenario:
    t0 = WARMUP_S
    effect = Effect(
        "ap-south room-api slowly degrades", Selector(cluster="ap-south"),
        ((t0, 0.0), (t0 + 1800, 1.0), (t0 + 2400, 1.0), (t0 + 2700, 0.0)),
        error_rates={"timeout": 0.003, "details_not_available": 0.002},
        join_failure=0.2, latency_factor=4.0,
        strain=(Strain("room-api", "ap-south", 1.0),),
        # Labelled from the first extra timeout: how late a detector notices
        # a slow degradation is exactly what this scenario measures.
        labels=(Label("cluster", "ap-south", "timeout"),),
    )
    return Scenario("slow_degradation", "rooms hosted in ap-south degrade over 30 minutes (timeouts, slower audio), then recover",
                    duration_s=t0 + 50 * 60, effects=(effect,))


def _benign_surge() -> Scenario:
    t0 = WARMUP_S
    rooms = {"surge-1": SpecialRoom("us-west", ((t0, 0.0), (t0 + 8 * 60, 300_000.0)))}
    return Scenario("benign_surge", "a room surges 0->300k listeners in 8 minutes with a normal error ratio: must NOT alert",
                    duration_s=t0 + 30 * 60, rooms=rooms)


def _spammer() -> Scenario:
    t0 = WARMUP_S
    effect = Effect(
        "one broken client spams error reports", Selector(rooms=("room-5",)), _plateau(t0, 1, t0 + 1200, 1),
        spam_per_s=5.0,
    )
    return Scenario("spammer", "one client in room-5 sends 5 error reports a second for 20 minutes: must NOT alert",
                    duration_s=t0 + 30 * 60, effects=(effect,))


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        _launch_night(), _room_failure(), _regional_outage(), _app_version_crash(),
        _slow_degradation(), _benign_surge(), _spammer(),
    )
}


def get_scenario(name: str | Scenario) -> Scenario:
    if isinstance(name, Scenario):
        return name
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(sorted(SCENARIOS))}") from None
