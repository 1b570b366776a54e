"""The case aggregate: its state is a fold of its past-tense events through one `apply`."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic_core import from_json

from cityloop.contracts import (
    Assignment,
    AssistanceAdded,
    CaseAccepted,
    CaseClosed,
    CaseDispatched,
    CaseEscalated,
    CaseEvent,
    CaseEventBase,
    CaseMerged,
    CaseOpened,
    CaseReclassified,
    CaseReopened,
    CaseResolved,
    CaseReturned,
    CaseSentToDesk,
    CaseVerified,
    CategoryCandidate,
    DeskReason,
    DuplicateReceived,
    ExtensionGranted,
    ExtensionRequested,
    GeoPoint,
    LeadConfirmed,
    LeadRejected,
    Loop,
    ProgressReported,
    ReportAttached,
    ReportSummary,
    Severity,
    Source,
    SupervisionNoticeIssued,
    wire_bytes,
)

EventT = TypeVar("EventT", bound=CaseEventBase)


class CaseStatus(StrEnum):
    AWAITING_DISPATCH = "awaiting_dispatch"
    """At a 12345 dispatch desk, waiting for a person to decide category, place or department."""
    LEAD = "lead"
    """An unverified lead (线索) waiting for the community to verify it on site."""
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    RETURNED = "returned"
    RESOLVED = "resolved"
    VERIFIED = "verified"
    CLOSED = "closed"
    MERGED = "merged"


OPEN_STATUSES = frozenset(
    {
        CaseStatus.AWAITING_DISPATCH,
        CaseStatus.LEAD,
        CaseStatus.DISPATCHED,
        CaseStatus.ACCEPTED,
        CaseStatus.IN_PROGRESS,
        CaseStatus.RETURNED,
    }
)
"""Statuses in which a case still takes new reports and runs deadlines."""


class CaseDocument(BaseModel):
    """A case state as a JSON document: the shape the read model stores (`CaseRow.state`) and
    the audit compares. The live state is `CaseState`; this model only reads and writes it."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    version: int
    status: CaseStatus
    category_code: str
    title: str
    severity: Severity | None
    area_codes: list[str]
    location: GeoPoint | None
    location_precise: bool = True
    correlation_key: str
    lead: bool = False
    opened_at: datetime
    updated_at: datetime
    last_report_at: datetime
    assignment: Assignment | None = None
    accept_deadline: datetime | None = None
    resolve_deadline: datetime | None = None
    accepted_at: datetime | None = None
    resolved_at: datetime | None = None
    accept_missed: bool = False  # a deadline was missed at least once: what assessment counts
    resolve_missed: bool = False
    closed_at: datetime | None = None
    reports: tuple[ReportSummary, ...] = ()
    duplicates: int = 0
    pending_extension_minutes: int | None = None
    escalations: int = 0
    returns: int = 0
    reopens: int = 0
    supervision_notices: int = 0
    merged_into: str | None = None
    cleared_devices: tuple[str, ...] = ()
    desk: str | None = None
    dispatch_deadline: datetime | None = None
    desk_reasons: tuple[DeskReason, ...] = ()
    candidates: tuple[CategoryCandidate, ...] = ()
    given_category_code: str | None = None


StoredReport = tuple[str, str, bytes]
"""A report as a case state keeps it: (idempotency key, source, its wire JSON). A plain tuple of
strings and bytes, which the garbage collector stops tracking (it untracks exact tuples of
untracked items, not named tuples): a storm's thousands of reports are not rescanned at every
full collection, and each weighs its JSON rather than a tree of models."""


def _stored(report: ReportSummary) -> StoredReport:
    return (report.idempotency_key, report.source.value, wire_bytes(report))


def _summary(stored: StoredReport) -> ReportSummary:
    return ReportSummary.model_validate_json(stored[2])


