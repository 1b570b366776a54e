"""The worker process's event loop: uvloop where it is installed.

Faust's consumer hands every record through several callbacks, futures and tasks of the event
loop, and the producer makes a future per record: about a fifth of the worker's CPU was the loop
itself. On uvloop the worker spent 7-12% less CPU per event (`bench/bench_worker.py`, three
alternating pairs; docs/benchmarks.md). uvloop does not build on Windows, where the worker keeps
asyncio's loop."""

from __future__ import annotations

import asyncio


def use_the_fastest_loop() -> bool:
    """Make the loops this process creates from now on uvloop's (Faust's, and its consumer
    thread's); False when uvloop is not installed."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True
