"""The accounting invariant, as a pure check on made-up histories and as `cityloop audit` on a
live system."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

import cityloop.audit
from cityloop.contracts import (
    AbsorbReports,
    CaseEvent,
    DeadLetter,
    DeadLetterReason,
    Origin,
    Source,
    wire_bytes,
)
from cityloop.settings import Settings
from handlers.audit import EXAMPLES, AuditReport, CaseFolds, OriginLedger, audit, bucket_of, compare
from handlers.case import fold
from handlers.correlate import SeenReport, correlate
from handlers.lifecycle import absorb_reports
from handlers.partition import decision_headers
from tests.conftest import postgres_database, start_system, stop_system
from tests.handlers.test_lifecycle import TINY, incident
from tests.streams.test_pipeline import cloudevent

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def origin(offset: int) -> Origin:
    return Origin(topic="cityloop.events.hotline", partition=0, offset=offset)


def letter(offset: int) -> DeadLetter:
    return DeadLetter(
        reason=DeadLetterReason.UNDECODABLE,
        detail="x",
        origin=origin(offset),
        payload_b64="",
        recorded_at=NOW,
    )


def history() -> tuple[list[CaseEvent], dict[str, dict[str, Any]]]:
    opened = correlate(incident(origin=origin(0)), None, None, [], None, TINY, {}, NOW)
    state = fold(list(opened.events))
    duplicate = correlate(
        incident(origin=origin(1)), SeenReport(opened.case_id, None), state, [], None, TINY, {}, NOW
    )
    events = [*opened.events, *duplicate.events]
    stored = {opened.case_id: fold(events).model_dump(mode="json")}  # type: ignore[union-attr]
    return events, stored


def test_a_complete_history_holds() -> None:
    events, stored = history()
    report = audit([origin(0), origin(1), origin(2)], [*events, *events], [letter(2)], stored)
    assert report.holds, report.as_dict()
    assert (report.entered, report.as_report, report.as_duplicate, report.as_dead_letter) == (
        3,
        1,
        1,
        1,
    )


def test_each_way_of_breaking_the_invariant_is_found() -> None:
    events, stored = history()
    missing = audit([origin(0), origin(1), origin(5)], events, [], stored)
    assert [o.offset for o in missing.unaccounted] == [5] and not missing.holds
    twice = audit([origin(0), origin(1)], events, [letter(0)], stored)
    assert twice.accounted_twice and twice.accounted_twice[0][0].offset == 0
    case_id = next(iter(stored))
    drifted = {case_id: {**stored[case_id], "status": "closed"}}
    assert audit([origin(0), origin(1)], events, [], drifted).cases_differing == [case_id]
    gap = audit([origin(0)], [events[0], events[2]], [], stored)
    assert gap.broken_histories == [case_id]


def many_cases(count: int) -> tuple[list[CaseEvent], dict[str, dict[str, Any]]]:
    """`count` cases of one report each, the n-th from source offset n."""
    events: list[CaseEvent] = []
    stored: dict[str, dict[str, Any]] = {}
    for number in range(count):
        opened = correlate(
            incident(number=number, origin=origin(number)), None, None, [], None, TINY, {}, NOW
        )
        events.extend(opened.events)
        stored[opened.case_id] = fold(list(opened.events)).model_dump(mode="json")  # type: ignore[union-attr]
    return events, stored


def test_folding_a_share_at_a_time_finds_what_folding_all_at_once_finds() -> None:
    events, stored = many_cases(12)
    case_id = next(iter(stored))
    stored[case_id] = {**stored[case_id], "status": "closed"}
    whole = audit([origin(n) for n in range(13)], events, [], stored)
    shares = 3
    report, ledger = AuditReport(), OriginLedger()
    for offset in range(13):
        ledger.enter(origin(offset))
    for share in range(shares):
        folds = CaseFolds(ledger)
        for event in events:
            if bucket_of(event.case_id.encode(), shares) == share:
                folds.take(event)
        compare(folds.finish(report), stored, report)
    ledger.settle(report)
    assert {bucket_of(case.encode(), shares) for case in stored} == {0, 1, 2}
    assert report.as_dict() == whole.as_dict()
    assert (report.as_report, report.unaccounted_count, report.cases_differing) == (
        12,
        1,
        [case_id],
    )


def test_an_event_that_comes_before_the_one_it_follows_waits_for_it() -> None:
    events, stored = history()
    early = [events[0], events[2], events[1], events[2], events[0]]  # and redelivered
    report = audit([origin(0), origin(1)], early, [], stored)
    assert report.holds, report.as_dict()
    assert (report.as_report, report.as_duplicate, report.cases) == (1, 1, 1)


def test_findings_past_the_examples_are_counted_not_kept() -> None:
    events, stored = history()
    report = audit([origin(n) for n in range(EXAMPLES + 12)], events, [], stored)
    assert report.unaccounted_count == EXAMPLES + 10 and len(report.unaccounted) == EXAMPLES
    assert report.as_dict()["unaccounted_count"] == EXAMPLES + 10 and not report.holds


def test_a_record_accounted_twice_names_each_place() -> None:
    events, stored = history()
    report = audit([origin(0), origin(1)], events, [letter(0), letter(0)], stored)
    assert report.accounted_twice_count == 1
    case_id = next(iter(stored))
    assert report.accounted_twice[0][1] == [
        "dead letter",
        "dead letter (undecodable)",
        f"report on {case_id}",
    ]


def test_a_report_carried_over_by_a_merge_is_accounted_once() -> None:
    first = correlate(incident(number=1, origin=origin(0)), None, None, [], None, TINY, {}, NOW)
    merged = correlate(incident(number=2, origin=origin(1)), None, None, [], None, TINY, {}, NOW)
    survivor, absorbed = fold(list(first.events)), fold(list(merged.events))
    assert survivor is not None and absorbed is not None
    carried = absorb_reports(
        AbsorbReports(
            command_id="merge-1",
            case_id=survivor.case_id,
            from_case_id=absorbed.case_id,
            reports=absorbed.reports,
            issued_at=NOW,
        ),
        survivor,
        NOW,
    )
    assert carried.events and carried.state is not None
    events = [*first.events, *carried.events, *merged.events]
    stored = {
        survivor.case_id: carried.state.model_dump(mode="json"),
        absorbed.case_id: absorbed.model_dump(mode="json"),
    }
    report = audit([origin(0), origin(1)], events, [], stored)
    assert report.holds, report.as_dict()
    assert (report.as_report, report.accounted_twice_count) == (2, 0)


@dataclass
class Record:
    """A case-event record as the audit reads it from the topic."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    topic: str = "cityloop.case-events"
    partition: int = 0
    offset: int = 0


