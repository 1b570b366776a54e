"""`cityloop audit`: gather what entered, what became of it, and the read model; check them."""

from __future__ import annotations

import asyncio
from typing import Any

from api.db import create_engine
from api.projection import case_documents
from cityloop.contracts import CASE_EVENT_ADAPTER, DeadLetter, Origin
from cityloop.settings import Settings
from handlers.audit import AuditReport, audit
from streams.decisions import DecisionAssembler
from streams.history import read_records
from streams.topics import topics_for


def _gather(settings: Settings) -> tuple[list[Origin], list[Any], list[DeadLetter], int]:
    names = topics_for(settings)
    entered = [
        Origin(topic=record.topic, partition=record.partition, offset=record.offset)
        for topic in names.sources
        for record in read_records(settings.bootstrap_servers, topic)
    ]
    decisions = DecisionAssembler()
    events = [
        CASE_EVENT_ADAPTER.validate_json(record.value)
        for record in decisions.take_all(
            read_records(settings.bootstrap_servers, names.case_events)
        )
        if record.value is not None
    ]
    letters = [
        DeadLetter.model_validate_json(record.value)
        for record in read_records(settings.bootstrap_servers, names.dead_letters)
        if record.value is not None
    ]
    return entered, events, letters, decisions.waiting_events


async def run_audit(settings: Settings) -> AuditReport:
    entered, events, letters, unfinished = await asyncio.get_running_loop().run_in_executor(
        None, _gather, settings
    )
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as connection:
            stored = await case_documents(connection)
    finally:
        await engine.dispose()
    return audit(entered, events, letters, stored, unfinished)
