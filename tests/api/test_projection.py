"""The projector's writes: bulk statements per batch, a case state kept without its reports and
given back whole, a bounded cache of states, and a rebuild that streams the topic in batches."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from api.db import CaseRow, create_engine, session_factory
from api.projection import RebuildProgress, StateCache, case_documents, project, rebuild
from cityloop.contracts import CASE_COMMAND_ADAPTER, CASE_EVENT_ADAPTER, CaseEvent
from cityloop.settings import Settings
from handlers.case import CaseState, fold
from handlers.correlate import SeenReport, correlate
from handlers.lifecycle import absorb_reports, decide_command
from streams.topics import ensure_topics, topics_for
from tests.api.test_read_model import NOW, TINY, incident


def history() -> list[CaseEvent]:
    """Two cases in the order a worker writes them: the first takes five more reports and a
    duplicate, the second is merged into it (its reports attached to the first), which is then
    accepted."""
    events: list[CaseEvent] = []
    first = correlate(incident(1), None, None, [], None, TINY, {}, NOW)
    assert first.state is not None
    events += first.events
    survivor: CaseState = first.state
    for number in range(2, 7):
        attached = correlate(incident(number), None, None, [survivor], None, TINY, {}, NOW)
        assert attached.case_id == first.case_id, attached.reason  # attached, not a new case
        assert attached.state is not None
        events += attached.events
        survivor = attached.state
    duplicate = correlate(
        incident(1), SeenReport(first.case_id, None), survivor, [], None, TINY, {}, NOW
    )
    assert duplicate.state is not None
    events += duplicate.events
    survivor = duplicate.state
    other = correlate(incident(40, "pothole"), None, None, [], None, TINY, {}, NOW)
    assert other.state is not None and other.case_id != first.case_id
    events += other.events
    later = NOW + timedelta(hours=2)
    merge = decide_command(
        CASE_COMMAND_ADAPTER.validate_python(
            {
                "type": "merge",
                "command_id": "m1",
                "case_id": other.case_id,
                "actor": "centre:510100",
                "issued_at": later.isoformat(),
                "into_case_id": first.case_id,
                "reason": "the same place",
            }
        ),
        other.state,
        TINY,
        {},
        later,
    )
    assert merge.absorb is not None, merge.outcome
    events += merge.events
    absorbed = absorb_reports(merge.absorb, survivor, later)
    assert absorbed.state is not None
    events += absorbed.events
    assignment = absorbed.state.assignment
    assert assignment is not None
    accepted = decide_command(
        CASE_COMMAND_ADAPTER.validate_python(
            {
                "type": "accept",
                "command_id": "a1",
                "case_id": first.case_id,
                "actor": f"dept:{assignment.lead_department}",
                "issued_at": later.isoformat(),
            }
        ),
        absorbed.state,
        TINY,
        {},
        later + timedelta(minutes=1),
    )
    assert accepted.outcome.applied, accepted.outcome
    return [*events, *accepted.events]


def folded(events: Sequence[CaseEvent]) -> dict[str, dict[str, Any]]:
    """Each case's whole state as the fold of its events gives it."""
    by_case: dict[str, list[CaseEvent]] = {}
    for case_event in events:
        by_case.setdefault(case_event.case_id, []).append(case_event)
    documents = {}
    for case_id, case_events in by_case.items():
        state = fold(case_events)
        assert state is not None
        documents[case_id] = state.model_dump(mode="json")
    return documents


@pytest.mark.parametrize("capacity", [None, 1, 100])
@pytest.mark.parametrize("batch", [1, 4, 100])
async def test_each_case_reads_back_as_the_fold_of_its_events(
    engine: AsyncEngine, capacity: int | None, batch: int
) -> None:
    events = history()
    expected = folded(events)
    first = events[0].case_id
    assert len(expected[first]["reports"]) == 7  # its own six and the merged case's one
    cache = StateCache(capacity) if capacity is not None else None
    sessions = session_factory(engine)
    for start in range(0, len(events), batch):
        async with sessions() as session:
            await project(session, events[start : start + batch], cache)
    if cache is not None:
        assert len(cache) <= cache.capacity
    async with engine.connect() as connection:
        assert await case_documents(connection) == expected
        assert await case_documents(connection, [first]) == {first: expected[first]}
        rows = await connection.execute(select(CaseRow.case_id, CaseRow.state))
        stored: dict[str, dict[str, Any]] = {case_id: state for case_id, state in rows}
    # what the column keeps leaves the reports to the events; what the API reads of it is there
    assert all("reports" not in document for document in stored.values())
    for case_id, document in stored.items():
        for field in ("assignment", "desk", "merged_into", "supervision_notices"):
            assert document[field] == expected[case_id][field]


