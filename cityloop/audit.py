"""`cityloop audit`: read what entered, what became of it and the read model, and check them.

The read is bounded in memory whatever the history's length. The case events are read one
partition at a time, and a partition holding more than the settings'
`audit_case_events_per_share` is read again for each share of its cases (a record of another
share is skipped by its key, undecoded). Each share's cases are folded, compared with the read
model `COMPARE_BATCH` at a time, and let go before the next share is read.
"""

from __future__ import annotations

import asyncio
import math

from sqlalchemy.ext.asyncio import AsyncConnection

from api.db import create_engine
from api.projection import case_documents
from cityloop.contracts import CASE_EVENT_ADAPTER, DeadLetter, Origin
from cityloop.settings import Settings
from handlers.audit import AuditReport, CaseFolds, OriginLedger, bucket_of, compare
from handlers.case import CaseState
from streams.decisions import DecisionAssembler
from streams.history import approximate_sizes, read_records
from streams.topics import topics_for

COMPARE_BATCH = 500


def _mark_dead_letters(settings: Settings, ledger: OriginLedger, report: AuditReport) -> None:
    for record in read_records(settings.bootstrap_servers, topics_for(settings).dead_letters):
        if record.value is not None:
            ledger.mark_dead_letter(DeadLetter.model_validate_json(record.value), report)


def _fold_share(
    settings: Settings,
    partition: int,
    share: int,
    shares: int,
    ledger: OriginLedger,
    report: AuditReport,
) -> list[tuple[str, CaseState]]:
    """The cases of one share of one case-event partition, folded from their whole decisions."""
    records = read_records(
        settings.bootstrap_servers, topics_for(settings).case_events, partitions=[partition]
    )
    decisions = DecisionAssembler()
    folds = CaseFolds(ledger)
    for record in decisions.take_all(
        r for r in records if bucket_of(r.key or b"", shares) == share
    ):
        if record.value is not None:
            folds.take(CASE_EVENT_ADAPTER.validate_json(record.value))
    report.unfinished_decision_events += decisions.waiting_events
    return folds.finish(report)


def _enter_sources(settings: Settings, ledger: OriginLedger) -> None:
    for topic in topics_for(settings).sources:
        for record in read_records(settings.bootstrap_servers, topic):
            ledger.enter(
                Origin(topic=record.topic, partition=record.partition, offset=record.offset)
            )


async def _compare_with_read_model(
    connection: AsyncConnection, folded: list[tuple[str, CaseState]], report: AuditReport
) -> None:
    for start in range(0, len(folded), COMPARE_BATCH):
        chunk = folded[start : start + COMPARE_BATCH]
        stored = await case_documents(connection, [case_id for case_id, _ in chunk])
        compare(chunk, stored, report)


async def run_audit(settings: Settings) -> AuditReport:
    report = AuditReport()
    ledger = OriginLedger()
    case_events = topics_for(settings).case_events
    # what entered first: what becomes of it meanwhile is then read after it
    await asyncio.to_thread(_enter_sources, settings, ledger)
    await asyncio.to_thread(_mark_dead_letters, settings, ledger, report)
    sizes = await asyncio.to_thread(approximate_sizes, settings.bootstrap_servers, case_events)
    engine = create_engine(settings.database_url)
    try:
        for partition, size in sorted(sizes.items()):
            shares = max(1, math.ceil(size / settings.audit_case_events_per_share))
            for share in range(shares):
                folded = await asyncio.to_thread(
                    _fold_share, settings, partition, share, shares, ledger, report
                )
                # a connection per share: none sits idle through minutes of reading the topic
                async with engine.connect() as connection:
                    await _compare_with_read_model(connection, folded, report)
    finally:
        await engine.dispose()
    ledger.settle(report)
    return report
