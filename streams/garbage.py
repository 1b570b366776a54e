"""The worker's garbage collection: the oldest generation is collected on a clock, not by count.

A worker's case books are hundreds of thousands of long-lived objects (about eleven tracked
objects per case) and hold no reference cycle: refcounting frees what a book lets go of. The
cyclic collector walks them all the same in every collection of its oldest generation, which
by default comes every few thousand decisions: at 30,000 open cases each one stopped the event
loop for 300–400 ms and found next to nothing (`bench/bench_snapshot.py`).

So the worker process leaves the oldest generation out of the automatic collections
(`leave_the_oldest_generation`): young objects are still collected as they come, which frees
the cycles a worker makes (they die young: a request, an exception), and an object that
survives them is walked only by a full collection, which the worker runs on a timer
(`collect_everything`, every `CITYLOOP_FULL_COLLECTION_INTERVAL_S`, an hour by default). One
long pause that often, in place of one every few thousand decisions; what a cycle that lived
long and then died holds waits for it at most that long.
"""

from __future__ import annotations

import gc
import time

NEVER = 1 << 30
"""A count of young collections the oldest generation's automatic collection waits for."""


def leave_the_oldest_generation() -> None:
    """For this process: collect the young generations as before, the oldest never by count.
    Call once, where the process starts (it is the process's policy, not a module's)."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, NEVER)


def collect_everything() -> float:
    """A full collection; returns the seconds it took (the event loop waits for them)."""
    started = time.perf_counter()
    gc.collect()
    return time.perf_counter() - started
