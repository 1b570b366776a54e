"""Stream-file lines keep every byte; pacing and percentiles; the replay tracker's accounting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cityloop.contracts import Source
from cityloop.loadtest.pacing import Pacing, due_offsets, percentile
from cityloop.loadtest.streamfile import (
    StreamRecord,
    from_line,
    read_records,
    to_line,
    write_records,
)
from cityloop.loadtest.tracker import ReplayTracker

RECORDS = [
    StreamRecord(
        value=b"\xff\xfe garbage",
        key=b"\xc3",
        timestamp_ms=1,
        source=Source.IOT,
        topic="p.events.iot",
    ),
    StreamRecord(value=b"not json at all", key=None, timestamp_ms=2, source=Source.GRID),
    StreamRecord(
        value=b'{"a": 1, "b": "\\u4e2d"}', key=b"k", timestamp_ms=3, source=Source.HOTLINE
    ),
    StreamRecord(
        value=b'{"a":1}', key=b"k", headers=(("h", b"\x80"), ("t", b"text")), source=Source.DUTY
    ),
    StreamRecord(value=None, key=b"tombstone", topic="p.case-events", partition=2, offset=7),
]


@pytest.mark.parametrize("record", RECORDS)
def test_a_line_gives_back_exactly_the_record(record: StreamRecord) -> None:
    line = json.loads(json.dumps(to_line(record)))
    assert from_line(line) == record


def test_readable_json_stays_readable_and_bytes_that_are_not_text_go_base64(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    write_records(path, RECORDS)
    lines = [json.loads(text) for text in path.read_text().splitlines()]
    assert "value_b64" in lines[0] and "key_b64" in lines[0]
    assert lines[1]["value"] == "not json at all"
    assert lines[2]["event"] == {"a": 1, "b": "中"}  # re-serialises to the same bytes
    assert lines[3]["headers"][0] == ["h", {"b64": "gA=="}]
    assert list(read_records(path)) == RECORDS


def test_a_source_is_taken_from_an_events_topic_name() -> None:
    assert from_line({"topic": "any.events.iot", "value": "x"}).source is Source.IOT


def test_pacing_keeps_spacing_scaled_or_spaces_evenly_or_sends_at_once() -> None:
    stamps = [1_000, 3_000, None, 2_000, 11_000]
    assert due_offsets(stamps, Pacing(speed=2)) == [0.0, 1.0, 1.0, 1.0, 5.0]
    assert due_offsets(stamps, Pacing(rate=4)) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert due_offsets(stamps, Pacing()) == [0.0] * 5
    with pytest.raises(ValueError):
        Pacing(speed=1, rate=1)


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile(values, 1.0)) == (
        50.0,
        99.0,
        100.0,
    )
    assert percentile([], 0.99) == 0.0


def test_the_tracker_matches_outcomes_to_what_was_sent() -> None:
    tracker = ReplayTracker(not_before_ms=1_000)
    first = tracker.on_send("s|1", 10.0)
    retry = tracker.on_send("s|1", 10.5)
    second = tracker.on_send("s|2", 11.0)
    garbage = tracker.on_send(None, 11.5)
    for index in (first, retry, second):
        tracker.on_ack(index, "p.events.hotline", 0, index)
    stale = {"type": "CaseOpened", "case_id": "OLD", "first_report": {"idempotency_key": "s|1"}}
    tracker.on_case_event(stale, 11.0, 500)  # an earlier run's tail
    tracker.on_dead_letter(
        {"reason": "undecodable", "origin": {"topic": "p.events.iot", "partition": 1, "offset": 9}},
        12.0,
    )
    tracker.on_ack(garbage, "p.events.iot", 1, 9)  # the dead letter was seen before the ack
    opened = {"type": "CaseOpened", "case_id": "C1", "first_report": {"idempotency_key": "s|1"}}
    tracker.on_case_event(opened, 12.0, 2_000)
    tracker.on_case_event({"type": "CaseDispatched", "case_id": "C1"}, 12.25, 2_000)
    tracker.on_case_event(
        {"type": "DuplicateReceived", "case_id": "C1", "idempotency_key": "s|1"}, 13.0, 2_000
    )
    tracker.on_case_event(
        {"type": "ReportAttached", "case_id": "C1", "report": {"idempotency_key": "s|2"}},
        14.0,
        2_000,
    )
    assert tracker.accounted == 4 and tracker.in_flight == 0
    assert dict(tracker.dead_letters) == {"undecodable": 1}
    assert tracker.outcomes["cases_opened"] == 1
    assert tracker.latencies_ms() == [2250.0, 2500.0, 3000.0]
    assert tracker.assignment() == {"s|1": "C1", "s|2": "C1"}