def test_a_partition_read_in_shares_gives_what_one_read_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events, stored = many_cases(12)
    records: list[Record] = []
    for case_id in stored:  # each case's decision: CaseOpened 1/2, CaseDispatched 2/2
        decision = [event for event in events if event.case_id == case_id]
        for index, event in enumerate(decision, start=1):
            records.append(
                Record(case_id.encode(), wire_bytes(event), decision_headers(index, len(decision)))
            )
    half = correlate(incident(number=99, origin=origin(99)), None, None, [], None, TINY, {}, NOW)
    records.append(  # a decision a worker died in the middle of
        Record(half.case_id.encode(), wire_bytes(half.events[0]), decision_headers(1, 2))
    )
    records = [Record(r.key, r.value, r.headers, offset=offset) for offset, r in enumerate(records)]
    monkeypatch.setattr(cityloop.audit, "read_records", lambda *_, **__: iter(records))

    def read_in(shares: int) -> tuple[AuditReport, dict[str, Any]]:
        report, ledger = AuditReport(), OriginLedger()
        for offset in range(12):
            ledger.enter(origin(offset))
        folded: dict[str, Any] = {}
        for share in range(shares):
            whole = cityloop.audit._fold_share(Settings(), 0, share, shares, ledger, report)
            folded.update((case_id, state.model_dump(mode="json")) for case_id, state in whole)
        ledger.settle(report)
        return report, folded

    once, folded_once = read_in(1)
    thrice, folded_thrice = read_in(3)
    assert len({bucket_of(case_id.encode(), 3) for case_id in stored}) == 3
    assert folded_once == folded_thrice == stored
    assert thrice.as_dict() == once.as_dict()
    assert (thrice.as_report, thrice.cases, thrice.unfinished_decision_events) == (12, 12, 1)


@pytest.mark.broker
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_cityloop_audit_on_a_live_system(
    kafka_bootstrap: str, tmp_path: Path, database: str
) -> None:
    with contextlib.ExitStack() as stack:
        url = (
            stack.enter_context(postgres_database(prefix="audit"))
            if database == "postgresql"
            else None
        )
        audit_a_live_system(kafka_bootstrap, tmp_path, url)


def audit_a_live_system(kafka_bootstrap: str, tmp_path: Path, database_url: str | None) -> None:
    system = start_system(kafka_bootstrap, tmp_path, database_url)
    try:
        producer = KafkaProducer(bootstrap_servers=system.bootstrap, acks="all")
        valid = [cloudevent(Source.GRID, text=f"report {n}") for n in range(5)]
        for event in [*valid, valid[0]]:  # five reports and one exact retry
            producer.send(system.topic("events.grid"), value=json.dumps(event).encode())
        producer.send(system.topic("events.hotline"), value=b"\xff garbage")
        producer.flush()
        producer.close()
        result = system.audit()
        report = json.loads(result.stdout)
        assert result.returncode == 0, result.stdout + result.stderr
        assert report["holds"] and report["entered"] == 7
        assert (report["as_report"], report["as_duplicate"], report["as_dead_letter"]) == (5, 1, 1)
        assert report["dead_letters_by_reason"] == {"undecodable": 1}
        # shares of about two case events: each partition is read once per share
        narrow = subprocess.run(
            [sys.executable, "-m", "cityloop", "audit"],
            env={**system.env, "CITYLOOP_AUDIT_CASE_EVENTS_PER_SHARE": "2"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert narrow.returncode == 0, narrow.stdout + narrow.stderr
        assert json.loads(narrow.stdout) == report
    finally:
        stop_system(system)
