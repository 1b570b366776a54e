"""Commands on a case: who may do what in which state, and the events that follow. Deadlines
(SLA) and emergency-mode re-evaluation live here too: they move a case as commands do."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from cityloop.contracts import (
    AbsorbReports,
    AcceptCase,
    Assignment,
    AssistanceAdded,
    CaseAccepted,
    CaseClosed,
    CaseCommand,
    CaseEscalated,
    CaseEvent,
    CaseMerged,
    CaseReclassified,
    CaseReopened,
    CaseResolved,
    CaseReturned,
    CaseVerified,
    CloseCase,
    CommandOutcome,
    ConfirmLead,
    DeskReason,
    DispatchCase,
    EscalateCase,
    ExtensionGranted,
    ExtensionRequested,
    GrantExtension,
    LeadConfirmed,
    LeadRejected,
    MergeCase,
    Mode,
    ProgressReported,
    ReclassifyCase,
    RejectLead,
    ReopenCase,
    ReportAttached,
    ReportProgress,
    RequestAssistance,
    RequestExtension,
    ResolveCase,
    ReturnCase,
    RoutingReason,
    Severity,
    SupervisionNoticeIssued,
    SwitchMode,
    Triage,
    TriageDecision,
    VerifyCase,
)
from handlers.assessment import is_not_ours
from handlers.case import (
    MERGED_FROM,
    OPEN_STATUSES,
    CaseChange,
    CaseState,
    CaseStatus,
    EventWriter,
)
from handlers.correlate import LOOP_RANK, DispatchReason, dispatch, mode_at, send_to_desk
from topology import Topology, UnroutableError, escalation_target, route
from topology.model import LOOP_OF_LEVEL

FALSE_ALARMS_TO_FLAG = 3
"""A device whose alarms the community found false this many times is flagged for repair."""


class Rejected(Exception):
    """A command that must not be applied; `reason` is a short named reason."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class CommandDecision:
    outcome: CommandOutcome
    events: tuple[CaseEvent, ...] = ()
    state: CaseState | None = None
    absorb: AbsorbReports | None = None
    """For a merge: the reports the surviving case must take in."""


# --- who may act ---------------------------------------------------------------------------


def _is_assigned(actor: str, assignment: Assignment | None) -> bool:
    return assignment is not None and actor == f"dept:{assignment.lead_department}"


def _is_coordinating(actor: str, assignment: Assignment | None, topology: Topology) -> bool:
    """A duty officer of an operations centre at or above the case's handling area."""
    if assignment is None or not actor.startswith("centre:"):
        return False
    centre_area = actor.removeprefix("centre:")
    return centre_area in topology.ancestors(assignment.handling_area)


def _is_dispatcher(actor: str, state: CaseState, topology: Topology) -> bool:
    """A dispatcher of a 12345 centre at or above where the case is (or waits)."""
    if not actor.startswith("desk:"):
        return False
    desk_area = actor.removeprefix("desk:")
    places = [state.desk.removeprefix("desk:")] if state.desk else []
    places += state.area_codes
    return any(desk_area in topology.ancestors(place) for place in places)


def _require(allowed: bool, who: str) -> None:
    if not allowed:
        raise Rejected("not_permitted", f"only {who} may do this")


def _require_status(state: CaseState, *statuses: CaseStatus) -> None:
    if state.status not in statuses:
        wanted = ", ".join(status.value for status in statuses)
        raise Rejected("invalid_state", f"the case is {state.status.value}; needs {wanted}")


# --- moves shared by commands, deadlines and mode switches ---------------------------------


def escalate(
    writer: EventWriter, topology: Topology, modes: Mapping[str, Mode], reason: str
) -> bool:
    """One loop up, re-dispatched there with fresh deadlines; False at the city."""
    state = writer.state
    assignment = state.assignment if state is not None else None
    if state is None or assignment is None:
        return False
    target = escalation_target(topology, assignment, state.category_code)
    if target is None:
        return False
    mode = mode_at(topology, modes, state.area_codes)
    writer.add(CaseEscalated, from_loop=assignment.loop, to_loop=target.loop, reason=reason)
    dispatch(writer, topology, target, state.category_code, mode, reason)
    return True


