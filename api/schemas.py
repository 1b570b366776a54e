"""What the API answers: one schema per direction, personal data masked; each with an example."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cityloop.contracts import (
    Assignment,
    CallerContact,
    CategoryCandidate,
    DeskReason,
    GeoPoint,
    ReportSummary,
)
from handlers.assessment import Assessment, DeskAssessment, DeskGrouping, Grouping
from handlers.privacy import mask_caller, shown_text

COMPONENTS = "#/components/schemas/"
"""Where the OpenAPI document keeps its schemas: a reference written by hand starts here."""


def example(*values: dict[str, Any] | list[Any]) -> ConfigDict:
    """A model's examples, as OpenAPI shows them (tests check each one validates)."""
    return ConfigDict(json_schema_extra={"examples": list(values)})


def example_of(model: type[BaseModel]) -> Any:
    """The first example a model declares (for a response example elsewhere)."""
    extra = model.model_config.get("json_schema_extra")
    examples = extra.get("examples") if isinstance(extra, dict) else None
    assert isinstance(examples, list) and examples  # noqa: S101 - every API model has examples
    return examples[0]


CASE_ID_EXAMPLE = "CL-20261122-df5d112e90c6"
"""The case the example hotline event of `POST /v1/events/hotline` opens (ids are derived from
the event), so the examples tell one story."""
COMMAND_ID_EXAMPLE = "cmd-8c1e5b0f2a7d4c39b6e1f0a2d3c4b5a6"

ASSIGNMENT_EXAMPLE: dict[str, Any] = example_of(Assignment)
"""How the example case is routed: the contract's own example."""

CASE_SUMMARY_EXAMPLE: dict[str, Any] = {
    "case_id": CASE_ID_EXAMPLE,
    "status": "dispatched",
    "category_code": "manhole_cover_missing",
    "title": "下水道井盖丢失",
    "severity": None,
    "loop": "small",
    "handling_area": "510104001",
    "lead_department": "510104001.urban_management",
    "area_codes": ["510104001"],
    "opened_at": "2026-11-22T00:15:03Z",
    "updated_at": "2026-11-22T00:15:03Z",
    "report_count": 1,
    "duplicate_count": 0,
    "version": 2,
}

REPORT_EXAMPLE: dict[str, Any] = {
    "idempotency_key": "/12345/chengdu|WO-20261122-000123",
    "source": "hotline",
    "category_code": "manhole_cover_missing",
    "title": "下水道井盖丢失",
    "text": "春熙路口井盖不见了，很危险",
    "area_codes": ["510104001"],
    "location": None,
    "occurred_at": "2026-11-22T08:15:00+08:00",
    "received_at": "2026-11-22T00:15:03Z",
    "device_id": None,
    "cleared": False,
    "caller": {"name": "张*", "phone": "138****5678"},
}

TIMELINE_EXAMPLE: list[dict[str, Any]] = [
    {
        "version": 1,
        "type": "CaseOpened",
        "occurred_at": "2026-11-22T00:15:03Z",
        "actor": "system",
        "details": {
            "caused_by": "/12345/chengdu|WO-20261122-000123",
            "category_code": "manhole_cover_missing",
            "correlation_key": "municipal|612|2081",
            "reason": "new_case",
        },
    },
    {
        "version": 2,
        "type": "CaseDispatched",
        "occurred_at": "2026-11-22T00:15:03Z",
        "actor": "system",
        "details": {
            "assignment": ASSIGNMENT_EXAMPLE,
            "accept_deadline": "2026-11-22T00:30:03Z",
            "resolve_deadline": "2026-11-22T04:15:03Z",
            "reason": "routed",
        },
    },
]

EVENT_ACCEPTED_EXAMPLE: dict[str, Any] = {
    "event_id": "WO-20261122-000123",
    "source": "hotline",
    "topic": "cityloop.in.hotline",
    "partition": 2,
    "offset": 4711,
}


