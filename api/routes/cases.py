"""Cases as the read model has them: a page of summaries, or one case with its history."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any, TypeVar

from fastapi import (
    APIRouter,
    Depends,
    Header,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    status,
)
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import TypeAdapter
from sqlalchemy import Connection, Row, Select, and_, bindparam, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from api.db import CaseDepartmentRow, CaseEventRow, CaseRow, ReportRow
from api.deps import PrincipalDep, ReaderDep, TopologyDep
from api.errors import forbidden, problems, refuse
from api.params import (
    MAX_CODE_LENGTH,
    MAX_POSITION,
    PRINTABLE,
    Code,
    Moment,
    is_code,
    parse_position,
)
from api.reading import entities
from api.schemas import (
    CASE_ID_EXAMPLE,
    COMPONENTS,
    CaseChange,
    CasePage,
    CasePublic,
    CaseSummary,
    ReportPublic,
    TimelineEntry,
)
from cityloop.contracts import Assignment, GeoPoint, Loop, ReportSummary, Source
from handlers.access import (
    Denied,
    Principal,
    Role,
    check_may_read_cases,
    sees_personal_data,
    subtree_district,
    subtree_prefix,
)
from handlers.case import CaseStatus

router = APIRouter(prefix="/v1/cases", tags=["cases"], responses=problems(401, 422))
AnySelect = TypeVar("AnySelect", bound=Select[*tuple[Any, ...]])

CaseIdPath = Annotated[
    str,
    Path(
        description="a case id",
        examples=[CASE_ID_EXAMPLE],
        pattern=PRINTABLE,
        max_length=MAX_CODE_LENGTH,
    ),
]
CodeQuery = Query(pattern=PRINTABLE, max_length=MAX_CODE_LENGTH)


def encode_cursor(row: CaseRow | Row[*tuple[Any, ...]]) -> str:
    position = json.dumps([row.opened_at.isoformat(), row.case_id])
    return base64.urlsafe_b64encode(position.encode()).decode()


CURSOR = TypeAdapter(tuple[Moment, Code])


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a cursor names; checked as a parameter is, for it is one the client holds."""
    try:
        return CURSOR.validate_json(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError) as exc:  # a ValidationError is a ValueError
        raise refuse(status.HTTP_400_BAD_REQUEST, "bad_cursor", "unknown cursor") from exc


SUMMARY_COLUMNS = (
    CaseRow.case_id,
    CaseRow.status,
    CaseRow.category_code,
    CaseRow.title,
    CaseRow.severity,
    CaseRow.loop,
    CaseRow.handling_area,
    CaseRow.lead_department,
    CaseRow.area_codes,
    CaseRow.opened_at,
    CaseRow.updated_at,
    CaseRow.report_count,
    CaseRow.duplicate_count,
    CaseRow.version,
)
"""What a page shows of each case: plain rows of these, no ORM objects and no state."""

DETAIL_COLUMNS = (
    CaseRow.correlation_key,
    CaseRow.lat,
    CaseRow.lon,
    CaseRow.accept_deadline,
    CaseRow.resolve_deadline,
)
"""What a case's detail adds to its summary."""


SUMMARY_FIELDS = tuple(column.key for column in SUMMARY_COLUMNS)


def summary_fields(row: CaseRow | Row[*tuple[Any, ...]]) -> dict[str, Any]:
    """What a summary shows of a case's row; a detail shows it too."""
    return {name: getattr(row, name) for name in SUMMARY_FIELDS}


def summary(row: CaseRow | Row[*tuple[Any, ...]]) -> CaseSummary:
    return CaseSummary(**summary_fields(row))


def written(model: CasePage | CasePublic) -> Response:
    """A model built and checked by its route, written straight out: FastAPI would validate
    and encode it a second time."""
    return Response(model.model_dump_json(), media_type="application/json")


class Seen(Enum):
    """How much of the city's cases a reader sees; the statements of each are built once."""

    ALL = "all"
    DEPARTMENTS = "a department's cases"
    SUBTREE = "an area's subtree"


