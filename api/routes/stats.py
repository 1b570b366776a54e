"""Assessment figures (考核): per department, loop or area, over the cases opened in a period."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from sqlalchemy import Select, select

from api.db import CaseEventRow, CaseRow, minutes_between
from api.deps import NowDep, PrincipalDep, ReaderDep, TopologyDep
from api.errors import problems, refuse
from api.params import MAX_CODE_LENGTH, PRINTABLE, Moment
from api.routes.cases import (
    Conditions,
    Seen,
    handled_in,
    narrowed,
    seen_by,
    seen_cases,
    values_of,
)
from api.schemas import AssessmentTable, DeskTable
from handlers.assessment import (
    DESK_EVENT_TYPES,
    CaseFigures,
    DeskGrouping,
    Grouping,
    assess,
    assess_desk,
    desk_steps,
)

router = APIRouter(prefix="/v1/stats", tags=["assessment"], responses=problems(401, 422))

GROUP_COLUMNS = {
    Grouping.DEPARTMENT: CaseRow.lead_department,
    Grouping.LOOP: CaseRow.loop,
    Grouping.AREA: CaseRow.handling_area,
}


Since = Annotated[
    Moment | None, Query(description="cases opened at or after; default: 30 days ago")
]
Until = Annotated[Moment | None, Query(description="cases opened before; default: now")]


def opened_in(
    since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime, Conditions]:
    """The period asked for (default: the 30 days up to now) and its conditions on cases."""
    until = until or now
    since = since or until - timedelta(days=30)
    if since >= until:
        raise refuse(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "empty_period", "since must be before until"
        )
    return (
        since,
        until,
        {"opened_since": {"opened_since": since}, "opened_until": {"opened_until": until}},
    )


@functools.lru_cache(maxsize=64)
def figures_query(
    seen: Seen, by: Grouping, conditions: tuple[str, ...]
) -> Select[*tuple[Any, ...]]:
    """What the figures are computed from, of the seen cases that meet the conditions."""
    group = GROUP_COLUMNS[by]
    query = select(  # in the order of CaseFigures' fields
        group,
        minutes_between(CaseRow.opened_at, CaseRow.accepted_at),
        minutes_between(CaseRow.opened_at, CaseRow.resolved_at),
        CaseRow.accept_missed,
        CaseRow.resolve_missed,
        CaseRow.returns,
        CaseRow.escalations,
        CaseRow.reopens,
    ).where(group.is_not(None))
    return narrowed(seen_cases(query, seen), conditions)


@router.get(
    "",
    response_model=AssessmentTable,
    responses=problems(403),
)
async def stats(
    read: ReaderDep,
    principal: PrincipalDep,
    topology: TopologyDep,
    now: NowDep,
    by: Grouping = Grouping.DEPARTMENT,
    since: Since = None,
    until: Until = None,
    area: Annotated[
        str | None,
        Query(
            description="only cases handled in this subtree",
            pattern=PRINTABLE,
            max_length=MAX_CODE_LENGTH,
        ),
    ] = None,
) -> AssessmentTable:
    """Received, on-time acceptance and resolution, medians, returns, escalations, reopen and
    resolution rates — over the cases the caller may see, grouped as asked."""
    since, until, wanted = opened_in(since, until, now)
    seen, seen_values = seen_by(principal, topology.city)
    if area:
        wanted |= handled_in(area)
    query = figures_query(seen, by, tuple(wanted))
    values = values_of(wanted, seen_values)
    figures = [CaseFigures(*row) async for rows in read.scan(query, values) for row in rows]
    return AssessmentTable(by=by, since=since, until=until, rows=assess(figures))


@functools.lru_cache(maxsize=16)
def desk_query(seen: Seen, conditions: tuple[str, ...]) -> Select[*tuple[Any, ...]]:
    """The case events the desk's figures read, of the seen cases that meet the conditions,
    each case's in order."""
    query = (
        select(CaseEventRow.case_id, CaseEventRow.type, CaseEventRow.occurred_at, CaseEventRow.body)
        .join(CaseRow, CaseRow.case_id == CaseEventRow.case_id)
        .where(CaseEventRow.type.in_(DESK_EVENT_TYPES))
        .order_by(CaseEventRow.case_id, CaseEventRow.version)
    )
    return narrowed(seen_cases(query, seen), conditions)


@router.get(
    "/desk",
    response_model=DeskTable,
    responses=problems(403),
)
async def desk_stats(
    read: ReaderDep,
    principal: PrincipalDep,
    topology: TopologyDep,
    now: NowDep,
    by: DeskGrouping = DeskGrouping.CATEGORY,
    since: Since = None,
    until: Until = None,
) -> DeskTable:
    """The 12345 dispatch desk (派单考核): how cases were dispatched — on the sender's category,
    by the classifier, by hand — re-dispatched, returned as not the department's matter, and how
    fast the desk dispatched; over the cases the caller may see, grouped as asked."""
    since, until, wanted = opened_in(since, until, now)
    seen, seen_values = seen_by(principal, topology.city)
    query = desk_query(seen, tuple(wanted))
    values = values_of(wanted, seen_values)
    events = [
        (row[0], row[1], row[2], row[3]) async for rows in read.scan(query, values) for row in rows
    ]
    return DeskTable(by=by, since=since, until=until, rows=assess_desk(desk_steps(events), by))
