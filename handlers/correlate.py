"""Correlation: decide what an incident does to the cases — open one, open a lead, attach to an
open case, or nothing new — and say why with a named reason."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache

from cityloop.contracts import (
    AreaLevel,
    Assignment,
    AssistanceAdded,
    CaseDispatched,
    CaseEscalated,
    CaseEvent,
    CaseOpened,
    CaseSentToDesk,
    DuplicateReceived,
    GeoPoint,
    Incident,
    LeadConfirmed,
    Loop,
    Mode,
    Origin,
    ReportAttached,
    ReportSummary,
    RoutingReason,
    Severity,
    Source,
    Triage,
    TriageDecision,
)
from handlers.case import OPEN_STATUSES, CaseState, CaseStatus, EventWriter, micros
from handlers.cells import communities_of, correlation_key, family_of, reference_point
from handlers.triage import desk_for, dispatch_deadline
from topology import Topology, UnroutableError, route
from topology.geo import distance_m

LOOP_RANK = {Loop.MICRO: 0, Loop.SMALL: 1, Loop.MEDIUM: 2, Loop.BIG: 3}
SEVERITY_RANK = {Severity.IV: 0, Severity.III: 1, Severity.II: 2, Severity.I: 3}
HUMAN_SOURCES = frozenset({Source.HOTLINE, Source.GRID, Source.DUTY})


class DispatchReason(StrEnum):
    """Why a case was dispatched (CaseDispatched.reason) when it is the first dispatch, or one
    that a person decided; escalations and reopenings name their own reasons."""

    ROUTED = "routed"
    """The category the sender gave, routed through the responsibility graph."""
    AUTO_CLASSIFIED = "auto_classified"
    """The classifier's category, confident enough to go without a person."""
    LEAD = "lead"
    """An unverified alarm, to the community to verify on site."""
    DISPATCHED_BY_HAND = "dispatched_by_hand"
    """A dispatcher at the 12345 desk decided it (人工派单)."""
    RECLASSIFIED = "reclassified"
    """A dispatcher changed the category of a case already dispatched (改派)."""


class CorrelationReason(StrEnum):
    SENT_TO_DESK = "sent_to_desk"
    """A new case that a person must dispatch (category or place not sure)."""
    NEW_CASE = "new_case"
    NEW_LEAD = "new_lead"
    ATTACHED_TO_OPEN_CASE = "attached_to_open_case"
    DEVICE_REPEAT = "device_repeat"
    EXACT_DUPLICATE = "exact_duplicate"
    REPLAYED_RECORD = "replayed_record"
    """The very same input record again (a restart re-read it): nothing new happened."""


@dataclass(frozen=True)
class SeenReport:
    """What the dedup index remembers of a report it has taken in."""

    case_id: str
    origin: Origin | None
    content_digest: str = ""


@dataclass(frozen=True)
class CorrelationDecision:
    reason: CorrelationReason
    case_id: str
    events: tuple[CaseEvent, ...]
    state: CaseState | None = field(default=None, compare=False)
    """The case after the events (None when nothing changed)."""


def mode_at(topology: Topology, modes: Mapping[str, Mode], area_codes: Sequence[str]) -> Mode:
    """Emergency when any area, or any area above it, is switched to emergency mode."""
    if not modes:
        return Mode.NORMAL  # nothing was ever switched: the usual case, and a hot path
    for code in area_codes:
        if any(modes.get(ancestor) is Mode.EMERGENCY for ancestor in topology.ancestors(code)):
            return Mode.EMERGENCY
    return Mode.NORMAL


def case_id_for(incident: Incident) -> str:
    digest = hashlib.blake2b(incident.idempotency_key.encode(), digest_size=6).hexdigest()
    day = incident.occurred_at  # `%Y%m%d`, without strftime
    return f"CL-{day.year}{day.month:02d}{day.day:02d}-{digest}"


def summarise(incident: Incident) -> ReportSummary:
    """What the case keeps of the incident: every `ReportSummary` field is the incident's own,
    so it is read straight off the incident (and validated as always)."""
    summary: ReportSummary = _summary_of(incident, from_attributes=True)
    return summary


_summary_of = ReportSummary.__pydantic_validator__.validate_python


def dispatch(
    writer: EventWriter,
    topology: Topology,
    assignment: Assignment,
    category_code: str,
    mode: Mode,
    reason: str,
) -> None:
    """Dispatch to an assignment with deadlines of its loop and mode, counted from now."""
    deadlines = _deadlines(topology, category_code, assignment.loop, mode)
    if deadlines is None:
        raise UnroutableError("unknown_category", f"no category {category_code!r}")
    accept_within, resolve_within = deadlines
    writer.add(
        CaseDispatched,
        assignment=assignment,
        category_code=category_code,
        accept_deadline=writer.now + accept_within,
        resolve_deadline=writer.now + resolve_within,
        reason=reason,
    )