def seen_by(principal: Principal, city: str) -> tuple[Seen, dict[str, str]]:
    """What the principal may see (handlers.access.can_see_case), and the statement parameters
    that say it; a publisher is refused."""
    try:
        check_may_read_cases(principal)
    except Denied as denied:
        raise forbidden(denied) from None
    if principal.role is Role.DEPARTMENT:
        return Seen.DEPARTMENTS, {"seen_department": principal.scope}
    prefix = subtree_prefix(principal.scope, city)
    if principal.role is Role.DUTY_OFFICER and prefix is not None:
        escaped = prefix.replace("/", "//").replace("%", "/%").replace("_", "/_")
        return Seen.SUBTREE, {"seen_prefix": escaped + "%"}
    return Seen.ALL, {}


def seen_cases(query: AnySelect, seen: Seen) -> AnySelect:
    """Narrow a case query to what is seen, with parameters `seen_by` gives the values of."""
    if seen is Seen.DEPARTMENTS:
        # from the department's own cases, not a probe per case: most departments are on a few
        # of the city's cases, and a probe per case read all of them (0.19 s in 100,000)
        return query.where(
            CaseRow.case_id.in_(
                select(CaseDepartmentRow.case_id).where(
                    CaseDepartmentRow.department_id == bindparam("seen_department")
                )
            )
        )
    if seen is Seen.SUBTREE:
        return query.where(
            or_(
                CaseRow.handling_area.like(bindparam("seen_prefix"), escape="/"),
                CaseRow.primary_area.like(bindparam("seen_prefix"), escape="/"),
            )
        )
    return query


def handled_in(query: AnySelect, area: str) -> AnySelect:
    """Narrow a case query to the cases handled in an area's subtree. Area codes extend their
    parent's, so a subtree is a prefix; the district's column says the same of the first six
    characters, by an index."""
    query = query.where(CaseRow.handling_area.startswith(area, autoescape=True))
    district = subtree_district(area)
    if district is not None:
        query = query.where(CaseRow.handling_district == district)
    return query


def visible_cases(query: AnySelect, principal: Principal, city: str) -> AnySelect:
    """A case query built for one request, narrowed to what the principal may see."""
    seen, values = seen_by(principal, city)
    return seen_cases(query, seen).params(values)


async def case_in_scope(
    session: AsyncSession, case_id: str, principal: Principal, city: str
) -> CaseRow:
    """The case, if the principal may see it; else 404 — never a hint that it exists."""
    query = visible_cases(select(CaseRow), principal, city).where(CaseRow.case_id == case_id)
    # a merge target comes from a body, unchecked: one no case can have is not looked up
    row = (await session.execute(query)).scalar_one_or_none() if is_code(case_id) else None
    if row is None:
        raise no_case(case_id)
    return row


def no_case(case_id: str) -> HTTPException:
    return refuse(status.HTTP_404_NOT_FOUND, "not_found", f"no case {case_id}")


