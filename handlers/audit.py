"""The accounting invariant: every record that entered is, exactly once, a report on a case, an
exact duplicate recorded as such, or a dead letter with a reason; and every stored case equals
the fold of its events.

The audit reads the whole history, so nothing in it may grow with that history except time:

- where each source record went is one byte per source offset (`OriginLedger`), not an object;
- cases are folded a share at a time (`CaseFolds` over the case ids of one `bucket_of`), and
  each share is compared with the read model and let go before the next is read;
- only the first `EXAMPLES` findings of each kind are kept, beside their counts.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from cityloop.contracts import CaseEvent, DeadLetter, DuplicateReceived, Origin
from handlers.case import CaseState, OutOfOrderEvent, apply, merged_in, report_of

EXAMPLES = 20
"""Findings of each kind kept by name; the rest are counted."""


@dataclass
class AuditReport:
    entered: int = 0
    as_report: int = 0
    as_duplicate: int = 0
    as_dead_letter: int = 0
    unaccounted: list[Origin] = field(default_factory=list)
    """Entered, but in no case and no dead letter (yet: the worker may still be behind)."""
    unaccounted_count: int = 0
    accounted_twice: list[tuple[Origin, list[str]]] = field(default_factory=list)
    accounted_twice_count: int = 0
    cases: int = 0
    cases_differing: list[str] = field(default_factory=list)
    """Cases whose stored state is not the fold of their events."""
    cases_differing_count: int = 0
    broken_histories: list[str] = field(default_factory=list)
    broken_histories_count: int = 0
    unfinished_decision_events: int = 0
    """Case events of decisions whose last event is not on the topic: a worker died while
    writing them and has not (yet) written them again. Readers leave them out."""
    dead_letters_by_reason: Counter[str] = field(default_factory=Counter)

    @property
    def holds(self) -> bool:
        return not (
            self.unaccounted_count
            or self.accounted_twice_count
            or self.cases_differing_count
            or self.broken_histories_count
            or self.unfinished_decision_events
        )

    def found_unaccounted(self, origin: Origin) -> None:
        self.unaccounted_count += 1
        if len(self.unaccounted) < EXAMPLES:
            self.unaccounted.append(origin)

    def found_twice(self, origin: Origin, where: list[str]) -> None:
        self.accounted_twice_count += 1
        if len(self.accounted_twice) < EXAMPLES:
            self.accounted_twice.append((origin, where))

    def found_differing(self, case_id: str) -> None:
        self.cases_differing_count += 1
        if len(self.cases_differing) < EXAMPLES:
            self.cases_differing.append(case_id)

    def found_broken(self, case_id: str) -> None:
        self.broken_histories_count += 1
        if len(self.broken_histories) < EXAMPLES:
            self.broken_histories.append(case_id)

    def as_dict(self) -> dict[str, Any]:
        return {
            "holds": self.holds,
            "entered": self.entered,
            "as_report": self.as_report,
            "as_duplicate": self.as_duplicate,
            "as_dead_letter": self.as_dead_letter,
            "unaccounted": [o.model_dump() for o in self.unaccounted],
            "unaccounted_count": self.unaccounted_count,
            "accounted_twice": [(o.model_dump(), w) for o, w in self.accounted_twice],
            "accounted_twice_count": self.accounted_twice_count,
            "cases": self.cases,
            "cases_differing": self.cases_differing,
            "cases_differing_count": self.cases_differing_count,
            "broken_histories": self.broken_histories,
            "broken_histories_count": self.broken_histories_count,
            "unfinished_decision_events": self.unfinished_decision_events,
            "dead_letters_by_reason": dict(self.dead_letters_by_reason),
        }


class Fate(IntEnum):
    """What became of a source record, as the ledger keeps it: one byte."""

    NONE = 0
    REPORT = 1
    DUPLICATE = 2
    DEAD_LETTER = 3
    MORE_THAN_ONE = 4


_FATE_NAMES = {Fate.REPORT: "report", Fate.DUPLICATE: "duplicate", Fate.DEAD_LETTER: "dead letter"}


class OriginLedger:
    """Which source records entered, and where each went: one byte per offset of each source
    partition, and the offsets that entered as runs (a partition's offsets follow one another).

    The records that entered are taken first, then the marks (from the dead letters and the case
    events), then `settle` counts each record that entered by its marks. In that order, on a
    live system, a record that enters while the audit reads is not counted at all, rather than
    found unaccounted because its case events were read before it came. A record marked more
    than once keeps the descriptions of its second and later marks; its first is known by its
    fate only, which is enough to find it."""

    def __init__(self) -> None:
        self._entered: dict[tuple[str, int], list[list[int]]] = {}
        self._fates: dict[tuple[str, int], bytearray] = {}
        self._more: dict[tuple[str, int, int], list[str]] = {}

    def enter(self, origin: Origin) -> None:
        runs = self._entered.setdefault((origin.topic, origin.partition), [])
        if runs and runs[-1][1] == origin.offset:
            runs[-1][1] += 1
        else:
            runs.append([origin.offset, origin.offset + 1])

    def mark(self, origin: Origin, fate: Fate, where: str) -> None:
        """What became of the record at `origin`. An origin outside what entered (another
        topic, an offset past the end read, a broker that held other records before) cannot
        change the count, and is not kept: a wild offset must not cost memory."""
        runs = self._entered.get((origin.topic, origin.partition))
        if not runs or not 0 <= origin.offset < runs[-1][1]:
            return
        fates = self._fates.setdefault((origin.topic, origin.partition), bytearray())
        if origin.offset >= len(fates):
            fates.extend(bytes(origin.offset + 1 - len(fates)))
        known = Fate(fates[origin.offset])
        if known is Fate.NONE:
            fates[origin.offset] = fate
            return
        key = (origin.topic, origin.partition, origin.offset)
        if known is not Fate.MORE_THAN_ONE:
            self._more[key] = [_FATE_NAMES[known]]
            fates[origin.offset] = Fate.MORE_THAN_ONE
        self._more[key].append(where)

    def settle(self, report: AuditReport) -> None:
        """Count every record that entered by what became of it."""
        for (topic, partition), runs in self._entered.items():
            fates = self._fates.get((topic, partition), bytearray())
            for start, end in runs:
                for offset in range(start, end):
                    fate = Fate(fates[offset]) if offset < len(fates) else Fate.NONE
                    report.entered += 1
                    if fate is Fate.REPORT:
                        report.as_report += 1
                    elif fate is Fate.DUPLICATE:
                        report.as_duplicate += 1
                    elif fate is Fate.DEAD_LETTER:
                        report.as_dead_letter += 1
                    elif fate is Fate.NONE:
                        report.found_unaccounted(
                            Origin(topic=topic, partition=partition, offset=offset)
                        )
                    else:
                        report.found_twice(
                            Origin(topic=topic, partition=partition, offset=offset),
                            self._more[(topic, partition, offset)],
                        )

    def mark_dead_letter(self, letter: DeadLetter, report: AuditReport) -> None:
        report.dead_letters_by_reason[letter.reason.value] += 1
        if letter.origin is not None:
            self.mark(letter.origin, Fate.DEAD_LETTER, f"dead letter ({letter.reason.value})")


def bucket_of(case_key: bytes, buckets: int) -> int:
    """The share of the cases a case is folded in, from its case-event record key (its id)."""
    return zlib.crc32(case_key) % buckets if buckets > 1 else 0


@dataclass(slots=True)
class _Case:
    state: CaseState | None = None
    version: int = 0
    """The last version folded."""
    waiting: dict[int, CaseEvent] = field(default_factory=dict)
    """Versions that came before the ones they follow."""
    broken: bool = False
    seen: set[int] = field(default_factory=set)
    """The versions of a broken history, which is no longer folded."""


class CaseFolds:
    """The cases of one share, folded as their events come in topic order. Each version of a
    case counts once (a redelivered event is the same event); an event of a version that comes
    early waits for the ones before it. Every first event of a version marks its report's origin
    in the ledger."""

    def __init__(self, ledger: OriginLedger) -> None:
        self.ledger = ledger
        self._cases: dict[str, _Case] = {}

    def take(self, event: CaseEvent) -> None:
        case = self._cases.get(event.case_id)
        if case is None:
            case = self._cases[event.case_id] = _Case()
        if case.broken:
            if event.version not in case.seen:
                case.seen.add(event.version)
                self._mark(event)
            return
        if event.version <= case.version or event.version in case.waiting:
            return
        self._mark(event)
        if event.version > case.version + 1:
            case.waiting[event.version] = event
            return
        self._fold(case, event)
        while case.version + 1 in case.waiting and not case.broken:
            self._fold(case, case.waiting.pop(case.version + 1))

    def _fold(self, case: _Case, event: CaseEvent) -> None:
        try:
            case.state = apply(case.state, event)
            case.version = event.version
        except OutOfOrderEvent:
            case.broken = True
            case.seen = {event.version, *case.waiting, *range(1, case.version + 1)}
            case.waiting.clear()

    def _mark(self, event: CaseEvent) -> None:
        summary = report_of(event)
        if summary is not None and summary.origin is not None and not merged_in(event):
            self.ledger.mark(summary.origin, Fate.REPORT, f"report on {event.case_id}")
        elif isinstance(event, DuplicateReceived) and event.origin is not None:
            self.ledger.mark(event.origin, Fate.DUPLICATE, f"duplicate on {event.case_id}")

    def finish(self, report: AuditReport) -> list[tuple[str, CaseState]]:
        """The share's cases whose histories are whole, with their states; the others are
        reported broken. The share is empty afterwards."""
        cases, self._cases = self._cases, {}
        whole = []
        for case_id, case in cases.items():
            report.cases += 1
            if case.broken or case.waiting or case.state is None:
                report.found_broken(case_id)
            else:
                whole.append((case_id, case.state))
        return whole


def compare(
    folded: Iterable[tuple[str, CaseState]],
    stored: Mapping[str, Mapping[str, Any]],
    report: AuditReport,
) -> None:
    """Each folded case against its stored document (by case id); a missing one differs."""
    for case_id, state in folded:
        document = stored.get(case_id)
        if document is None or state.model_dump(mode="json") != document:
            report.found_differing(case_id)


def audit(
    entered: Iterable[Origin],
    case_events: Iterable[CaseEvent],
    dead_letters: Iterable[DeadLetter],
    stored_states: Mapping[str, Mapping[str, Any]],
    unfinished_decision_events: int = 0,
) -> AuditReport:
    """The audit of a history held whole: `entered`, where every source record sits;
    `case_events`, those of whole decisions; `stored_states`, the read model's case states as
    JSON documents, by case id. `cityloop audit` runs the same steps a share at a time."""
    report = AuditReport(unfinished_decision_events=unfinished_decision_events)
    ledger = OriginLedger()
    for origin in entered:
        ledger.enter(origin)
    for letter in dead_letters:
        ledger.mark_dead_letter(letter, report)
    folds = CaseFolds(ledger)
    for event in case_events:
        folds.take(event)
    compare(folds.finish(report), stored_states, report)
    ledger.settle(report)
    return report
