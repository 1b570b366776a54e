"""What the API answers: one schema per direction, personal data masked."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
