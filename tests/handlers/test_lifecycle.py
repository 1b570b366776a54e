"""Every command: the transition it makes, and each way it is refused (table-driven)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cityloop.contracts import (
    CASE_COMMAND_ADAPTER,
    GeoPoint,
    Incident,
    Mode,
    Source,
    SwitchMode,
)
from handlers.case import CaseState, CaseStatus
from handlers.correlate import correlate
from handlers.lifecycle import (
    FALSE_ALARMS_TO_FLAG,
    CommandDecision,
    absorb_reports,
    check_deadlines,
    decide_command,
    decide_mode_switch,
    reevaluate_for_mode,
)
from topology import Topology, load_topology, tiny_topology_path

T0 = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)
TINY = load_topology(tiny_topology_path())
STREET = "510104001"
COMMUNITY = "510104001001"


def incident(
    category: str = "pothole",
    source: Source = Source.HOTLINE,
    number: int = 1,
    **fields: Any,
) -> Incident:
    return Incident(
        incident_id=f"i{number}",
        idempotency_key=f"/t|{category}-{number}",
        source=source,
        event_id=f"{number}",
        event_source="/t",
        category_code=category,
        title=category,
        area_codes=[fields.pop("area", COMMUNITY)],
        occurred_at=fields.pop("at", T0),
        received_at=T0,
        **fields,
    )


def open_case(topology: Topology = TINY, **kwargs: Any) -> CaseState:
    decision = correlate(incident(**kwargs), None, None, [], None, topology, {}, T0)
    assert decision.state is not None
    return decision.state


def command(kind: str, actor: str, case: CaseState, **fields: Any) -> Any:
    return CASE_COMMAND_ADAPTER.validate_python(
        {
            "type": kind,
            "command_id": f"cmd-{kind}",
            "case_id": case.case_id,
            "actor": actor,
            "issued_at": T0.isoformat(),
            **fields,
        }
    )


def act(case: CaseState, kind: str, actor: str, **fields: Any) -> CommandDecision:
    return decide_command(
        command(kind, actor, case, **fields), case, TINY, {}, T0 + timedelta(minutes=1)
    )


def lead_dept(case: CaseState) -> str:
    assert case.assignment is not None
    return f"dept:{case.assignment.lead_department}"


CENTRE = f"centre:{STREET}"
CITY = "centre:510100"


def step(case: CaseState, kind: str, actor: str | None = None, **fields: Any) -> CaseState:
    decision = act(case, kind, actor or lead_dept(case), **fields)
    assert decision.outcome.applied, decision.outcome
    assert decision.state is not None
    return decision.state


def test_the_whole_closed_loop() -> None:
    case = open_case()
    assert case.status is CaseStatus.DISPATCHED and case.loop == "small"
    case = step(case, "accept")
    assert case.status is CaseStatus.ACCEPTED and case.accept_deadline is None
    case = step(case, "progress", note="crew on site")
    assert case.status is CaseStatus.IN_PROGRESS
    case = step(case, "resolve", resolution="filled")
    assert case.status is CaseStatus.RESOLVED
    case = step(case, "verify", CENTRE, satisfied=True, note="called back")
    assert case.status is CaseStatus.VERIFIED
    case = step(case, "close", CENTRE, reason="archived")
    assert case.status is CaseStatus.CLOSED and not case.is_open
    assert case.version == 7  # opened, dispatched, accepted, progress, resolved, verified, closed


@pytest.mark.parametrize(
    ("prepare", "kind", "actor", "fields", "reason"),
    [
        ([], "resolve", None, {"resolution": "x"}, "invalid_state"),  # never accepted
        ([], "accept", "dept:510104002.urban_management", {}, "not_permitted"),  # not assigned
        ([], "accept", CENTRE, {}, "not_permitted"),
        ([], "verify", CENTRE, {"satisfied": True}, "invalid_state"),
        ([], "verify", None, {"satisfied": True}, "not_permitted"),
        ([], "close", "centre:510105", {"reason": "x"}, "not_permitted"),  # another district
        ([], "grant_extension", CENTRE, {}, "no_extension_requested"),
        ([], "request_extension", None, {"minutes": 60, "reason": "x"}, "invalid_state"),
        (["accept"], "accept", None, {}, "invalid_state"),
        (
            ["accept"],
            "request_assistance",
            None,
            {"department": "nope", "reason": "x"},
            "unknown_department",
        ),
        (["accept"], "merge", CENTRE, {"into_case_id": "SELF", "reason": "x"}, "merge_into_itself"),
        ([], "confirm_lead", None, {}, "invalid_state"),
        ([], "reopen", CENTRE, {"reason": "x"}, "invalid_state"),
    ],
)
def test_invalid_commands_are_rejected_with_a_reason_and_change_nothing(
    prepare: list[str], kind: str, actor: str | None, fields: dict[str, Any], reason: str
) -> None:
    case = open_case()
    for earlier in prepare:
        case = step(case, earlier)
    if fields.get("into_case_id") == "SELF":
        fields = {**fields, "into_case_id": case.case_id}
    decision = act(case, kind, actor or lead_dept(case), **fields)
    assert not decision.outcome.applied
    assert decision.outcome.reason == reason
    assert decision.events == () and decision.state is None


def test_unknown_case_is_rejected() -> None:
    case = open_case()
    decision = decide_command(command("accept", lead_dept(case), case), None, TINY, {}, T0)
    assert decision.outcome.reason == "unknown_case" and not decision.outcome.applied


def test_return_escalates_one_loop_with_a_new_department() -> None:
    case = open_case()
    returned = step(case, "return", reason="not ours")
    assert [e.type for e in act(case, "return", lead_dept(case), reason="x").events] == [
        "CaseReturned",
        "CaseEscalated",
        "CaseDispatched",
    ]
    assert returned.loop == "medium" and returned.status is CaseStatus.DISPATCHED
    assert returned.returns == 1 and returned.escalations == 1
    assert returned.assignment is not None and returned.assignment.handling_area == "510104"


def test_escalation_stops_at_the_city() -> None:
    case = open_case()
    case = step(case, "escalate", reason="beyond us")
    case = step(case, "escalate", CITY, reason="beyond the district")
    assert case.loop == "big"
    refused = act(case, "escalate", CITY, reason="again")
    assert refused.outcome.reason == "at_top_loop"


def test_assistance_and_extension() -> None:
    case = step(open_case(), "accept")
    case = step(case, "request_assistance", department="510104001.police", reason="crowd control")
    assert case.assignment is not None and "510104001.police" in case.assignment.co_departments
    again = act(
        case, "request_assistance", lead_dept(case), department="510104001.police", reason="x"
    )
    assert again.outcome.reason == "already_involved"
    before = case.resolve_deadline
    assert before is not None
    case = step(case, "request_extension", minutes=120, reason="parts on order")
    assert act(
        case, "request_extension", lead_dept(case), minutes=5, reason="x"
    ).outcome.reason == ("extension_pending")
    assert act(case, "grant_extension", lead_dept(case)).outcome.reason == "not_permitted"
    case = step(case, "grant_extension", CENTRE)
    assert case.resolve_deadline == before + timedelta(minutes=120)


def test_unsatisfied_callback_reopens_and_redispatches() -> None:
    case = step(
        step(step(open_case(), "accept"), "resolve", resolution="done"),
        "verify",
        CENTRE,
        satisfied=False,
    )
    assert case.status is CaseStatus.DISPATCHED and case.reopens == 1
    assert case.accept_deadline is not None


def test_merge_hands_reports_to_the_surviving_case() -> None:
    survivor = open_case(number=1)
    merged = open_case(number=2)
    decision = act(merged, "merge", CENTRE, into_case_id=survivor.case_id, reason="same hole")
    assert decision.state is not None and decision.state.status is CaseStatus.MERGED
    assert decision.absorb is not None and decision.absorb.case_id == survivor.case_id
    taken = absorb_reports(decision.absorb, survivor, T0)
    assert taken.state is not None and len(taken.state.reports) == 2
    again = absorb_reports(decision.absorb, taken.state, T0)
    assert again.events == ()  # a redelivered merge attaches nothing twice


def test_leads_are_confirmed_or_rejected_by_the_community() -> None:
    def lead(number: int) -> CaseState:
        return open_case(
            category="waterlogging",
            source=Source.IOT,
            number=number,
            sensor_type="water_level",
            device_id="WL-9",
            location=GeoPoint(lat=30.66, lon=104.08),
        )

    case = lead(1)
    assert case.status is CaseStatus.LEAD and case.loop == "micro"
    assert case.assignment is not None
    assert case.assignment.lead_department == f"{COMMUNITY}.residents_committee"
    assert act(case, "accept", lead_dept(case)).outcome.reason == "invalid_state"
    confirmed = step(case, "confirm_lead")
    assert confirmed.status is CaseStatus.DISPATCHED and confirmed.loop == "small"

    flagged = act(lead(2), "reject_lead", lead_dept(case), reason="sensor fouled")
    assert flagged.state is not None and flagged.state.status is CaseStatus.CLOSED
    rejected = decide_command(
        command("reject_lead", lead_dept(case), lead(3)),
        lead(3),
        TINY,
        {},
        T0,
        FALSE_ALARMS_TO_FLAG - 1,
    )
    event = rejected.events[-1]
    assert event.type == "LeadRejected" and event.device_flagged and event.device_false_alarms == 3


def test_missed_accept_deadline_brings_a_notice_and_escalation() -> None:
    case = open_case()
    assert case.accept_deadline is not None
    assert check_deadlines(case, TINY, {}, case.accept_deadline).events == ()  # not yet missed
    change = check_deadlines(case, TINY, {}, case.accept_deadline + timedelta(seconds=1))
    assert [e.type for e in change.events] == [
        "SupervisionNoticeIssued",
        "CaseEscalated",
        "CaseDispatched",
    ]
    assert change.events[0].reason == "accept_deadline_missed"  # type: ignore[union-attr]
    assert change.state is not None and change.state.loop == "medium"
    # the new loop's deadlines run from the moment of escalation
    assert change.state.accept_deadline is not None
    assert change.state.accept_deadline > case.accept_deadline


def test_missed_resolve_deadline_after_acceptance() -> None:
    case = step(open_case(), "accept")
    assert case.resolve_deadline is not None
    change = check_deadlines(case, TINY, {}, case.resolve_deadline + timedelta(minutes=1))
    assert change.events[0].reason == "resolve_deadline_missed"  # type: ignore[union-attr]
    assert change.state is not None and change.state.loop == "medium"


def test_a_missed_deadline_at_the_city_only_notifies_once() -> None:
    case = step(step(open_case(), "escalate", reason="x"), "escalate", CITY, reason="y")
    assert case.accept_deadline is not None
    late = case.accept_deadline + timedelta(minutes=1)
    change = check_deadlines(case, TINY, {}, late)
    assert [e.type for e in change.events] == ["SupervisionNoticeIssued"]
    assert change.state is not None
    assert check_deadlines(change.state, TINY, {}, late + timedelta(hours=1)).events == ()


def test_emergency_mode_raises_open_cases_with_an_emergency_floor() -> None:
    modes = {"510104": Mode.EMERGENCY}
    flood = open_case(category="waterlogging")  # emergency floor: medium
    assert flood.loop == "small"
    change = reevaluate_for_mode(flood, TINY, modes, T0)
    assert [e.type for e in change.events] == ["CaseEscalated", "CaseDispatched"]
    assert change.events[0].reason == "emergency_mode"  # type: ignore[union-attr]
    assert change.state is not None and change.state.loop == "medium"
    assert reevaluate_for_mode(flood, TINY, {}, T0).events == ()  # normal mode: nothing moves
    assert reevaluate_for_mode(open_case(), TINY, modes, T0).events == ()  # pothole: no floor
    elsewhere = {"510105": Mode.EMERGENCY}
    assert reevaluate_for_mode(flood, TINY, elsewhere, T0).events == ()


def test_emergency_mode_tightens_new_cases_and_only_centres_above_may_switch() -> None:
    normal = correlate(incident("waterlogging"), None, None, [], None, TINY, {}, T0).state
    emergency = correlate(
        incident("waterlogging"), None, None, [], None, TINY, {"510100": Mode.EMERGENCY}, T0
    ).state
    assert normal is not None and emergency is not None
    assert (normal.loop, emergency.loop) == ("small", "medium")
    switched = SwitchMode(
        command_id="m1",
        area_code="510104",
        mode=Mode.EMERGENCY,
        actor="centre:510104",
        issued_at=T0,
    )
    assert decide_mode_switch(switched, TINY, T0).applied
    assert decide_mode_switch(
        switched.model_copy(update={"actor": "centre:510100"}), TINY, T0
    ).applied
    foreign = switched.model_copy(update={"actor": "centre:510105"})
    assert decide_mode_switch(foreign, TINY, T0).reason == "not_permitted"
    department = switched.model_copy(update={"actor": "dept:510104.water"})
    assert decide_mode_switch(department, TINY, T0).reason == "not_permitted"
