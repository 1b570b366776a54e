"""The worker's decisions, with no I/O: a record in, the records to send out.

Two stages, as on the topics:

- `take_source_record`: a raw CloudEvent from a source topic becomes an incident keyed by its
  correlation key (or a dead letter).
- `CasePartition`: one partition of the case work (incidents and control records). It owns the
  cases whose correlation key hashes to it and nothing else; their events go to the same
  partition of the case-event topic, so a worker that is given a partition rebuilds it from that
  partition alone, and two workers hold half the cases each.

The streams layer (streams/worker.py) only moves bytes: it hands records in, sends what comes
out, and keeps each partition's book in a snapshot.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from kafka.partitioner.default import murmur2

from cityloop.contracts import (
    CONTROL_ADAPTER,
    AbsorbReports,
    CaseEvent,
    CommandOutcome,
    DeadLetter,
    DeadLetterReason,
    Incident,
    MergeCase,
    Mode,
    Origin,
    Source,
    SwitchMode,
    Tick,
    wire_bytes,
)
from handlers.book import Archive, CaseBook, Retention
from handlers.case import CaseChange
from handlers.cells import correlation_key
from handlers.intake import Accepted, take_in
from handlers.lifecycle import (
    absorb_reports,
    check_deadlines,
    decide_command,
    decide_mode_switch,
    reevaluate_for_mode,
)
from handlers.triage import Guesser
from topology import Topology, UnroutableError

RETIRE_EVERY = 10_000
"""While a history is folded, the book lets go of what it no longer needs this often (events)."""

DECISION_HEADER = "decision"
"""Each case event says which part of its decision it is (streams/decisions.py reads it)."""


def decision_headers(index: int, size: int) -> list[tuple[str, bytes]]:
    """The header of the `index`-th (1-based) of `size` events of one decision."""
    return [(DECISION_HEADER, f"{index}/{size}".encode())]


class Destination(Enum):
    """Where a record goes; the streams layer names the topic."""

    INCIDENTS = "incidents"
    CASE_EVENTS = "case_events"
    CASE_CONTROL = "case_control"
    COMMAND_OUTCOMES = "command_outcomes"
    DEAD_LETTERS = "dead_letters"
    MODES = "modes"


@dataclass(slots=True)
class Send:
    """One record to write. `partition` None: the producer's partitioner places it by key
    (Kafka's murmur2, the same for every client), which is how a key finds its partition."""

    to: Destination
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] | None = None
    partition: int | None = None
    event_id: str | None = None
    """A case event's id, so that a snapshot can name the last event it reflects."""


@dataclass(frozen=True, slots=True)
class WorkRecord:
    """A record as a consumer hands it over: where it was read, and its bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int

    @property
    def origin(self) -> Origin:
        return Origin(topic=self.topic, partition=self.partition, offset=self.offset)

    @property
    def time(self) -> datetime:
        """The clock of every decision: the record's own timestamp. Re-processing a record after
        a crash then decides exactly as before, and a replay runs on the events' own times."""
        return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)


def partition_for(correlation_key: str, partitions: int) -> int:
    """The case partition of a correlation key: Kafka's default partitioner (murmur2), which
    the producers of incidents and commands apply to the same key."""
    return int(murmur2(correlation_key.encode()) & 0x7FFFFFFF) % partitions


def dead_letter_for_exception(
    exc: Exception,
    raw: bytes,
    origin: Origin | None,
    now: datetime,
    incident: Incident | None = None,
) -> DeadLetter:
    """A failure the handlers did not foresee (or an unroutable incident) as a dead letter."""
    if isinstance(exc, UnroutableError):
        named = {reason.value: reason for reason in DeadLetterReason}
        reason = named.get(exc.reason, DeadLetterReason.UNROUTABLE)
    else:
        reason = DeadLetterReason.PROCESSING_ERROR
    return DeadLetter(
        reason=reason,
        detail=f"{type(exc).__name__}: {exc}"[:2000],
        origin=origin,
        source=incident.source if incident else None,
        idempotency_key=incident.idempotency_key if incident else None,
        payload_b64=base64.b64encode(raw).decode("ascii"),
        payload_is_original=incident is None,
        recorded_at=now,
    )


def dead_letter_send(dead_letter: DeadLetter) -> Send:
    return Send(
        Destination.DEAD_LETTERS,
        (dead_letter.idempotency_key or "").encode(),
        wire_bytes(dead_letter),
        headers=[("reason", dead_letter.reason.value.encode())],
    )


def outcome_send(outcome: CommandOutcome) -> Send:
    return Send(
        Destination.COMMAND_OUTCOMES,
        outcome.command_id.encode(),
        wire_bytes(outcome),
    )


def take_source_record(
    record: WorkRecord,
    topology: Topology,
    expected: Source | None,
    guesser: Guesser | None,
) -> Send:
    """Raw CloudEvent → the incident, keyed by correlation key, or its dead letter."""
    now = record.time
    try:
        result = take_in(record.value, topology, now, expected, record.origin, guesser)
        if isinstance(result, Accepted):
            incident = result.incident
            return Send(
                Destination.INCIDENTS,
                correlation_key(topology, incident).encode(),
                wire_bytes(incident),
            )
        return dead_letter_send(result.dead_letter)
    except Exception as exc:  # a bug must not stop the stream: dead-letter and go on
        return dead_letter_send(dead_letter_for_exception(exc, record.value, record.origin, now))


