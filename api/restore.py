"""Puts the read model's case events back on a broker that lost them (the embedded broker keeps
its topics in memory), so that a restarted `cityloop up` keeps every case and its history.

The case-event topic is the worker's only durable state: its case book is a fold of that topic.
On a fresh embedded broker the topic is empty, and the worker would know none of the cases the
read model shows; a command on one of them would be rejected `unknown_case`. So before the
worker starts, `up` writes every event the read model holds back onto the topic, in the order
the read model learned them (each case's events in version order), keyed by case id and on the
partition of the case's correlation key, as the worker writes them (each case partition's history
is its own partition of the topic), with the `decision: i/n` header each was written with
and its time as the record's timestamp. The worker's rebuild then finds the book it had, and
the API's projector, reading the topic from its start, finds every version in the database
already and takes none of them twice (`api.projection.project`)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select

from api.db import CaseEventRow, CommandRow, create_engine, migrate
from api.projection import REBUILT_TABLES
from cityloop.contracts import CASE_EVENT_ADAPTER, CaseEvent, CaseOpened, wire_bytes
from cityloop.settings import Settings
from handlers.partition import DECISION_HEADER, partition_for
from streams.clients import async_producer
from streams.topics import topics_for

log = logging.getLogger(__name__)

BATCH = 2000
"""Events read from the database and awaited on the broker at a time."""


@dataclass(frozen=True)
class Restored:
    events: int
    cases: int


def _record(row: Any) -> tuple[CaseEvent, bytes, list[tuple[str, bytes]], int]:
    """The event, value, headers and timestamp (ms) of one stored event, as the worker wrote
    it."""
    event = CASE_EVENT_ADAPTER.validate_python(row.body)
    headers = [(DECISION_HEADER, row.decision.encode())] if row.decision else []
    return event, wire_bytes(event), headers, int(row.occurred_at.timestamp() * 1000)


async def restore_case_events(settings: Settings) -> Restored:
    """Write the read model's case events onto the case-event topic of a broker that has none (a
    fresh embedded broker); the topics must exist (`streams.topics.ensure_topics`)."""
    topic = topics_for(settings).case_events
    engine = create_engine(settings.database_url)
    producer = async_producer(settings, linger_ms=20)
    await producer.start()
    written = 0
    # case id -> its partition, from its CaseOpened (the first event of every case, by seq)
    partition_of: dict[str, int] = {}
    try:
        await migrate(engine)
        async with engine.connect() as connection:
            cases = await connection.scalar(select(func.count(func.distinct(CaseEventRow.case_id))))
            rows = await connection.stream(
                select(
                    CaseEventRow.case_id,
                    CaseEventRow.body,
                    CaseEventRow.decision,
                    CaseEventRow.occurred_at,
                ).order_by(CaseEventRow.seq)
            )
            async for chunk in rows.partitions(BATCH):
                deliveries = []
                for row in chunk:
                    event, value, headers, timestamp_ms = _record(row)
                    if isinstance(event, CaseOpened):
                        partition_of[event.case_id] = partition_for(
                            event.correlation_key, settings.topic_partitions
                        )
                    deliveries.append(
                        await producer.send(
                            topic,
                            value,
                            key=event.case_id.encode(),
                            partition=partition_of.get(event.case_id),
                            headers=headers,
                            timestamp_ms=timestamp_ms,
                        )
                    )
                await asyncio.gather(*deliveries)  # acknowledged (acks=all) before the next
                written += len(chunk)
    finally:
        await producer.stop()
        await engine.dispose()
    log.info("put %d case events of %d cases back on %s", written, cases or 0, topic)
    return Restored(events=written, cases=cases or 0)


async def empty_read_model(settings: Settings) -> int:
    """A fresh start (`cityloop up --fresh`): delete every case, event, report and command of the
    read model, whatever database it is; returns how many case events there were."""
    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        async with engine.begin() as connection:
            events = await connection.scalar(select(func.count()).select_from(CaseEventRow))
            for table in (*REBUILT_TABLES, CommandRow):
                await connection.execute(delete(table))
    finally:
        await engine.dispose()
    return events or 0
