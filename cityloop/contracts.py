"""Event contracts: what travels on each cityloop topic (a leaf module: imports nothing of ours)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)

CONTRACT_VERSION = "1"
EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)

AreaCode = Annotated[str, Field(pattern=r"^[0-9]{6}([0-9]{3}([0-9]{3}([0-9]{3})?)?)?$")]
"""GB/T 2260 six-digit code, extended by three digits per level below the district."""


class Contract(BaseModel):
    """Base of every wire model: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Source(StrEnum):
    """The four kinds of departmental system that publish events."""

    HOTLINE = "hotline"
    IOT = "iot"
    GRID = "grid"
    DUTY = "duty"


class Severity(StrEnum):
    """The national four-grade scale: I 特别重大, II 重大, III 较大, IV 一般."""

    I = "I"  # noqa: E741 - the grade is called I
    II = "II"
    III = "III"
    IV = "IV"


class Loop(StrEnum):
    """The four loops of 大中小微循环, from the lowest up."""

    MICRO = "micro"
    SMALL = "small"
    MEDIUM = "medium"
    BIG = "big"


class AreaLevel(StrEnum):
    CITY = "city"
    DISTRICT = "district"
    STREET = "street"
    COMMUNITY = "community"
    GRID = "grid"


class Mode(StrEnum):
    """平急切换: normal operation or emergency operation."""

    NORMAL = "normal"
    EMERGENCY = "emergency"


class GeoPoint(Contract):
    """WGS-84 coordinates."""

    lat: float = Field(ge=-90, le=90, examples=[30.6598])
    lon: float = Field(ge=-180, le=180, examples=[104.0633])

    @field_validator("lat", "lon")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("coordinate must be a finite number")
        return value


def _not_before_2000(value: datetime) -> datetime:
    if value < EARLIEST_EVENT_TIME:
        raise ValueError("timestamp is before 2000-01-01")
    return value


WRITTEN_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def written_time(value: object) -> object:
    """A time from outside is ISO 8601 text (or a datetime already made), never a number:
    pydantic would read 1764000000, or "1764000000", as seconds since 1970, which is not what a
    system that sent a number meant. Text that starts with a date goes on to be parsed as
    before."""
    if isinstance(value, datetime) or (isinstance(value, str) and WRITTEN_DATE.match(value)):
        return value
    raise ValueError(
        "a time is ISO 8601 text with its UTC offset (2026-11-22T08:15:00+08:00); "
        "numbers are not taken as times"
    )


EventTime = Annotated[
    AwareDatetime,
    BeforeValidator(written_time),
    Field(description="ISO 8601 with a UTC offset"),
]
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _printable(value: str) -> str:
    """Text from outside may carry tabs and line breaks, never other control characters: a NUL
    cannot even be stored in PostgreSQL's text, and none of them means anything in a report."""
    if CONTROL_CHARACTERS.search(value):
        raise ValueError("control characters (such as NUL) are not allowed in text")
    return value


Printable = AfterValidator(_printable)
ShortText = Annotated[str, Field(min_length=1, max_length=200), Printable]

CODE_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _one_line(value: str) -> str:
    """An id or a code is not free text: no control character at all, a tab and a line break
    (of any kind) included. An id with a newline in it would split any line it is written on
    and match nothing a person types."""
    found = CODE_CONTROL_CHARACTERS.search(value)
    if found:
        raise ValueError(
            f"an id or code has no control characters ({found.group()!r} at {found.start()})"
        )
    return value


Identifier = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_one_line)]
"""An id or a code (an event's `id` and `source`, an order's id, a category code): printable,
on one line."""
LongText = Annotated[str, Field(min_length=1, max_length=4000), Printable]
CitizenText = Annotated[str, Field(min_length=1, max_length=20_000), Printable]
"""What a citizen wrote: real complaints run long, and a long one must still reach someone
(the classifier reads the first part; nothing is refused for its length below 20,000)."""


# --- the four source payloads -------------------------------------------------------------