class CommandAccepted(BaseModel):
    model_config = example(
        {"command_id": COMMAND_ID_EXAMPLE, "status_url": f"/v1/commands/{COMMAND_ID_EXAMPLE}"}
    )

    command_id: str
    status_url: str


class CommandStatus(BaseModel):
    model_config = example(
        {
            "command_id": COMMAND_ID_EXAMPLE,
            "case_id": CASE_ID_EXAMPLE,
            "command_type": "accept",
            "actor": "dept:510104001.urban_management",
            "state": "applied",
            "reason": "applied",
            "event_types": ["CaseAccepted"],
            "issued_at": "2026-11-22T00:20:00Z",
            "decided_at": "2026-11-22T00:20:01Z",
        },
        {
            "command_id": COMMAND_ID_EXAMPLE,
            "case_id": CASE_ID_EXAMPLE,
            "command_type": "resolve",
            "actor": "dept:510104001.urban_management",
            "state": "rejected",
            "reason": "invalid_state",
            "event_types": [],
            "issued_at": "2026-11-22T00:20:00Z",
            "decided_at": "2026-11-22T00:20:01Z",
        },
    )

    command_id: str
    case_id: str | None
    command_type: str
    actor: str
    state: str = Field(description="pending, applied or rejected")
    reason: str | None = Field(description="why it was rejected (or 'applied')")
    event_types: list[str]
    issued_at: datetime
    decided_at: datetime | None


class EventAccepted(BaseModel):
    model_config = example(EVENT_ACCEPTED_EXAMPLE)

    event_id: str
    source: str
    topic: str
    partition: int
    offset: int


class FieldProblem(BaseModel):
    """One parameter or body field at fault, named by where it is."""

    model_config = example(
        {"field": "query.limit", "message": "Input should be less than or equal to 500"}
    )

    field: str = Field(description="where: path, query, header or body, then the field's path")
    message: str


class Problem(BaseModel):
    """Why a request was refused: `reason` for programs, `message` for people."""

    model_config = example(
        {"reason": "not_found", "message": f"no case {CASE_ID_EXAMPLE}"},
        {
            "reason": "invalid_request",
            "message": "query.limit: Input should be less than or equal to 500",
            "fields": [
                {"field": "query.limit", "message": "Input should be less than or equal to 500"}
            ],
        },
    )

    reason: str = Field(examples=["invalid_payload"])
    message: str = Field(examples=["data.caller_phone: String should match pattern ..."])
    fields: list[FieldProblem] = Field(
        default_factory=list,
        description="for `invalid_request`: each parameter or body field at fault",
    )


class ProblemResponse(BaseModel):
    """Every refusal of the /v1 API has this body."""

    model_config = example(
        {"detail": {"reason": "unauthenticated", "message": "a bearer token is required"}}
    )

    detail: Problem


FREE_TEXT = (
    "what a person wrote: the phone, resident ID and bank card numbers in it are masked for "
    "every role but duty officers (138****1003)"
)


class ReportPublic(BaseModel):
    model_config = example(REPORT_EXAMPLE)

    idempotency_key: str
    source: str
    category_code: str
    title: str = Field(description=FREE_TEXT)
    text: str = Field(description=FREE_TEXT)
    area_codes: list[str]
    location: GeoPoint | None
    occurred_at: datetime
    received_at: datetime
    device_id: str | None
    cleared: bool
    caller: CallerContact | None = Field(description="masked for every role but duty officers")

    @classmethod
    def from_summary(cls, summary: ReportSummary, unmasked: bool = False) -> ReportPublic:
        return cls(
            idempotency_key=summary.idempotency_key,
            source=summary.source.value,
            category_code=summary.category_code,
            title=shown_text(summary.title, unmasked),
            text=shown_text(summary.text, unmasked),
            area_codes=summary.area_codes,
            location=summary.location,
            occurred_at=summary.occurred_at,
            received_at=summary.received_at,
            device_id=summary.device_id,
            cleared=summary.cleared,
            caller=summary.caller if unmasked else mask_caller(summary.caller),
        )