@lru_cache(maxsize=4096)
def _deadlines(
    topology: Topology, category_code: str, loop: Loop, mode: Mode
) -> tuple[timedelta, timedelta] | None:
    """How long a category's case may wait to be accepted and resolved at a loop and mode."""
    category = topology.category(category_code)
    if category is None:
        return None
    sla = category.sla.for_loop(loop, mode)
    return timedelta(minutes=sla.accept_minutes), timedelta(minutes=sla.resolve_minutes)


def verification_assignment(topology: Topology, community: str) -> Assignment:
    """A lead goes to the community it lies in, to be verified on site (巡查核实)."""
    committee = topology.department_for("residents_committee", community)
    return Assignment(
        loop=Loop.MICRO,
        handling_area=community,
        lead_department=committee.id if committee else f"{community}.residents_committee",
        co_departments=[],  # given, not defaulted: pydantic deep-copies a mutable default
        reasons=[
            RoutingReason(rule="lead_verification", detail="unverified alarm: verify on site")
        ],
        escalation_chain=list(topology.ancestors(community)),
        topology_version=topology.version,
    )


def needs_verification(topology: Topology, incident: Incident) -> bool:
    if incident.source is not Source.IOT or incident.sensor_type is None:
        return False
    sensor = topology.sensor_type(incident.sensor_type)
    return sensor is not None and sensor.needs_verification


def send_to_desk(
    writer: EventWriter,
    topology: Topology,
    triage: Triage,
    area_codes: Sequence[str],
) -> None:
    """The case waits at its 12345 centre's desk for a dispatcher, with what triage found."""
    writer.add(
        CaseSentToDesk,
        desk=desk_for(topology, area_codes),
        reasons=triage.desk_reasons,
        candidates=triage.candidates,
        area_candidates=triage.area_candidates,
        given_category_code=triage.given_category_code,
        dispatch_deadline=dispatch_deadline(writer.now, triage.urgent),
    )


def _opened(incident: Incident, topology: Topology, now: datetime, lead: bool) -> EventWriter:
    """A writer of a new case's events, the case opened for the incident."""
    point, precise = reference_point(topology, incident)
    writer = EventWriter(None, case_id_for(incident), now, caused_by=incident.idempotency_key)
    writer.add(
        CaseOpened,
        category_code=incident.category_code,
        title=incident.title,
        severity=incident.severity,
        area_codes=incident.area_codes,
        location=point,
        location_precise=precise and incident.location_method != "unplaced",
        correlation_key=correlation_key(topology, incident),
        lead=lead,
        first_report=summarise(incident),
        reason=CorrelationReason.NEW_LEAD if lead else CorrelationReason.NEW_CASE,
    )
    return writer


def open_case(
    incident: Incident, topology: Topology, modes: Mapping[str, Mode], now: datetime
) -> CorrelationDecision:
    """Open a case (or a lead) for an incident nothing else covers; a case a person must
    dispatch is opened and sent to the desk, routed by no one. Raises UnroutableError."""
    if incident.at_desk and incident.triage is not None:
        writer = _opened(incident, topology, now, lead=False)
        send_to_desk(writer, topology, incident.triage, incident.area_codes)
        return CorrelationDecision(
            CorrelationReason.SENT_TO_DESK, writer.case_id, tuple(writer.events), writer.state
        )
    mode = mode_at(topology, modes, incident.area_codes)
    lead = needs_verification(topology, incident)
    # route first: an unroutable incident must not leave a half-opened case behind
    assignment = (
        verification_assignment(
            topology,
            topology.ancestor_at(incident.area_codes[0], AreaLevel.COMMUNITY)
            or incident.area_codes[0],
        )
        if lead
        else route(topology, incident.category_code, incident.area_codes, incident.severity, mode)
    )
    writer = _opened(incident, topology, now, lead)
    dispatch(
        writer, topology, assignment, incident.category_code, mode, _first_dispatch(incident, lead)
    )
    reason = CorrelationReason.NEW_LEAD if lead else CorrelationReason.NEW_CASE
    return CorrelationDecision(reason, writer.case_id, tuple(writer.events), writer.state)


def _first_dispatch(incident: Incident, lead: bool) -> str:
    """Why a new case is dispatched as it is: a lead to verify, the classifier's category, or
    the category the sender gave."""
    if lead:
        return DispatchReason.LEAD
    if incident.triage is not None and incident.triage.decision is TriageDecision.AUTO:
        return DispatchReason.AUTO_CLASSIFIED
    return DispatchReason.ROUTED