def _redispatch(
    writer: EventWriter, topology: Topology, modes: Mapping[str, Mode], why: str
) -> None:
    state = writer.state
    assignment = state.assignment if state is not None else None
    if state is None or assignment is None:
        return
    mode = mode_at(topology, modes, state.area_codes)
    dispatch(writer, topology, assignment, state.category_code, mode, why)


def hand_assignment(
    topology: Topology,
    category_code: str,
    area_codes: list[str],
    severity: Severity | None,
    mode: Mode,
    lead_department: str | None,
) -> Assignment:
    """Where a dispatcher's choice sends a case: routed as usual for its category, or to the
    department the dispatcher named, at that department's own level."""
    routed = route(topology, category_code, area_codes, severity, mode)
    if lead_department is None or lead_department == routed.lead_department:
        return routed
    chosen = topology.department(lead_department)
    if chosen is None:
        raise Rejected("unknown_department", lead_department)
    level = topology.level_of(chosen.area)
    loop = LOOP_OF_LEVEL.get(level) if level is not None else None
    centre = topology.centre_for(chosen.area)
    return routed.model_copy(
        update={
            "loop": loop or routed.loop,
            "handling_area": chosen.area,
            "lead_department": chosen.id,
            "co_departments": [d for d in routed.co_departments if d != chosen.id],
            "coordinating_centre": centre.id if centre else routed.coordinating_centre,
            "escalation_chain": list(topology.ancestors(chosen.area)),
            "reasons": [
                *routed.reasons,
                RoutingReason(rule="dispatcher_choice", detail=f"lead: {chosen.id}"),
            ],
        }
    )


def _dispatch_by_hand(
    writer: EventWriter,
    topology: Topology,
    modes: Mapping[str, Mode],
    category_code: str,
    lead_department: str | None,
    area_code: str | None,
    why: str,
    reason: DispatchReason,
) -> None:
    """A dispatcher's decision: the category (and place) set on the case, then routed."""
    state = writer.state
    assert state is not None  # noqa: S101 - commands act on known cases
    if topology.category(category_code) is None:
        raise Rejected("unknown_category", category_code)
    areas = list(state.area_codes)
    if area_code is not None:
        if topology.area(area_code) is None:
            raise Rejected("unknown_area", area_code)
        areas = [area_code]
    mode = mode_at(topology, modes, areas)
    try:
        assignment = hand_assignment(
            topology, category_code, areas, state.severity, mode, lead_department
        )
    except UnroutableError as exc:
        raise Rejected("unroutable", str(exc)) from exc
    if category_code != state.category_code or areas != state.area_codes:
        writer.add(
            CaseReclassified,
            from_category=state.category_code,
            to_category=category_code,
            area_codes=areas if areas != state.area_codes else None,
            reason=why,
        )
    dispatch(writer, topology, assignment, category_code, mode, reason)


# --- commands ------------------------------------------------------------------------------


