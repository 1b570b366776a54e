"""The accounting invariant, as a pure check on made-up histories and as `cityloop audit` on a
live system."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from cityloop.contracts import CaseEvent, DeadLetter, DeadLetterReason, Origin, Source
from handlers.audit import audit
from handlers.case import fold
from handlers.correlate import SeenReport, correlate
from tests.conftest import start_system, stop_system
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


@pytest.mark.broker
def test_cityloop_audit_on_a_live_system(kafka_bootstrap: str, tmp_path: Path) -> None:
    system = start_system(kafka_bootstrap, tmp_path)
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
    finally:
        stop_system(system)
