"""Dedup quality: compare which case each report landed in with the ground truth of which real
incident it reported (pairwise precision/recall/F1, split incidents, merged cases)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cityloop.loadtest.streamfile import StreamFileError, from_line


@dataclass(frozen=True)
class DedupQuality:
    reports: int
    """Idempotency keys both in the truth and assigned to a case."""
    unassigned: int
    """Keys in the truth that no case holds (dead-lettered, or not processed)."""
    unknown: int
    """Keys assigned to a case that the truth does not know (not part of this stream)."""
    incidents: int
    cases: int
    precision: float
    recall: float
    f1: float
    split_incidents: int
    """Real incidents whose reports landed in more than one case."""
    merged_cases: int
    """Cases holding reports of more than one real incident."""
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def dedup_quality(truth: Mapping[str, str], assignment: Mapping[str, str]) -> DedupQuality:
    """`truth`: idempotency key → real incident; `assignment`: idempotency key → case id.

    Pairwise: a pair of reports is predicted together when they share a case, truly together
    when they share an incident. With no predicted pair precision is 1 (nothing wrongly
    merged); with no true pair recall is 1 (nothing to find)."""
    keys = [key for key in truth if key in assignment]
    both = Counter((truth[key], assignment[key]) for key in keys)
    by_incident = Counter(truth[key] for key in keys)
    by_case = Counter(assignment[key] for key in keys)
    correct = sum(_pairs(n) for n in both.values())
    true_pairs = sum(_pairs(n) for n in by_incident.values())
    predicted = sum(_pairs(n) for n in by_case.values())
    precision = correct / predicted if predicted else 1.0
    recall = correct / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    cases_of = Counter(incident for incident, _ in both)
    incidents_in = Counter(case for _, case in both)
    return DedupQuality(
        reports=len(keys),
        unassigned=sum(1 for key in truth if key not in assignment),
        unknown=sum(1 for key in assignment if key not in truth),
        incidents=len(by_incident),
        cases=len(by_case),
        precision=round(precision, 6),
        recall=round(recall, 6),
        f1=round(f1, 6),
        split_incidents=sum(1 for n in cases_of.values() if n > 1),
        merged_cases=sum(1 for n in incidents_in.values() if n > 1),
        true_pairs=true_pairs,
        predicted_pairs=predicted,
        correct_pairs=correct,
    )


def assignment_from_case_events(events: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Which case each report's idempotency key joined, from case events in topic order: the
    first report of CaseOpened, ReportAttached, DuplicateReceived. A later merge (CaseMerged
    / absorbed reports) moves the reports it names."""
    assignment: dict[str, str] = {}
    for event in events:
        kind = event.get("type")
        case_id = event.get("case_id")
        if not isinstance(case_id, str):
            continue
        if kind == "CaseOpened":
            key = (event.get("first_report") or {}).get("idempotency_key")
        elif kind == "ReportAttached":
            key = (event.get("report") or {}).get("idempotency_key")
        elif kind == "DuplicateReceived":
            key = event.get("idempotency_key")
        else:
            for report in event.get("reports") or []:  # reports moved by a merge
                if isinstance(report, Mapping) and isinstance(report.get("idempotency_key"), str):
                    assignment[report["idempotency_key"]] = case_id
            continue
        if isinstance(key, str):
            assignment.setdefault(key, case_id)
    return assignment


def read_truth(path: Path) -> dict[str, str]:
    truth: dict[str, str] = {}
    with path.open(encoding="utf-8") as lines:
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            row = json.loads(text)
            if not isinstance(row, dict) or "key" not in row or "incident" not in row:
                raise StreamFileError(f"{path}:{number}: a truth line needs key and incident")
            truth[str(row["key"])] = str(row["incident"])
    return truth


def read_assignment(path: Path) -> dict[str, str]:
    """Case assignment from a file of either kind: a recorded case-event stream file (lines
    with event/value), or plain `{"key": ..., "case_id": ...}` lines (replay --cases-out)."""
    plain: dict[str, str] = {}
    events: list[Mapping[str, Any]] = []
    with path.open(encoding="utf-8") as lines:
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            line = json.loads(text)
            if isinstance(line, dict) and "case_id" in line and "key" in line:
                plain[str(line["key"])] = str(line["case_id"])
                continue
            record = from_line(line, f"{path}:{number}")
            if record.value is None:
                continue
            try:
                event = json.loads(record.value)
            except ValueError:
                continue  # not a case event: a recorded file may hold other topics too
            if isinstance(event, dict):
                events.append(event)
    return {**assignment_from_case_events(events), **plain}