class CasePartition:
    """The cases of one partition and every decision about them.

    `take` decides one record of the partition (an incident or a control record) against the
    book and returns what to send; the book has taken the decision in by then. Decisions are
    deterministic in the record and the book, so a record decided again after a crash yields the
    same records, which readers take once."""

    def __init__(
        self,
        number: int,
        retention: Retention | None = None,
        archive: Archive | None = None,
    ) -> None:
        self.number = number
        self.book = CaseBook(retention, archive)
        self.decided: dict[str, int] = {}
        """How many decisions of each kind (incident, command, deadline, mode, absorb)."""
        self.failures: list[tuple[WorkRecord, Exception]] = []
        """Unforeseen failures since the streams layer last looked (it logs them)."""

    def restore(self, events: Iterable[CaseEvent]) -> int:
        """Fold events of this partition (a snapshot's tail, or its whole history), retiring
        what their own times no longer need as it goes, so that memory follows the cases that
        matter and not the length of the history. Returns how many events it folded."""
        folded = 0
        last: datetime | None = None
        for event in events:
            self.book.record(event)
            folded += 1
            last = event.occurred_at
            if folded % RETIRE_EVERY == 0:
                self.book.retire(last)
        if last is not None:
            self.book.retire(last)
        return folded

    def take(
        self, record: WorkRecord, topology: Topology, modes: dict[str, Mode], incidents: str
    ) -> list[Send]:
        """Decide one record; `incidents` names the incident topic (the rest is control)."""
        incident: Incident | None = None
        try:
            if record.topic == incidents:
                incident = Incident.model_validate_json(record.value)
                return self._take_incident(incident, record, topology, modes)
            control = CONTROL_ADAPTER.validate_json(record.value)
            return self._take_control(control, record.time, topology, modes)
        except Exception as exc:  # unroutable, or a bug: dead-letter and go on
            if not isinstance(exc, UnroutableError):
                self.failures.append((record, exc))
            origin = incident.origin if incident and incident.origin else record.origin
            return [
                dead_letter_send(
                    dead_letter_for_exception(exc, record.value, origin, record.time, incident)
                )
            ]

    # --- the kinds of record ---------------------------------------------------------------

    def _count(self, kind: str) -> None:
        self.decided[kind] = self.decided.get(kind, 0) + 1

    def _events(self, events: tuple[CaseEvent, ...]) -> list[Send]:
        """One decision's events, each marked with its place in the decision, so that readers
        take the decision whole or not at all (streams/decisions.py)."""
        size = len(events)
        return [
            Send(
                Destination.CASE_EVENTS,
                event.case_id.encode(),
                wire_bytes(event),
                headers=decision_headers(index, size),
                partition=self.number,
                event_id=event.event_id,
            )
            for index, event in enumerate(events, start=1)
        ]

    def _publish(self, change: CaseChange) -> list[Send]:
        self.book.commit(change)
        return self._events(change.events)

    def _take_incident(
        self, incident: Incident, record: WorkRecord, topology: Topology, modes: dict[str, Mode]
    ) -> list[Send]:
        key = record.key.decode() if record.key else ""
        decision = self.book.correlate(incident, key, topology, modes, incident.received_at)
        self._count("incident")
        return self._events(decision.events)

    def _take_control(
        self, message: Any, now: datetime, topology: Topology, modes: dict[str, Mode]
    ) -> list[Send]:
        if isinstance(message, Tick):
            return self._tick(message.now, topology, modes)
        if isinstance(message, SwitchMode):
            return self._switch(message, now, topology, modes)
        sends: list[Send] = []
        if isinstance(message, AbsorbReports):
            self._count("absorb")
            decision = absorb_reports(message, self.book.case(message.case_id), now)
        else:
            if self.book.applied(message.command_id):
                return []  # a redelivered command: its events and outcome are out already
            case = self.book.case(message.case_id)
            self._count("command")
            decision = decide_command(
                message,
                case,
                topology,
                modes,
                now,
                self.book.false_alarms(case.device_id if case else None),
            )
            if decision.absorb is not None:
                # the surviving case lives where its correlation key sends it; the API names it
                target = self.book.case(decision.absorb.case_id)
                into_key = target.correlation_key if target else None
                if into_key is None and isinstance(message, MergeCase):
                    into_key = message.into_correlation_key
                sends.append(
                    Send(
                        Destination.CASE_CONTROL,
                        (into_key or "").encode(),
                        wire_bytes(decision.absorb),
                    )
                )
        # The outcome first: a worker that dies after it and before the events re-decides the
        # redelivered command (its events are not in the book) and sends both again, while one
        # that died after the events would skip the command as applied and never send its
        # outcome.
        return [
            outcome_send(decision.outcome),
            *sends,
            *self._publish(CaseChange(decision.events, decision.state)),
        ]

    def _tick(self, now: datetime, topology: Topology, modes: dict[str, Mode]) -> list[Send]:
        sends: list[Send] = []
        for due in self.book.due(now):
            self._count("deadline")
            sends += self._publish(check_deadlines(due, topology, modes, now))
        self.book.retire(now)
        return sends

    def _switch(
        self, message: SwitchMode, now: datetime, topology: Topology, modes: dict[str, Mode]
    ) -> list[Send]:
        sends: list[Send] = []
        outcome = decide_mode_switch(message, topology, now)
        if outcome.applied:
            modes[message.area_code] = message.mode
            for open_case in list(self.book.open_cases()):
                self._count("mode")
                sends += self._publish(reevaluate_for_mode(open_case, topology, modes, now))
        if self.number == 0:  # every partition got the switch; one of them records it
            if outcome.applied:
                sends.append(
                    Send(
                        Destination.MODES,
                        message.area_code.encode(),
                        wire_bytes(message),
                    )
                )
            sends.append(outcome_send(outcome))
        return sends