class CaseState:
    """What a case is now; never stored as truth, always derivable from its events.

    A plain slotted object rather than a pydantic model: a case moves with every report, and
    validating or copying a 31-field model per event was the largest cost of a decision. It is
    used as a value all the same: `apply` returns a new state and leaves its argument alone, and
    only an `EventWriter` changes a state, the copy it made for its own decision.

    The reports sit in an append-only log (`StoredReport`) that a state shares with the
    states after it (each sees its first `report_count`), so the 5,000th report on a storm case
    costs what the first did, and each is kept as its JSON rather than as a tree of models.
    `reports` reads them back. `model_dump` / `model_validate` read and write the stored JSON
    document (`CaseDocument`)."""

    __slots__ = (
        "case_id",
        "version",
        "status",
        "category_code",
        "title",
        "severity",
        "area_codes",
        "location",
        "location_precise",
        "correlation_key",
        "lead",
        "opened_at",
        "updated_at",
        "last_report_at",
        "_assignment",
        "loop",
        "accept_deadline",
        "resolve_deadline",
        "accepted_at",
        "resolved_at",
        "accept_missed",
        "resolve_missed",
        "closed_at",
        "duplicates",
        "pending_extension_minutes",
        "escalations",
        "returns",
        "reopens",
        "supervision_notices",
        "merged_into",
        "cleared_devices",
        "desk",
        "dispatch_deadline",
        "desk_reasons",
        "candidates",
        "given_category_code",
        "_reports",
        "report_count",
        "first_reported_us",
        "last_report_us",
        "device_id",
    )

    case_id: str
    version: int
    status: CaseStatus
    category_code: str
    title: str
    severity: Severity | None
    area_codes: list[str]
    location: GeoPoint | None
    location_precise: bool
    correlation_key: str
    lead: bool
    opened_at: datetime
    updated_at: datetime
    last_report_at: datetime
    _assignment: bytes | None
    """The assignment as its wire JSON: as a model it weighed ~2.8 kB (a dict and a field set
    for it and for each routing reason), its JSON ~0.5 kB, and a city's open cases are what a
    worker's memory holds. Read back (a few µs) only where a decision needs who handles it."""
    loop: Loop | None
    """The assignment's loop, kept beside it: the one part of it read on every report."""
    accept_deadline: datetime | None
    resolve_deadline: datetime | None
    accepted_at: datetime | None
    resolved_at: datetime | None
    accept_missed: bool  # a deadline was missed at least once: what assessment counts
    resolve_missed: bool
    closed_at: datetime | None
    duplicates: int
    pending_extension_minutes: int | None
    escalations: int
    returns: int
    reopens: int
    supervision_notices: int
    merged_into: str | None
    cleared_devices: tuple[str, ...]
    desk: str | None
    """The dispatch desk the case waits at (or last waited at); None if it never did."""
    dispatch_deadline: datetime | None
    """By when the desk must dispatch it, while it waits there."""
    desk_reasons: tuple[DeskReason, ...]
    candidates: tuple[CategoryCandidate, ...]
    given_category_code: str | None
    _reports: list[StoredReport]
    report_count: int
    """How many of the shared log's reports are this state's."""
    first_reported_us: int
    """When the first report happened (the start of the correlation window), in `micros`."""
    last_report_us: int
    """`last_report_at` in `micros`: the correlation window is compared as integers."""
    device_id: str | None
    """The device whose alarm opened the case, if one did."""

    def __init__(
        self,
        *,
        case_id: str,
        version: int,
        status: CaseStatus,
        category_code: str,
        title: str,
        severity: Severity | None,
        area_codes: list[str],
        location: GeoPoint | None,
        location_precise: bool = True,
        correlation_key: str,
        lead: bool = False,
        opened_at: datetime,
        updated_at: datetime,
        last_report_at: datetime,
        assignment: Assignment | None = None,
        accept_deadline: datetime | None = None,
        resolve_deadline: datetime | None = None,
        accepted_at: datetime | None = None,
        resolved_at: datetime | None = None,
        accept_missed: bool = False,
        resolve_missed: bool = False,
        closed_at: datetime | None = None,
        reports: Iterable[ReportSummary] = (),
        duplicates: int = 0,
        pending_extension_minutes: int | None = None,
        escalations: int = 0,
        returns: int = 0,
        reopens: int = 0,
        supervision_notices: int = 0,
        merged_into: str | None = None,
        cleared_devices: tuple[str, ...] = (),
        desk: str | None = None,
        dispatch_deadline: datetime | None = None,
        desk_reasons: tuple[DeskReason, ...] = (),
        candidates: tuple[CategoryCandidate, ...] = (),
        given_category_code: str | None = None,
    ) -> None:
        self.case_id = case_id
        self.version = version
        self.status = status
        self.category_code = category_code
        self.title = title
        self.severity = severity
        self.area_codes = area_codes
        self.location = location
        self.location_precise = location_precise
        self.correlation_key = correlation_key
        self.lead = lead
        self.opened_at = opened_at
        self.updated_at = updated_at
        self.last_report_at = last_report_at
        self.assignment = assignment
        self.accept_deadline = accept_deadline
        self.resolve_deadline = resolve_deadline
        self.accepted_at = accepted_at
        self.resolved_at = resolved_at
        self.accept_missed = accept_missed
        self.resolve_missed = resolve_missed
        self.closed_at = closed_at
        self.duplicates = duplicates
        self.pending_extension_minutes = pending_extension_minutes
        self.escalations = escalations
        self.returns = returns
        self.reopens = reopens
        self.supervision_notices = supervision_notices
        self.merged_into = merged_into
        self.cleared_devices = cleared_devices
        self.desk = desk
        self.dispatch_deadline = dispatch_deadline
        self.desk_reasons = desk_reasons
        self.candidates = candidates
        self.given_category_code = given_category_code
        self._reports = []
        self.report_count = 0
        self.first_reported_us = micros(opened_at)
        self.last_report_us = micros(last_report_at)
        self.device_id = None
        for report in reports:
            self.add_report(report)

    def copy(self) -> CaseState:
        """The same state as a new object (the report log shared), for a writer to move on."""
        twin = _new_state(CaseState)
        twin.case_id = self.case_id
        twin.version = self.version
        twin.status = self.status
        twin.category_code = self.category_code
        twin.title = self.title
        twin.severity = self.severity
        twin.area_codes = self.area_codes
        twin.location = self.location
        twin.location_precise = self.location_precise
        twin.correlation_key = self.correlation_key
        twin.lead = self.lead
        twin.opened_at = self.opened_at
        twin.updated_at = self.updated_at
        twin.last_report_at = self.last_report_at
        twin._assignment = self._assignment
        twin.loop = self.loop
        twin.accept_deadline = self.accept_deadline
        twin.resolve_deadline = self.resolve_deadline
        twin.accepted_at = self.accepted_at
        twin.resolved_at = self.resolved_at
        twin.accept_missed = self.accept_missed
        twin.resolve_missed = self.resolve_missed
        twin.closed_at = self.closed_at
        twin.duplicates = self.duplicates
        twin.pending_extension_minutes = self.pending_extension_minutes
        twin.escalations = self.escalations
        twin.returns = self.returns
        twin.reopens = self.reopens
        twin.supervision_notices = self.supervision_notices
        twin.merged_into = self.merged_into
        twin.cleared_devices = self.cleared_devices
        twin.desk = self.desk
        twin.dispatch_deadline = self.dispatch_deadline
        twin.desk_reasons = self.desk_reasons
        twin.candidates = self.candidates
        twin.given_category_code = self.given_category_code
        twin._reports = self._reports
        twin.report_count = self.report_count
        twin.first_reported_us = self.first_reported_us
        twin.last_report_us = self.last_report_us
        twin.device_id = self.device_id
        return twin

    def replace(self, **changes: Any) -> CaseState:
        """A copy with some fields changed (for tests and tools; decisions go through events)."""
        fields = self.fields()
        fields.update(changes)
        return CaseState(**fields)

    def add_report(self, report: ReportSummary) -> None:
        """Append a report. The log is shared with earlier states, which see only their own
        prefix; if a later state (a decision given up) appended past this one, fork it."""
        log = self._reports
        if len(log) != self.report_count:
            log = self._reports = log[: self.report_count]
        if not log:
            self.first_reported_us = micros(report.occurred_at)
            self.device_id = report.device_id
        log.append(_stored(report))
        self.report_count += 1

    def stored_reports(self) -> list[StoredReport]:
        log = self._reports
        return log if len(log) == self.report_count else log[: self.report_count]

    @property
    def reports(self) -> tuple[ReportSummary, ...]:
        """Every report, first to last, read back from the log (O(reports): the hot paths use
        `report_count`, `first_reported_us` and `device_id`)."""
        return tuple(_summary(stored) for stored in self.stored_reports())

    @property
    def assignment(self) -> Assignment | None:
        stored = self._assignment
        return None if stored is None else Assignment.model_validate_json(stored)

    @assignment.setter
    def assignment(self, assignment: Assignment | None) -> None:
        if assignment is None:
            self._assignment = self.loop = None
        else:
            self._assignment = wire_bytes(assignment)
            self.loop = assignment.loop

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def report_keys(self) -> tuple[str, ...]:
        return tuple(stored[0] for stored in self.stored_reports())

    @property
    def sources(self) -> frozenset[Source]:
        return frozenset(Source(stored[1]) for stored in self.stored_reports())

    def fields(self) -> dict[str, Any]:
        """Every field by name, as `CaseDocument` has them (the reports read back)."""
        fields = {name: getattr(self, name) for name in _DOCUMENT_FIELDS}
        fields["reports"] = self.reports
        return fields

    def model_dump(self, *, mode: str = "python") -> dict[str, Any]:
        """The state as the read model stores it (`mode="json"`): `CaseDocument`'s dump."""
        if mode != "json":
            return CaseDocument.model_validate(self.fields()).model_dump(mode=mode)
        # each report is JSON already: parse it (pydantic-core's parser, 3x `json.loads`)
        # rather than rebuild and re-serialise its model
        others = {name: getattr(self, name) for name in _DOCUMENT_FIELDS}
        dumped = CaseDocument.model_validate(others).model_dump(mode="json")
        reports = [from_json(stored[2]) for stored in self.stored_reports()]
        return {name: reports if name == "reports" else dumped[name] for name in dumped}

    @classmethod
    def model_validate(cls, document: Mapping[str, Any] | CaseDocument) -> CaseState:
        """A state from a stored document (as `model_dump` wrote it) or a `CaseDocument`."""
        parsed = (
            document
            if isinstance(document, CaseDocument)
            else CaseDocument.model_validate(document)
        )
        return cls(**{name: getattr(parsed, name) for name in CaseDocument.model_fields})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CaseState):
            return NotImplemented
        return (
            all(getattr(self, name) == getattr(other, name) for name in _DOCUMENT_FIELDS)
            and self.stored_reports() == other.stored_reports()
        )

    __hash__ = None  # type: ignore[assignment]  # a value, but one that a writer moves

    def __repr__(self) -> str:
        return (
            f"CaseState(case_id={self.case_id!r}, version={self.version}, "
            f"status={self.status.value}, reports={self.report_count})"
        )


