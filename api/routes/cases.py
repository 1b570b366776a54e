"""Cases as the read model has them: a page of summaries, or one case with its history."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import json
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
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
from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
)

from api.db import CaseDepartmentRow, CaseEventRow, CaseRow, ReportRow
from api.deps import NowDep, PrincipalDep, ReaderDep, TopologyDep
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
from api.reading import Reader, entities
from api.schemas import (
    CASE_ID_EXAMPLE,
    COMPONENTS,
    CaseChange,
    CasePage,
    CasePublic,
    CaseSummary,
    DeskPublic,
    ReportPublic,
    TimelineEntry,
)
from cityloop.contracts import Assignment, GeoPoint, Loop, ReportSummary, Source
from handlers.access import (
    AREA_SCOPED_ROLES,
    Denied,
    Principal,
    Role,
    check_may_read_cases,
    sees_personal_data,
    subtree_district,
    subtree_prefix,
)
from handlers.case import CaseStatus
from handlers.privacy import mask_free_text_in, shown_text

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
DESK_FIELDS = ("desk", "desk_reasons", "dispatch_deadline", "candidates", "given_category_code")
"""What a case's detail reads of its state about the dispatch desk (CaseDocument's fields)."""


def summary_fields(row: Sequence[Any], *, sees_personal_data: bool) -> dict[str, Any]:
    """What a summary shows of a row that begins with SUMMARY_COLUMNS (a page's, a detail's, a
    stream's after its event): read by position, for a row's attributes cost three times as
    much (50 of them: 0.28 ms). The title is a caller's words: its personal numbers are masked
    for those who do not see personal data."""
    fields = dict(zip(SUMMARY_FIELDS, row, strict=False))
    fields["title"] = shown_text(fields["title"], sees_personal_data)
    return fields


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
    """What the principal may see (by its role and scope, handlers.access), and the statement
    parameters that say it; a publisher is refused."""
    try:
        check_may_read_cases(principal)
    except Denied as denied:
        raise forbidden(denied) from None
    if principal.role is Role.DEPARTMENT:
        return Seen.DEPARTMENTS, {"seen_department": principal.scope}
    prefix = subtree_prefix(principal.scope, city)
    if principal.role in AREA_SCOPED_ROLES and prefix is not None:
        return Seen.SUBTREE, {"seen_prefix": starting_with(prefix)}
    return Seen.ALL, {}


def starting_with(prefix: str) -> str:
    """The LIKE pattern (escape "/") of the text that starts with `prefix`, taken as written:
    a code is not a pattern, whatever it holds."""
    return prefix.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


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


CONDITIONS: dict[str, ColumnElement[bool]] = {
    "status": CaseRow.status == bindparam("status"),
    "category": CaseRow.category_code == bindparam("category"),
    "loop": CaseRow.loop == bindparam("loop"),
    "department": CaseRow.lead_department == bindparam("department"),
    # area codes extend their parent's, so a subtree is a prefix; the district's column says
    # the same of the first six characters, by an index
    "handled_in": CaseRow.handling_area.like(bindparam("handled_in"), escape="/"),
    "handled_in_district": CaseRow.handling_district == bindparam("handled_in_district"),
    "source": exists().where(
        ReportRow.case_id == CaseRow.case_id, ReportRow.source == bindparam("source")
    ),
    "opened_since": CaseRow.opened_at >= bindparam("opened_since"),
    "opened_until": CaseRow.opened_at < bindparam("opened_until"),
    # a deadline comes after the opening: only cases opened before `now` can have missed one,
    # which lets the newest-first index start there instead of at the top
    "overdue": and_(
        CaseRow.opened_at < bindparam("now"),
        or_(
            CaseRow.accept_deadline < bindparam("now"), CaseRow.resolve_deadline < bindparam("now")
        ),
    ),
    "not_overdue": and_(  # no deadline, or none passed yet
        or_(CaseRow.accept_deadline.is_(None), CaseRow.accept_deadline >= bindparam("now")),
        or_(CaseRow.resolve_deadline.is_(None), CaseRow.resolve_deadline >= bindparam("now")),
    ),
    "after": or_(  # a cursor's position, newest first
        CaseRow.opened_at < bindparam("after_opened"),
        and_(
            CaseRow.opened_at == bindparam("after_opened"),
            CaseRow.case_id < bindparam("after_case"),
        ),
    ),
}
"""What a case query can be narrowed by, each with bound parameters, so that a statement of
the same conditions is built once (`narrowed`) and its values given when it runs."""


Conditions = dict[str, dict[str, Any]]
"""Conditions of CONDITIONS wanted of a case query, each with its parameters' values."""


def handled_in(area: str) -> Conditions:
    """The conditions of the cases handled in an area's subtree."""
    wanted: Conditions = {"handled_in": {"handled_in": starting_with(area)}}
    district = subtree_district(area)
    if district is not None:
        wanted["handled_in_district"] = {"handled_in_district": district}
    return wanted


def narrowed(query: AnySelect, conditions: Sequence[str]) -> AnySelect:
    return query.where(*(CONDITIONS[name] for name in conditions))


def values_of(wanted: Conditions, *more: dict[str, Any]) -> dict[str, Any]:
    """The parameters' values of the wanted conditions, and any more a statement has."""
    values: dict[str, Any] = {}
    for condition in (*wanted.values(), *more):
        values.update(condition)
    return values


def visible_cases(query: AnySelect, principal: Principal, city: str) -> AnySelect:
    """A case query built for one request, narrowed to what the principal may see."""
    seen, values = seen_by(principal, city)
    return seen_cases(query, seen).params(values)


async def case_in_scope(
    read: Reader, case_id: str, principal: Principal, city: str
) -> Row[*tuple[Any, ...]]:
    """The case's row (`case_query`'s), if the principal may see it; else 404 — never a hint
    that it exists."""
    seen, values = seen_by(principal, city)
    # a merge target comes from a body, unchecked: one no case can have is not looked up
    row = (
        await read(functools.partial(seen_case, case_id=case_id, seen=seen, values=values))
        if is_code(case_id)
        else None
    )
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
    now: NowDep,
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
    seen, seen_values = seen_by(principal, topology.city)
    wanted: Conditions = {}
    if case_status:
        wanted["status"] = {"status": case_status.value}
    if category:
        wanted["category"] = {"category": category}
    if loop:
        wanted["loop"] = {"loop": loop.value}
    if department:
        wanted["department"] = {"department": department}
    if area:
        wanted |= handled_in(area)
    if source:
        wanted["source"] = {"source": source.value}
    if opened_since:
        wanted["opened_since"] = {"opened_since": opened_since}
    if opened_until:
        wanted["opened_until"] = {"opened_until": opened_until}
    if overdue is not None:
        wanted["overdue" if overdue else "not_overdue"] = {"now": as_of or now}
    if cursor:
        opened_at, case_id = decode_cursor(cursor)
        wanted["after"] = {"after_opened": opened_at, "after_case": case_id}
    query = page_query(seen, tuple(wanted))
    values = values_of(wanted, seen_values, {"limit": limit + 1})
    rows = await read(lambda connection: list(connection.execute(query, values).all()))
    more = len(rows) > limit
    rows = rows[:limit]
    unmasked = sees_personal_data(principal)
    page = CasePage.model_validate(
        {
            "items": [summary_fields(row, sees_personal_data=unmasked) for row in rows],
            "next_cursor": encode_cursor(rows[-1]) if more and rows else None,
        }
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


def timeline_entry(
    event: CaseEventRow | Row[*tuple[Any, ...]], *, sees_personal_data: bool
) -> TimelineEntry:
    """A case event as the timeline shows it. Its details hold what people wrote (a case's
    title, a progress note, a reason): their personal numbers are masked for those who do not
    see personal data."""
    details = {key: value for key, value in event.body.items() if key not in NOT_DETAILS}
    return TimelineEntry(
        version=event.version,
        type=event.type,
        occurred_at=event.occurred_at,
        actor=event.actor,
        details=details if sees_personal_data else mask_free_text_in(details),
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
        select(CaseEventRow, *SUMMARY_COLUMNS).join(
            CaseRow, CaseRow.case_id == CaseEventRow.case_id
        ),
        principal,
        topology.city,
    )
    if position is None:
        newest = select(func.max(CaseEventRow.seq))
        position = await read(lambda connection: connection.scalar(newest)) or 0
    projector = request.app.state.projector
    unmasked = sees_personal_data(principal)
    while True:
        rows = await read(
            entities(
                visible.where(CaseEventRow.seq > position)
                .order_by(CaseEventRow.seq)
                .limit(STREAM_BATCH)
            )
        )
        for row in rows:
            event = row[0]
            position = event.seq
            change = CaseChange(
                seq=event.seq,
                event=timeline_entry(event, sees_personal_data=unmasked),
                case=CaseSummary.model_validate(
                    summary_fields(row[1:], sees_personal_data=unmasked)
                ),
            )
            yield ServerSentEvent(data=change, event=event.type, id=str(event.seq))
        if len(rows) < STREAM_BATCH:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(projector.projected.wait(), STREAM_POLL_S)


@functools.lru_cache(maxsize=256)
def page_query(seen: Seen, conditions: tuple[str, ...]) -> Select[*tuple[Any, ...]]:
    """A page of summaries, newest first, of the seen cases that meet the conditions. Built
    once for each kind of reader and set of conditions: a statement built for one request cost
    0.27 ms, as much again as running it. A page shows summaries: columns only — the state
    (every report) stays in the database, and plain rows cost a fraction of ORM objects."""
    return (
        narrowed(seen_cases(select(*SUMMARY_COLUMNS), seen), conditions)
        .order_by(CaseRow.opened_at.desc(), CaseRow.case_id.desc())
        .limit(bindparam("limit"))
    )


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
            *(CaseRow.state[field].label(field) for field in DESK_FIELDS),
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


def seen_case(
    connection: Connection, case_id: str, seen: Seen, values: dict[str, str]
) -> Row[*tuple[Any, ...]] | None:
    """A case's row (`case_query`), None if not seen."""
    return connection.execute(case_query(seen), {"case_id": case_id, **values}).one_or_none()


def read_case(
    connection: Connection, case_id: str, seen: Seen, values: dict[str, str]
) -> tuple[Row[*tuple[Any, ...]], list[Any], list[Row[*tuple[Any, ...]]]] | None:
    """A case's row, its reports' bodies and its timeline; None if not seen."""
    key = {"case_id": case_id}
    row = seen_case(connection, case_id, seen, values)
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
        **summary_fields(row, sees_personal_data=unmasked),
        correlation_key=row.correlation_key,
        location=GeoPoint(lat=row.lat, lon=row.lon)
        if row.lat is not None and row.lon is not None
        else None,
        assignment=Assignment.model_validate(assignment) if assignment else None,
        accept_deadline=row.accept_deadline,
        resolve_deadline=row.resolve_deadline,
        desk=DeskPublic.model_validate(
            {
                "desk": row.desk,
                "reasons": row.desk_reasons or [],
                **{field: getattr(row, field) for field in DESK_FIELDS[2:]},
            }
        )
        if row.desk
        else None,
        reports=[
            ReportPublic.from_summary(ReportSummary.model_validate(body), unmasked=unmasked)
            for body in reports
        ],
        timeline=[timeline_entry(event, sees_personal_data=unmasked) for event in events],
    )
    return written(case)
