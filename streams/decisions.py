"""Decisions on the case-event topic: each record says which part of its decision it is, so a
reader takes a decision whole or not at all.

A decision (open a case and dispatch it; attach a report and escalate) writes one or more events
for one case, sent one after another to that case's partition. A worker killed between two of
those sends leaves a half-written decision on the topic. Read back as if it were whole, it would
become the case's truth (a case opened and never dispatched), and the redelivered record that
caused it would then be decided against that wrong state. So every case event carries a
`decision` header, `"i/n"`: the i-th of the n events of its decision. Readers hold a case's
events until the n-th arrives; a decision never finished is dropped, and the worker that
re-reads its record writes it again, whole, with the same event ids (decisions are
deterministic), which the readers take once.

Records without the header (written before it existed) count as whole decisions of one event.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from handlers.partition import DECISION_HEADER, decision_headers

__all__ = [
    "DECISION_HEADER",
    "DecisionAssembler",
    "decision_headers",
    "decision_part",
    "whole_decisions",
]


def decision_part(headers: Sequence[tuple[str, bytes]] | None) -> tuple[int, int]:
    """(i, n) from a record's headers; (1, 1) when it has none or an unreadable one."""
    for name, value in headers or ():
        if name == DECISION_HEADER and value:
            index, _, size = value.partition(b"/")
            try:
                i, n = int(index), int(size)
            except ValueError:
                return 1, 1
            return (i, n) if 1 <= i <= n else (1, 1)
    return 1, 1


@dataclass
class _Pending:
    size: int
    records: list[Any] = field(default_factory=list)


class DecisionAssembler:
    """Takes case-event records in topic order and hands out the records of whole decisions.

    Per case (the record key), the parts of an unfinished decision wait. A first part (1/n)
    starts a decision afresh, dropping any unfinished one before it: that one was abandoned by a
    crashed worker, and the re-decision follows. A part that does not continue what waits (a
    gap, or a decision whose start this reader never saw) is dropped with what waits; the
    counts say how much was dropped, so an audit can name it."""

    def __init__(self) -> None:
        self._pending: dict[bytes, _Pending] = {}
        self.abandoned_events = 0

    def take(self, record: Any) -> list[Any]:
        """The records this one completes (itself included), or [] while its decision waits."""
        index, size = decision_part(getattr(record, "headers", None))
        key: bytes = record.key or b""
        if size == 1:
            self._abandon(key)
            return [record]
        if index == 1:
            self._abandon(key)
            self._pending[key] = _Pending(size, [record])
            return []
        pending = self._pending.get(key)
        if pending is None or pending.size != size or len(pending.records) != index - 1:
            self._abandon(key)
            self.abandoned_events += 1
            return []
        pending.records.append(record)
        if index < size:
            return []
        del self._pending[key]
        return pending.records

    def take_all(self, records: Iterable[Any]) -> Iterator[Any]:
        for record in records:
            yield from self.take(record)

    def _abandon(self, key: bytes) -> None:
        pending = self._pending.pop(key, None)
        if pending is not None:
            self.abandoned_events += len(pending.records)

    @property
    def waiting_events(self) -> int:
        """Events of decisions not (yet) finished."""
        return sum(len(pending.records) for pending in self._pending.values())

    def waiting_since(self) -> dict[tuple[str, int], int]:
        """Per (topic, partition), the offset of the oldest record still waiting: a consumer
        that commits must not commit past it, or a restart would never see its decision whole."""
        oldest: dict[tuple[str, int], int] = {}
        for pending in self._pending.values():
            first = pending.records[0]
            where = (first.topic, first.partition)
            oldest[where] = min(oldest.get(where, first.offset), first.offset)
        return oldest


def whole_decisions(records: Iterable[Any]) -> Iterator[Any]:
    """The records of a topic's history that belong to whole decisions, in order."""
    return DecisionAssembler().take_all(records)
