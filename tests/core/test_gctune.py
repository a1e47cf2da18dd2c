"""The hot-path processes' garbage-collector settings."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from core import gctune


@pytest.fixture
def restored_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


def test_young_collections_become_rarer_and_start_up_objects_are_frozen(restored_gc: None) -> None:
    middle, old = gc.get_threshold()[1:]
    assert gctune.for_throughput(young_threshold=12_345) == (12_345, middle, old)
    assert gc.get_freeze_count() > 0


def test_cycles_are_still_collected_without_being_asked(restored_gc: None) -> None:
    import weakref

    gctune.for_throughput(young_threshold=1_000)

    class Node:
        pass

    node = Node()
    node.self = node  # type: ignore[attr-defined]
    alive = weakref.ref(node)
    del node
    # No gc.collect(): allocating past the young threshold is what collects it.
    garbage = [[] for _ in range(5_000)]
    assert alive() is None
    assert len(garbage) == 5_000