class HotlineWorkOrder(Contract):
    """A 12345 hotline work order (投诉举报件)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "order_id": "WO-20261122-000123",
                    "received_at": "2026-11-22T08:15:00+08:00",
                    "channel": "phone",
                    "category_code": "manhole_cover_missing",
                    "title": "井盖丢失",
                    "text": "红星路口井盖不见了，很危险",
                    "address": "锦江区红星路二段口",
                    "area_code": "510104002001",
                    "caller_name": "王芳",
                    "caller_phone": "13800001003",
                    "urgency": "urgent",
                }
            ]
        },
    )

    order_id: Identifier
    received_at: EventTime
    channel: Literal["phone", "app", "web", "wechat", "sms", "other"] = "phone"
    category_code: Identifier | None = Field(
        default=None, description="the call taker's category code, when one was chosen"
    )
    title: ShortText
    text: CitizenText
    address: Annotated[str, Field(max_length=400), Printable] = ""
    area_code: AreaCode | None = None
    location: GeoPoint | None = None
    caller_name: Annotated[str, Field(max_length=100), Printable] | None = Field(
        default=None, description="personal data: masked for roles that do not need it"
    )
    caller_phone: Annotated[str, Field(pattern=r"^\+?[0-9 \-]{5,20}$")] | None = Field(
        default=None, description="personal data: masked for roles that do not need it"
    )
    urgency: Literal["normal", "urgent", "very_urgent"] = "normal"

    _check_time = field_validator("received_at")(_not_before_2000)

    @model_validator(mode="after")
    def _placed(self) -> HotlineWorkOrder:
        if self.area_code is None and self.location is None and not self.address.strip():
            raise ValueError("a work order needs an area_code, a location or an address")
        return self


class IoTAlarm(Contract):
    """An alarm (or its clearing) from a CIM-platform sensing device (物联感知)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "alarm_id": "AL-2001",
                    "device_id": "WL-0042",
                    "sensor_type": "water_level",
                    "reading": 0.62,
                    "threshold": 0.30,
                    "unit": "m",
                    "location": {"lat": 30.6571, "lon": 104.0832},
                    "area_code": "510104001001",
                    "raised_at": "2026-11-22T08:06:00+08:00",
                    "cleared": False,
                }
            ]
        },
    )

    alarm_id: Identifier
    device_id: Identifier
    sensor_type: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,40}$")]
    reading: float
    threshold: float
    unit: Annotated[str, Field(max_length=20), Printable]
    location: GeoPoint
    area_code: AreaCode | None = None
    raised_at: EventTime
    cleared: bool = Field(default=False, description="true when the device reports the alarm over")

    _check_time = field_validator("raised_at")(_not_before_2000)

    @field_validator("reading", "threshold")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class GridReport(Contract):
    """A grid inspector's patrol report (网格员巡查上报)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "report_id": "GR-3001",
                    "inspector_id": "GI-0451",
                    "grid_id": "510104001001001",
                    "category_code": "garbage_exposed",
                    "text": "沿街商铺门口垃圾暴露",
                    "photo_refs": ["oss://grid/GR-3001/1.jpg"],
                    "location": {"lat": 30.6555, "lon": 104.0801},
                    "reported_at": "2026-11-22T08:09:00+08:00",
                }
            ]
        },
    )

    report_id: Identifier
    inspector_id: Identifier
    grid_id: AreaCode
    category_code: Identifier
    text: LongText
    photo_refs: Annotated[
        list[Annotated[str, Field(max_length=400), Printable]], Field(max_length=20)
    ] = []
    location: GeoPoint | None = None
    reported_at: EventTime

    _check_time = field_validator("reported_at")(_not_before_2000)


class DutyReport(Contract):
    """A duty office's emergency report (总值班室紧急信息报送)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "report_id": "DR-4001",
                    "duty_office": "510104",
                    "severity": "II",
                    "category_code": "gas_leak",
                    "casualties": 0,
                    "affected_areas": ["510104001", "510104002"],
                    "summary": "两街道交界处燃气管道泄漏，已疏散周边群众",
                    "reported_at": "2026-11-22T08:11:00+08:00",
                }
            ]
        },
    )

    report_id: Identifier
    duty_office: AreaCode = Field(description="area code of the reporting duty office")
    severity: Severity
    category_code: Identifier
    casualties: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    affected_areas: Annotated[list[AreaCode], Field(min_length=1, max_length=50)]
    location: GeoPoint | None = None
    summary: LongText
    reported_at: EventTime

    _check_time = field_validator("reported_at")(_not_before_2000)