def _within_window(topology: Topology, case: CaseState, incident: Incident) -> bool:
    window = max(
        _window_us(topology, case.category_code), _window_us(topology, incident.category_code)
    )
    return _in_window(case, micros(incident.occurred_at), window)


def _in_window(case: CaseState, occurred_us: int, window_us: int) -> bool:
    # late reports (out of order by up to the window) still belong; times in `micros`
    return case.first_reported_us - window_us <= occurred_us <= case.last_report_us + window_us


@lru_cache(maxsize=4096)
def _window_us(topology: Topology, category_code: str) -> int:
    category = topology.category(category_code)
    return 60_000_000 * category.correlation.window_minutes if category else 0


@lru_cache(maxsize=4096)
def _radius(topology: Topology, category_code: str) -> float:
    category = topology.category(category_code)
    return category.correlation.radius_m if category else 0.0


@dataclass(slots=True)  # not frozen: a frozen dataclass sets each field through
class Probe:  # object.__setattr__, 0.9 µs a probe against 0.2; it is built once and only read
    """What every candidate case is measured against: the incident's side, worked out once."""

    incident: Incident
    category_code: str
    family: str
    point: GeoPoint | None
    precise: bool
    radius: float
    window_us: int
    occurred_us: int
    communities: frozenset[str]


def _probe(
    topology: Topology, incident: Incident, place: tuple[GeoPoint | None, bool] | None = None
) -> Probe:
    point, precise = place or reference_point(topology, incident)
    return Probe(
        incident,
        incident.category_code,
        family_of(topology, incident.category_code),
        point,
        precise,
        _radius(topology, incident.category_code),
        _window_us(topology, incident.category_code),
        micros(incident.occurred_at),
        communities_of(topology, tuple(incident.area_codes)),
    )


def _match(topology: Topology, case: CaseState, probe: Probe) -> float | None:
    """`match_distance` against a probe: the cheap tests first, most candidates fail on
    distance. A candidate of the incident's own category (the usual one) takes the probe's
    radius and window as they are."""
    if case.status not in OPEN_STATUSES or case.status is CaseStatus.AWAITING_DISPATCH:
        return None  # a case at the desk has no category or place sure enough to match by
    category_code = case.category_code
    same_category = category_code == probe.category_code
    if not same_category and family_of(topology, category_code) != probe.family:
        return None
    location, point = case.location, probe.point
    if probe.precise and case.location_precise:
        if location is None or point is None:
            return None
        distance = distance_m(location.lat, location.lon, point.lat, point.lon)
        if distance > (
            probe.radius if same_category else max(_radius(topology, category_code), probe.radius)
        ):
            return None
        window = (
            probe.window_us
            if same_category
            else max(_window_us(topology, category_code), probe.window_us)
        )
        return distance if _in_window(case, probe.occurred_us, window) else None
    if (
        same_category
        and not communities_of(topology, tuple(case.area_codes)).isdisjoint(probe.communities)
        and _in_window(case, probe.occurred_us, probe.window_us)  # one category: one window
    ):
        # a report placed only by its area cannot be measured: the same matter in the same
        # community is the evidence (a family is too broad without a distance)
        if location is None or point is None:
            return _radius(topology, category_code)
        return distance_m(location.lat, location.lon, point.lat, point.lon)
    return None


def match_distance(
    topology: Topology,
    case: CaseState,
    incident: Incident,
    place: tuple[GeoPoint | None, bool] | None = None,
) -> float | None:
    """How far the incident is from an open case it may join; None when it may not.
    `place` is the incident's reference point, when the caller has it already."""
    return _match(topology, case, _probe(topology, incident, place))


def attach(
    case: CaseState,
    incident: Incident,
    topology: Topology,
    modes: Mapping[str, Mode],
    now: datetime,
    reason: CorrelationReason,
) -> CorrelationDecision:
    """Attach a report; a human report confirms a lead; a graver or wider case goes up."""
    writer = EventWriter(case, case.case_id, now, caused_by=incident.idempotency_key)
    writer.add(ReportAttached, report=summarise(incident), reason=reason.value)
    if incident.cleared:
        return CorrelationDecision(reason, case.case_id, tuple(writer.events), writer.state)
    areas = list(dict.fromkeys([*case.area_codes, *incident.area_codes]))
    severity = _graver(case.severity, incident.severity)
    mode = mode_at(topology, modes, areas)
    if case.lead and incident.source in HUMAN_SOURCES:
        writer.add(LeadConfirmed, reason=f"corroborated_by_{incident.source.value}")
        assignment = route(topology, case.category_code, areas, severity, mode)
        dispatch(writer, topology, assignment, case.category_code, mode, "lead_confirmed")
    elif (
        not case.lead
        and case.loop is not None
        and (areas != case.area_codes or severity != case.severity)
    ):
        rerouted = route(topology, case.category_code, areas, severity, mode)
        if LOOP_RANK[rerouted.loop] > LOOP_RANK[case.loop]:
            why = "cross_area" if areas != case.area_codes else "severity_raised"
            writer.add(CaseEscalated, from_loop=case.loop, to_loop=rerouted.loop, reason=why)
            dispatch(writer, topology, rerouted, case.category_code, mode, why)
    if not case.lead and incident.category_code != case.category_code:
        link_handler(writer, topology, incident.category_code)
    return CorrelationDecision(reason, case.case_id, tuple(writer.events), writer.state)


