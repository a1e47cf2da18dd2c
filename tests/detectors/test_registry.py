from __future__ import annotations

import json

import numpy as np
import pytest

from core.schemas import RoomHealth, encode
from detectors.ensemble import EnsembleConfig, RoomEnsemble
from detectors.registry import RoomDetectors
from outagewatch.simulator.synthetic import Spike, room_windows, service_windows


def _stream() -> list:
    rng = np.random.default_rng(0)
    rooms = [room_windows(rng, [3000.0] * 120, key=f"room-{n}", spikes=[Spike(90, 100, "crash", 0.05)]) for n in range(3)]
    services = [service_windows(rng, 120, key="audio-edge")]
    return [windows[i] for i in range(120) for windows in rooms + services]


def test_restored_registry_decides_exactly_like_the_original() -> None:
    stream = _stream()
    original = RoomDetectors()
    for window in stream[:200]:
        original.observe(window)
    restored = RoomDetectors.from_state(json.loads(json.dumps(original.to_state())))
    assert sorted(restored.key_ids()) == sorted(original.key_ids())
    for window in stream[200:]:
        assert encode(restored.observe(window)) == encode(original.observe(window))


def test_per_key_state_for_a_table_keyed_like_the_topic() -> None:
    stream = _stream()
    original = RoomDetectors()
    for window in stream[:200]:
        original.observe(window)
    restored = RoomDetectors()
    for scope, key in original.key_ids():
        restored.restore_key(scope, key, json.loads(json.dumps(original.key_state(scope, key))))
    assert original.key_state("room", "nope") is None
    for window in stream[200:]:
        assert encode(restored.observe(window)) == encode(original.observe(window))


def test_keys_are_bounded_least_recently_seen_first_out() -> None:
    registry = RoomDetectors(EnsembleConfig(max_keys=3))
    for key in ("a", "b", "c", "a", "d"):
        registry.observe(RoomHealth(key=key, window_start=0, window_end=10_000))
    assert registry.key_ids() == [("room", "c"), ("room", "a"), ("room", "d")]
    restored = RoomDetectors.from_state(registry.to_state(), EnsembleConfig(max_keys=3))
    restored.observe(RoomHealth(key="e", window_start=0, window_end=10_000))
    assert restored.key_ids() == [("room", "a"), ("room", "d"), ("room", "e")]


def test_scopes_keep_separate_detectors_and_a_bad_state_version_is_refused() -> None:
    registry = RoomDetectors()
    registry.observe(RoomHealth(scope="room", key="eu-west", window_start=0, window_end=1))
    registry.observe(RoomHealth(scope="region", key="eu-west", window_start=0, window_end=1))
    assert len(registry) == 2
    with pytest.raises(ValueError, match="version"):
        RoomDetectors.from_state({"version": 99, "keys": []})


def test_bands_are_the_keys_ensemble_bands_and_reading_them_changes_nothing() -> None:
    stream = _stream()
    registry = RoomDetectors()
    for window in stream[:200]:
        registry.observe(window)
    room = next(w for w in stream[200:] if w.scope == "room" and w.key == "room-0")
    order, state = registry.key_ids(), json.dumps(registry.to_state())
    bands = registry.bands(room)
    assert registry.key_ids() == order and json.dumps(registry.to_state()) == state  # no learning, no LRU move
    kept = registry.key_state("room", "room-0")
    assert kept is not None
    assert bands == RoomEnsemble.from_state(kept["state"], registry.config).bands(room.window_start)
    assert ("error_ratio", "error_ratio") in bands
    assert registry.bands(RoomHealth(key="never-seen", window_start=0, window_end=10_000)) == {}
    assert ("room", "room-0") in registry and ("room", "never-seen") not in registry