class TimelineEntry(BaseModel):
    model_config = example(*TIMELINE_EXAMPLE)

    version: int
    type: str
    occurred_at: datetime
    actor: str
    details: dict[str, Any] = Field(
        description="the case event's own fields, reports left out; texts in them (a title, a "
        "note, a reason) with their personal numbers masked for every role but duty officers"
    )


class CaseSummary(BaseModel):
    model_config = example(CASE_SUMMARY_EXAMPLE)

    case_id: str
    status: str
    category_code: str
    title: str = Field(description=FREE_TEXT)
    severity: str | None
    loop: str | None
    handling_area: str | None
    lead_department: str | None
    area_codes: list[str]
    opened_at: datetime
    updated_at: datetime
    report_count: int
    duplicate_count: int
    version: int


class DeskPublic(BaseModel):
    """The 12345 dispatch desk's view of a case that waits (or waited) there."""

    model_config = example(
        {
            "desk": "desk:510104",
            "reasons": ["low_confidence"],
            "dispatch_deadline": "2026-11-22T00:45:03Z",
            "candidates": [
                {"code": "wage_arrears", "score": 0.46},
                {"code": "labour_contract", "score": 0.31},
                {"code": "social_insurance", "score": 0.08},
            ],
            "given_category_code": None,
        }
    )

    desk: str = Field(description="desk:<area code> of the 12345 centre that dispatches it")
    reasons: list[DeskReason] = Field(description="why a person decides (the latest visit)")
    dispatch_deadline: datetime | None = Field(description="while it waits: dispatch by then")
    candidates: list[CategoryCandidate] = Field(description="the classifier's top categories")
    given_category_code: str | None = Field(
        description="the sender's category code, verbatim, when the topology does not know it"
    )


class CasePublic(CaseSummary):
    model_config = example(
        {
            **CASE_SUMMARY_EXAMPLE,
            "correlation_key": "municipal|612|2081",
            "location": {"lat": 30.650508, "lon": 104.076508},
            "assignment": ASSIGNMENT_EXAMPLE,
            "accept_deadline": "2026-11-22T00:30:03Z",
            "resolve_deadline": "2026-11-22T04:15:03Z",
            "reports": [REPORT_EXAMPLE],
            "timeline": TIMELINE_EXAMPLE,
        }
    )

    correlation_key: str = Field(description="where the case's work is partitioned")
    location: GeoPoint | None
    assignment: Assignment | None
    accept_deadline: datetime | None
    resolve_deadline: datetime | None
    desk: DeskPublic | None = Field(
        default=None, description="the dispatch desk's view, if the case ever waited there"
    )
    reports: list[ReportPublic]
    timeline: list[TimelineEntry]


class CasePage(BaseModel):
    model_config = example(
        {
            "items": [CASE_SUMMARY_EXAMPLE],
            "next_cursor": "WyIyMDI2LTExLTIyVDAwOjE1OjAzKzAwOjAwIiwg"
            "IkNMLTIwMjYxMTIyLWRmNWQxMTJlOTBjNiJd",
        },
        {"items": [], "next_cursor": None},
    )

    items: list[CaseSummary]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class CaseChange(BaseModel):
    """One case event as the live stream sends it (`id:` is `seq`), with the case as it is now."""

    model_config = example(
        {"seq": 1042, "event": TIMELINE_EXAMPLE[1], "case": CASE_SUMMARY_EXAMPLE}
    )

    seq: int = Field(description="position in the stream: resume after it with Last-Event-ID")
    event: TimelineEntry
    case: CaseSummary