_new_state = object.__new__
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def micros(moment: datetime) -> int:
    """The instant as whole microseconds since 1970 (a naive time taken as UTC): aware
    datetimes in the order they compare, as integers. Two datetimes with different `tzinfo`
    objects (pydantic gives each parsed time its own) compare through both offsets, ~0.5 µs
    each time, and the candidate scan compares a window per open case."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND


_DOCUMENT_FIELDS = tuple(name for name in CaseDocument.model_fields if name != "reports")


MERGED_FROM = "merged_from:"
"""How the reason of a `ReportAttached` begins when it carries a report over from a case merged
into this one: the report entered once, on that case, and is not a new arrival here."""


def merged_in(event: CaseEvent) -> bool:
    """Whether the event brings over a report that a merged case had taken in first."""
    return isinstance(event, ReportAttached) and event.reason.startswith(MERGED_FROM)


def report_of(event: CaseEvent) -> ReportSummary | None:
    """The report an event brings to its case, if it brings one."""
    if isinstance(event, CaseOpened):
        return event.first_report
    if isinstance(event, ReportAttached):
        return event.report
    return None


class OutOfOrderEvent(ValueError):
    """An event whose version does not follow the state's."""


def _opened(event: CaseOpened) -> CaseState:
    # slot by slot, as `copy` does: a case is opened for most records, and the keyword
    # constructor is three times the cost
    state = _new_state(CaseState)
    state.case_id = event.case_id
    state.version = event.version
    state.status = CaseStatus.LEAD if event.lead else CaseStatus.DISPATCHED
    state.category_code = event.category_code
    state.title = event.title
    state.severity = event.severity
    state.area_codes = event.area_codes
    state.location = event.location
    state.location_precise = event.location_precise
    state.correlation_key = event.correlation_key
    state.lead = event.lead
    state.opened_at = state.updated_at = event.occurred_at
    state.last_report_at = event.first_report.occurred_at
    state.last_report_us = state.first_reported_us = micros(state.last_report_at)
    state._assignment = state.loop = None
    state.accept_deadline = state.resolve_deadline = None
    state.accepted_at = state.resolved_at = state.closed_at = None
    state.accept_missed = state.resolve_missed = False
    state.duplicates = state.escalations = state.returns = state.reopens = 0
    state.supervision_notices = 0
    state.pending_extension_minutes = None
    state.merged_into = None
    state.cleared_devices = ()
    state.desk = state.dispatch_deadline = state.given_category_code = None
    state.desk_reasons = state.candidates = ()
    state._reports = [_stored(event.first_report)]
    state.report_count = 1
    state.device_id = event.first_report.device_id
    return state