SourcePayload = HotlineWorkOrder | IoTAlarm | GridReport | DutyReport

EVENT_TYPES: dict[Source, str] = {
    Source.HOTLINE: "cn.cityloop.hotline.work_order.v1",
    Source.IOT: "cn.cityloop.iot.alarm.v1",
    Source.GRID: "cn.cityloop.grid.report.v1",
    Source.DUTY: "cn.cityloop.duty.report.v1",
}
PAYLOADS: dict[Source, type[SourcePayload]] = {
    Source.HOTLINE: HotlineWorkOrder,
    Source.IOT: IoTAlarm,
    Source.GRID: GridReport,
    Source.DUTY: DutyReport,
}
SOURCE_OF_TYPE: dict[str, Source] = {event_type: src for src, event_type in EVENT_TYPES.items()}


def wire_bytes(record: BaseModel) -> bytes:
    """A contract as it goes on a topic: `record.model_dump_json().encode()`, without decoding
    the serializer's bytes to a string and encoding them back (a kilobyte each way, for every
    incident and case event)."""
    return record.__pydantic_serializer__.to_json(record)


def idempotency_key_for(source: str, event_id: str) -> str:
    """The idempotency key of the CloudEvent with this `source` and `id` (the pair CloudEvents
    makes unique): what a source topic's records are keyed by and a case names its reports by.
    Every place that builds one builds it here."""
    return f"{source}|{event_id}"


class CloudEvent(Contract):
    """The wire envelope: CloudEvents 1.0, structured JSON mode. `source` + `id` is the
    idempotency key (`idempotency_key_for`)."""

    model_config = ConfigDict(
        frozen=True,
        extra="allow",
        populate_by_name=True,
        json_schema_extra={
            # the example story's first step: this work order opens the example case
            "examples": [
                {
                    "specversion": "1.0",
                    "id": "WO-20261122-000123",
                    "source": "/12345/chengdu",
                    "type": EVENT_TYPES[Source.HOTLINE],
                    "time": "2026-11-22T08:15:00+08:00",
                    "data": {
                        "order_id": "WO-20261122-000123",
                        "received_at": "2026-11-22T08:15:00+08:00",
                        "title": "下水道井盖丢失",
                        "text": "春熙路口井盖不见了，很危险",
                        "area_code": "510104001",
                        "caller_name": "张三",
                        "caller_phone": "13812345678",
                    },
                }
            ]
        },
    )

    specversion: Literal["1.0"]
    id: Identifier
    source: Identifier
    type: Identifier
    time: EventTime | None = None
    subject: Annotated[str, Field(max_length=200), Printable] | None = None
    datacontenttype: Literal["application/json"] | None = "application/json"
    data: dict[str, Any]

    @property
    def idempotency_key(self) -> str:
        return idempotency_key_for(self.source, self.id)


# --- normalised incident ------------------------------------------------------------------


class CallerContact(Contract):
    """Personal data of a hotline caller."""

    model_config = ConfigDict(
        json_schema_extra={
            # the example work order's caller, as a duty officer sees it and as others do
            "examples": [
                {"name": "张三", "phone": "13812345678"},
                {"name": "张*", "phone": "138****5678"},
            ]
        }
    )

    name: str | None = None
    phone: str | None = None


class Origin(Contract):
    """Where a record was read from: enough to find it again."""

    topic: str
    partition: int
    offset: int


UNCLASSIFIED = "unclassified"
"""The category of a case that waits at the dispatch desk with no category decided: it is no
category of the topology, routes nowhere and correlates with nothing."""


class DeskReason(StrEnum):
    """Why a report waits at the 12345 dispatch desk (人工派单) instead of being dispatched."""

    LOW_CONFIDENCE = "low_confidence"
    """The classifier was not sure enough of any category."""
    UNKNOWN_CATEGORY_CODE = "unknown_category_code"
    """The sender named a category code the topology does not know (kept verbatim)."""
    UNPLACED = "unplaced"
    """No area code, no coordinates, and no place name recognised in the address or text."""
    AMBIGUOUS_PLACE = "ambiguous_place"
    """The address names several places that could be meant."""
    RETURNED_NOT_OURS = "returned_not_ours"
    """The department it was dispatched to returned it as not its matter (退单: 非本单位职责)."""


