"""The case state: a value folded from its events, stored as the document it always was, and a
storm case whose thousands of reports cost nothing per new event."""

from __future__ import annotations

import pickle
import tracemalloc
from typing import Any

import pytest

from cityloop.contracts import GeoPoint, Loop, Origin, Severity, Source
from handlers.book import CaseBook
from handlers.case import CaseDocument, CaseState, apply, fold
from handlers.cells import correlation_key
from handlers.correlate import CorrelationDecision, CorrelationReason, attach
from tests.handlers.test_lifecycle import T0, TINY, incident, open_case
from topology import UnroutableError

HERE = GeoPoint(lat=30.6601, lon=104.0801)  # in community 510104001001


def flood_report(number: int, **fields: Any) -> Any:
    fields.setdefault("location", HERE)
    fields.setdefault("origin", Origin(topic="events", partition=0, offset=number))
    return incident("waterlogging", number=number, **fields)


def take(book: CaseBook, number: int, **fields: Any) -> CorrelationDecision:
    report = flood_report(number, **fields)
    return book.correlate(report, correlation_key(TINY, report), TINY, {}, T0)


def test_the_state_has_the_documents_fields_and_copies_every_one() -> None:
    private = {"_reports", "report_count", "first_reported_us", "last_report_us", "device_id"}
    kept_as_json = {"_assignment", "loop"}  # the document's `assignment`, read back when asked
    slots = set(CaseState.__slots__) - private - kept_as_json
    assert slots | {"assignment"} == set(CaseDocument.model_fields) - {"reports"}
    state = open_case(source=Source.IOT, device_id="WL-1", cleared=False)
    twin = state.copy()
    for name in CaseState.__slots__:
        assert getattr(twin, name) is getattr(state, name), name


def test_the_assignment_reads_back_as_it_was_given_and_its_loop_goes_with_it() -> None:
    state = open_case(source=Source.IOT, device_id="WL-1", cleared=False)
    given = state.assignment
    assert given is not None and state.loop is given.loop
    other = given.model_copy(update={"loop": Loop.MEDIUM, "co_departments": ["d.x"]})
    state.assignment = other
    assert state.assignment == other and state.loop is Loop.MEDIUM
    state.assignment = None
    assert state.assignment is None and state.loop is None


class _AsAnEarlierWorkerPickledIt:
    """A state as a worker before this one pickled it into a snapshot: its assignment in a slot
    of that name, as a model, and no loop."""

    def __init__(self, state: CaseState) -> None:
        self.slots = {name: getattr(state, name) for name in CaseState.__slots__}
        del self.slots["_assignment"], self.slots["loop"]
        self.slots["assignment"] = state.assignment

    def __reduce__(self) -> tuple[Any, ...]:
        # what pickle writes for a slotted object, but named so it is not this class's
        return object.__new__, (CaseState,), (None, self.slots)


def test_a_state_an_earlier_worker_snapshot_loads_whole() -> None:
    state = open_case(source=Source.IOT, device_id="WL-1", cleared=False)
    loaded = pickle.loads(pickle.dumps(_AsAnEarlierWorkerPickledIt(state)))  # noqa: S301 - own bytes
    assert isinstance(loaded, CaseState)
    assert loaded == state and loaded.loop is state.loop is not None
    assert loaded.model_dump(mode="json") == state.model_dump(mode="json")


def test_the_stored_document_is_what_the_pydantic_state_dumped() -> None:
    book = CaseBook()
    for number in range(1, 4):
        take(book, number, caller=None)
    (state,) = book.cases.values()
    assert state.report_count == 3
    plain = CaseDocument.model_validate(state.fields()).model_dump(mode="json")
    dumped = state.model_dump(mode="json")
    assert dumped == plain and list(dumped) == list(plain)  # same keys, same order
    again = CaseState.model_validate(dumped)
    assert again == state and again.model_dump(mode="json") == dumped
    assert again.reports == state.reports and again.device_id == state.device_id
    assert state.model_dump() == CaseDocument.model_validate(state.fields()).model_dump()


def test_apply_leaves_the_state_it_was_given_alone() -> None:
    book = CaseBook()
    opened = take(book, 1)
    attached = take(book, 2)
    before = fold(list(opened.events))
    assert before is not None
    after = apply(before, attached.events[0])
    assert (before.version, before.report_count, len(before.reports)) == (2, 1, 1)
    assert (after.version, after.report_count, len(after.reports)) == (3, 2, 2)
    assert after == book.cases[opened.case_id]


def test_a_decision_given_up_halfway_leaves_the_book_as_it_was() -> None:
    book = CaseBook()
    first = incident("pothole", number=1)
    opened = book.correlate(first, correlation_key(TINY, first), TINY, {}, T0)
    case = book.cases[opened.case_id]
    # a graver report that cannot be routed: the attachment is written, then routing fails
    graver = incident("pothole", number=2, severity=Severity.I, area="510104999999")
    with pytest.raises(UnroutableError):
        attach(case, graver, TINY, {}, T0, CorrelationReason.ATTACHED_TO_OPEN_CASE)
    assert book.cases[opened.case_id] is case
    assert (case.version, case.report_count, len(case.reports)) == (2, 1, 1)
    # the shared report log went one past this state: the next report forks it, not mixes in
    taken = attach(
        case, incident("pothole", number=3), TINY, {}, T0, CorrelationReason.ATTACHED_TO_OPEN_CASE
    )
    assert taken.state is not None
    assert [r.idempotency_key for r in taken.state.reports] == ["/t|pothole-1", "/t|pothole-3"]


def test_a_storm_case_takes_its_five_thousandth_report_as_cheaply_as_its_tenth() -> None:
    book = CaseBook()
    opened = take(book, 0)
    for number in range(1, 10):
        take(book, number)
    early = _bytes_allocated(lambda: take(book, 10))
    for number in range(11, 5_000):
        take(book, number)
    state = book.cases[opened.case_id]
    assert state.report_count == 5_000 and len(book.cases) == 1
    late = _bytes_allocated(lambda: take(book, 5_000))
    # copying 5,000 report references alone would be 40 kB; the state shares its report log
    assert late - early < 2_000, (early, late)
    assert book.cases[opened.case_id]._reports is state._reports
    redelivered = take(book, 5_000)  # the same record again: nothing new
    assert redelivered.reason is CorrelationReason.REPLAYED_RECORD


def _bytes_allocated(work: Any) -> int:
    tracemalloc.start()
    try:
        work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak
