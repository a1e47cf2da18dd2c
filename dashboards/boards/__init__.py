"""The outagewatch boards, each a module with ``UID`` and ``build(window_seconds)``."""

from __future__ import annotations

from types import ModuleType

from dashboards.boards import exec_overview, incidents, room, services

BOARDS: tuple[ModuleType, ...] = (exec_overview, room, services, incidents)