class TriageDecision(StrEnum):
    GIVEN = "given"
    """The sender's category code, known to the topology."""
    AUTO = "auto"
    """The classifier's category, confident enough to dispatch without a person."""
    DESK = "desk"
    """A person at the dispatch desk decides."""


class CategoryCandidate(Contract):
    """A category the classifier considered, with its probability."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"examples": [{"code": "wage_arrears", "score": 0.46}]},
    )

    code: str
    score: Annotated[float, Field(ge=0, le=1)]


class Triage(Contract):
    """How a report's category and place were decided, and what the desk is shown."""

    decision: TriageDecision
    desk_reasons: list[DeskReason] = []
    confidence: float | None = Field(
        default=None, description="the classifier's probability of the top class, 0-1"
    )
    candidates: list[CategoryCandidate] = Field(default=[], description="the top 3, best first")
    model_version: str | None = None
    given_category_code: str | None = Field(
        default=None, description="the code the sender gave, verbatim, when the topology lacks it"
    )
    area_candidates: list[str] = Field(
        default=[], description="places the address or text names, when not exactly one"
    )
    place_note: str | None = Field(
        default=None, description="e.g. the address names another district than the area code"
    )
    urgent: bool = Field(
        default=False, description="a very urgent order or a graded emergency: the desk's short SLA"
    )


class Incident(Contract):
    """One report of something happening, whatever its source, in one shape."""

    incident_id: str = Field(description="stable id derived from the idempotency key")
    idempotency_key: str
    source: Source
    event_id: str
    event_source: str
    category_code: str
    title: str
    text: str = ""
    area_codes: list[str] = Field(min_length=1)
    location: GeoPoint | None = None
    location_method: Literal[
        "reported_area", "polygon", "nearest_centroid", "address_text", "unplaced"
    ] = "reported_area"
    severity: Severity | None = None
    occurred_at: datetime
    received_at: datetime
    device_id: str | None = None
    sensor_type: str | None = None
    cleared: bool = False
    reporter: str | None = Field(default=None, description="inspector id or duty office")
    caller: CallerContact | None = None
    casualties: int = 0
    origin: Origin | None = None
    content_digest: str = Field(
        default="",
        description="hash of the payload, to tell a resend from a different event reusing an id",
    )
    triage: Triage | None = Field(
        default=None, description="how category and place were decided (human reports)"
    )

    @property
    def at_desk(self) -> bool:
        """Whether a person must decide its category or place before anything is dispatched."""
        return self.triage is not None and self.triage.decision is TriageDecision.DESK


# --- case events (past tense) -------------------------------------------------------------


class CaseEventBase(Contract):
    event_id: str = Field(description="deterministic: the same decision yields the same id")
    case_id: str
    version: int = Field(ge=1, description="position in the case's history, from 1")
    occurred_at: datetime
    actor: str = Field(default="system", description="who caused it: system, dept:<id>, ...")
    caused_by: str | None = Field(
        default=None, description="the command id or report key this event answers"
    )


class ReportSummary(Contract):
    """What a case keeps of each report attached to it."""

    incident_id: str
    idempotency_key: str
    source: Source
    category_code: str
    title: str
    text: str = ""
    area_codes: list[str]
    location: GeoPoint | None = None
    occurred_at: datetime
    received_at: datetime
    device_id: str | None = None
    cleared: bool = False
    caller: CallerContact | None = None
    origin: Origin | None = Field(default=None, description="the record it was read from")
    content_digest: str = ""


