"""The per-partition decision core: records in, records out, a book that stays bounded and
brings back what it let go of, and a snapshot that restores the same book."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cityloop.contracts import CASE_EVENT_ADAPTER, GeoPoint, Incident, Origin, Source, Tick
from handlers.book import STALE_DEADLINES_KEPT, CaseBook, Retention
from handlers.case import CaseState, CaseStatus
from handlers.partition import (
    CasePartition,
    Destination,
    Send,
    WorkRecord,
    decision_headers,
    partition_for,
)
from streams.store import PartitionStore
from topology import load_topology, tiny_topology_path

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
TINY = load_topology(tiny_topology_path())
COMMUNITY = "510104001001"
CENTRE = "centre:510104001"
INCIDENTS, CONTROL = "t.incidents", "t.case-control"
RETENTION = Retention(finished_window=timedelta(hours=6), idempotency_window=timedelta(days=2))


class DictArchive:
    def __init__(self) -> None:
        self.states: dict[str, CaseState] = {}

    def keep(self, states: list[CaseState]) -> None:
        self.states.update((state.case_id, state) for state in states)

    def fetch(self, case_id: str) -> CaseState | None:
        return self.states.get(case_id)


def incident(number: int, at: datetime, lat: float = 30.657) -> Incident:
    return Incident(
        incident_id=f"i{number}",
        idempotency_key=f"/t|pothole-{number}",
        source=Source.HOTLINE,
        event_id=f"{number}",
        event_source="/t",
        category_code="pothole",
        title="pothole",
        area_codes=[COMMUNITY],
        location=GeoPoint(lat=lat, lon=104.08),
        occurred_at=at,
        received_at=at,
        origin=Origin(topic="t.events.hotline", partition=0, offset=number),
    )


class Feed:
    """Records for one partition, numbered as a consumer would see them."""

    def __init__(self, core: CasePartition) -> None:
        self.core = core
        self.offset = 0

    def take(self, topic: str, value: bytes, at: datetime, key: bytes | None = None) -> list[Send]:
        record = WorkRecord(topic, self.core.number, self.offset, key, value, _ms(at))
        self.offset += 1
        return self.core.take(record, TINY, {}, INCIDENTS)

    def report(self, item: Incident) -> list[Send]:
        return self.take(INCIDENTS, item.model_dump_json().encode(), item.received_at, b"k")

    def command(self, kind: str, case_id: str, at: datetime, **fields: Any) -> list[Send]:
        body = {
            "type": kind,
            "command_id": f"cmd-{kind}-{case_id}-{self.offset}",
            "case_id": case_id,
            "actor": CENTRE,
            "issued_at": at.isoformat(),
            **fields,
        }
        return self.take(CONTROL, json.dumps(body).encode(), at)

    def tick(self, at: datetime) -> list[Send]:
        return self.take(CONTROL, Tick(now=at).model_dump_json().encode(), at)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def events_of(sends: list[Send]) -> list[Any]:
    return [
        CASE_EVENT_ADAPTER.validate_json(send.value)
        for send in sends
        if send.to is Destination.CASE_EVENTS
    ]


def opened_case(sends: list[Send]) -> str:
    return str(events_of(sends)[0].case_id)


def test_an_incident_becomes_case_events_on_its_own_partition_marked_as_one_decision() -> None:
    core = CasePartition(3, RETENTION, DictArchive())
    sends = Feed(core).report(incident(1, T0))
    case_events = [send for send in sends if send.to is Destination.CASE_EVENTS]
    assert len(case_events) >= 2  # opened and dispatched
    assert {send.partition for send in case_events} == {3}
    assert [send.headers for send in case_events] == [
        decision_headers(i, len(case_events)) for i in range(1, len(case_events) + 1)
    ]
    assert [send.event_id for send in case_events] == [e.event_id for e in events_of(sends)]
    assert core.decided == {"incident": 1}


def test_the_same_record_decided_again_adds_nothing() -> None:
    core = CasePartition(0, RETENTION, DictArchive())
    feed = Feed(core)
    first = incident(1, T0)
    assert events_of(feed.report(first))
    # the very source record again (a redelivery after a crash): nothing new
    assert events_of(feed.report(first)) == []
    assert len(core.book.cases) == 1


def test_a_record_that_cannot_be_read_is_a_dead_letter_with_its_reason() -> None:
    core = CasePartition(0, RETENTION, DictArchive())
    sends = Feed(core).take(CONTROL, b'{"type": "no such thing"}', T0)
    assert [send.to for send in sends] == [Destination.DEAD_LETTERS]
    assert sends[0].headers == [("reason", b"processing_error")]
    assert core.failures and core.failures[0][0].topic == CONTROL


def test_a_finished_case_leaves_the_book_and_a_command_brings_it_back() -> None:
    archive = DictArchive()
    core = CasePartition(0, RETENTION, archive)
    feed = Feed(core)
    case_id = opened_case(feed.report(incident(1, T0)))
    closed = feed.command("close", case_id, T0 + timedelta(minutes=5), reason="done")
    assert any(e.type == "CaseClosed" for e in events_of(closed))

    feed.tick(T0 + timedelta(hours=5))
    assert case_id in core.book.cases  # still inside the finished window

    feed.tick(T0 + timedelta(hours=7))
    assert case_id not in core.book.cases
    assert archive.states[case_id].status is CaseStatus.CLOSED

    reopened = feed.command("reopen", case_id, T0 + timedelta(days=3), reason="it is back")
    outcome = next(send for send in reopened if send.to is Destination.COMMAND_OUTCOMES)
    assert json.loads(outcome.value)["applied"] is True, outcome.value
    assert any(e.type == "CaseReopened" for e in events_of(reopened))
    assert core.book.cases[case_id].is_open


def test_idempotency_keys_are_kept_for_their_window_and_then_let_go() -> None:
    core = CasePartition(0, RETENTION, DictArchive())
    feed = Feed(core)
    feed.tick(T0)  # the clock reaches the partition (every few seconds, live)
    first = incident(1, T0)
    feed.report(first)
    key = first.idempotency_key
    feed.tick(T0 + timedelta(hours=30))  # past half the window: the key is in the older half
    assert core.book.seen(key, None) is not None
    feed.tick(T0 + timedelta(hours=60))  # a whole window later: forgotten
    assert core.book.seen(key, None) is None


def test_a_month_of_cases_that_close_keeps_the_book_to_a_day_of_them() -> None:
    archive = DictArchive()
    core = CasePartition(0, RETENTION, archive)
    feed = Feed(core)
    held: list[int] = []
    number = 0
    for hour in range(30 * 24):
        at = T0 + timedelta(hours=hour)
        for _ in range(4):  # four reports an hour, each at its own spot, each its own case
            number += 1
            item = incident(number, at, lat=30.5 + (number % 997) * 0.0007)
            sends = feed.report(item)
            case_ids = {e.case_id for e in events_of(sends)}
            for case_id in case_ids:
                feed.command("close", case_id, at + timedelta(minutes=30), reason="done")
        feed.tick(at + timedelta(minutes=59))
        held.append(len(core.book.cases))
    assert number == 2880
    # cases close within the hour and leave after 6 hours: the book holds about 7 hours' worth,
    # on the last day as on the first, while the archive keeps every case that left
    assert max(held[24:]) <= 4 * 8
    assert max(held[-24:]) <= max(held[24:48]) + 4
    assert len(archive.states) + len(core.book.cases) == len({*archive.states, *core.book.cases})
    assert len(archive.states) >= number - 4 * 8
    seen_keys = len(core.book._seen) + len(core.book._seen_before)
    assert seen_keys <= 4 * 24 * 2 + 4  # two days of keys at most, not a month


def test_folding_a_month_of_cases_that_close_keeps_every_index_to_a_day_of_them() -> None:
    """A restart without a snapshot folds the partition's whole history, with no tick in it:
    what the book keeps must still follow the cases that matter, index by index."""
    live = CasePartition(0, RETENTION, DictArchive())
    feed = Feed(live)
    history: list[Any] = []
    number = 0
    for hour in range(30 * 24):
        at = T0 + timedelta(hours=hour)
        for _ in range(4):  # four reports an hour, each its own case, each closed in the hour
            number += 1
            sends = feed.report(incident(number, at, lat=30.5 + (number % 997) * 0.0007))
            history += events_of(sends)
            for case_id in {e.case_id for e in events_of(sends)}:
                history += events_of(
                    feed.command("close", case_id, at + timedelta(minutes=30), reason="done")
                )
    folded = CasePartition(0, RETENTION, DictArchive())
    assert folded.restore(history) == len(history)
    book = folded.book
    assert len(book.cases) <= 4 * 8  # the last 7 hours' cases, as live
    assert len(book._finished) <= 4 * 8
    # each of the month's 2,880 cases had its deadlines pushed: the stale ones are swept
    assert len(book._deadlines) <= 2 * len(book._deadline_of) + STALE_DEADLINES_KEPT < number


def test_a_snapshot_restores_the_same_book_and_its_archive(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path, 1)
    core = CasePartition(1, RETENTION, store)
    feed = Feed(core)
    old = opened_case(feed.report(incident(1, T0)))
    feed.command("close", old, T0 + timedelta(minutes=5), reason="done")
    feed.tick(T0 + timedelta(hours=7))  # `old` retires into the store's archive
    live = opened_case(feed.report(incident(2, T0 + timedelta(hours=7), lat=30.6)))
    asyncio.run(store.save(core.book.copy(), 41, "event-41"))
    store.close()

    again = PartitionStore(tmp_path, 1)
    snapshot = again.load()
    assert snapshot is not None and (snapshot.offset, snapshot.event_id) == (41, "event-41")
    book = snapshot.book
    assert set(book.cases) == {live}
    assert book.case(live).version == core.book.cases[live].version  # type: ignore[union-attr]
    assert book.seen(incident(2, T0).idempotency_key, None) is not None
    book.archive = again
    archived = book.case(old)
    assert archived is not None and archived.status is CaseStatus.CLOSED
    again.discard()
    assert again.load() is None and again.fetch(old) is None


def a_busy_partition(archive: DictArchive) -> tuple[CasePartition, Feed, list[str]]:
    """Open cases at several spots, reports attached, a duplicate, a command applied, a case
    closed and retired, a device: something in every index of the book."""
    core = CasePartition(1, RETENTION, archive)
    feed = Feed(core)
    feed.tick(T0)
    case_ids = []
    for number in range(1, 13):
        at = T0 + timedelta(minutes=number)
        case_ids.append(opened_case(feed.report(incident(number, at, lat=30.5 + number * 0.01))))
        feed.report(incident(100 + number, at + timedelta(seconds=30), lat=30.5 + number * 0.01))
    for number in (50, 51):  # more open cases beside the fourth
        at = T0 + timedelta(minutes=number)
        feed.report(incident(number, at, lat=30.54 + (number - 49) * 0.0007))
    feed.report(incident(3, T0 + timedelta(minutes=3)))  # the same report again
    feed.command("close", case_ids[0], T0 + timedelta(minutes=20), reason="done")
    feed.command("close", case_ids[1], T0 + timedelta(minutes=21), reason="done")
    feed.tick(T0 + timedelta(hours=7))  # the two closed cases retire; deadlines come due
    return core, feed, case_ids


def the_next_records(feed: Feed, case_ids: list[str]) -> list[tuple[Any, ...]]:
    at = T0 + timedelta(hours=8)
    sends = [
        *feed.report(incident(5, at)),  # seen before
        *feed.report(incident(200, at, lat=30.54 + 2 * 0.0007)),  # at the third of one key
        *feed.report(incident(201, at, lat=29.0)),  # a new spot
        *feed.command("reopen", case_ids[0], at, reason="it is back"),  # from the archive
        *feed.command("close", case_ids[5], at, reason="done"),
        *feed.tick(at + timedelta(days=1)),  # deadlines, retirement, a key generation turns
        *feed.report(incident(7, at + timedelta(days=1))),
    ]
    return [(send.to, send.partition, send.key, send.value, send.headers) for send in sends]


def test_a_book_put_together_from_its_pieces_decides_as_the_book_would() -> None:
    archive = DictArchive()
    core, feed, case_ids = a_busy_partition(archive)
    twin = CasePartition(1, RETENTION, archive)
    twin.book = CaseBook.from_pieces(core.book.copy().pieces(2))  # every index cut up
    twin.book.archive = archive
    assert len(core.book.cases) > 2 and core.book.open_count() > 2
    assert max(len(cases) for cases in core.book._open.values()) >= 3
    twin_feed = Feed(twin)
    twin_feed.offset = feed.offset
    expected = the_next_records(feed, case_ids)
    assert len(expected) > 10
    assert the_next_records(twin_feed, case_ids) == expected


def test_a_copy_of_the_book_stays_as_it_was_while_the_book_decides() -> None:
    core, feed, case_ids = a_busy_partition(DictArchive())
    copy = core.book.copy()
    before = {case_id: state.version for case_id, state in core.book.cases.items()}
    open_before = sorted(state.case_id for state in core.book.open_cases())
    the_next_records(feed, case_ids)
    assert {case_id: state.version for case_id, state in copy.cases.items()} == before
    assert sorted(state.case_id for state in copy.open_cases()) == open_before
    assert copy.seen(incident(201, T0).idempotency_key, None) is None
    assert core.book.seen(incident(201, T0).idempotency_key, None) is not None
    assert dict(copy._open) != dict(core.book._open)


def test_a_case_partition_is_the_partition_kafka_gives_its_key() -> None:
    # the producers of incidents and commands (aiokafka) partition by key with the default
    # partitioner; the case events must land on the same number
    from aiokafka.partitioner import DefaultPartitioner

    for key in ("roads|12|40", "water|area:510104001001", "环境|1|2"):
        expected = DefaultPartitioner()(key.encode(), list(range(4)), list(range(4)))
        assert partition_for(key, 4) == expected
