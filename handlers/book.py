"""The case book: the cases of one case partition, folded from that partition of the case-event
topic, with the indexes its decisions need (dedup, open cases by correlation key, devices,
deadlines).

The book is bounded. A case that is no longer open leaves it once `Retention.finished_window`
has passed (`retire`), into an `Archive` that brings it back whenever a command, a duplicate
report or a merge names it again (`case`). Idempotency keys and command ids are kept for a
retention window, in two generations that turn over every half window, so a key is remembered
for at least half a window and at most a whole one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from hashlib import blake2b
from heapq import heapify, heappop, heappush
from itertools import islice
from sys import intern
from typing import Any, Protocol

from cityloop.contracts import (
    CaseEvent,
    CaseOpened,
    DuplicateReceived,
    Incident,
    LeadRejected,
    Mode,
    Origin,
    ReportAttached,
)
from handlers import nearby
from handlers.case import CaseChange, CaseState, OutOfOrderEvent, apply, micros, report_of
from handlers.cells import family_radius
from handlers.correlate import CorrelationDecision, Probe, SeenReport, correlate
from handlers.nearby import KeyIndex
from topology import Topology


class Archive(Protocol):
    """Where cases that left the book wait, in case they are named again."""

    def keep(self, states: list[CaseState]) -> None: ...

    def fetch(self, case_id: str) -> CaseState | None: ...


class NoArchive:
    """For a book that never retires a case (a benchmark, a one-off fold)."""

    def keep(self, states: list[CaseState]) -> None:
        raise RuntimeError("a book without an archive retires no case")

    def fetch(self, case_id: str) -> CaseState | None:
        return None


@dataclass(frozen=True)
class Retention:
    """How long the book keeps what it no longer needs every day."""

    finished_window: timedelta = timedelta(hours=6)
    """A case no longer open stays in memory this long (verified, reopened, a late duplicate),
    then waits in the archive."""
    idempotency_window: timedelta = timedelta(days=2)
    """Idempotency keys and command ids are known for at least half of this, at most all of it:
    a publisher's retry or a redelivery inside it is recognised."""


Seen = dict[str, tuple[str, tuple[tuple[str, int, int], ...], str]]

STALE_DEADLINES_KEPT = 1024
"""Stale deadline entries a book lets wait for a tick before it sweeps them (see `retire`)."""


_INDEXES: dict[str, type[dict[Any, Any]] | type[set[Any]] | type[list[Any]]] = {
    "cases": dict,
    "_seen": dict,
    "_seen_before": dict,
    "_open": dict,
    "_devices": dict,
    "_false_alarms": dict,
    "_applied_commands": set,
    "_applied_before": set,
    "_deadlines": list,
    "_deadline_of": dict,
    "_finished": list,
}
"""The book's indexes that `pieces` may cut, and what each is put back as."""


def _command_mark(command_id: str) -> int:
    return int.from_bytes(blake2b(command_id.encode(), digest_size=8).digest())


