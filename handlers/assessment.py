"""Assessment (考核 / 监督评价): how departments, loops and areas handle their cases.

Pure: the API reads the figures of each case from the read model and asks for the table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from statistics import median

from pydantic import BaseModel, ConfigDict, Field


class Grouping(StrEnum):
    DEPARTMENT = "department"  # the lead department the case is with now
    LOOP = "loop"
    AREA = "area"  # the handling area


class CaseFigures(BaseModel):
    """What assessment needs of one case."""

    model_config = ConfigDict(frozen=True)

    group: str
    opened_at: datetime
    accepted_at: datetime | None
    resolved_at: datetime | None
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


def _median_minutes(starts_and_ends: list[tuple[datetime, datetime]]) -> float | None:
    if not starts_and_ends:
        return None
    return median((end - start).total_seconds() / 60 for start, end in starts_and_ends)


def assess(cases: Iterable[CaseFigures]) -> list[Assessment]:
    """One row per group, in group order."""
    groups: dict[str, list[CaseFigures]] = defaultdict(list)
    for case in cases:
        groups[case.group].append(case)
    table = []
    for group, members in sorted(groups.items()):
        accepted = [c for c in members if c.accepted_at is not None]
        resolved = [c for c in members if c.resolved_at is not None]
        reopened = sum(c.reopens > 0 for c in members)  # a reopened case was resolved once
        ever_resolved = len(resolved) + sum(
            c.reopens > 0 and c.resolved_at is None for c in members
        )
        table.append(
            Assessment(
                group=group,
                received=len(members),
                accepted=len(accepted),
                accepted_on_time=_share(sum(not c.accept_missed for c in accepted), len(accepted)),
                resolved=len(resolved),
                resolved_on_time=_share(sum(not c.resolve_missed for c in resolved), len(resolved)),
                median_minutes_to_accept=_median_minutes(
                    [(c.opened_at, c.accepted_at) for c in accepted if c.accepted_at]
                ),
                median_minutes_to_resolve=_median_minutes(
                    [(c.opened_at, c.resolved_at) for c in resolved if c.resolved_at]
                ),
                returns=sum(c.returns for c in members),
                escalations=sum(c.escalations for c in members),
                reopen_rate=_share(reopened, ever_resolved),
                resolution_rate=_share(len(resolved), len(members)),
            )
        )
    return table
