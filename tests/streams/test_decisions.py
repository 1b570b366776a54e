"""Decision framing on the case-event topic: readers take a decision whole or not at all."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from api.projection import committable
from streams.decisions import (
    DecisionAssembler,
    decision_headers,
    decision_part,
    whole_decisions,
)


@dataclass(frozen=True)
class Record:
    key: bytes
    value: bytes
    offset: int = 0
    partition: int = 0
    topic: str = "t.case-events"
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def part(case: str, index: int, size: int, offset: int = 0, partition: int = 0) -> Record:
    return Record(
        case.encode(),
        f"{case}:{index}/{size}".encode(),
        offset,
        partition,
        headers=decision_headers(index, size),
    )


def values(records: list[Record]) -> list[str]:
    return [r.value.decode() for r in whole_decisions(records)]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (decision_headers(2, 3), (2, 3)),
        ([], (1, 1)),
        (None, (1, 1)),
        ([("reason", b"x")], (1, 1)),
        ([("decision", b"junk")], (1, 1)),
        ([("decision", b"4/3")], (1, 1)),
        ([("decision", b"0/3")], (1, 1)),
    ],
)
def test_decision_part_reads_the_header_or_counts_a_whole_one(
    headers: list[tuple[str, bytes]] | None, expected: tuple[int, int]
) -> None:
    assert decision_part(headers) == expected


def test_whole_decisions_pass_in_order_and_interleave_across_cases() -> None:
    records = [
        part("a", 1, 2),
        part("b", 1, 1),
        part("a", 2, 2),
        part("b", 1, 3),
        part("b", 2, 3),
        part("b", 3, 3),
    ]
    assert values(records) == ["b:1/1", "a:1/2", "a:2/2", "b:1/3", "b:2/3", "b:3/3"]


def test_a_half_written_decision_at_the_end_is_left_out() -> None:
    assembler = DecisionAssembler()
    taken = list(assembler.take_all([part("a", 1, 1), part("a", 1, 2)]))
    assert [r.value for r in taken] == [b"a:1/1"]
    assert assembler.waiting_events == 1


def test_a_decision_written_again_after_a_crash_counts_once_and_drops_the_torn_one() -> None:
    # the worker died after the first of two events, and wrote both again after its restart
    assembler = DecisionAssembler()
    records = [part("a", 1, 2, 0), part("a", 1, 2, 1), part("a", 2, 2, 2)]
    taken = list(assembler.take_all(records))
    assert [r.offset for r in taken] == [1, 2]
    assert assembler.abandoned_events == 1 and assembler.waiting_events == 0


def test_records_without_the_header_are_whole_decisions_of_one_event() -> None:
    legacy = Record(b"a", b"old")
    assert values([legacy, part("a", 1, 2), part("a", 2, 2)]) == ["old", "a:1/2", "a:2/2"]


def test_a_part_whose_start_was_never_seen_is_dropped() -> None:
    assembler = DecisionAssembler()
    assert list(assembler.take_all([part("a", 2, 2), part("a", 3, 4)])) == []
    assert assembler.abandoned_events == 2
    # and a gap drops what waited
    assert list(assembler.take_all([part("b", 1, 3), part("b", 3, 3)])) == []
    assert assembler.waiting_events == 0


def test_a_projector_never_commits_past_a_waiting_decision() -> None:
    assembler = DecisionAssembler()
    first = [part("a", 1, 1, 10, 0), part("b", 1, 2, 11, 0)]
    other = [part("c", 1, 1, 5, 1)]
    list(assembler.take_all(first + other))

    @dataclass(frozen=True)
    class TP:
        topic: str
        partition: int

    batches = {TP("t.case-events", 0): first, TP("t.case-events", 1): other}
    assert committable(batches, assembler) == {
        TP("t.case-events", 0): 11,  # b's first part waits at 11: a restart reads it again
        TP("t.case-events", 1): 6,
    }
    list(assembler.take_all([part("b", 2, 2, 12, 0)]))
    assert committable({TP("t.case-events", 0): [part("b", 2, 2, 12, 0)]}, assembler) == {
        TP("t.case-events", 0): 13
    }