def _apply_command(
    command: CaseCommand,
    state: CaseState,
    writer: EventWriter,
    topology: Topology,
    modes: Mapping[str, Mode],
    device_false_alarms: int,
) -> AbsorbReports | None:
    actor = command.actor
    assignment = state.assignment  # read back from its JSON once for the whole decision
    assigned = _is_assigned(actor, assignment)
    coordinating = _is_coordinating(actor, assignment, topology)
    dispatcher = _is_dispatcher(actor, state, topology)
    department = assignment.lead_department if assignment else ""
    match command:
        case DispatchCase():
            _require(dispatcher, "a dispatcher of the case's 12345 centre")
            _require_status(state, CaseStatus.AWAITING_DISPATCH)
            _dispatch_by_hand(
                writer,
                topology,
                modes,
                command.category_code,
                command.lead_department,
                command.area_code,
                command.note or "dispatched",
                DispatchReason.DISPATCHED_BY_HAND,
            )
        case ReclassifyCase():
            _require(dispatcher, "a dispatcher of the case's 12345 centre")
            _require_status(state, *(OPEN_STATUSES - {CaseStatus.LEAD}))
            if (
                command.category_code == state.category_code
                and command.lead_department is None
                and state.status is not CaseStatus.AWAITING_DISPATCH
            ):
                raise Rejected("same_category", "the case already has this category")
            reason = (
                DispatchReason.DISPATCHED_BY_HAND
                if state.status is CaseStatus.AWAITING_DISPATCH
                else DispatchReason.RECLASSIFIED
            )
            _dispatch_by_hand(
                writer,
                topology,
                modes,
                command.category_code,
                command.lead_department,
                None,
                command.reason,
                reason,
            )
        case AcceptCase():
            _require(assigned, "the assigned department")
            if state.lead:
                raise Rejected("invalid_state", "a lead is verified (confirm_lead), not accepted")
            _require_status(state, CaseStatus.DISPATCHED)
            writer.add(CaseAccepted, department=department)
        case ReportProgress():
            _require(assigned, "the assigned department")
            _require_status(state, CaseStatus.ACCEPTED, CaseStatus.IN_PROGRESS)
            writer.add(ProgressReported, department=department, note=command.note)
        case ReturnCase():
            _require(assigned, "the assigned department")
            _require_status(
                state, CaseStatus.DISPATCHED, CaseStatus.ACCEPTED, CaseStatus.IN_PROGRESS
            )
            writer.add(CaseReturned, department=department, reason=command.reason)
            if is_not_ours(command.reason):
                # not this department's matter: climbing its own chain would not find the
                # right one, so a dispatcher decides again (退回派单)
                send_to_desk(
                    writer,
                    topology,
                    Triage(
                        decision=TriageDecision.DESK,
                        desk_reasons=[DeskReason.RETURNED_NOT_OURS],
                        candidates=list(state.candidates),
                    ),
                    state.area_codes,
                )
            else:
                escalate(writer, topology, modes, "returned")
        case RequestAssistance():
            _require(assigned or coordinating, "the assigned department or a coordinating centre")
            _require_status(state, *OPEN_STATUSES)
            helper = topology.department(command.department)
            if helper is None:
                raise Rejected("unknown_department", command.department)
            if assignment and command.department in (
                assignment.lead_department,
                *assignment.co_departments,
            ):
                raise Rejected("already_involved", command.department)
            writer.add(AssistanceAdded, department=command.department, reason=command.reason)
        case RequestExtension():
            _require(assigned, "the assigned department")
            _require_status(state, CaseStatus.ACCEPTED, CaseStatus.IN_PROGRESS)
            if state.pending_extension_minutes is not None:
                raise Rejected("extension_pending", "an extension request is already pending")
            writer.add(
                ExtensionRequested,
                department=department,
                minutes=command.minutes,
                reason=command.reason,
            )
        case GrantExtension():
            _require(coordinating, "a coordinating centre")
            if state.pending_extension_minutes is None:
                raise Rejected("no_extension_requested")
            base = max(state.resolve_deadline or writer.now, writer.now)
            writer.add(
                ExtensionGranted,
                minutes=state.pending_extension_minutes,
                resolve_deadline=base + timedelta(minutes=state.pending_extension_minutes),
            )
        case ResolveCase():
            _require(assigned, "the assigned department")
            _require_status(state, CaseStatus.ACCEPTED, CaseStatus.IN_PROGRESS)
            writer.add(CaseResolved, department=department, resolution=command.resolution)
        case VerifyCase():
            _require(coordinating, "a coordinating centre")
            _require_status(state, CaseStatus.RESOLVED)
            writer.add(CaseVerified, satisfied=command.satisfied, note=command.note)
            if not command.satisfied:
                writer.add(CaseReopened, reason="citizen_not_satisfied")
                _redispatch(writer, topology, modes, "reopened")
        case ReopenCase():
            _require(coordinating, "a coordinating centre")
            _require_status(state, CaseStatus.RESOLVED, CaseStatus.VERIFIED, CaseStatus.CLOSED)
            writer.add(CaseReopened, reason=command.reason)
            _redispatch(writer, topology, modes, "reopened")
        case CloseCase():
            _require(
                coordinating or (dispatcher and state.status is CaseStatus.AWAITING_DISPATCH),
                "a coordinating centre (or the desk, for a case waiting there)",
            )
            _require_status(state, CaseStatus.VERIFIED, CaseStatus.RESOLVED, *OPEN_STATUSES)
            writer.add(CaseClosed, reason=command.reason)
        case EscalateCase():
            _require(assigned or coordinating, "the assigned department or a coordinating centre")
            _require_status(
                state, *(OPEN_STATUSES - {CaseStatus.LEAD, CaseStatus.AWAITING_DISPATCH})
            )
            if not escalate(writer, topology, modes, "requested: " + command.reason):
                raise Rejected("at_top_loop", "the case is already at the city loop")
        case MergeCase():
            _require(
                coordinating or (dispatcher and state.status is CaseStatus.AWAITING_DISPATCH),
                "a coordinating centre (or the desk, for a case waiting there)",
            )
            _require_status(state, *OPEN_STATUSES)
            if command.into_case_id == state.case_id:
                raise Rejected("merge_into_itself")
            writer.add(CaseMerged, into_case_id=command.into_case_id, reason=command.reason)
            return AbsorbReports(
                command_id=f"{command.command_id}:absorb",
                case_id=command.into_case_id,
                from_case_id=state.case_id,
                reports=list(state.reports),
                issued_at=command.issued_at,
            )
        case ConfirmLead():
            _require(assigned or coordinating, "the verifying community or a coordinating centre")
            _require_status(state, CaseStatus.LEAD)
            writer.add(LeadConfirmed, reason=command.reason)
            mode = mode_at(topology, modes, state.area_codes)
            routed = route(topology, state.category_code, state.area_codes, state.severity, mode)
            dispatch(writer, topology, routed, state.category_code, mode, "lead_confirmed")
        case RejectLead():
            _require(assigned or coordinating, "the verifying community or a coordinating centre")
            _require_status(state, CaseStatus.LEAD)
            count = device_false_alarms + 1 if state.device_id else 0
            writer.add(
                LeadRejected,
                reason=command.reason,
                device_id=state.device_id,
                device_false_alarms=count,
                device_flagged=count >= FALSE_ALARMS_TO_FLAG,
            )
    return None


