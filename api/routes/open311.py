"""Open311 GeoReport v2: the city's categories as services, and citizens' requests as hotline
work orders through the same intake as every other event."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session, defer
from starlette.exceptions import HTTPException

from api.db import CaseRow, ReportRow
from api.deps import NowDep, PrincipalDep, ProducerDep, ReaderDep, SettingsDep, TopologyDep
from api.metrics import Metrics
from api.params import MAX_CODE_LENGTH, PRINTABLE, Moment
from api.reading import entities
from api.routes.cases import case_in_scope, visible_cases
from api.routes.events import admit, may_publish, may_publish_as, publish, refusal
from api.schemas import (
    OPEN311_REQUEST_ID_EXAMPLE,
    Open311Error,
    Open311RequestCreated,
    Open311Service,
    Open311ServiceRequest,
    example_of,
)
from cityloop.contracts import (
    EVENT_TYPES,
    DeadLetter,
    ReportSummary,
    Source,
    idempotency_key_for,
)
from handlers.access import Principal, Role
from handlers.case import CaseStatus
from topology import CategorySpec, Topology

OPEN311_EVENT_SOURCE = "/cityloop/open311"
"""The CloudEvent source of every request posted here: with the request id it is the report's
idempotency key, so a request's status is found from its id alone."""

CLOSED_STATUSES = frozenset({CaseStatus.RESOLVED, CaseStatus.VERIFIED, CaseStatus.CLOSED})
"""Case statuses Open311 calls closed: from 办结 (the department resolved it) on. A reopened
case is open again."""

SERVICE_NOTICE = "received; its status is at requests/{id}.json once a case is opened"

MAX_MERGE_HOPS = 8
"""How far a merged case is followed to the case that absorbed it."""

SEARCH_SPAN = timedelta(days=90)
"""GeoReport v2: a search covers at most 90 days of requested_datetime, by default the last 90."""

MAX_SEARCH_RESULTS = 1000
"""GeoReport v2 asks servers to keep a search's answer to 1,000 requests at most."""

MAX_SEARCH_IDS = 200
"""service_request_id values one search may name."""

CONTRACT_FIELDS = {
    "data.caller_name": "first_name/last_name",
    "data.caller_phone": "phone",
    "data.text": "description",
    "data.address": "address_string",
    "data.area_code": "address_id",
    "data.location.lat": "lat",
    "data.location.lon": "long",
}
"""The hotline contract's field names, as the Open311 client knows them."""


def may_open311(principal: Principal) -> None:
    """403 unless the token is a hotline publisher that names the facade's own source
    (`/cityloop/open311`): the requests posted here are that source's events."""
    may_publish(principal, Source.HOTLINE)
    may_publish_as(principal, OPEN311_EVENT_SOURCE)


def open311_error(
    code: int, description: str, headers: Mapping[str, str] | None = None
) -> Response:
    return JSONResponse(
        [Open311Error(code=code, description=description).model_dump()],
        status_code=code,
        headers=headers,
    )


def _description(detail: Any) -> str:
    if isinstance(detail, dict) and "message" in detail:
        text = f"{detail.get('reason', 'error')}: {detail['message']}"
    else:
        text = str(detail)
    for ours, theirs in CONTRACT_FIELDS.items():
        text = text.replace(ours, theirs)
    return text


