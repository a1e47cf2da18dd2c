"""Detectors per key, created lazily, bounded, saved and restored as a whole.

``RoomDetectors`` is what a worker holds: ``observe(window)`` routes a
``RoomHealth`` or ``ServiceHealth`` window to the ensemble of its
``(scope, key)`` (created on first sight) and returns its decisions. At most
``config.max_keys`` keys are kept; the key seen least recently is forgotten
first (a room that ended hours ago). State is plain JSON-safe dicts, whole
(``to_state``/``from_state``) or per key (``key_state``/``restore_key``, for
a Faust table keyed like the topic). ``bands(window)`` gives the alarm bands
the window's key judges it against, for the dashboards' score rows.

>>> from core.schemas import RoomHealth
>>> registry = RoomDetectors(EnsembleConfig(max_keys=2))
>>> for room in ("a", "b", "c"):
...     decisions = registry.observe(RoomHealth(key=room, window_start=0, window_end=10_000, listeners=100))
>>> [d.kind for d in decisions], sorted(registry.key_ids())
(['error_ratio', 'volume', 'heartbeat_loss'], [('room', 'b'), ('room', 'c')])
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Self

from core.schemas import Decision, RoomHealth, ServiceHealth
from detectors.ensemble import Bands, EnsembleConfig, RoomEnsemble, ServiceEnsemble

KeyId = tuple[str, str]
# 2: room keys carry their expected audience. A version 1 state restores, each room's audience warming up afresh.
STATE_VERSION = 2
READABLE_VERSIONS = (1, 2)


class RoomDetectors:
    def __init__(self, config: EnsembleConfig | None = None) -> None:
        self.config = config or EnsembleConfig()
        self._keys: OrderedDict[KeyId, RoomEnsemble | ServiceEnsemble] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def key_ids(self) -> list[KeyId]:
        return list(self._keys)

    def bands(self, window: RoomHealth | ServiceHealth) -> Bands:
        """The bands ``observe(window)`` will judge against (``RoomEnsemble.bands``); none for a key not held.

        Reading them changes nothing: not the key's detectors, not which key is forgotten first.
        """
        ensemble = self._keys.get((window.scope, window.key))
        return ensemble.bands(window.window_start) if ensemble is not None else {}

    def observe(self, window: RoomHealth | ServiceHealth) -> list[Decision]:
        """Judge one closed window, then learn from it."""
        key_id = (window.scope, window.key)
        ensemble = self._keys.get(key_id)
        if ensemble is None:
            ensemble = (RoomEnsemble(self.config, window.scope) if isinstance(window, RoomHealth)
                        else ServiceEnsemble(self.config))
            self._keys[key_id] = ensemble
            while len(self._keys) > self.config.max_keys:
                self._keys.popitem(last=False)
        else:
            self._keys.move_to_end(key_id)
        return ensemble.observe(window)  # type: ignore[arg-type]

    def observe_dark(self, window: RoomHealth) -> list[Decision]:
        """Judge a window of a held ``RoomHealth`` key in which nothing arrived (``RoomEnsemble.observe_dark``).

        A key not held (forgotten, or a service) has no audience to judge: no decisions.
        """
        key_id = (window.scope, window.key)
        ensemble = self._keys.get(key_id)
        if not isinstance(ensemble, RoomEnsemble):
            return []
        self._keys.move_to_end(key_id)
        return ensemble.observe_dark(window)

    def key_state(self, scope: str, key: str) -> dict[str, Any] | None:
        ensemble = self._keys.get((scope, key))
        if ensemble is None:
            return None
        kind = "room" if isinstance(ensemble, RoomEnsemble) else "service"
        return {"kind": kind, "state": ensemble.to_state()}

    def restore_key(self, scope: str, key: str, state: dict[str, Any]) -> None:
        self._keys[(scope, key)] = (RoomEnsemble.from_state(state["state"], self.config, scope)
                                    if state["kind"] == "room" else ServiceEnsemble.from_state(state["state"],
                                                                                                self.config))
        self._keys.move_to_end((scope, key))
        while len(self._keys) > self.config.max_keys:
            self._keys.popitem(last=False)

    def to_state(self) -> dict[str, Any]:
        """Every key, least recently seen first (so a restore keeps the eviction order)."""
        entries = []
        for (scope, key) in self._keys:
            entries.append({"scope": scope, "key": key, **(self.key_state(scope, key) or {})})
        return {"version": STATE_VERSION, "keys": entries}

    @classmethod
    def from_state(cls, state: dict[str, Any], config: EnsembleConfig | None = None) -> Self:
        if state.get("version") not in READABLE_VERSIONS:
            raise ValueError(f"detector state version {state.get('version')!r} is not one of {READABLE_VERSIONS}")
        registry = cls(config)
        for entry in state["keys"]:
            registry.restore_key(entry["scope"], entry["key"], entry)
        return registry