@router.get("", response_model=CasePage, responses=problems(400, 403))
async def list_cases(
    read: ReaderDep,
    principal: PrincipalDep,
    topology: TopologyDep,
    case_status: Annotated[CaseStatus | None, Query(alias="status")] = None,
    category: Annotated[str | None, CodeQuery] = None,
    loop: Loop | None = None,
    department: Annotated[str | None, CodeQuery] = None,
    area: Annotated[
        str | None,
        Query(
            description="an area code: cases in its subtree",
            pattern=PRINTABLE,
            max_length=MAX_CODE_LENGTH,
        ),
    ] = None,
    source: Annotated[Source | None, Query(description="cases with a report from it")] = None,
    opened_since: Annotated[Moment | None, Query(description="opened at or after")] = None,
    opened_until: Annotated[Moment | None, Query(description="opened before")] = None,
    overdue: Annotated[
        bool | None, Query(description="true: a deadline has passed unmet (as of `as_of`)")
    ] = None,
    as_of: Annotated[Moment | None, Query(description="the moment for `overdue`")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, CodeQuery] = None,
) -> Response:
    """Newest first; follow next_cursor for the next page."""
    # a page shows summaries: columns only — the state (every report) stays in the database,
    # and plain rows cost a fraction of ORM objects
    query = visible_cases(select(*SUMMARY_COLUMNS), principal, topology.city)
    if case_status:
        query = query.where(CaseRow.status == case_status.value)
    if category:
        query = query.where(CaseRow.category_code == category)
    if loop:
        query = query.where(CaseRow.loop == loop.value)
    if department:
        query = query.where(CaseRow.lead_department == department)
    if area:
        query = handled_in(query, area)
    if source:
        query = query.where(
            exists().where(ReportRow.case_id == CaseRow.case_id, ReportRow.source == source.value)
        )
    if opened_since:
        query = query.where(CaseRow.opened_at >= opened_since)
    if opened_until:
        query = query.where(CaseRow.opened_at < opened_until)
    if overdue is not None:
        now = as_of or datetime.now(UTC)
        deadlines = (CaseRow.accept_deadline, CaseRow.resolve_deadline)
        if overdue:
            # a deadline comes after the opening: only cases opened before `now` can have
            # missed one, which lets the newest-first index start there instead of at the top
            query = query.where(
                CaseRow.opened_at < now, or_(*(deadline < now for deadline in deadlines))
            )
        else:  # no deadline, or none passed yet
            query = query.where(
                *(or_(deadline.is_(None), deadline >= now) for deadline in deadlines)
            )
    if cursor:
        opened_at, case_id = decode_cursor(cursor)
        query = query.where(
            or_(
                CaseRow.opened_at < opened_at,
                and_(CaseRow.opened_at == opened_at, CaseRow.case_id < case_id),
            )
        )
    query = query.order_by(CaseRow.opened_at.desc(), CaseRow.case_id.desc()).limit(limit + 1)
    rows = await read(lambda connection: list(connection.execute(query).all()))
    more = len(rows) > limit
    rows = rows[:limit]
    page = CasePage(
        items=[summary(row) for row in rows],
        next_cursor=encode_cursor(rows[-1]) if more and rows else None,
    )
    return written(page)


# what a timeline entry leaves out: the envelope it already shows, and reports (personal data)
NOT_DETAILS = frozenset(
    ("event_id", "case_id", "version", "occurred_at", "actor", "type", "first_report", "report")
)


TIMELINE_COLUMNS = (
    CaseEventRow.version,
    CaseEventRow.type,
    CaseEventRow.occurred_at,
    CaseEventRow.actor,
    CaseEventRow.body,
)


def timeline_entry(event: CaseEventRow | Row[*tuple[Any, ...]]) -> TimelineEntry:
    return TimelineEntry(
        version=event.version,
        type=event.type,
        occurred_at=event.occurred_at,
        actor=event.actor,
        details={key: value for key, value in event.body.items() if key not in NOT_DETAILS},
    )


CASE_CHANGE_EVENT = {
    "type": "object",
    "required": ["data", "event", "id"],
    "properties": {
        "event": {
            "type": "string",
            "description": "the case event's type",
            "examples": ["CaseAccepted"],
        },
        "id": {"type": "string", "description": "the stream position", "examples": ["1042"]},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": COMPONENTS + "CaseChange"},
        },
    },
}
"""One event of the live stream (OpenAPI 3.2's `itemSchema`); `api.main` puts CaseChange in the
components."""

STREAM_BATCH = 200
STREAM_POLL_S = 1.0  # the projector wakes streams at once; polling covers other API replicas