class Open311Route(APIRoute):
    """Refusals the Open311 way, whoever raised them (auth, intake, the read model): a JSON
    array of {code, description}. Bad input is 400, the one code the standard has for it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(step) for step in error['loc'][1:])}: {error['msg']}"
                    for error in exc.errors()
                )
                return open311_error(status.HTTP_400_BAD_REQUEST, problems)
            except HTTPException as exc:
                code = exc.status_code
                if code == status.HTTP_422_UNPROCESSABLE_CONTENT:
                    code = status.HTTP_400_BAD_REQUEST
                return open311_error(code, _description(exc.detail), exc.headers)

        return answer


router = APIRouter(prefix="/open311/v2", tags=["open311"], route_class=Open311Route)


def answers(example: Any, **extra: Any) -> dict[str, Any]:
    """An OpenAPI response entry with a JSON example."""
    return {"content": {"application/json": {"example": example}}, **extra}


ERRORS: dict[int | str, dict[str, Any]] = {
    400: answers(
        [{"code": 400, "description": "service_code: no service 'teleport'"}],
        model=list[Open311Error],
        description="bad input: a field, the form, or a service that does not exist",
    ),
    401: {"model": list[Open311Error], "description": "no bearer token, or a bad one"},
    403: {
        "model": list[Open311Error],
        "description": "not a hotline publisher whose token names the source /cityloop/open311",
    },
    "4XX": {"model": list[Open311Error], "description": "every refusal has this body"},
}
"""Open311's refusals: a list of {code, description}, never FastAPI's 422."""


def service_of(category: CategorySpec) -> Open311Service:
    return Open311Service(
        service_code=category.code,
        service_name=category.name,
        description=category.description or category.name,
        metadata=False,
        type="realtime",
        keywords=",".join(category.keywords),
        group=category.family,
    )


@router.get(
    "/services.json",
    response_model=list[Open311Service],
    summary="Service list: the city's categories of matter",
    responses={
        200: answers(
            [
                {
                    "service_code": "pothole",
                    "service_name": "道路坑洼",
                    "description": "道路坑洼",
                    "metadata": False,
                    "type": "realtime",
                    "keywords": "坑洼,坑,路面破损,pothole,road damage",
                    "group": "municipal",
                }
            ]
        )
    },
)
async def list_services(topology: TopologyDep) -> list[Open311Service]:
    """Every category of the topology as an Open311 service; `group` is the category's family.
    Public, as in Open311: no token."""
    return [service_of(category) for category in topology.categories.values()]


def caller_name(first_name: str | None, last_name: str | None) -> str | None:
    """Chinese names family name first and unspaced (王芳); Latin ones as written (Ann Lee)."""
    first, last = (first_name or "").strip(), (last_name or "").strip()
    if not (first or last):
        return None
    if (first + last).isascii():
        return " ".join(part for part in (first, last) if part)
    return last + first


def _bad_request(description: str) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, description)


def work_order(
    request_id: str,
    received_at: datetime,
    service: CategorySpec,
    *,
    lat: float | None,
    long: float | None,
    address_string: str | None,
    address_id: str | None,
    description: str | None,
    first_name: str | None,
    last_name: str | None,
    phone: str | None,
    media_url: str | None,
) -> dict[str, Any]:
    """The hotline CloudEvent an Open311 request becomes (the call taker's category is the
    service code; the service's name is the title)."""
    if (lat is None) != (long is None):
        raise _bad_request("lat and long go together: give both or neither")
    if lat is None and not address_id:
        raise _bad_request(
            "a request needs lat and long, or an address_id (an area code of the city); "
            "address_string alone cannot be placed"
        )
    text = (description or "").strip() or service.name
    if media_url:
        text = f"{text}\nmedia: {media_url}"  # the work order has no field for it
    data: dict[str, Any] = {
        "order_id": request_id,
        "received_at": received_at.isoformat(),
        "channel": "app",
        "category_code": service.code,
        "title": service.name,
        "text": text,
        "address": address_string or "",
        "area_code": address_id or None,
        "location": {"lat": lat, "lon": long} if lat is not None else None,
        "caller_name": caller_name(first_name, last_name),
        "caller_phone": phone or None,
    }
    return {
        "specversion": "1.0",
        "id": request_id,
        "source": OPEN311_EVENT_SOURCE,
        "type": EVENT_TYPES[Source.HOTLINE],
        "time": received_at.isoformat(),
        "data": {key: value for key, value in data.items() if value is not None},
    }


REQUEST_FORM_EXAMPLE = {
    "service_code": "pothole",
    "lat": 30.6612,
    "long": 104.0779,
    "address_string": "锦江区红星路二段口",
    "description": "人行道上有个大坑，晚上看不见",
    "first_name": "芳",
    "last_name": "王",
    "phone": "13800001003",
}


@router.post(
    "/requests.json",
    response_model=list[Open311RequestCreated],
    summary="Create a service request (a hotline work order)",
    responses={
        **ERRORS,
        200: answers(
            [
                {
                    "service_request_id": "O311-5f0c2d6e9b7a4e0f8a1b2c3d4e5f6a7b",
                    "service_notice": SERVICE_NOTICE,
                    "account_id": None,
                }
            ]
        ),
        503: {
            "model": list[Open311Error],
            "description": "the broker did not acknowledge: nothing was stored",
        },
    },
    openapi_extra={
        "requestBody": {
            "content": {"application/x-www-form-urlencoded": {"example": REQUEST_FORM_EXAMPLE}}
        }
    },
)
async def create_request(
    request: Request,
    settings: SettingsDep,
    producer: ProducerDep,
    topology: TopologyDep,
    now: NowDep,
    principal: PrincipalDep,
    service_code: Annotated[str, Form(examples=["pothole"])],
    lat: Annotated[float | None, Form(ge=-90, le=90, examples=[30.6612])] = None,
    long: Annotated[float | None, Form(ge=-180, le=180, examples=[104.0779])] = None,
    address_string: Annotated[
        str | None, Form(max_length=400, examples=["锦江区红星路二段口"])
    ] = None,
    address_id: Annotated[
        str | None, Form(description="an area code of the city", examples=["510104001001"])
    ] = None,
    description: Annotated[
        str | None, Form(max_length=4000, examples=["人行道上有个大坑，晚上看不见"])
    ] = None,
    first_name: Annotated[str | None, Form(examples=["芳"])] = None,
    last_name: Annotated[str | None, Form(examples=["王"])] = None,
    phone: Annotated[str | None, Form(examples=["13800001003"])] = None,
    email: Annotated[
        str | None, Form(description="accepted, not kept", examples=["wang@example.com"])
    ] = None,
    media_url: Annotated[str | None, Form(examples=["https://example.org/pothole.jpg"])] = None,
) -> list[Open311RequestCreated]:
    """Form-encoded, as Open311 posts it; needs a token of a hotline publisher that names the
    source `/cityloop/open311` (`--source /cityloop/open311`). The request
    becomes a hotline CloudEvent (source `/cityloop/open311`, id `O311-…`) that goes through the
    same intake as `POST /v1/events/hotline` and is published to the hotline topic; 200 once
    the broker acked it. Place it by `lat`+`long` or by `address_id` (an area code);
    `address_string` is kept as the address text. The name and phone become the caller's
    personal data (masked for all but duty officers); `email` and `attribute[…]` have no place
    in a work order and are not kept (every service has metadata=false)."""
    may_open311(principal)
    service = topology.category(service_code)
    if service is None:
        raise _bad_request(f"service_code: no service {service_code!r}; see services.json")
    received_at = now
    request_id = f"O311-{uuid.uuid4().hex}"
    event = work_order(
        request_id,
        received_at,
        service,
        lat=lat,
        long=long,
        address_string=address_string,
        address_id=address_id,
        description=description,
        first_name=first_name,
        last_name=last_name,
        phone=phone,
        media_url=media_url,
    )
    raw = json.dumps(event, ensure_ascii=False).encode()
    metrics: Metrics = request.app.state.metrics
    admitted = admit(raw, Source.HOTLINE, topology, metrics, now)
    if isinstance(admitted, DeadLetter):
        raise refusal(admitted)
    await publish(producer, settings, Source.HOTLINE, [(admitted, raw)], metrics)
    return [
        Open311RequestCreated(
            service_request_id=request_id,
            service_notice=SERVICE_NOTICE,
            account_id=None,
        )
    ]


def surviving_case(session: Session, case_id: str) -> CaseRow | None:
    """The case, or the case it was merged into (and so on)."""
    row = session.get(CaseRow, case_id)
    for _ in range(MAX_MERGE_HOPS):
        if row is None or row.status != CaseStatus.MERGED or not row.state.get("merged_into"):
            return row
        row = session.get(CaseRow, row.state["merged_into"])
    return row


def request_on_case(connection: Connection, key: str) -> tuple[ReportRow, CaseRow] | None:
    """A request's report (on several cases after a merge: any leads to the surviving one)
    and the case it is on now; None until the worker has put it on a case."""
    with Session(connection) as session:
        report = session.scalars(
            select(ReportRow).where(ReportRow.idempotency_key == key).limit(1)
        ).first()
        case = surviving_case(session, report.case_id) if report is not None else None
        return (report, case) if report is not None and case is not None else None


def _not_found(service_request_id: str) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND,
        f"no service request {service_request_id} with a case (yet): a request is found once "
        "the worker has opened or attached it to a case",
    )