class BatchAccepted(BaseModel):
    """Every event of a batch, as the broker acknowledged it, in the order they were posted."""

    model_config = example(
        {
            "source": "hotline",
            "count": 2,
            "items": [
                EVENT_ACCEPTED_EXAMPLE,
                {**EVENT_ACCEPTED_EXAMPLE, "event_id": "WO-20261122-000124", "offset": 4712},
            ],
        }
    )

    source: str
    count: int
    items: list[EventAccepted]


class BatchItemProblem(BaseModel):
    """Why one item of a batch was refused."""

    model_config = example(
        {
            "index": 1,
            "reason": "invalid_payload",
            "message": "data.caller_phone: String should match pattern '^\\+?[0-9 \\-]{5,20}$'",
        }
    )

    index: int = Field(description="position of the item in the posted array, from 0")
    reason: str = Field(examples=["invalid_payload"])
    message: str = Field(examples=["data.caller_phone: String should match pattern ..."])


class BatchProblem(Problem):
    """Why a batch was refused; for `invalid_items`, every bad item by its index. Nothing was
    published."""

    model_config = example(
        {
            "reason": "invalid_items",
            "message": "1 of 2 events refused; none was published",
            "items": [
                {
                    "index": 1,
                    "reason": "invalid_payload",
                    "message": "data.caller_phone: String should match pattern "
                    "'^\\+?[0-9 \\-]{5,20}$'",
                }
            ],
        },
        {"reason": "empty_batch", "message": "the array holds no events"},
    )

    items: list[BatchItemProblem] = Field(
        default_factory=list,
        description="for `invalid_items` and `source_not_allowed`: each item refused",
    )


class BatchProblemResponse(BaseModel):
    """A refused batch: the refusal of every other route, with the items at fault."""

    model_config = example(
        {
            "detail": {
                "reason": "invalid_items",
                "message": "1 of 2 events refused; none was published",
                "items": [
                    {
                        "index": 1,
                        "reason": "unknown_category",
                        "message": "no category 'ufo'",
                    }
                ],
            }
        }
    )

    detail: BatchProblem


class AssessmentTable(BaseModel):
    """Assessment figures (考核) over the cases opened in [since, until), one row per group."""

    model_config = example(
        {
            "by": "department",
            "since": "2026-10-23T00:00:00Z",
            "until": "2026-11-22T00:00:00Z",
            "rows": [
                {
                    "group": "510104001.urban_management",
                    "received": 42,
                    "accepted": 40,
                    "accepted_on_time": 0.95,
                    "resolved": 31,
                    "resolved_on_time": 0.9,
                    "median_minutes_to_accept": 12.5,
                    "median_minutes_to_resolve": 240.0,
                    "returns": 2,
                    "escalations": 3,
                    "reopen_rate": 0.03,
                    "resolution_rate": 0.74,
                }
            ],
        }
    )

    by: Grouping
    since: datetime
    until: datetime
    rows: list[Assessment]


class DeskTable(BaseModel):
    """The dispatch desk's figures (派单考核) over the cases opened in [since, until)."""

    model_config = example(
        {
            "by": "category",
            "since": "2026-10-23T00:00:00Z",
            "until": "2026-11-22T00:00:00Z",
            "rows": [
                {
                    "group": "wage_arrears",
                    "sent_to_desk": 12,
                    "dispatched_given": 30,
                    "dispatched_auto": 41,
                    "dispatched_by_hand": 11,
                    "redispatched": 3,
                    "not_ours_returns": 2,
                    "misdispatch_rate": 0.024,
                    "dispatched_on_time": 0.9,
                    "median_minutes_at_desk": 7.5,
                }
            ],
        }
    )

    by: DeskGrouping
    since: datetime
    until: datetime
    rows: list[DeskAssessment]


