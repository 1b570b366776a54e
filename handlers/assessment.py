"""Assessment (考核 / 监督评价): how departments, loops and areas handle their cases.

Pure: the API reads the figures of each case from the read model and asks for the table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from enum import StrEnum
from statistics import median
from typing import NamedTuple

from pydantic import BaseModel, Field


class Grouping(StrEnum):
    DEPARTMENT = "department"  # the lead department the case is with now
    LOOP = "loop"
    AREA = "area"  # the handling area


class CaseFigures(NamedTuple):
    """What assessment needs of one case (a row of the read model's): the minutes from its
    opening to its acceptance and to its resolution, None while it has none."""

    group: str
    minutes_to_accept: float | None
    minutes_to_resolve: float | None
    accept_missed: bool
    resolve_missed: bool
    returns: int
    escalations: int
    reopens: int


class Assessment(BaseModel):
    """One row of the assessment table. Rates are fractions in [0, 1]; None where nothing
    was there to measure (no case accepted, say)."""

    group: str = Field(examples=["510104001.urban_management"])
    received: int = Field(description="cases opened in the period", examples=[42])
    accepted: int = Field(examples=[40])
    accepted_on_time: float | None = Field(
        description="share of accepted cases accepted before their deadline", examples=[0.95]
    )
    resolved: int = Field(examples=[31])
    resolved_on_time: float | None = Field(
        description="share of resolved cases resolved before their deadline", examples=[0.9]
    )
    median_minutes_to_accept: float | None = Field(examples=[12.5])
    median_minutes_to_resolve: float | None = Field(examples=[240.0])
    returns: int = Field(description="times cases were returned (退单)", examples=[2])
    escalations: int = Field(examples=[3])
    reopen_rate: float | None = Field(
        description="share of cases ever resolved that were reopened after callback",
        examples=[0.03],
    )
    resolution_rate: float | None = Field(
        description="share of received cases resolved", examples=[0.74]
    )


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _median(values: list[float]) -> float | None:
    return median(values) if values else None


def assess(cases: Iterable[CaseFigures]) -> list[Assessment]:
    """One row per group, in group order."""
    groups: dict[str, list[CaseFigures]] = defaultdict(list)
    for case in cases:
        groups[case.group].append(case)
    table = []
    for group, members in sorted(groups.items()):
        to_accept = [c.minutes_to_accept for c in members if c.minutes_to_accept is not None]
        resolved = [c for c in members if c.minutes_to_resolve is not None]
        to_resolve = [c.minutes_to_resolve for c in resolved if c.minutes_to_resolve is not None]
        accepted_on_time = sum(
            not c.accept_missed for c in members if c.minutes_to_accept is not None
        )
        reopened = sum(c.reopens > 0 for c in members)  # a reopened case was resolved once
        ever_resolved = len(resolved) + sum(
            c.reopens > 0 and c.minutes_to_resolve is None for c in members
        )
        table.append(
            Assessment(
                group=group,
                received=len(members),
                accepted=len(to_accept),
                accepted_on_time=_share(accepted_on_time, len(to_accept)),
                resolved=len(resolved),
                resolved_on_time=_share(sum(not c.resolve_missed for c in resolved), len(resolved)),
                median_minutes_to_accept=_median(to_accept),
                median_minutes_to_resolve=_median(to_resolve),
                returns=sum(c.returns for c in members),
                escalations=sum(c.escalations for c in members),
                reopen_rate=_share(reopened, ever_resolved),
                resolution_rate=_share(len(resolved), len(members)),
            )
        )
    return table