def decide_command(
    command: CaseCommand,
    state: CaseState | None,
    topology: Topology,
    modes: Mapping[str, Mode],
    now: datetime,
    device_false_alarms: int = 0,
) -> CommandDecision:
    """Apply a command if the actor may and the case's state allows; else say why not."""
    writer = EventWriter(
        state, command.case_id, now, actor=command.actor, caused_by=command.command_id
    )
    absorb = None
    try:
        if state is None:
            raise Rejected("unknown_case", command.case_id)
        absorb = _apply_command(command, state, writer, topology, modes, device_false_alarms)
    except Rejected as rejection:
        return CommandDecision(_outcome(command, now, False, rejection.reason))
    return CommandDecision(
        _outcome(command, now, True, "applied", writer.events),
        tuple(writer.events),
        writer.state,
        absorb,
    )


def _outcome(
    command: CaseCommand,
    now: datetime,
    applied: bool,
    reason: str,
    events: list[CaseEvent] | None = None,
) -> CommandOutcome:
    return CommandOutcome(
        command_id=command.command_id,
        case_id=command.case_id,
        command_type=command.type,
        actor=command.actor,
        applied=applied,
        reason=reason,
        event_types=[event.type for event in events or []],
        decided_at=now,
    )


def absorb_reports(
    message: AbsorbReports, state: CaseState | None, now: datetime
) -> CommandDecision:
    """The surviving case of a merge takes in the merged case's reports."""
    outcome = CommandOutcome(
        command_id=message.command_id,
        case_id=message.case_id,
        command_type=message.type,
        actor="system",
        applied=state is not None,
        reason="applied" if state is not None else "unknown_case",
        decided_at=now,
    )
    if state is None:
        return CommandDecision(outcome)
    writer = EventWriter(state, state.case_id, now, caused_by=message.command_id)
    known = set(state.report_keys)
    for report in message.reports:
        if report.idempotency_key not in known:
            writer.add(ReportAttached, report=report, reason=f"{MERGED_FROM}{message.from_case_id}")
    events = tuple(writer.events)
    return CommandDecision(
        outcome.model_copy(update={"event_types": [e.type for e in events]}), events, writer.state
    )


