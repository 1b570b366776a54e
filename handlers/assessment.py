"""Assessment (考核 / 监督评价): how departments, loops and areas handle their cases.

Pure: the API reads the figures of each case from the read model and asks for the table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from enum import StrEnum
from statistics import median
from typing import Any, NamedTuple

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


# --- the dispatch desk's figures (派单考核) --------------------------------------------------


class DeskGrouping(StrEnum):
    CATEGORY = "category"  # the category a case was dispatched (or returned) as
    DEPARTMENT = "department"  # the department a case was dispatched to (or returned by)
    DESK = "desk"  # the 12345 centre whose desk held it


class DeskStep(NamedTuple):
    """One step of a case that the desk's figures count, read from its case events in order:
    `kind` is the event type; `reason` the dispatch's or return's; `group_*` what it is
    counted under."""

    case_id: str
    kind: str
    reason: str
    category: str
    department: str
    desk: str
    minutes_waited: float | None = None
    """For a dispatch from the desk: minutes since the case was sent there."""
    on_time: bool | None = None
    """For a dispatch from the desk: before its dispatch deadline."""


class DeskAssessment(BaseModel):
    """One row of the desk's table. The mis-dispatch rate is returns as not the department's
    matter (退单: 非本单位职责) over the dispatches of the group."""

    group: str = Field(examples=["wage_arrears"])
    sent_to_desk: int = Field(description="times cases went to the desk", examples=[12])
    dispatched_given: int = Field(
        description="dispatched on the sender's own category", examples=[30]
    )
    dispatched_auto: int = Field(
        description="dispatched on the classifier's category", examples=[41]
    )
    dispatched_by_hand: int = Field(description="dispatched by a dispatcher", examples=[11])
    redispatched: int = Field(
        description="dispatched again after a return as not ours, or reclassified", examples=[3]
    )
    not_ours_returns: int = Field(examples=[2])
    misdispatch_rate: float | None = Field(
        description="not_ours returns / dispatches of the group", examples=[0.024]
    )
    dispatched_on_time: float | None = Field(
        description="share of the desk's dispatches made before the desk's deadline",
        examples=[0.9],
    )
    median_minutes_at_desk: float | None = Field(examples=[7.5])


FIRST_DISPATCHES = {
    "routed": "given",
    "auto_classified": "auto",
    "dispatched_by_hand": "by_hand",
}
"""CaseDispatched reasons that are a dispatch decision (not an escalation or a reopening)."""


def assess_desk(steps: Iterable[DeskStep], by: DeskGrouping) -> list[DeskAssessment]:
    """One row per group, in group order."""
    rows: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    waited: dict[str, list[float]] = defaultdict(list)
    on_time: dict[str, list[bool]] = defaultdict(list)
    returned: set[str] = set()  # cases returned as not ours, whose next dispatch is a re-dispatch
    for step in steps:
        group = {
            DeskGrouping.CATEGORY: step.category,
            DeskGrouping.DEPARTMENT: step.department,
            DeskGrouping.DESK: step.desk,
        }[by]
        if not group:
            continue
        row = rows[group]
        if step.kind == "CaseSentToDesk":
            row["sent_to_desk"] += 1
        elif step.kind == "CaseReturned":
            row["not_ours_returns"] += 1
            returned.add(step.case_id)
        elif step.kind == "CaseDispatched":
            if step.reason == "reclassified" or (
                step.reason == "dispatched_by_hand" and step.case_id in returned
            ):
                row["redispatched"] += 1
                returned.discard(step.case_id)
            else:
                row[f"dispatched_{FIRST_DISPATCHES[step.reason]}"] += 1
            if step.minutes_waited is not None:
                waited[group].append(step.minutes_waited)
            if step.on_time is not None:
                on_time[group].append(step.on_time)
    table = []
    for group, row in sorted(rows.items()):
        dispatches = sum(
            row[name]
            for name in (
                "dispatched_given",
                "dispatched_auto",
                "dispatched_by_hand",
                "redispatched",
            )
        )
        table.append(
            DeskAssessment(
                group=group,
                sent_to_desk=row["sent_to_desk"],
                dispatched_given=row["dispatched_given"],
                dispatched_auto=row["dispatched_auto"],
                dispatched_by_hand=row["dispatched_by_hand"],
                redispatched=row["redispatched"],
                not_ours_returns=row["not_ours_returns"],
                misdispatch_rate=_share(row["not_ours_returns"], dispatches),
                dispatched_on_time=_share(sum(on_time[group]), len(on_time[group])),
                median_minutes_at_desk=_median(waited[group]),
            )
        )
    return table


DESK_EVENT_TYPES = (
    "CaseOpened",
    "CaseSentToDesk",
    "CaseReclassified",
    "CaseDispatched",
    "CaseReturned",
)
"""The case events the desk's figures read."""


def desk_steps(
    events: Iterable[tuple[str, str, datetime, Mapping[str, Any]]],
) -> Iterator[DeskStep]:
    """The steps the desk's figures count, from case events (case id, type, time, body) in
    each case's order; a case's category, department and desk are followed along."""
    category: dict[str, str] = {}
    department: dict[str, str] = {}
    desk: dict[str, tuple[str, datetime, datetime | None]] = {}  # desk, since, deadline
    for case_id, kind, occurred_at, body in events:
        if kind == "CaseOpened":
            category[case_id] = body.get("category_code", "")
        elif kind == "CaseReclassified":
            category[case_id] = body.get("to_category", "")
        elif kind == "CaseSentToDesk":
            deadline = body.get("dispatch_deadline")
            desk[case_id] = (
                body.get("desk", ""),
                occurred_at,
                datetime.fromisoformat(deadline) if isinstance(deadline, str) else deadline,
            )
            yield DeskStep(case_id, kind, "", category.get(case_id, ""), "", body.get("desk", ""))
        elif kind == "CaseReturned":
            if is_not_ours(body.get("reason", "")):
                yield DeskStep(
                    case_id,
                    kind,
                    "not_ours",
                    category.get(case_id, ""),
                    body.get("department", ""),
                    desk.get(case_id, ("", occurred_at, None))[0],
                )
        elif kind == "CaseDispatched":
            reason = body.get("reason", "")
            category[case_id] = body.get("category_code") or category.get(case_id, "")
            department[case_id] = (body.get("assignment") or {}).get("lead_department", "")
            if reason not in (*FIRST_DISPATCHES, "reclassified"):
                continue  # an escalation, a reopening, a confirmed lead: not a dispatch decision
            at_desk = desk.pop(case_id, None) if reason == "dispatched_by_hand" else None
            yield DeskStep(
                case_id,
                kind,
                reason,
                category[case_id],
                department[case_id],
                at_desk[0] if at_desk else "",
                (occurred_at - at_desk[1]).total_seconds() / 60 if at_desk else None,
                (at_desk[2] is None or occurred_at <= at_desk[2]) if at_desk else None,
            )


NOT_OURS = "not_ours"
"""The return reason (退单) that says the matter is not the department's: back to the desk."""


def is_not_ours(reason: str) -> bool:
    """`not_ours`, alone or with an explanation after a colon (`not_ours: 属人社部门职责`)."""
    return reason.split(":", 1)[0].strip() == NOT_OURS
