"""The worker's garbage collection (streams/garbage.py): the oldest generation waits for the full
collection on the clock, and young cycles are still collected as they come."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from streams.garbage import collect_everything, leave_the_oldest_generation


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def an_old_dead_cycle() -> weakref.ref[Node]:
    """A reference cycle that lived through the young collections, then died."""
    first, second = Node(), Node()
    first.other, second.other = second, first
    gc.collect(1)
    gc.collect(1)  # survived twice: in the oldest generation now
    return weakref.ref(first)


def work_that_ages_objects() -> None:
    """What a busy worker does: many objects that live long enough to grow old."""
    kept = [[number] for number in range(600_000)]
    del kept


@pytest.fixture
def thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    gc.collect()
    yield
    gc.set_threshold(*before)


def test_by_default_a_busy_process_collects_the_oldest_generation(thresholds: None) -> None:
    # the control: without the worker's policy, the same work collects the old cycle
    dead = an_old_dead_cycle()
    work_that_ages_objects()
    assert dead() is None


def test_the_oldest_generation_waits_for_the_full_collection(thresholds: None) -> None:
    leave_the_oldest_generation()
    dead = an_old_dead_cycle()
    work_that_ages_objects()
    assert dead() is not None  # no collection by count walked the old objects
    assert collect_everything() >= 0
    assert dead() is None


def test_young_cycles_are_still_collected_as_they_come(thresholds: None) -> None:
    leave_the_oldest_generation()
    first, second = Node(), Node()
    first.other, second.other = second, first
    dead = weakref.ref(first)
    del first, second
    kept = [Node() for _ in range(2_000)]  # enough new objects for a young collection
    assert dead() is None
    del kept