LINKED_HANDLING = "linked_handling"
"""The reason a department joins a case because a report on it needs that department's kind."""


def link_handler(writer: EventWriter, topology: Topology, category_code: str) -> None:
    """联动处置: a report of another category joins the case (an ambulance call on a fire); if
    the department kind that category needs is not on the case, the nearest department of that
    kind joins as a co-handler."""
    state = writer.state
    category = topology.category(category_code)
    assignment = state.assignment if state is not None else None
    if assignment is None or category is None:
        return
    involved = [assignment.lead_department, *assignment.co_departments]
    kinds = {department.kind for d in involved if (department := topology.department(d))}
    if category.lead_kind in kinds:
        return
    helper = topology.department_for(category.lead_kind, assignment.handling_area)
    if helper is None or helper.id in involved:
        return
    writer.add(AssistanceAdded, department=helper.id, reason=f"{LINKED_HANDLING}:{category_code}")


def _graver(a: Severity | None, b: Severity | None) -> Severity | None:
    if a is None or b is None:
        return a or b
    return a if SEVERITY_RANK[a] >= SEVERITY_RANK[b] else b


def correlate(
    incident: Incident,
    seen: SeenReport | None,
    seen_case: CaseState | None,
    candidates: Sequence[CaseState] | Callable[[Probe], Iterable[CaseState]],
    device_case: CaseState | None,
    topology: Topology,
    modes: Mapping[str, Mode],
    now: datetime,
) -> CorrelationDecision:
    """What one incident does.

    `seen`/`seen_case`: what the dedup index has of its idempotency key; `candidates`: the open
    cases of its correlation key, or what gives those of them the incident could join, asked
    with its probe (the case book's index, handlers/nearby.py); `device_case`: the last case its
    device (if any) raised."""
    if seen is not None:
        if incident.origin is not None and seen.origin == incident.origin:
            return CorrelationDecision(CorrelationReason.REPLAYED_RECORD, seen.case_id, ())
        if seen_case is None:
            raise UnroutableError("processing_error", f"dedup index names unknown {seen.case_id}")
        if seen.content_digest and incident.content_digest != seen.content_digest:
            raise UnroutableError(
                "conflicting_duplicate",
                f"{incident.idempotency_key} was taken in before with other content "
                f"(on case {seen.case_id}); an id may not be reused for another event",
            )
        writer = EventWriter(seen_case, seen.case_id, now, caused_by=incident.idempotency_key)
        writer.add(
            DuplicateReceived, idempotency_key=incident.idempotency_key, origin=incident.origin
        )
        return CorrelationDecision(
            CorrelationReason.EXACT_DUPLICATE, seen.case_id, tuple(writer.events), writer.state
        )
    if (
        device_case is not None
        and (device_case.is_open or incident.cleared)
        and family_of(topology, device_case.category_code)
        == family_of(topology, incident.category_code)  # the same kind of alarm, repeated
        and _within_window(topology, device_case, incident)
    ):
        return attach(device_case, incident, topology, modes, now, CorrelationReason.DEVICE_REPEAT)
    if incident.at_desk:
        return open_case(incident, topology, modes, now)  # nothing sure enough to match by
    probe = _probe(topology, incident)
    scored = [
        (distance, case.opened_at, case.case_id, case)
        for case in (candidates(probe) if callable(candidates) else candidates)
        if (distance := _match(topology, case, probe)) is not None
    ]
    if scored:
        best = min(scored, key=lambda item: (item[0], item[1], item[2]))[3]
        return attach(best, incident, topology, modes, now, CorrelationReason.ATTACHED_TO_OPEN_CASE)
    if incident.cleared:
        raise UnroutableError(
            "unmatched_clearance", f"device {incident.device_id} cleared an alarm no case holds"
        )
    return open_case(incident, topology, modes, now)