def _after(moment: datetime, deadline: datetime | None) -> bool:
    return deadline is not None and moment > deadline


def _advance(state: CaseState, event: CaseEvent) -> None:
    """Fold one event into `state`, in place: what it changes, then version and time."""
    match event:
        case CaseDispatched():
            state.assignment = event.assignment
            state.accept_deadline = event.accept_deadline
            state.resolve_deadline = event.resolve_deadline
            state.dispatch_deadline = None
            if not state.lead:
                state.status = CaseStatus.DISPATCHED
        case CaseSentToDesk():
            state.status = CaseStatus.AWAITING_DISPATCH
            state.assignment = None  # nobody handles it until the desk dispatches it
            state.accept_deadline = state.resolve_deadline = None
            state.desk = event.desk
            state.dispatch_deadline = event.dispatch_deadline
            state.desk_reasons = tuple(event.reasons)
            state.candidates = tuple(event.candidates)
            if event.given_category_code is not None:
                state.given_category_code = event.given_category_code
        case CaseReclassified():
            state.category_code = event.to_category
            if event.area_codes:
                state.area_codes = event.area_codes
        case ReportAttached():
            report = event.report
            if report.cleared and report.device_id:
                state.cleared_devices = (*state.cleared_devices, report.device_id)
            if not state.location_precise and report.location is not None:
                # a case placed only by its area takes the first measured point it is given,
                # so that later reports are measured against a place, not a whole community
                state.location = report.location
                state.location_precise = True
            state.add_report(report)
            occurred_us = micros(report.occurred_at)
            if occurred_us > state.last_report_us:  # max(), as integers: see `micros`
                state.last_report_at = report.occurred_at
                state.last_report_us = occurred_us
        case DuplicateReceived():
            state.duplicates += 1
        case LeadConfirmed():
            state.lead = False
            state.status = CaseStatus.DISPATCHED
        case LeadRejected():
            state.status = CaseStatus.CLOSED
            state.closed_at = event.occurred_at
        case CaseAccepted():
            state.status = CaseStatus.ACCEPTED
            state.accepted_at = event.occurred_at
            state.accept_missed = state.accept_missed or _after(
                event.occurred_at, state.accept_deadline
            )
            state.accept_deadline = None
        case ProgressReported():
            state.status = CaseStatus.IN_PROGRESS
        case CaseReturned():
            state.status = CaseStatus.RETURNED
            state.returns += 1
        case AssistanceAdded():
            assignment = state.assignment
            if assignment is not None:
                co = [*assignment.co_departments, event.department]
                state.assignment = assignment.model_copy(update={"co_departments": co})
        case ExtensionRequested():
            state.pending_extension_minutes = event.minutes
        case ExtensionGranted():
            state.pending_extension_minutes = None
            state.resolve_deadline = event.resolve_deadline
        case CaseEscalated():
            state.escalations += 1
        case SupervisionNoticeIssued():
            # a notice answers one missed deadline; the next dispatch sets fresh ones
            state.supervision_notices += 1
            if event.reason == "dispatch_deadline_missed":
                state.dispatch_deadline = None
            elif event.reason == "accept_deadline_missed":
                state.accept_deadline = None
                state.accept_missed = True
            else:
                state.resolve_deadline = None
                state.resolve_missed = True
        case CaseResolved():
            state.status = CaseStatus.RESOLVED
            state.resolved_at = event.occurred_at
            state.resolve_missed = state.resolve_missed or _after(
                event.occurred_at, state.resolve_deadline
            )
            state.resolve_deadline = None
            state.accept_deadline = None
        case CaseVerified():
            if event.satisfied:
                state.status = CaseStatus.VERIFIED
        case CaseReopened():
            state.status = CaseStatus.DISPATCHED
            state.reopens += 1
            state.resolved_at = None
            state.closed_at = None
        case CaseMerged():
            state.status = CaseStatus.MERGED
            state.merged_into = event.into_case_id
            state.closed_at = event.occurred_at
            state.accept_deadline = None
            state.resolve_deadline = None
        case CaseClosed():
            state.status = CaseStatus.CLOSED
            state.closed_at = event.occurred_at
            state.accept_deadline = None
            state.resolve_deadline = None
        case CaseOpened():
            raise OutOfOrderEvent(f"case {state.case_id} is already open")
        case _:  # pragma: no cover
            raise AssertionError(f"unhandled case event {event.type}")
    state.version = event.version
    state.updated_at = event.occurred_at


