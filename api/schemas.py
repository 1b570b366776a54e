"""What the API answers: one schema per direction, personal data masked."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from cityloop.contracts import Assignment, CallerContact, GeoPoint, ReportSummary
from handlers.privacy import mask_caller


class CommandAccepted(BaseModel):
    command_id: str
    status_url: str


class CommandStatus(BaseModel):
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
    event_id: str
    source: str
    topic: str
    partition: int
    offset: int


class Problem(BaseModel):
    """Why a request was refused."""

    reason: str = Field(examples=["invalid_payload"])
    message: str = Field(examples=["data.caller_phone: String should match pattern ..."])


class ReportPublic(BaseModel):
    idempotency_key: str
    source: str
    category_code: str
    title: str
    text: str
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
            title=summary.title,
            text=summary.text,
            area_codes=summary.area_codes,
            location=summary.location,
            occurred_at=summary.occurred_at,
            received_at=summary.received_at,
            device_id=summary.device_id,
            cleared=summary.cleared,
            caller=summary.caller if unmasked else mask_caller(summary.caller),
        )


class TimelineEntry(BaseModel):
    version: int
    type: str
    occurred_at: datetime
    actor: str
    details: dict[str, Any]


class CaseSummary(BaseModel):
    case_id: str
    status: str
    category_code: str
    title: str
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


class CasePublic(CaseSummary):
    correlation_key: str = Field(description="where the case's work is partitioned")
    location: GeoPoint | None
    assignment: Assignment | None
    accept_deadline: datetime | None
    resolve_deadline: datetime | None
    reports: list[ReportPublic]
    timeline: list[TimelineEntry]


class CasePage(BaseModel):
    items: list[CaseSummary]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class CaseChange(BaseModel):
    """One case event as the live stream sends it (`id:` is `seq`), with the case as it is now."""

    seq: int = Field(description="position in the stream: resume after it with Last-Event-ID")
    event: TimelineEntry
    case: CaseSummary


class BatchAccepted(BaseModel):
    """Every event of a batch, as the broker acknowledged it, in the order they were posted."""

    source: str
    count: int
    items: list[EventAccepted]


class BatchItemProblem(BaseModel):
    """Why one item of a batch was refused."""

    index: int = Field(description="position of the item in the posted array, from 0")
    reason: str = Field(examples=["invalid_payload"])
    message: str = Field(examples=["data.caller_phone: String should match pattern ..."])


class BatchProblem(BaseModel):
    """Why a batch was refused: every bad item, each by its index; nothing was published."""

    reason: str = Field(examples=["invalid_items"])
    message: str = Field(examples=["1 of 3 events refused; none was published"])
    items: list[BatchItemProblem]


# --- Open311 GeoReport v2: the standard's field names, not ours --------------------------


class Open311Service(BaseModel):
    """A category of matter, as an Open311 service."""

    service_code: str = Field(examples=["pothole"])
    service_name: str = Field(examples=["道路坑洼"])
    description: str
    metadata: bool = Field(description="false: no service takes extra attributes")
    type: Literal["realtime", "batch", "blackbox"]
    keywords: str = Field(description="comma-separated", examples=["坑洼,坑,pothole"])
    group: str = Field(description="the category's family", examples=["municipal"])


class Open311RequestCreated(BaseModel):
    service_request_id: str = Field(examples=["O311-5f0c2d6e9b7a4e0f8a1b2c3d4e5f6a7b"])
    service_notice: str | None
    account_id: str | None = None


class Open311ServiceRequest(BaseModel):
    """The status of one service request; never the caller's personal data."""

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
    code: int = Field(examples=[400])
    description: str = Field(examples=["service_code: no service 'teleport'"])
