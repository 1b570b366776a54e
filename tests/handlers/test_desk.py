"""The 12345 dispatch desk, decision by decision: what goes to the desk and why, what a
dispatcher may do there, returns as not ours, the desk's deadline, linked handling, and
reports placed only by words."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from cityloop.contracts import (
    UNCLASSIFIED,
    CaseDispatched,
    CaseReclassified,
    DeskReason,
    DispatchCase,
    Incident,
    ReclassifyCase,
    ReturnCase,
    Source,
    SupervisionNoticeIssued,
    TriageDecision,
)
from handlers.assessment import DeskGrouping, assess_desk, desk_steps
from handlers.book import CaseBook
from handlers.case import CaseState, CaseStatus
from handlers.cells import correlation_key
from handlers.intake import Accepted, take_in
from handlers.lifecycle import check_deadlines, decide_command
from handlers.triage import dispatcher_labels
from tests.handlers.guessers import KeywordGuesser
from tests.handlers.test_intake import NOW, envelope, raw
from topology import Topology, load_topology, tiny_topology_path


@pytest.fixture(scope="module")
def tiny() -> Topology:
    return load_topology(tiny_topology_path())


def incident(tiny: Topology, *, source: Source = Source.HOTLINE, **data: Any) -> Incident:
    document = envelope(source, **data)
    document["id"] = str(data.get("order_id", data.get("report_id", "E-1")))
    result = take_in(raw(document), tiny, NOW, expected=source, guesser=KeywordGuesser(tiny))
    assert isinstance(result, Accepted), result
    return result.incident


def opened(
    book: CaseBook, tiny: Topology, item: Incident, log: list[Any] | None = None
) -> CaseState:
    decision = book.correlate(item, correlation_key(tiny, item), tiny, {}, NOW)
    if log is not None:
        log.extend(decision.events)
    state = book.case(decision.case_id)
    assert state is not None
    return state


def command(kind: type[Any], state: CaseState, actor: str, at: datetime = NOW, **fields: Any):
    return kind(
        command_id=f"cmd-{kind.__name__}-{actor}",
        case_id=state.case_id,
        actor=actor,
        issued_at=at,
        **fields,
    )


WAGES: dict[str, Any] = {"title": "讨薪", "text": "公司拖了我三个月工资不发", "category_code": None}


@pytest.mark.parametrize(
    ("data", "reasons", "given"),
    [
        (WAGES, [DeskReason.LOW_CONFIDENCE], None),
        ({"category_code": "labour_dispute"}, [DeskReason.UNKNOWN_CATEGORY_CODE], "labour_dispute"),
        (
            {
                "area_code": None,
                "address": "某小区门口",
                "title": "路面坑洼",
                "text": "人行道有个坑",
            },
            [DeskReason.UNPLACED],
            None,
        ),
        (
            {**WAGES, "area_code": None, "address": "锦江区"},
            [DeskReason.LOW_CONFIDENCE],
            None,
        ),
    ],
)
def test_what_is_not_sure_waits_at_the_desk(
    tiny: Topology, data: dict[str, Any], reasons: list[DeskReason], given: str | None
) -> None:
    item = incident(tiny, **data)
    assert item.triage is not None and item.triage.decision is TriageDecision.DESK
    assert item.triage.desk_reasons == reasons
    book = CaseBook()
    state = opened(book, tiny, item)
    assert state.status is CaseStatus.AWAITING_DISPATCH
    assert state.assignment is None and state.accept_deadline is None
    assert state.desk_reasons == tuple(reasons)
    assert state.given_category_code == given
    assert state.dispatch_deadline == NOW + timedelta(minutes=30)
    # the desk is the district's 12345 centre when the place is known, else the city's
    assert state.desk == ("desk:510100" if DeskReason.UNPLACED in reasons else "desk:510104")


def test_placed_by_words_and_dispatched_without_a_person(tiny: Topology) -> None:
    item = incident(
        tiny,
        area_code=None,
        address="锦江区春熙街道红星社区3栋",
        title="路面坑洼",
        text="人行道有个坑",
    )
    assert item.area_codes == ["510104001001"] and item.location_method == "address_text"
    assert item.triage is not None and item.triage.decision is TriageDecision.AUTO
    state = opened(CaseBook(), tiny, item)
    assert state.status is CaseStatus.DISPATCHED and state.category_code == "pothole"


def test_an_ambiguous_address_names_its_candidates(tiny: Topology) -> None:
    # 春熙街道 and 草堂街道 are in two districts: which one is meant, a person decides
    item = incident(
        tiny, area_code=None, address="春熙街道还是草堂街道", title="路面坑洼", text="坑"
    )
    assert item.triage is not None and item.triage.desk_reasons == [DeskReason.AMBIGUOUS_PLACE]
    assert set(item.triage.area_candidates) == {"510104001", "510105001"}
    assert item.area_codes == ["510100"]


def test_an_area_code_the_address_contradicts_is_noted(tiny: Topology) -> None:
    item = incident(tiny, area_code="510104002001", address="青羊区草堂街道", category_code="noise")
    assert item.triage is not None and item.triage.decision is TriageDecision.GIVEN
    assert item.triage.place_note and "510105" in item.triage.place_note


def test_two_unrelated_desk_orders_in_one_community_stay_apart(tiny: Topology) -> None:
    book = CaseBook()
    first = opened(book, tiny, incident(tiny, **WAGES, order_id="WO-1"))
    school: dict[str, Any] = {
        "title": "入学",
        "text": "孩子没有学位",
        "category_code": None,
        "order_id": "WO-2",
    }
    second = opened(book, tiny, incident(tiny, **school))
    assert first.case_id != second.case_id
    assert first.category_code == second.category_code == UNCLASSIFIED


def test_a_dispatcher_dispatches_and_the_change_is_on_the_timeline(tiny: Topology) -> None:
    book = CaseBook()
    state = opened(book, tiny, incident(tiny, **WAGES))
    outsider = decide_command(
        command(DispatchCase, state, "desk:510105", category_code="noise"), state, tiny, {}, NOW
    )
    assert not outsider.outcome.applied and outsider.outcome.reason == "not_permitted"
    department = decide_command(
        command(DispatchCase, state, "dept:510104.police", category_code="noise"),
        state,
        tiny,
        {},
        NOW,
    )
    assert department.outcome.reason == "not_permitted"
    unknown = decide_command(
        command(DispatchCase, state, "desk:510104", category_code="ufo"), state, tiny, {}, NOW
    )
    assert unknown.outcome.reason == "unknown_category"

    later = NOW + timedelta(minutes=5)
    decision = decide_command(
        command(
            DispatchCase,
            state,
            "desk:510104",
            at=later,
            category_code="noise",
            lead_department="510104.police",
        ),
        state,
        tiny,
        {},
        later,
    )
    assert decision.outcome.applied, decision.outcome
    kinds = [type(event) for event in decision.events]
    assert kinds == [CaseReclassified, CaseDispatched]
    reclassified, dispatched = decision.events
    assert isinstance(reclassified, CaseReclassified) and reclassified.to_category == "noise"
    assert isinstance(dispatched, CaseDispatched)
    assert dispatched.reason == "dispatched_by_hand"
    assert dispatched.assignment.lead_department == "510104.police"
    assert any(r.rule == "dispatcher_choice" for r in dispatched.assignment.reasons)
    after = decision.state
    assert after is not None and after.status is CaseStatus.DISPATCHED
    assert after.dispatch_deadline is None and after.desk == "desk:510104"


def test_returned_as_not_ours_goes_back_to_the_desk_and_is_redispatched(tiny: Topology) -> None:
    book = CaseBook()
    state = opened(book, tiny, incident(tiny, category_code="noise"))
    assert state.assignment is not None
    lead = state.assignment.lead_department
    returned = decide_command(
        command(ReturnCase, state, f"dept:{lead}", reason="not_ours: 是施工噪音，归城管"),
        state,
        tiny,
        {},
        NOW,
    )
    assert returned.outcome.applied
    assert [event.type for event in returned.events] == ["CaseReturned", "CaseSentToDesk"]
    at_desk = returned.state
    assert at_desk is not None and at_desk.status is CaseStatus.AWAITING_DISPATCH
    assert at_desk.desk_reasons == (DeskReason.RETURNED_NOT_OURS,)
    # an ordinary return still climbs the chain
    plain = decide_command(
        command(ReturnCase, state, f"dept:{lead}", reason="beyond our capability"),
        state,
        tiny,
        {},
        NOW,
    )
    assert [event.type for event in plain.events][:2] == ["CaseReturned", "CaseEscalated"]

    redispatched = decide_command(
        command(
            ReclassifyCase, at_desk, "desk:510100", category_code="garbage_exposed", reason="x"
        ),
        at_desk,
        tiny,
        {},
        NOW,
    )
    assert redispatched.outcome.applied, redispatched.outcome
    final = redispatched.state
    assert final is not None and final.category_code == "garbage_exposed"
    assert final.assignment is not None and "urban_management" in final.assignment.lead_department


def test_reclassify_reroutes_an_open_case(tiny: Topology) -> None:
    state = opened(CaseBook(), tiny, incident(tiny, category_code="noise"))
    same = decide_command(
        command(ReclassifyCase, state, "desk:510104", category_code="noise", reason="x"),
        state,
        tiny,
        {},
        NOW,
    )
    assert same.outcome.reason == "same_category"
    moved = decide_command(
        command(ReclassifyCase, state, "desk:510104", category_code="pothole", reason="是坑"),
        state,
        tiny,
        {},
        NOW,
    )
    assert [event.type for event in moved.events] == ["CaseReclassified", "CaseDispatched"]
    dispatched = moved.events[1]
    assert isinstance(dispatched, CaseDispatched) and dispatched.reason == "reclassified"
    assert moved.state is not None and moved.state.category_code == "pothole"


def test_the_desk_deadline_brings_a_notice_and_no_escalation(tiny: Topology) -> None:
    state = opened(CaseBook(), tiny, incident(tiny, **WAGES))
    assert check_deadlines(state, tiny, {}, NOW + timedelta(minutes=29)).events == ()
    late = check_deadlines(state, tiny, {}, NOW + timedelta(minutes=31))
    assert len(late.events) == 1
    notice = late.events[0]
    assert isinstance(notice, SupervisionNoticeIssued)
    assert notice.reason == "dispatch_deadline_missed" and notice.department == "desk:510104"
    assert late.state is not None and late.state.dispatch_deadline is None
    assert late.state.status is CaseStatus.AWAITING_DISPATCH


def test_an_urgent_order_gets_the_short_desk_deadline(tiny: Topology) -> None:
    state = opened(CaseBook(), tiny, incident(tiny, **WAGES, urgency="very_urgent"))
    assert state.dispatch_deadline == NOW + timedelta(minutes=10)


def test_a_report_of_another_kind_brings_its_department(tiny: Topology) -> None:
    book = CaseBook()
    point: dict[str, Any] = {"area_code": None, "location": {"lat": 30.6555, "lon": 104.0801}}
    fire = opened(book, tiny, incident(tiny, **point, category_code="fire", order_id="F-1"))
    assert fire.assignment is not None
    elevator = incident(tiny, **point, category_code="elevator_entrapment", order_id="F-2")
    decision = book.correlate(elevator, correlation_key(tiny, elevator), tiny, {}, NOW)
    assert decision.case_id == fire.case_id
    added = [event for event in decision.events if event.type == "AssistanceAdded"]
    assert len(added) == 1
    assert added[0].reason == "linked_handling:elevator_entrapment"
    assert added[0].department.endswith("market_regulation")


def test_a_case_placed_by_its_area_takes_in_no_report_far_from_the_first_point(
    tiny: Topology,
) -> None:
    book = CaseBook()
    # placed by its community (望江社区, centroid 30.640, 104.090) only; then a report 55 m from
    # the centroid, and one 1.06 km south of that, still nearest to the same community
    by_area = opened(book, tiny, incident(tiny, category_code="noise", order_id="N-1"))
    assert not by_area.location_precise
    near = incident(
        tiny,
        category_code="noise",
        order_id="N-2",
        area_code=None,
        location={"lat": 30.6405, "lon": 104.090},
    )
    far = incident(
        tiny,
        category_code="noise",
        order_id="N-3",
        area_code=None,
        location={"lat": 30.6310, "lon": 104.090},
    )
    assert near.area_codes == far.area_codes == by_area.area_codes
    joined = book.correlate(near, correlation_key(tiny, near), tiny, {}, NOW)
    assert joined.case_id == by_area.case_id
    apart = book.correlate(far, correlation_key(tiny, far), tiny, {}, NOW)
    assert apart.case_id != by_area.case_id


def test_the_desk_figures_count_each_kind_of_dispatch(tiny: Topology) -> None:
    book = CaseBook()
    log: list[Any] = []
    given = opened(book, tiny, incident(tiny, category_code="noise", order_id="G-1"), log)
    opened(
        book,
        tiny,
        incident(tiny, title="路面坑洼", text="有个坑", category_code=None, order_id="A-1"),
        log,
    )
    desk = opened(book, tiny, incident(tiny, **WAGES, order_id="D-1"), log)
    later = NOW + timedelta(minutes=12)
    hand = decide_command(
        command(DispatchCase, desk, "desk:510104", at=later, category_code="noise"),
        desk,
        tiny,
        {},
        later,
    )
    lead = given.assignment.lead_department if given.assignment else ""
    back = decide_command(
        command(ReturnCase, given, f"dept:{lead}", reason="not_ours"), given, tiny, {}, later
    )
    rows = {
        row.group: row
        for row in assess_desk(
            desk_steps(
                (e.case_id, e.type, e.occurred_at, e.model_dump(mode="json"))
                for e in sorted(
                    [*log, *hand.events, *back.events], key=lambda e: (e.case_id, e.version)
                )
            ),
            DeskGrouping.CATEGORY,
        )
    }
    assert rows["noise"].dispatched_given == 1 and rows["noise"].dispatched_by_hand == 1
    assert rows["noise"].not_ours_returns == 1 and rows["noise"].misdispatch_rate == 0.5
    assert rows["noise"].median_minutes_at_desk == 12.0 and rows["noise"].dispatched_on_time == 1
    assert rows["pothole"].dispatched_auto == 1
    assert rows[UNCLASSIFIED].sent_to_desk == 1


def test_the_classifier_learns_from_what_dispatchers_decided(tiny: Topology) -> None:
    book = CaseBook()
    log: list[Any] = []
    desk = opened(book, tiny, incident(tiny, **WAGES, order_id="L-1"), log)
    opened(book, tiny, incident(tiny, category_code="noise", order_id="L-2"), log)
    hand = decide_command(
        command(DispatchCase, desk, "desk:510104", category_code="noise"), desk, tiny, {}, NOW
    )
    labels = list(dispatcher_labels([*log, *hand.events]))
    assert labels == [(WAGES["title"], WAGES["text"], "noise")]