class Liveness(BaseModel):
    """The process answers; what the projector has done so far; the topology in service."""

    model_config = example(
        {
            "status": "ok",
            "projected_events": 1042,
            "projector_error": None,
            "topology_version": "chengdu-2026.1",
        },
        {
            "status": "ok",
            "projected_events": 17,
            "projector_error": "OperationalError: database is locked",
            "topology_version": "chengdu-2026.1",
        },
    )

    status: Literal["ok"]
    projected_events: int = Field(description="case events the read model applied since start")
    projector_error: str | None = Field(description="the projector's last error, if any")
    topology_version: str = Field(
        description="the topology events are validated against: the version in service on the "
        "topology topic (`cityloop topology publish`), or the file's until one is published"
    )


class Readiness(BaseModel):
    """Each dependency: `ok`, or `unreachable: <why>`."""

    model_config = example(
        {"broker": "ok", "database": "ok"},
        {"broker": "unreachable: KafkaConnectionError", "database": "ok"},
    )

    broker: str
    database: str


# --- Open311 GeoReport v2: the standard's field names, not ours --------------------------


OPEN311_REQUEST_ID_EXAMPLE = "O311-5f0c2d6e9b7a4e0f8a1b2c3d4e5f6a7b"


class Open311Service(BaseModel):
    """A category of matter, as an Open311 service."""

    model_config = example(
        {
            "service_code": "pothole",
            "service_name": "道路坑洼",
            "description": "道路坑洼",
            "metadata": False,
            "type": "realtime",
            "keywords": "坑洼,坑,路面破损,pothole,road damage",
            "group": "municipal",
        }
    )

    service_code: str = Field(examples=["pothole"])
    service_name: str = Field(examples=["道路坑洼"])
    description: str
    metadata: bool = Field(description="false: no service takes extra attributes")
    type: Literal["realtime", "batch", "blackbox"]
    keywords: str = Field(description="comma-separated", examples=["坑洼,坑,pothole"])
    group: str = Field(description="the category's family", examples=["municipal"])


class Open311RequestCreated(BaseModel):
    model_config = example(
        {
            "service_request_id": OPEN311_REQUEST_ID_EXAMPLE,
            "service_notice": "received; its status is at requests/{id}.json once a case is opened",
            "account_id": None,
        }
    )

    service_request_id: str = Field(examples=[OPEN311_REQUEST_ID_EXAMPLE])
    service_notice: str | None
    account_id: str | None = None


class Open311ServiceRequest(BaseModel):
    """The status of one service request; never the caller's personal data."""

    model_config = example(
        {
            "service_request_id": OPEN311_REQUEST_ID_EXAMPLE,
            "status": "open",
            "status_notes": "accepted",
            "service_name": "道路坑洼",
            "service_code": "pothole",
            "agency_responsible": "春熙街道综合行政执法队",
            "service_notice": None,
            "requested_datetime": "2026-11-22T00:15:00Z",
            "updated_datetime": "2026-11-22T00:31:00Z",
            "expected_datetime": "2026-11-23T00:15:00Z",
            "address": "红星社区",
            "address_id": "510104001001",
            "zipcode": None,
            "lat": 30.6612,
            "long": 104.0779,
            "media_url": None,
        }
    )

    service_request_id: str
    status: Literal["open", "closed"]
    status_notes: str = Field(description="the case's status: dispatched, accepted, resolved...")
    service_name: str | None
    service_code: str
    agency_responsible: str | None = Field(description="the lead department")
    service_notice: str | None = None
    requested_datetime: datetime
    updated_datetime: datetime
    expected_datetime: datetime | None = Field(description="the resolve deadline")
    address: str | None = Field(description="the name of the area the request was placed in")
    address_id: str | None = Field(description="that area's code")
    zipcode: str | None = None
    lat: float | None
    long: float | None
    media_url: str | None = None


class Open311Error(BaseModel):
    """An Open311 refusal; a refused request answers a list of these."""

    model_config = example({"code": 400, "description": "service_code: no service 'teleport'"})

    code: int = Field(examples=[400])
    description: str = Field(examples=["service_code: no service 'teleport'"])
