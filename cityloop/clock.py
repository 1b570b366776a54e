"""The wall clock. What decides is handed a moment or a clock (the API and its tokens, the
projector's lag), so that tests set time; the worker's own clock is its records' timestamps
(streams/worker.py), the wall clock only for its ticks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""The current moment, timezone-aware."""


def wall_clock() -> datetime:
    return datetime.now(UTC)