def service_request(
    service_request_id: str, report: ReportSummary, case: CaseRow, topology: Topology
) -> Open311ServiceRequest:
    category = topology.category(report.category_code)
    area_code = report.area_codes[0] if report.area_codes else None
    area = topology.area(area_code) if area_code else None
    lead = topology.department(case.lead_department) if case.lead_department else None
    return Open311ServiceRequest(
        service_request_id=service_request_id,
        status="closed" if case.status in CLOSED_STATUSES else "open",
        status_notes=case.status,
        service_name=category.name if category else None,
        service_code=report.category_code,
        agency_responsible=lead.name if lead else case.lead_department,
        requested_datetime=report.occurred_at,
        updated_datetime=case.updated_at,
        expected_datetime=case.resolve_deadline,
        address=area.name if area else None,
        address_id=area_code,
        lat=report.location.lat if report.location else None,
        long=report.location.lon if report.location else None,
    )


@router.get(
    "/requests/{service_request_id}.json",
    response_model=list[Open311ServiceRequest],
    summary="The status of one service request",
    responses={
        **ERRORS,
        200: answers([example_of(Open311ServiceRequest)]),
        404: {
            "model": list[Open311Error],
            "description": "no such request on a case (yet), or none the caller may see",
        },
    },
)
async def get_request(
    service_request_id: Annotated[
        str,
        Path(
            description="from the request's receipt",
            examples=[OPEN311_REQUEST_ID_EXAMPLE],
            pattern=PRINTABLE,
            max_length=MAX_CODE_LENGTH,
        ),
    ],
    read: ReaderDep,
    principal: PrincipalDep,
    topology: TopologyDep,
) -> list[Open311ServiceRequest]:
    """`open` while the case is being handled, `closed` from 办结 on (resolved, verified,
    closed); `status_notes` is the case's own status. A merged case answers with the case it
    joined. No personal data and no free text (a citizen's words may name people).

    The API keeps no copy of what it published: a request is 404 until the worker has put it
    on a case. Hotline publishers whose token names `/cityloop/open311` see every request
    posted here; departments and duty officers (and auditors) only those whose case they may
    see — any other is 404."""
    if principal.role is Role.PUBLISHER:
        may_open311(principal)
    key = idempotency_key_for(OPEN311_EVENT_SOURCE, service_request_id)
    found = await read(functools.partial(request_on_case, key=key))
    if found is None:
        raise _not_found(service_request_id)
    report, case = found
    if principal.role is not Role.PUBLISHER:
        try:
            await case_in_scope(read, case.case_id, principal, topology.city)
        except HTTPException as exc:  # its 404 would name the case
            if exc.status_code != status.HTTP_404_NOT_FOUND:
                raise
            raise _not_found(service_request_id) from None
    summary = ReportSummary.model_validate(report.body)
    return [service_request(service_request_id, summary, case, topology)]


def comma_list(text: str | None) -> list[str]:
    """A GeoReport v2 list parameter: values comma delimited (spaces around them tolerated)."""
    return [value.strip() for value in (text or "").split(",") if value.strip()]


def search_period(
    start_date: datetime | None, end_date: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """The requested_datetime range of a search: at most 90 days; the last 90 by default, or
    the 90 days after a start or before an end that comes alone."""
    if start_date is not None and end_date is not None:
        if end_date < start_date:
            raise _bad_request("end_date: before start_date")
        if end_date - start_date > SEARCH_SPAN:
            raise _bad_request("start_date to end_date: a search spans at most 90 days")
        return start_date, end_date
    if start_date is not None:
        try:
            return start_date, start_date + SEARCH_SPAN
        except OverflowError:  # 90 days after it is past the last time there is
            return start_date, datetime.max.replace(tzinfo=UTC)
    end = end_date or now
    return end - SEARCH_SPAN, end


@router.get(
    "/requests.json",
    response_model=list[Open311ServiceRequest],
    summary="Search service requests",
    responses={
        **ERRORS,
        200: answers([example_of(Open311ServiceRequest)]),
    },
)
async def search_requests(
    read: ReaderDep,
    principal: PrincipalDep,
    topology: TopologyDep,
    now: NowDep,
    service_request_id: Annotated[
        str | None,
        Query(
            description="request ids, comma delimited; when given, every other filter is "
            f"ignored (at most {MAX_SEARCH_IDS})",
            examples=[OPEN311_REQUEST_ID_EXAMPLE],
            pattern=PRINTABLE,
            max_length=MAX_SEARCH_IDS * (MAX_CODE_LENGTH + 1),
        ),
    ] = None,
    service_code: Annotated[
        str | None,
        Query(
            description="service codes, comma delimited; default: every service",
            examples=["pothole,garbage_exposed"],
            pattern=PRINTABLE,
            max_length=MAX_SEARCH_IDS * (MAX_CODE_LENGTH + 1),
        ),
    ] = None,
    start_date: Annotated[
        Moment | None,
        Query(
            description="earliest requested_datetime to include (ISO 8601 with its offset)",
            examples=["2026-11-22T00:00:00+08:00"],
        ),
    ] = None,
    end_date: Annotated[
        Moment | None,
        Query(
            description="latest requested_datetime to include; at most 90 days after start_date",
            examples=["2026-11-23T00:00:00+08:00"],
        ),
    ] = None,
    request_status: Annotated[
        str | None,
        Query(
            alias="status",
            description="open, closed, or both comma delimited; default: both",
            examples=["open"],
            pattern=r"^(open|closed)(,(open|closed))*$",
        ),
    ] = None,
) -> list[Open311ServiceRequest]:
    """GeoReport v2's search, newest request first, at most 1,000. `service_request_id` names
    requests outright and overrides every other filter; otherwise `service_code`, `status`
    and a range of `requested_datetime` (`start_date`…`end_date`, both included, at most 90
    days; by default the last 90 days) narrow the search.

    Who sees what is as for one request: hotline publishers of `/cityloop/open311` every
    request posted here; departments, duty officers and auditors only those whose case they
    may see — the others are simply not in the answer. A request appears once the worker has
    put it on a case; a request whose case was merged appears with the case it joined, once
    that case has taken the merged case's reports in."""
    if principal.role is Role.PUBLISHER:
        may_open311(principal)
    prefix = idempotency_key_for(OPEN311_EVENT_SOURCE, "")  # what every key of ours starts with
    query = (
        select(ReportRow, CaseRow)
        .join(CaseRow, CaseRow.case_id == ReportRow.case_id)
        .options(defer(CaseRow.state))
        # a merged case's reports are on the case it joined too: shown there, once
        .where(CaseRow.status != CaseStatus.MERGED.value)
    )
    if principal.role is not Role.PUBLISHER:
        query = visible_cases(query, principal, topology.city)
    ids = comma_list(service_request_id)
    if ids:
        if len(ids) > MAX_SEARCH_IDS:
            raise _bad_request(f"service_request_id: at most {MAX_SEARCH_IDS} at once")
        query = query.where(ReportRow.idempotency_key.in_([prefix + id_ for id_ in ids]))
    else:
        query = query.where(ReportRow.idempotency_key.startswith(prefix, autoescape=True))
        codes = comma_list(service_code)
        unknown = [code for code in codes if topology.category(code) is None]
        if unknown:
            raise _bad_request(f"service_code: no service {unknown[0]!r}; see services.json")
        if codes:
            query = query.where(ReportRow.category_code.in_(codes))
        start, end = search_period(start_date, end_date, now)
        query = query.where(ReportRow.occurred_at >= start, ReportRow.occurred_at <= end)
        wanted = set(comma_list(request_status))
        closed = [case_status.value for case_status in CLOSED_STATUSES]
        if wanted == {"open"}:
            query = query.where(CaseRow.status.not_in(closed))
        elif wanted == {"closed"}:
            query = query.where(CaseRow.status.in_(closed))
    query = query.order_by(ReportRow.occurred_at.desc(), ReportRow.idempotency_key.desc()).limit(
        MAX_SEARCH_RESULTS
    )
    found: dict[str, Open311ServiceRequest] = {}
    for report, case in await read(entities(query)):
        request_id = report.idempotency_key.removeprefix(prefix)
        if request_id not in found:
            summary = ReportSummary.model_validate(report.body)
            found[request_id] = service_request(request_id, summary, case, topology)
    return list(found.values())