class RoutingReason(Contract):
    """One step of a routing decision and why it was taken."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "rule": "lowest_capable_level",
                    "detail": "manhole_cover_missing is handled from the small loop up",
                }
            ]
        }
    )

    rule: str
    detail: str = ""


class Assignment(Contract):
    """Who handles a case, at which loop, and where it goes next."""

    model_config = ConfigDict(
        json_schema_extra={
            # how the bundled Chengdu topology routes the example work order's case
            "examples": [
                {
                    "loop": "small",
                    "handling_area": "510104001",
                    "lead_department": "510104001.urban_management",
                    "co_departments": [],
                    "coordinating_centre": "centre:510104001",
                    "escalation_chain": ["510104001", "510104", "510100"],
                    "reasons": [
                        {
                            "rule": "lowest_capable_level",
                            "detail": "manhole_cover_missing is handled from the small loop up",
                        },
                        {
                            "rule": "lead_department",
                            "detail": "urban_management: 510104001.urban_management",
                        },
                    ],
                    "topology_version": "chengdu-2026.1",
                }
            ]
        }
    )

    loop: Loop
    handling_area: str
    lead_department: str
    co_departments: list[str] = []
    coordinating_centre: str | None = None
    escalation_chain: list[str] = Field(default=[], description="areas from here up to the city")
    reasons: list[RoutingReason] = []
    topology_version: str


class CaseOpened(CaseEventBase):
    type: Literal["CaseOpened"] = "CaseOpened"
    category_code: str
    title: str
    severity: Severity | None = None
    area_codes: list[str]
    location: GeoPoint | None = None
    location_precise: bool = Field(
        default=True, description="false when the location is only the area's centroid"
    )
    correlation_key: str
    lead: bool = Field(default=False, description="an unverified lead (线索) for the community")
    first_report: ReportSummary
    reason: str = "new_case"


class CaseDispatched(CaseEventBase):
    type: Literal["CaseDispatched"] = "CaseDispatched"
    assignment: Assignment
    category_code: str | None = Field(
        default=None, description="the category it was dispatched as (for the desk's figures)"
    )
    accept_deadline: datetime | None = None
    resolve_deadline: datetime | None = None
    reason: str = "routed"


class CaseSentToDesk(CaseEventBase):
    """The case waits at a 12345 dispatch desk (人工派单) for a person to decide its category,
    place or department; nothing is dispatched until then."""

    type: Literal["CaseSentToDesk"] = "CaseSentToDesk"
    desk: str = Field(description="desk:<area code> of the 12345 centre that dispatches it")
    reasons: list[DeskReason] = Field(min_length=1)
    candidates: list[CategoryCandidate] = []
    area_candidates: list[str] = []
    given_category_code: str | None = None
    dispatch_deadline: datetime


class CaseReclassified(CaseEventBase):
    """A dispatcher set the case's category (and, for a case that could not be placed, its
    area); the dispatch that follows routes it afresh."""

    type: Literal["CaseReclassified"] = "CaseReclassified"
    from_category: str
    to_category: str
    area_codes: list[str] | None = Field(
        default=None, description="the areas the dispatcher placed it in, when they changed"
    )
    reason: str


class ReportAttached(CaseEventBase):
    type: Literal["ReportAttached"] = "ReportAttached"
    report: ReportSummary
    reason: str = "attached_to_open_case"


class DuplicateReceived(CaseEventBase):
    """An exact re-send of a report the case already has (same source + id)."""

    type: Literal["DuplicateReceived"] = "DuplicateReceived"
    idempotency_key: str
    origin: Origin | None = None
    reason: str = "exact_duplicate"


class LeadConfirmed(CaseEventBase):
    """The community verified the lead on site (巡查核实): it is a real case now."""

    type: Literal["LeadConfirmed"] = "LeadConfirmed"
    reason: str


class LeadRejected(CaseEventBase):
    """The community found a false alarm; the lead closes."""

    type: Literal["LeadRejected"] = "LeadRejected"
    reason: str
    device_id: str | None = None
    device_false_alarms: int = 0
    device_flagged: bool = False


class CaseAccepted(CaseEventBase):
    type: Literal["CaseAccepted"] = "CaseAccepted"
    department: str


class ProgressReported(CaseEventBase):
    """处置: the handling department reports what it is doing."""

    type: Literal["ProgressReported"] = "ProgressReported"
    department: str
    note: str


class CaseReturned(CaseEventBase):
    type: Literal["CaseReturned"] = "CaseReturned"
    department: str
    reason: str


class AssistanceAdded(CaseEventBase):
    """协办: a co-handling department joins the case."""

    type: Literal["AssistanceAdded"] = "AssistanceAdded"
    department: str
    reason: str


class ExtensionRequested(CaseEventBase):
    type: Literal["ExtensionRequested"] = "ExtensionRequested"
    department: str
    minutes: int
    reason: str


class ExtensionGranted(CaseEventBase):
    type: Literal["ExtensionGranted"] = "ExtensionGranted"
    minutes: int
    resolve_deadline: datetime


class CaseEscalated(CaseEventBase):
    type: Literal["CaseEscalated"] = "CaseEscalated"
    from_loop: Loop
    to_loop: Loop
    reason: str


class SupervisionNoticeIssued(CaseEventBase):
    """督办: a supervision notice to the department that missed a deadline."""

    type: Literal["SupervisionNoticeIssued"] = "SupervisionNoticeIssued"
    department: str
    reason: str
    deadline: datetime


class CaseResolved(CaseEventBase):
    type: Literal["CaseResolved"] = "CaseResolved"
    department: str
    resolution: str


class CaseVerified(CaseEventBase):
    """核实 / 回访: the centre checked the result and called the citizen back."""

    type: Literal["CaseVerified"] = "CaseVerified"
    satisfied: bool
    note: str = ""


class CaseReopened(CaseEventBase):
    type: Literal["CaseReopened"] = "CaseReopened"
    reason: str


class CaseMerged(CaseEventBase):
    """This case was found to be the same matter as another and joins it."""

    type: Literal["CaseMerged"] = "CaseMerged"
    into_case_id: str
    reason: str


class CaseClosed(CaseEventBase):
    type: Literal["CaseClosed"] = "CaseClosed"
    reason: str


CaseEvent = Annotated[
    CaseOpened
    | CaseDispatched
    | CaseSentToDesk
    | CaseReclassified
    | ReportAttached
    | DuplicateReceived
    | LeadConfirmed
    | LeadRejected
    | CaseAccepted
    | ProgressReported
    | CaseReturned
    | AssistanceAdded
    | ExtensionRequested
    | ExtensionGranted
    | CaseEscalated
    | SupervisionNoticeIssued
    | CaseResolved
    | CaseVerified
    | CaseReopened
    | CaseMerged
    | CaseClosed,
    Field(discriminator="type"),
]
CASE_EVENT_ADAPTER: TypeAdapter[CaseEvent] = TypeAdapter(CaseEvent)


# --- department and duty-officer commands (imperative) ------------------------------------


class CommandBase(Contract):
    command_id: Identifier
    case_id: Identifier
    actor: Identifier = Field(
        description="dept:<department id>, centre:<area code>, desk:<area code>, or system"
    )
    issued_at: AwareDatetime


class AcceptCase(CommandBase):
    type: Literal["accept"] = "accept"


class ReportProgress(CommandBase):
    type: Literal["progress"] = "progress"
    note: ShortText


class ReturnCase(CommandBase):
    type: Literal["return"] = "return"
    reason: ShortText


class RequestAssistance(CommandBase):
    type: Literal["request_assistance"] = "request_assistance"
    department: Identifier
    reason: ShortText


class RequestExtension(CommandBase):
    type: Literal["request_extension"] = "request_extension"
    minutes: Annotated[int, Field(gt=0, le=43_200)]
    reason: ShortText


class GrantExtension(CommandBase):
    type: Literal["grant_extension"] = "grant_extension"


class ResolveCase(CommandBase):
    type: Literal["resolve"] = "resolve"
    resolution: ShortText


class VerifyCase(CommandBase):
    type: Literal["verify"] = "verify"
    satisfied: bool
    note: Annotated[str, Field(max_length=400)] = ""


class CloseCase(CommandBase):
    type: Literal["close"] = "close"
    reason: ShortText


class ReopenCase(CommandBase):
    type: Literal["reopen"] = "reopen"
    reason: ShortText


class EscalateCase(CommandBase):
    type: Literal["escalate"] = "escalate"
    reason: ShortText


class MergeCase(CommandBase):
    type: Literal["merge"] = "merge"
    into_case_id: Identifier
    into_correlation_key: str | None = Field(
        default=None, description="where the surviving case lives (the API fills it in)"
    )
    reason: ShortText


class ConfirmLead(CommandBase):
    type: Literal["confirm_lead"] = "confirm_lead"
    reason: ShortText = "verified on site"


class RejectLead(CommandBase):
    type: Literal["reject_lead"] = "reject_lead"
    reason: ShortText = "false alarm"


class DispatchCase(CommandBase):
    """派单: a dispatcher decides the category (and department, and area) of a case at the desk."""

    type: Literal["dispatch"] = "dispatch"
    category_code: Identifier
    lead_department: Identifier | None = Field(
        default=None, description="a department id; default: the one routing picks"
    )
    area_code: AreaCode | None = Field(
        default=None, description="where it is, for a case that could not be placed"
    )
    note: Annotated[str, Field(max_length=400), Printable] = ""


class ReclassifyCase(CommandBase):
    """改派: a dispatcher changes an open case's category (and department); it is re-routed."""

    type: Literal["reclassify"] = "reclassify"
    category_code: Identifier
    lead_department: Identifier | None = None
    reason: ShortText


