"""Dedup quality metrics on small hand-made inputs with known answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cityloop.loadtest.evaluate import (
    assignment_from_case_events,
    dedup_quality,
    read_assignment,
)

TABLE = [
    # truth, assignment, precision, recall, split incidents, merged cases
    (
        {"a": "1", "b": "1", "c": "2", "d": "2"},
        {"a": "X", "b": "X", "c": "Y", "d": "Y"},
        1.0,
        1.0,
        0,
        0,
    ),
    (
        {"a": "1", "b": "1", "c": "2", "d": "2"},
        {"a": "X", "b": "X", "c": "X", "d": "Y"},
        1 / 3,
        1 / 2,
        1,
        1,
    ),
    ({"a": "1", "b": "1", "c": "1"}, {"a": "X", "b": "Y", "c": "Z"}, 1.0, 0.0, 1, 0),
    ({"a": "1", "b": "2", "c": "3"}, {"a": "X", "b": "X", "c": "X"}, 0.0, 1.0, 0, 1),
    ({"a": "1", "b": "2"}, {"a": "X", "b": "Y"}, 1.0, 1.0, 0, 0),
]


@pytest.mark.parametrize(("truth", "assignment", "precision", "recall", "split", "merged"), TABLE)
def test_pairwise_metrics(truth, assignment, precision, recall, split, merged) -> None:
    quality = dedup_quality(truth, assignment)
    assert quality.precision == pytest.approx(precision, abs=1e-6)
    assert quality.recall == pytest.approx(recall, abs=1e-6)
    expected_f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    assert quality.f1 == pytest.approx(expected_f1, abs=1e-6)
    assert (quality.split_incidents, quality.merged_cases) == (split, merged)


def test_reports_in_no_case_and_cases_of_unknown_reports_are_counted_not_scored() -> None:
    quality = dedup_quality({"a": "1", "b": "1", "c": "2"}, {"a": "X", "b": "X", "z": "Q"})
    assert (quality.reports, quality.unassigned, quality.unknown) == (2, 1, 1)
    assert (quality.incidents, quality.cases) == (1, 1)
    assert quality.correct_pairs == quality.true_pairs == quality.predicted_pairs == 1


def test_assignment_follows_opened_attached_and_duplicate_events() -> None:
    events: list[dict[str, Any]] = [
        {"type": "CaseOpened", "case_id": "C1", "first_report": {"idempotency_key": "s|1"}},
        {"type": "CaseDispatched", "case_id": "C1"},
        {"type": "ReportAttached", "case_id": "C1", "report": {"idempotency_key": "s|2"}},
        {"type": "DuplicateReceived", "case_id": "C1", "idempotency_key": "s|1"},
        {"type": "CaseOpened", "case_id": "C2", "first_report": {"idempotency_key": "s|3"}},
    ]
    assert assignment_from_case_events(events) == {"s|1": "C1", "s|2": "C1", "s|3": "C2"}


def test_evaluate_reads_recorded_case_events_and_plain_assignment_lines(tmp_path: Path) -> None:
    recorded = tmp_path / "cases.jsonl"
    opened = {"type": "CaseOpened", "case_id": "C1", "first_report": {"idempotency_key": "s|1"}}
    lines = [
        {"v": 1, "topic": "x.case-events", "key": "C1", "event": opened},
        {"v": 1, "topic": "x.case-events", "key": "C1", "value_b64": "//79"},  # not JSON
        {"key": "s|2", "case_id": "C9"},
    ]
    recorded.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    assert read_assignment(recorded) == {"s|1": "C1", "s|2": "C9"}