async def test_a_document_written_with_its_reports_goes_on_from_them(
    engine: AsyncEngine,
) -> None:
    events = history()
    first = events[0].case_id
    split = next(i for i, e in enumerate(events) if e.type == "DuplicateReceived")
    sessions = session_factory(engine)
    async with sessions() as session:
        await project(session, events[:split])
    # as the projector wrote it before the column left the reports out
    whole = folded([e for e in events[:split] if e.case_id == first])[first]
    async with sessions() as session:
        await session.execute(update(CaseRow).where(CaseRow.case_id == first).values(state=whole))
        await session.commit()
    async with sessions() as session:
        assert await project(session, events[split:], StateCache()) == len(events) - split
    async with engine.connect() as connection:
        assert await case_documents(connection) == folded(events)


async def test_a_batch_costs_the_same_statements_whatever_its_size(engine: AsyncEngine) -> None:
    statements: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _count(_c: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    sessions = session_factory(engine)
    cache = StateCache()

    async def statements_for(events: Sequence[CaseEvent]) -> int:
        statements.clear()
        async with sessions() as session:
            assert await project(session, events, cache) == len(events)
        return len(statements)

    def opened(numbers: range) -> list[Any]:
        return [correlate(incident(n), None, None, [], None, TINY, {}, NOW) for n in numbers]

    small, large = opened(range(1, 2)), opened(range(100, 140))
    assert len({case.case_id for case in large}) == 40
    new_small = await statements_for([e for case in small for e in case.events])
    new_large = await statements_for([e for case in large for e in case.events])
    # the versions read; events, cases, reports and departments inserted
    assert new_small == new_large == 5, statements

    def again(cases: list[Any], first: int) -> list[CaseEvent]:
        """Each case's report again: a DuplicateReceived on a case the database has."""
        return [
            e
            for number, case in enumerate(cases, start=first)
            for e in correlate(
                incident(number),
                SeenReport(case.case_id, None),
                case.state,
                [],
                None,
                TINY,
                {},
                NOW,
            ).events
        ]

    changed_small = await statements_for(again(small, 1))
    changed_large = await statements_for(again(large, 100))
    # the versions read (the states are in the cache); events inserted, cases updated
    assert changed_small == changed_large == 3, statements


def test_the_state_cache_keeps_the_newest_used_states_only() -> None:
    events = [
        e
        for n in range(1, 5)
        for e in correlate(incident(n, "pothole"), None, None, [], None, TINY, {}, NOW).events
    ]
    states = folded(events)
    cache = StateCache(capacity=2)
    by_id = {case_id: CaseState.model_validate(document) for case_id, document in states.items()}
    ids = list(by_id)
    cache.put([by_id[ids[0]], by_id[ids[1]]])
    assert cache.get(ids[0], by_id[ids[0]].version) is by_id[ids[0]]  # now the newest used
    cache.put([by_id[ids[2]]])
    assert len(cache) == 2
    assert cache.get(ids[1], by_id[ids[1]].version) is None  # the least recently used went
    assert cache.get(ids[0], by_id[ids[0]].version) is by_id[ids[0]]
    assert cache.get(ids[0], by_id[ids[0]].version + 1) is None  # a version it does not hold


@pytest.mark.broker
async def test_a_rebuild_reads_the_topic_in_batches_with_few_states_kept(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"rebuild-{uuid.uuid4().hex[:8]}",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/rebuilt.db",
        data_dir=tmp_path,
    )
    ensure_topics(settings)
    events = history()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for case_event in events:
            await producer.send(
                topics_for(settings).case_events,
                CASE_EVENT_ADAPTER.dump_json(case_event),
                key=case_event.case_id.encode(),
            )
        await producer.flush()
    finally:
        await producer.stop()
    told: list[RebuildProgress] = []
    done = await rebuild(settings, batch=3, progress=told.append, every_s=0, states=1)
    assert (done.read, done.applied) == (len(events), len(events))
    assert done.events_per_s > 0
    # told after every batch of three, each time further
    assert [p.read for p in told] == [
        min(3 * i, len(events)) for i in range(1, -(-len(events) // 3) + 1)
    ]
    assert await documents_in(settings.database_url) == folded(events)
    again = await rebuild(settings, batch=1000)  # over the first: the same tables
    assert again.applied == len(events)
    assert await documents_in(settings.database_url) == folded(events)


async def documents_in(database_url: str) -> dict[str, dict[str, Any]]:
    rebuilt = create_engine(database_url)
    try:
        async with rebuilt.connect() as connection:
            return await case_documents(connection)
    finally:
        await rebuilt.dispose()
