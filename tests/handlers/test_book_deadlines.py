"""The case book's deadline index: a tick finds what is due without testing every open case."""

from __future__ import annotations

from datetime import datetime, timedelta

from cityloop.contracts import CaseEvent, Incident
from handlers.book import CaseBook
from handlers.case import CaseChange, CaseState
from handlers.cells import correlation_key
from handlers.lifecycle import check_deadlines
from tests.handlers.test_lifecycle import T0, TINY, act, incident, lead_dept

COMMUNITIES = (
    "510104001001",
    "510104001002",
    "510104002001",
    "510104002002",
    "510105001001",
    "510105001002",
)


def report_for(number: int) -> Incident:
    """A pothole in community `number`, reported `number` minutes after T0."""
    return incident(number=number, area=COMMUNITIES[number], at=T0 + timedelta(minutes=number))


def book_with(count: int) -> tuple[CaseBook, list[CaseState]]:
    """`count` cases in as many communities, the n-th opened n minutes after T0."""
    book = CaseBook()
    cases = []
    for number in range(count):
        report = report_for(number)
        decision = book.correlate(
            report, correlation_key(TINY, report), TINY, {}, T0 + timedelta(minutes=number)
        )
        assert decision.state is not None
        cases.append(decision.state)
    return book, cases


def accept_deadline(case: CaseState) -> datetime:
    assert case.accept_deadline is not None
    return case.accept_deadline


def brute_force(book: CaseBook, now: datetime) -> set[str]:
    """What the book used to answer: every open case with a deadline before now."""
    return {
        case.case_id
        for case in book.open_cases()
        if (case.accept_deadline is not None and case.accept_deadline < now)
        or (case.resolve_deadline is not None and case.resolve_deadline < now)
    }


def test_due_hands_out_what_a_scan_finds_earliest_first_and_each_deadline_once() -> None:
    book, cases = book_with(6)
    deadline = cases[2].accept_deadline
    assert deadline is not None
    expected = brute_force(book, deadline + timedelta(seconds=1))
    assert len(expected) == 3  # the first three missed their accept deadline by then
    due = book.due(deadline + timedelta(seconds=1))
    assert {case.case_id for case in due} == expected
    assert [accept_deadline(c) for c in due] == sorted(accept_deadline(c) for c in due)
    assert book.due(deadline + timedelta(seconds=2)) == []  # handed out once


def test_a_case_is_due_again_for_the_deadline_its_decision_set() -> None:
    book, (case,) = book_with(1)
    assert case.accept_deadline is not None
    late = case.accept_deadline + timedelta(seconds=1)
    (due,) = book.due(late)
    change = check_deadlines(due, TINY, {}, late)  # notice, escalation, fresh deadlines above
    book.commit(change)
    assert change.state is not None and change.state.accept_deadline is not None
    assert book.due(change.state.accept_deadline) == []  # not before its new deadline
    again = book.due(change.state.accept_deadline + timedelta(seconds=1))
    assert [c.case_id for c in again] == [case.case_id]


def test_a_decision_that_moves_the_deadline_makes_the_old_entry_stale() -> None:
    book, (case,) = book_with(1)
    decision = act(case, "accept", lead_dept(case))  # accepting sets the resolve deadline
    assert decision.state is not None
    book.commit(CaseChange(decision.events, decision.state))
    assert case.accept_deadline is not None and decision.state.resolve_deadline is not None
    assert book.due(case.accept_deadline + timedelta(seconds=1)) == []
    late = decision.state.resolve_deadline + timedelta(seconds=1)
    assert [c.case_id for c in book.due(late)] == [case.case_id]


def test_another_partitions_cases_wait_for_their_own_tick() -> None:
    book, cases = book_with(4)
    late = max(accept_deadline(c) for c in cases) + timedelta(seconds=1)
    mine = {cases[0].case_id, cases[3].case_id}
    first = book.due(late, lambda case: case.case_id in mine)
    assert {c.case_id for c in first} == mine
    rest = book.due(late, lambda case: case.case_id not in mine)
    assert {c.case_id for c in rest} == {cases[1].case_id, cases[2].case_id}


def test_a_rebuilt_book_knows_the_deadlines_of_what_it_folded() -> None:
    book, cases = book_with(3)
    events = [event for case in cases for event in book_events(book, case.case_id)]
    rebuilt = CaseBook()
    rebuilt.fold(events)
    late = accept_deadline(cases[-1]) + timedelta(seconds=1)
    assert (
        {c.case_id for c in rebuilt.due(late)}
        == brute_force(book, late)
        == {c.case_id for c in cases}
    )


def book_events(book: CaseBook, case_id: str) -> list[CaseEvent]:
    """The events that opened a case, made again by the same handlers."""
    case = book.cases[case_id]
    number = int(case.report_keys[0].rsplit("-", 1)[1])
    report = report_for(number)
    fresh = CaseBook()
    return list(
        fresh.correlate(
            report, correlation_key(TINY, report), TINY, {}, T0 + timedelta(minutes=number)
        ).events
    )
