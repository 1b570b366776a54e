"""When each record of a replay is due: keep the recorded spacing X times faster, a fixed
rate, or as fast as possible (pure: offsets in seconds from the replay's start)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Pacing:
    speed: float | None = None
    """Keep the recorded spacing, this many times faster."""
    rate: float | None = None
    """Events per second, evenly spaced."""

    def __post_init__(self) -> None:
        if self.speed is not None and self.rate is not None:
            raise ValueError("choose one of speed and rate (or neither: as fast as possible)")
        if (self.speed is not None and self.speed <= 0) or (
            self.rate is not None and self.rate <= 0
        ):
            raise ValueError("speed and rate must be positive")

    @property
    def unthrottled(self) -> bool:
        return self.speed is None and self.rate is None

    def describe(self) -> str:
        if self.speed is not None:
            return f"{self.speed:g}x recorded speed"
        if self.rate is not None:
            return f"{self.rate:g} events/s"
        return "as fast as possible"


def due_offsets(timestamps_ms: Sequence[int | None], pacing: Pacing) -> list[float]:
    """Seconds after the start at which each record is due. Records without a timestamp keep
    the previous one's; a clock that went backwards sends at once (order is the file's)."""
    count = len(timestamps_ms)
    if pacing.rate is not None:
        return [index / pacing.rate for index in range(count)]
    if pacing.speed is None:
        return [0.0] * count
    offsets: list[float] = []
    first: int | None = None
    latest = 0.0
    for stamp in timestamps_ms:
        if stamp is not None:
            if first is None:
                first = stamp
            latest = max(latest, (stamp - first) / 1000.0 / pacing.speed)
        offsets.append(latest)
    return offsets


def percentile(sorted_values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of already sorted values (0 when there are none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), math.ceil(share * len(sorted_values))))
    return float(sorted_values[rank - 1])