class CaseBook:
    """Derived state only: it can always be rebuilt by folding the case events again."""

    def __init__(self, retention: Retention | None = None, archive: Archive | None = None) -> None:
        self.retention = retention or Retention()
        self.archive: Archive = archive or NoArchive()
        self.cases: dict[str, CaseState] = {}
        # idempotency key -> (case id, where its records were read, content digest); plain
        # tuples of strings and ints, which the garbage collector stops tracking,
        # topic names interned: a window of a city's keys is the largest thing a book holds.
        # Two generations: the current one takes new keys, the previous one is still asked.
        self._seen: Seen = {}
        self._seen_before: Seen = {}
        # correlation key -> its open cases, by case id, in the order they were opened
        self._open: dict[str, dict[str, CaseState]] = defaultdict(dict)
        # correlation key -> where its open cases lie, for a key with many (handlers/nearby.py);
        # derived from `_open` when first asked, so neither copied nor written in a snapshot
        self._nearby: dict[str, KeyIndex] = {}
        self._devices: dict[str, str] = {}
        self._false_alarms: dict[str, int] = {}
        # commands applied, as 64-bit digests of their ids (a third of the memory of the ids)
        self._applied_commands: set[int] = set()
        self._applied_before: set[int] = set()
        self._generation_started: int | None = None  # µs
        # deadlines: a heap of (instant in µs, case id), and each open case's earliest deadline
        # as it was pushed; an entry that no longer matches its case's is stale and skipped
        self._deadlines: list[tuple[int, str]] = []
        self._deadline_of: dict[str, int] = {}
        # cases no longer open: a heap of (last change in µs, case id); stale entries skipped
        self._finished: list[tuple[int, str]] = []
        self.skipped: int = 0
        self.retired: int = 0

    # --- snapshots --------------------------------------------------------------------------

    def copy(self) -> CaseBook:
        """A book that answers as this one does now and does not change with it, for a
        snapshot written while this one goes on deciding. It costs a copy of each index (done
        in C), not of the cases: a state is a value, never changed once in a book."""
        twin = CaseBook.__new__(CaseBook)
        for name, value in self.__dict__.items():
            if name == "_open":  # a dict of dicts: each inner one copied too
                value = defaultdict(dict, {key: cases.copy() for key, cases in value.items()})
            elif name == "_nearby":
                value = {}
            elif isinstance(value, dict | list | set):
                value = value.copy()
            twin.__dict__[name] = value
        twin.archive = NoArchive()
        return twin

    def pieces(self, size: int) -> Iterator[tuple[str, object]]:
        """The book as (name, piece) pairs, each large index cut into pieces of at most `size`
        entries, so that whoever writes it (pickles it) never holds the interpreter for long
        at a time; `from_pieces` puts them together again. The open cases are named by id:
        their states come with `cases`. Without its archive, which the loader attaches."""
        whole: dict[str, object] = {}
        for name, value in self.__dict__.items():
            if name in ("archive", "_nearby"):
                continue
            if name == "_open":
                value = {key: list(cases) for key, cases in self._open.items()}
            if isinstance(value, dict | list | set) and len(value) > size:
                # a piece at a time: a list of every entry would be that many more objects for
                # the garbage collector to walk, long enough to be walked in a full collection
                entries = iter(value.items() if isinstance(value, dict) else value)
                while piece := list(islice(entries, size)):
                    yield name, piece
            else:
                whole[name] = value
        yield "", whole

    @classmethod
    def from_pieces(cls, pieces: Iterable[tuple[str, object]]) -> CaseBook:
        book = cls.__new__(cls)
        parts: dict[str, list[Any]] = defaultdict(list)
        whole: dict[str, object] = {}
        for name, piece in pieces:
            if name:
                parts[name] += piece  # type: ignore[arg-type]
            else:
                whole = piece  # type: ignore[assignment]
        for name, kind in _INDEXES.items():
            if name in parts:
                whole[name] = kind(parts.pop(name))
        if parts:
            raise ValueError(f"pieces of no index of the book: {sorted(parts)}")
        open_ids: dict[str, list[str]] = whole.pop("_open")  # type: ignore[assignment]
        book.__dict__.update(whole)
        cases = book.cases
        book._open = defaultdict(dict)
        for key, ids in open_ids.items():
            book._open[key] = {case_id: cases[case_id] for case_id in ids}
        book._nearby = {}
        book.archive = NoArchive()
        return book

    # --- folding ---------------------------------------------------------------------------

    def fold(self, events: Iterable[CaseEvent]) -> None:
        for event in events:
            self.record(event)

    def record(self, event: CaseEvent) -> None:
        """Take one event in; one already taken (a redelivery) changes nothing."""
        state = self.cases.get(event.case_id)
        if state is not None and event.version <= state.version:
            return
        try:
            state = apply(state, event)
        except OutOfOrderEvent:
            self.skipped += 1
            return
        self.cases[state.case_id] = state
        self._index(event, state)

    def commit(self, change: CaseChange) -> None:
        """Take in a decision: its final state was folded already, so only the indexes move."""
        state = change.state
        if state is None or not change.events:
            return
        known = self.cases.get(state.case_id)
        if known is not None and known.version >= state.version:
            return
        if change.events[0].version != (known.version if known else 0) + 1:
            self.fold(change.events)  # the decision was made on another view: fold it in order
            return
        self.cases[state.case_id] = state
        for event in change.events:
            self._index(event, state)

    def _index(self, event: CaseEvent, state: CaseState) -> None:
        # `type(event) is` rather than `isinstance`: a pydantic model class answers a failed
        # isinstance through ABCMeta, ten times slower, and this runs for every event
        if type(event) is CaseOpened or type(event) is ReportAttached:
            report = report_of(event)
            if report is not None:
                self._remember(
                    report.idempotency_key, state.case_id, report.origin, report.content_digest
                )
                if report.device_id:
                    self._devices[report.device_id] = state.case_id
        elif type(event) is DuplicateReceived:
            self._remember(event.idempotency_key, state.case_id, event.origin)
        else:
            if event.caused_by:
                self._applied_commands.add(_command_mark(event.caused_by))
            if type(event) is LeadRejected and event.device_id:
                self._false_alarms[event.device_id] = event.device_false_alarms
        key = state.correlation_key
        if state.is_open:
            self._open[key][state.case_id] = state
            index = self._nearby.get(key)
            if index is not None:
                index.place(state)
            self._track_deadline(state, _earliest_deadline(state))
        else:
            open_here = self._open.get(key)
            if open_here is not None:
                open_here.pop(state.case_id, None)
                index = self._nearby.get(key)
                if index is not None:
                    index.remove(state.case_id)
                if not open_here:
                    del self._open[key]
                    self._nearby.pop(key, None)
            self._deadline_of.pop(state.case_id, None)
            heappush(self._finished, (micros(state.updated_at), state.case_id))

    def _track_deadline(self, state: CaseState, deadline: int | None) -> None:
        if deadline is None:
            self._deadline_of.pop(state.case_id, None)
        elif self._deadline_of.get(state.case_id) != deadline:
            self._deadline_of[state.case_id] = deadline
            heappush(self._deadlines, (deadline, state.case_id))

    def _remember(self, key: str, case_id: str, origin: Origin | None, digest: str = "") -> None:
        known = self._seen.get(key) or self._seen_before.get(key)
        if known is None:
            known = (case_id, (), digest)
        if origin is not None:
            where = (intern(origin.topic), origin.partition, origin.offset)
            if where not in known[1]:
                known = (known[0], (*known[1], where), known[2])
        self._seen[key] = known

    # --- what decisions ask ----------------------------------------------------------------

    def seen(self, idempotency_key: str, origin: Origin | None) -> SeenReport | None:
        """The case that already has this report; `origin` echoes the record if it is the
        very record taken before (a redelivery), so the decision can tell the two apart."""
        known = self._seen.get(idempotency_key) or self._seen_before.get(idempotency_key)
        if known is None:
            return None
        case_id, origins, digest = known
        echo = (
            origin
            if origin is not None and (origin.topic, origin.partition, origin.offset) in origins
            else None
        )
        return SeenReport(case_id, echo, digest)

    def correlate(
        self,
        incident: Incident,
        key: str,
        topology: Topology,
        modes: Mapping[str, Mode],
        now: datetime,
    ) -> CorrelationDecision:
        """Decide an incident against this book (and take the decision in)."""
        seen = self.seen(incident.idempotency_key, incident.origin)
        decision = correlate(
            incident,
            seen,
            self.case(seen.case_id) if seen else None,
            self._candidates(key, topology),
            self.device_case(incident.device_id),
            topology,
            modes,
            now,
        )
        self.commit(CaseChange(decision.events, decision.state))
        return decision

    def case(self, case_id: str | None) -> CaseState | None:
        """The case, brought back from the archive if it had left the book."""
        if not case_id:
            return None
        state = self.cases.get(case_id)
        if state is None:
            state = self.archive.fetch(case_id)
            if state is not None:
                self.cases[case_id] = state
                heappush(self._finished, (micros(state.updated_at), case_id))
        return state

    def _candidates(
        self, key: str, topology: Topology
    ) -> list[CaseState] | Callable[[Probe], list[CaseState]]:
        """The open cases of a key an incident is measured against: all of them while they are
        few, else those its probe could join, by the key's index (built when first needed)."""
        open_cases = self._open.get(key)
        if not open_cases:
            return []
        if len(open_cases) < nearby.INDEX_FROM and key not in self._nearby:
            return list(open_cases.values())
        index = self._nearby.get(key)
        if index is None or index.topology is not topology:
            index = self._nearby[key] = KeyIndex(topology)
            for state in open_cases.values():
                index.place(state)

        def near(probe: Probe) -> list[CaseState]:
            ids = index.near(
                probe.point,
                probe.precise,
                probe.category_code,
                probe.communities,
                family_radius(topology, probe.family),
            )
            return [open_cases[case_id] for case_id in ids]

        return near

    def device_case(self, device_id: str | None) -> CaseState | None:
        return self.case(self._devices.get(device_id)) if device_id else None

    def false_alarms(self, device_id: str | None) -> int:
        return self._false_alarms.get(device_id, 0) if device_id else 0

    def applied(self, command_id: str) -> bool:
        mark = _command_mark(command_id)
        return mark in self._applied_commands or mark in self._applied_before

    # --- staying bounded -------------------------------------------------------------------

    def retire(self, now: datetime) -> int:
        """Let go of what `now` no longer needs: cases finished before the finished window (into
        the archive), and a generation of idempotency keys and command ids every half
        idempotency window. Returns how many cases left the book."""
        moment = micros(now)
        half = int(self.retention.idempotency_window / timedelta(microseconds=1)) // 2
        if self._generation_started is None:
            self._generation_started = moment
        elif moment - self._generation_started >= half:
            self._seen_before, self._seen = self._seen, {}
            self._applied_before, self._applied_commands = self._applied_commands, set()
            self._generation_started = moment
        self._drop_stale_deadlines()
        if isinstance(self.archive, NoArchive):
            return 0
        cutoff = moment - int(self.retention.finished_window / timedelta(microseconds=1))
        leaving: list[CaseState] = []
        while self._finished and self._finished[0][0] < cutoff:
            changed, case_id = heappop(self._finished)
            state = self.cases.get(case_id)
            if state is None or state.is_open or micros(state.updated_at) != changed:
                continue  # stale: gone already, reopened, or changed since
            del self.cases[case_id]
            if state.device_id and self._devices.get(state.device_id) == case_id:
                del self._devices[state.device_id]
            leaving.append(state)
        if leaving:
            self.archive.keep(leaving)
            self.retired += len(leaving)
        return len(leaving)

    def _drop_stale_deadlines(self) -> None:
        """A deadline stays in the heap when its case moves on or closes (a heap cannot lose an
        entry from its middle). Live, ticks pop them as they fall due; a fold of weeks of
        history has no ticks, and every case it folds would leave its deadlines behind, with
        its id. So the heap is rebuilt with only the live entries once the stale ones
        outnumber them."""
        deadline_of = self._deadline_of
        if len(self._deadlines) > 2 * len(deadline_of) + STALE_DEADLINES_KEPT:
            self._deadlines = [
                entry for entry in self._deadlines if deadline_of.get(entry[1]) == entry[0]
            ]
            heapify(self._deadlines)

    def open_cases(self) -> Iterator[CaseState]:
        for open_cases in self._open.values():
            yield from open_cases.values()

    def open_count(self) -> int:
        """How many cases are open. Safe from another thread (a metrics scrape) while the book
        changes: the copy of the index is taken in one step under the GIL."""
        return sum(len(open_cases) for open_cases in list(self._open.values()))

    def due(
        self, now: datetime, mine: Callable[[CaseState], bool] | None = None
    ) -> list[CaseState]:
        """Open cases with a deadline before `now` (of those `mine` accepts), earliest first.
        Each is handed out once per deadline: a case is due again only for a later deadline,
        whether its decision set one or it already had one. Costs what is due, not what is
        open: a tick used to test every open case of the book, four times (once per case
        partition), which at 100,000 open cases held the cases agent for a good part of
        every tick."""
        moment = micros(now)
        due: list[CaseState] = []
        others: list[tuple[int, str]] = []
        while self._deadlines and self._deadlines[0][0] < moment:
            deadline, case_id = heappop(self._deadlines)
            case = self.cases.get(case_id)
            if case is None or self._deadline_of.get(case_id) != deadline or not case.is_open:
                continue  # stale: the case moved on, or closed
            if mine is not None and not mine(case):
                others.append((deadline, case_id))  # another partition's tick takes it
                continue
            due.append(case)
            later = [d for d in _deadlines(case) if d >= moment]
            self._track_deadline(case, min(later) if later else None)
        for entry in others:
            heappush(self._deadlines, entry)
        return due


def _deadlines(state: CaseState) -> list[int]:
    return [
        micros(d)
        for d in (state.dispatch_deadline, state.accept_deadline, state.resolve_deadline)
        if d is not None
    ]


def _earliest_deadline(state: CaseState) -> int | None:
    pending = _deadlines(state)
    return min(pending) if pending else None
