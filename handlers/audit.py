"""The accounting invariant: every record that entered is, exactly once, a report on a case, an
exact duplicate recorded as such, or a dead letter with a reason; and every stored case equals
the fold of its events."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cityloop.contracts import CaseEvent, DeadLetter, DuplicateReceived, Origin
from handlers.case import CaseState, OutOfOrderEvent, apply, report_of


@dataclass
class AuditReport:
    entered: int = 0
    as_report: int = 0
    as_duplicate: int = 0
    as_dead_letter: int = 0
    unaccounted: list[Origin] = field(default_factory=list)
    """Entered, but in no case and no dead letter (yet: the worker may still be behind)."""
    accounted_twice: list[tuple[Origin, list[str]]] = field(default_factory=list)
    cases: int = 0
    cases_differing: list[str] = field(default_factory=list)
    """Cases whose stored state is not the fold of their events."""
    broken_histories: list[str] = field(default_factory=list)
    unfinished_decision_events: int = 0
    """Case events of decisions whose last event is not on the topic: a worker died while
    writing them and has not (yet) written them again. Readers leave them out."""
    dead_letters_by_reason: Counter[str] = field(default_factory=Counter)

    @property
    def holds(self) -> bool:
        problems = (self.unaccounted, self.accounted_twice, self.cases_differing)
        return (
            not any(problems) and not self.broken_histories and not self.unfinished_decision_events
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "holds": self.holds,
            "entered": self.entered,
            "as_report": self.as_report,
            "as_duplicate": self.as_duplicate,
            "as_dead_letter": self.as_dead_letter,
            "unaccounted": [o.model_dump() for o in self.unaccounted[:20]],
            "unaccounted_count": len(self.unaccounted),
            "accounted_twice": [(o.model_dump(), w) for o, w in self.accounted_twice[:20]],
            "cases": self.cases,
            "cases_differing": self.cases_differing[:20],
            "broken_histories": self.broken_histories[:20],
            "unfinished_decision_events": self.unfinished_decision_events,
            "dead_letters_by_reason": dict(self.dead_letters_by_reason),
        }


def audit(
    entered: Iterable[Origin],
    case_events: Iterable[CaseEvent],
    dead_letters: Iterable[DeadLetter],
    stored_states: Mapping[str, Mapping[str, Any]],
    unfinished_decision_events: int = 0,
) -> AuditReport:
    """`entered`: where every source record sits; `case_events`: those of whole decisions;
    `stored_states`: the read model's case states as JSON documents, by case id."""
    report = AuditReport(unfinished_decision_events=unfinished_decision_events)
    where: dict[Origin, list[str]] = defaultdict(list)
    histories: dict[str, dict[int, CaseEvent]] = defaultdict(dict)
    for event in case_events:
        histories[event.case_id].setdefault(event.version, event)  # redeliveries are one event
    for case_id, versions in histories.items():
        for version in sorted(versions):
            event = versions[version]
            summary = report_of(event)
            if summary is not None and summary.origin is not None:
                where[summary.origin].append(f"report on {case_id}")
            elif isinstance(event, DuplicateReceived) and event.origin is not None:
                where[event.origin].append(f"duplicate on {case_id}")
    for letter in dead_letters:
        report.dead_letters_by_reason[letter.reason.value] += 1
        if letter.origin is not None:
            where[letter.origin].append(f"dead letter ({letter.reason.value})")
    for origin in entered:
        report.entered += 1
        found = where.get(origin, [])
        if not found:
            report.unaccounted.append(origin)
        elif len(found) > 1:
            report.accounted_twice.append((origin, found))
        elif found[0].startswith("report"):
            report.as_report += 1
        elif found[0].startswith("duplicate"):
            report.as_duplicate += 1
        else:
            report.as_dead_letter += 1
    report.cases = len(histories)
    for case_id, versions in histories.items():
        state: CaseState | None = None
        try:
            for version in sorted(versions):
                state = apply(state, versions[version])
        except OutOfOrderEvent:
            report.broken_histories.append(case_id)
            continue
        stored = stored_states.get(case_id)
        if state is not None and stored is not None and state.model_dump(mode="json") != stored:
            report.cases_differing.append(case_id)
        elif stored is None:
            report.cases_differing.append(case_id)
    return report