CaseCommandTypes = (
    AcceptCase
    | ReportProgress
    | ReturnCase
    | RequestAssistance
    | RequestExtension
    | GrantExtension
    | ResolveCase
    | VerifyCase
    | CloseCase
    | ReopenCase
    | EscalateCase
    | MergeCase
    | ConfirmLead
    | RejectLead
    | DispatchCase
    | ReclassifyCase
)
CaseCommand = Annotated[CaseCommandTypes, Field(discriminator="type")]
CASE_COMMAND_ADAPTER: TypeAdapter[CaseCommand] = TypeAdapter(CaseCommand)


class Tick(Contract):
    """The clock reaching the case partitions: deadlines are checked at `now`. The worker sends
    wall-clock ticks; a replay or a test may send its own and so drive time."""

    type: Literal["tick"] = "tick"
    now: AwareDatetime


class SwitchMode(Contract):
    """平急切换: switch an area (a district, or the city) to emergency mode or back."""

    type: Literal["switch_mode"] = "switch_mode"
    command_id: Identifier
    area_code: AreaCode
    mode: Mode
    actor: Identifier
    issued_at: AwareDatetime


class AbsorbReports(Contract):
    """Internal: the reports of a merged case, delivered to the case it merged into."""

    type: Literal["absorb_reports"] = "absorb_reports"
    command_id: str
    case_id: str
    from_case_id: str
    reports: list[ReportSummary]
    issued_at: AwareDatetime