async def stream_position(
    principal: PrincipalDep,
    last_event_id: Annotated[
        str | None,
        Header(
            description="resume after this position (sent by EventSource)",
            json_schema_extra={"pattern": "^[0-9]{1,10}$"},
        ),
    ] = None,
    after: Annotated[
        int | None,
        Query(ge=0, le=MAX_POSITION, description="resume after this position; 0: from the start"),
    ] = None,
) -> int | None:
    """Where a stream starts — checked, like the caller's right to read cases, before the
    response starts (an error after that could only cut the stream)."""
    try:
        check_may_read_cases(principal)
    except Denied as denied:
        raise forbidden(denied) from None
    if after is not None or not last_event_id:
        return after
    position = parse_position(last_event_id)
    if position is None:
        raise refuse(
            status.HTTP_400_BAD_REQUEST,
            "bad_last_event_id",
            "Last-Event-ID is a stream position",
        )
    return position


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "Server-Sent Events: `event:` the case event's type, `id:` its "
            "position, `data:` a CaseChange",
            "content": {"text/event-stream": {"itemSchema": CASE_CHANGE_EVENT}},
        },
        **problems(400, 403),
    },
)
async def stream_cases(
    request: Request,
    read: ReaderDep,
    principal: PrincipalDep,
    topology: TopologyDep,
    position: Annotated[int | None, Depends(stream_position)],
) -> AsyncIterator[ServerSentEvent]:
    """Case changes live, as the read model learns them, limited to the cases the caller may
    see. Without a position it starts with what happens from now on."""
    visible = visible_cases(
        select(CaseEventRow, CaseRow)
        .join(CaseRow, CaseRow.case_id == CaseEventRow.case_id)
        .options(defer(CaseRow.state)),
        principal,
        topology.city,
    )
    if position is None:
        newest = select(func.max(CaseEventRow.seq))
        position = await read(lambda connection: connection.scalar(newest)) or 0
    projector = request.app.state.projector
    while True:
        rows = await read(
            entities(
                visible.where(CaseEventRow.seq > position)
                .order_by(CaseEventRow.seq)
                .limit(STREAM_BATCH)
            )
        )
        for event, case in rows:
            position = event.seq
            change = CaseChange(seq=event.seq, event=timeline_entry(event), case=summary(case))
            yield ServerSentEvent(data=change, event=event.type, id=str(event.seq))
        if len(rows) < STREAM_BATCH:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(projector.projected.wait(), STREAM_POLL_S)


@functools.cache
def case_query(seen: Seen) -> Select[*tuple[Any, ...]]:
    """A case's columns, if seen; of its state (every report again) only the assignment, read
    inside the database. Built once per kind of reader: building a statement of twenty columns
    cost more than running it."""
    return seen_cases(
        select(
            *SUMMARY_COLUMNS,
            *DETAIL_COLUMNS,
            CaseRow.state["assignment"].label("assignment"),
        ).where(CaseRow.case_id == bindparam("case_id")),
        seen,
    )


REPORTS_QUERY = (
    select(ReportRow.body)
    .where(ReportRow.case_id == bindparam("case_id"))
    .order_by(ReportRow.occurred_at)
)
TIMELINE_QUERY = (
    select(*TIMELINE_COLUMNS)
    .where(CaseEventRow.case_id == bindparam("case_id"))
    .order_by(CaseEventRow.version)
)


def read_case(
    connection: Connection, case_id: str, seen: Seen, values: dict[str, str]
) -> tuple[Row[*tuple[Any, ...]], list[Any], list[Row[*tuple[Any, ...]]]] | None:
    """A case's row, its reports' bodies and its timeline; None if not seen."""
    key = {"case_id": case_id}
    row = connection.execute(case_query(seen), {**key, **values}).one_or_none()
    if row is None:
        return None
    reports = list(connection.execute(REPORTS_QUERY, key).scalars())
    return row, reports, list(connection.execute(TIMELINE_QUERY, key).all())


@router.get(
    "/{case_id}",
    response_model=CasePublic,
    responses=problems(403, 404),
)
async def get_case(
    case_id: CaseIdPath, read: ReaderDep, principal: PrincipalDep, topology: TopologyDep
) -> Response:
    seen, values = seen_by(principal, topology.city)
    found = await read(functools.partial(read_case, case_id=case_id, seen=seen, values=values))
    if found is None:
        raise no_case(case_id)
    row, reports, events = found
    assignment = row.assignment
    unmasked = sees_personal_data(principal)
    case = CasePublic(
        **summary_fields(row),
        correlation_key=row.correlation_key,
        location=GeoPoint(lat=row.lat, lon=row.lon)
        if row.lat is not None and row.lon is not None
        else None,
        assignment=Assignment.model_validate(assignment) if assignment else None,
        accept_deadline=row.accept_deadline,
        resolve_deadline=row.resolve_deadline,
        reports=[
            ReportPublic.from_summary(ReportSummary.model_validate(body), unmasked=unmasked)
            for body in reports
        ],
        timeline=[timeline_entry(event) for event in events],
    )
    return written(case)