def _check_follows(state: CaseState, event: CaseEvent) -> None:
    if event.version != state.version + 1:
        raise OutOfOrderEvent(
            f"case {state.case_id} is at version {state.version}; got {event.type} "
            f"version {event.version}"
        )
    if type(event) is CaseOpened:  # not isinstance: see CaseBook._index
        raise OutOfOrderEvent(f"case {state.case_id} is already open")


def apply(state: CaseState | None, event: CaseEvent) -> CaseState:
    """The next state of a case after one event (a new object; `state` is left as it was).
    Versions must follow one another."""
    if state is None:
        if not isinstance(event, CaseOpened):
            raise OutOfOrderEvent(f"case {event.case_id} starts with {event.type}, not CaseOpened")
        return _opened(event)
    _check_follows(state, event)
    following = state.copy()
    _advance(following, event)
    return following


def fold(events: list[CaseEvent]) -> CaseState | None:
    state: CaseState | None = None
    for event in events:
        state = apply(state, event)
    return state


EVENT_NAMESPACE = uuid.UUID("6f1c1c52-5a0e-4b7e-9a53-0c1e6a9f4e11")


_EVENT_ID_PREFIX = hashlib.sha1(EVENT_NAMESPACE.bytes, usedforsecurity=False)


def case_event_id(case_id: str, version: int) -> str:
    """The same case version always gets the same event id, so replays are harmless.

    It is `uuid5(EVENT_NAMESPACE, "<case_id>#<version>")`, computed without building `UUID`
    objects (a third of the cost per event): the ids written before stay the ids written now."""
    digest = _EVENT_ID_PREFIX.copy()
    digest.update(f"{case_id}#{version}".encode())
    raw = bytearray(digest.digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@dataclass(frozen=True)
class CaseChange:
    """Events a decision wrote for one case, and the case after them."""

    events: tuple[CaseEvent, ...]
    state: CaseState | None


class EventWriter:
    """Writes a case's next events: numbers them, stamps them, and keeps the state current.

    The state it was given is left alone: the first event folds into a copy that the writer
    owns, and the events after it fold into that copy in place. A decision that fails halfway
    (an unroutable report after its attachment) leaves the book's state as it was."""

    def __init__(
        self,
        state: CaseState | None,
        case_id: str,
        now: datetime,
        actor: str = "system",
        caused_by: str | None = None,
    ):
        self.state = state
        self.case_id = case_id
        self.now = now
        self.actor = actor
        self.caused_by = caused_by
        self.events: list[CaseEvent] = []
        self._owned = False

    def add(self, event_type: type[EventT], **fields: Any) -> EventT:
        state = self.state
        version = (state.version if state else 0) + 1
        fields.setdefault("actor", self.actor)
        # the model's validator itself: the same checks as `event_type(...)`, less overhead
        event: EventT = event_type.__pydantic_validator__.validate_python(
            {
                "event_id": case_event_id(self.case_id, version),
                "case_id": self.case_id,
                "version": version,
                "occurred_at": self.now,
                "caused_by": self.caused_by,
                **fields,
            }
        )
        if state is None:
            self.state = apply(None, event)  # type: ignore[arg-type]
            self._owned = True
        else:
            if not self._owned:
                state = self.state = state.copy()
                self._owned = True
            _check_follows(state, event)  # type: ignore[arg-type]
            _advance(state, event)  # type: ignore[arg-type]
        self.events.append(event)  # type: ignore[arg-type]
        return event

    def change(self) -> CaseChange:
        return CaseChange(tuple(self.events), self.state)