ControlMessage = Annotated[
    CaseCommandTypes | Tick | SwitchMode | AbsorbReports, Field(discriminator="type")
]
CONTROL_ADAPTER: TypeAdapter[ControlMessage] = TypeAdapter(ControlMessage)


class CommandOutcome(Contract):
    """Whether a command was applied, and if not, why (on the command-outcomes topic)."""

    command_id: str
    case_id: str | None = None
    command_type: str
    actor: str
    applied: bool
    reason: str = Field(description="why it was rejected, or 'applied'")
    event_types: list[str] = []
    decided_at: datetime


# --- dead letters -------------------------------------------------------------------------


class DeadLetterReason(StrEnum):
    UNDECODABLE = "undecodable"
    NOT_A_CLOUDEVENT = "not_a_cloudevent"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    SOURCE_MISMATCH = "source_mismatch"
    INVALID_PAYLOAD = "invalid_payload"
    UNKNOWN_AREA = "unknown_area"
    UNKNOWN_CATEGORY = "unknown_category"
    UNLOCATABLE = "unlocatable"
    UNROUTABLE = "unroutable"
    UNMATCHED_CLEARANCE = "unmatched_clearance"
    CONFLICTING_DUPLICATE = "conflicting_duplicate"
    PROCESSING_ERROR = "processing_error"


class DeadLetter(Contract):
    """A record that could not become part of a case, with why and where it came from."""

    reason: DeadLetterReason
    detail: str
    origin: Origin | None = None
    source: Source | None = None
    idempotency_key: str | None = None
    payload_b64: str = Field(description="the bytes that failed, base64")
    payload_is_original: bool = Field(
        default=True,
        description="false when the payload is the normalised Incident (the case stage failed); "
        "the original record is then the one at `origin`",
    )
    recorded_at: datetime