# --- the clock: deadlines ------------------------------------------------------------------


def check_deadlines(
    state: CaseState, topology: Topology, modes: Mapping[str, Mode], now: datetime
) -> CaseChange:
    """A missed deadline brings a supervision notice (督办) and, below the city, escalation;
    a desk that misses its dispatch deadline gets the notice (there is nothing to escalate)."""
    writer = EventWriter(state, state.case_id, now)
    if (
        state.status is CaseStatus.AWAITING_DISPATCH
        and state.dispatch_deadline is not None
        and now > state.dispatch_deadline
    ):
        writer.add(
            SupervisionNoticeIssued,
            department=state.desk or "",
            reason="dispatch_deadline_missed",
            deadline=state.dispatch_deadline,
        )
        return writer.change()
    assignment = state.assignment
    department = assignment.lead_department if assignment else ""
    if (
        state.accept_deadline is not None
        and now > state.accept_deadline
        and state.status
        in (
            CaseStatus.LEAD,
            CaseStatus.DISPATCHED,
            CaseStatus.RETURNED,
        )
    ):
        reason = "accept_deadline_missed"
        deadline = state.accept_deadline
    elif (
        state.resolve_deadline is not None
        and now > state.resolve_deadline
        and state.status
        in (
            CaseStatus.DISPATCHED,
            CaseStatus.ACCEPTED,
            CaseStatus.IN_PROGRESS,
        )
    ):
        reason = "resolve_deadline_missed"
        deadline = state.resolve_deadline
    else:
        return writer.change()
    writer.add(SupervisionNoticeIssued, department=department, reason=reason, deadline=deadline)
    if not state.lead:
        escalate(writer, topology, modes, reason)
    return writer.change()


def reevaluate_for_mode(
    state: CaseState, topology: Topology, modes: Mapping[str, Mode], now: datetime
) -> CaseChange:
    """After a mode switch: an open case whose route now starts higher goes up (never down)."""
    writer = EventWriter(state, state.case_id, now)
    if (
        not state.is_open
        or state.lead
        or state.loop is None
        or state.status is CaseStatus.AWAITING_DISPATCH
    ):
        return writer.change()
    mode = mode_at(topology, modes, state.area_codes)
    if mode is not Mode.EMERGENCY:
        return writer.change()
    rerouted = route(topology, state.category_code, state.area_codes, state.severity, mode)
    if LOOP_RANK[rerouted.loop] <= LOOP_RANK[state.loop]:
        return writer.change()
    writer.add(
        CaseEscalated,
        from_loop=state.loop,
        to_loop=rerouted.loop,
        reason="emergency_mode",
    )
    dispatch(writer, topology, rerouted, state.category_code, mode, "emergency_mode")
    return writer.change()


def decide_mode_switch(command: SwitchMode, topology: Topology, now: datetime) -> CommandOutcome:
    """A centre may switch its own area (or any area below it), nothing else."""
    area = topology.area(command.area_code)
    centre_area = command.actor.removeprefix("centre:")
    if area is None:
        reason = "unknown_area"
    elif not command.actor.startswith("centre:") or centre_area not in topology.ancestors(
        command.area_code
    ):
        reason = "not_permitted"
    else:
        reason = "applied"
    return CommandOutcome(
        command_id=command.command_id,
        command_type=command.type,
        actor=command.actor,
        applied=reason == "applied",
        reason=reason,
        decided_at=now,
    )
