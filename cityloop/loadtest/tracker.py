"""Accounting of a replay: which sent record became which case outcome or dead letter, and how
long it took (pure: the caller passes every time in)."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cityloop.loadtest.pacing import percentile


@dataclass
class Sent:
    key: str | None
    published_at: float
    where: tuple[str, int, int] | None = None
    done_at: float | None = None
    outcome: str | None = None
    case_id: str | None = None


@dataclass
class ReplayTracker:
    """Matches case events and dead letters to the records that caused them.

    A CaseOpened names its first report's idempotency key and completes at the CaseDispatched
    that follows it; ReportAttached and DuplicateReceived name the key; a dead letter names the
    topic/partition/offset it was read from, which the producer's acknowledgement told us.
    Records with the same key (exact retries) complete in the order they were sent."""

    not_before_ms: int = 0
    """Case events stamped earlier than this are older runs' tails, not ours."""
    sent: list[Sent] = field(default_factory=list)
    acknowledged: int = 0
    failed: int = 0
    accounted: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    first_done_at: float | None = None
    last_done_at: float | None = None
    _waiting_by_key: dict[str, deque[int]] = field(default_factory=dict)
    _by_position: dict[tuple[str, int, int], int] = field(default_factory=dict)
    _early_dead: dict[tuple[str, int, int], tuple[str, float]] = field(default_factory=dict)
    _opening: dict[str, int] = field(default_factory=dict)

    def on_send(self, key: str | None, published_at: float) -> int:
        index = len(self.sent)
        self.sent.append(Sent(key, published_at))
        if key is not None:
            self._waiting_by_key.setdefault(key, deque()).append(index)
        return index

    def on_ack(self, index: int, topic: str, partition: int, offset: int) -> None:
        self.acknowledged += 1
        where = (topic, partition, offset)
        self.sent[index].where = where
        self._by_position[where] = index
        early = self._early_dead.pop(where, None)
        if early is not None:
            self._dead_letter_for(index, *early)

    def on_send_failed(self, index: int) -> None:
        self.failed += 1
        self._finish(index, "send_failed", None, None)

    def on_case_event(self, event: Mapping[str, Any], observed_at: float, stamp_ms: int) -> None:
        if stamp_ms < self.not_before_ms:
            return
        kind = event.get("type")
        case_id = event.get("case_id")
        if not isinstance(case_id, str):
            return
        if kind == "CaseOpened":
            index = self._take(_key(event.get("first_report"), "idempotency_key"))
            if index is not None:
                self._opening[case_id] = index
                self.outcomes["cases_opened"] += 1
        elif kind == "CaseDispatched":
            opened = self._opening.pop(case_id, None)
            if opened is not None:
                self._finish(opened, "case_dispatched", observed_at, case_id)
        elif kind == "CaseSentToDesk":
            # waiting for a person is where the system's part ends: the record is accounted for
            opened = self._opening.pop(case_id, None)
            if opened is not None:
                self.outcomes["sent_to_desk"] += 1
                self._finish(opened, "sent_to_desk", observed_at, case_id)
        elif kind == "ReportAttached":
            index = self._take(_key(event.get("report"), "idempotency_key"))
            if index is not None:
                self.outcomes["reports_attached"] += 1
                self._finish(index, "report_attached", observed_at, case_id)
        elif kind == "DuplicateReceived":
            index = self._take(_key(event, "idempotency_key"))
            if index is not None:
                self.outcomes["duplicates_received"] += 1
                self._finish(index, "duplicate_received", observed_at, case_id)

    def on_dead_letter(self, letter: Mapping[str, Any], observed_at: float) -> None:
        origin = letter.get("origin")
        if not isinstance(origin, Mapping):
            return
        where = (
            str(origin.get("topic")),
            int(origin.get("partition", -1)),
            int(origin.get("offset", -1)),
        )
        reason = str(letter.get("reason"))
        index = self._by_position.get(where)
        if index is None:
            # the acknowledgement may still be on its way to us; match it then
            self._early_dead[where] = (reason, observed_at)
            return
        self._dead_letter_for(index, reason, observed_at)

    def _dead_letter_for(self, index: int, reason: str, observed_at: float) -> None:
        sent = self.sent[index]
        if sent.done_at is not None:
            return
        if sent.key is not None and index in self._waiting_by_key.get(sent.key, ()):
            self._waiting_by_key[sent.key].remove(index)
        self.dead_letters[reason] += 1
        self._finish(index, f"dead_letter:{reason}", observed_at, None)

    def _take(self, key: str | None) -> int | None:
        waiting = self._waiting_by_key.get(key) if key is not None else None
        return waiting.popleft() if waiting else None

    def _finish(
        self, index: int, outcome: str, observed_at: float | None, case_id: str | None
    ) -> None:
        sent = self.sent[index]
        if sent.outcome is not None:
            return
        sent.outcome, sent.case_id = outcome, case_id
        self.accounted += 1
        if observed_at is not None:
            sent.done_at = observed_at
            if self.first_done_at is None:
                self.first_done_at = observed_at
            self.last_done_at = max(self.last_done_at or observed_at, observed_at)

    @property
    def in_flight(self) -> int:
        return len(self.sent) - self.accounted

    def latencies_ms(self, dead_letters: bool = False) -> list[float]:
        """Publish → the case's CaseDispatched / ReportAttached / DuplicateReceived seen on the
        case-event topic (and, if asked, → the dead letter)."""
        return sorted(
            (sent.done_at - sent.published_at) * 1000.0
            for sent in self.sent
            if sent.done_at is not None
            and sent.outcome is not None
            and (dead_letters or not sent.outcome.startswith("dead_letter:"))
        )

    def latency_summary(self) -> dict[str, float]:
        values = self.latencies_ms()
        return {
            "count": float(len(values)),
            "p50_ms": round(percentile(values, 0.50), 1),
            "p95_ms": round(percentile(values, 0.95), 1),
            "p99_ms": round(percentile(values, 0.99), 1),
            "max_ms": round(values[-1], 1) if values else 0.0,
        }

    def assignment(self) -> dict[str, str]:
        """Idempotency key → the case it joined (for `cityloop evaluate`)."""
        return {
            sent.key: sent.case_id
            for sent in self.sent
            if sent.key is not None and sent.case_id is not None
        }


def _key(document: Any, name: str) -> str | None:
    if isinstance(document, Mapping):
        value = document.get(name)
        return value if isinstance(value, str) else None
    return None
