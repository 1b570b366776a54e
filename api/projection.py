"""The projector: folds the case-event topic into the SQL read model, each case version once."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from itertools import islice
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import delete, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import defer

from api.db import (
    CaseDepartmentRow,
    CaseEventRow,
    CaseRow,
    CommandRow,
    ReportRow,
    create_engine,
    migrate,
    session_factory,
)
from api.metrics import Metrics
from cityloop.clock import Clock, wall_clock
from cityloop.contracts import (
    CASE_EVENT_ADAPTER,
    AssistanceAdded,
    CaseDispatched,
    CaseEvent,
    CommandOutcome,
)
from cityloop.settings import Settings
from handlers.access import district_code
from handlers.case import CaseState, OutOfOrderEvent, apply, report_of
from streams.clients import async_consumer
from streams.decisions import DecisionAssembler, decision_part, whole_decisions
from streams.history import read_records
from streams.topics import topics_for

log = logging.getLogger(__name__)
T = TypeVar("T")


def _case_columns(state: CaseState) -> dict[str, Any]:
    assignment = state.assignment
    return {
        "version": state.version,
        "status": state.status.value,
        "category_code": state.category_code,
        "title": state.title,
        "severity": state.severity.value if state.severity else None,
        "loop": assignment.loop.value if assignment else None,
        "handling_area": assignment.handling_area if assignment else None,
        "handling_district": district_code(assignment.handling_area) if assignment else None,
        "lead_department": assignment.lead_department if assignment else None,
        "coordinating_centre": assignment.coordinating_centre if assignment else None,
        "correlation_key": state.correlation_key,
        "area_codes": state.area_codes,
        "primary_area": state.area_codes[0],
        "lat": state.location.lat if state.location else None,
        "lon": state.location.lon if state.location else None,
        "opened_at": state.opened_at,
        "updated_at": state.updated_at,
        "accept_deadline": state.accept_deadline,
        "resolve_deadline": state.resolve_deadline,
        "report_count": len(state.report_keys),
        "duplicate_count": state.duplicates,
        "accepted_at": state.accepted_at,
        "resolved_at": state.resolved_at,
        "accept_missed": state.accept_missed,
        "resolve_missed": state.resolve_missed,
        "returns": state.returns,
        "escalations": state.escalations,
        "reopens": state.reopens,
        "topology_version": assignment.topology_version if assignment else None,
        "state": state.model_dump(mode="json"),
    }


class StateCache:
    """The newest decoded state of the cases a projector wrote last, by case id; bounded, least
    recently used out first. A state is taken from it only at the version the database holds,
    so a cache that missed a write (another projector took the partition meanwhile) is never
    believed. It saves reading and parsing each case's whole state, reports and all, for every
    batch that touches the case."""

    def __init__(self, capacity: int = 20_000) -> None:
        self.capacity = capacity
        self._states: OrderedDict[str, CaseState] = OrderedDict()

    def get(self, case_id: str, version: int) -> CaseState | None:
        state = self._states.get(case_id)
        if state is None or state.version != version:
            return None
        self._states.move_to_end(case_id)
        return state

    def put(self, states: Iterable[CaseState]) -> None:
        for state in states:
            self._states[state.case_id] = state
            self._states.move_to_end(state.case_id)
        while len(self._states) > self.capacity:
            self._states.popitem(last=False)


async def project(
    session: AsyncSession,
    events: Sequence[CaseEvent],
    cache: StateCache | None = None,
    decisions: Mapping[str, str] | None = None,
) -> int:
    """Apply a batch of case events in one transaction; returns how many were new.
    `decisions`: each event's place in its decision ("i/n") by event id, kept with it."""
    case_ids = {event.case_id for event in events}
    rows = {
        row.case_id: row
        for row in (
            await session.execute(
                select(CaseRow).options(defer(CaseRow.state)).where(CaseRow.case_id.in_(case_ids))
            )
        ).scalars()
    }
    states: dict[str, CaseState] = {}
    for case_id, row in rows.items():
        cached = cache.get(case_id, row.version) if cache is not None else None
        if cached is not None:
            states[case_id] = cached
    missing = set(rows) - set(states)
    if missing:
        for case_id, document in await session.execute(
            select(CaseRow.case_id, CaseRow.state).where(CaseRow.case_id.in_(missing))
        ):
            states[case_id] = CaseState.model_validate(document)
    involved = {
        (row.case_id, row.department_id)
        for row in (
            await session.execute(
                select(CaseDepartmentRow).where(CaseDepartmentRow.case_id.in_(case_ids))
            )
        ).scalars()
    }
    report_keys = {report.idempotency_key for event in events if (report := report_of(event))}
    reports = {
        (key, case_id)
        for key, case_id in await session.execute(
            select(ReportRow.idempotency_key, ReportRow.case_id).where(
                ReportRow.idempotency_key.in_(report_keys)
            )
        )
    }
    applied = 0
    changed: set[str] = set()
    # rows inserted in bulk after the loop (the ORM's unit of work per row cost a third of it)
    event_rows: list[dict[str, Any]] = []
    report_rows: list[dict[str, Any]] = []
    department_rows: list[dict[str, Any]] = []
    for event in events:
        state = states.get(event.case_id)
        if state is not None and event.version <= state.version:
            continue  # already projected: replays and redeliveries are harmless
        try:
            state = apply(state, event)
        except OutOfOrderEvent:
            log.error(
                "skipping out-of-order %s v%s of %s", event.type, event.version, event.case_id
            )
            continue
        states[event.case_id] = state
        changed.add(event.case_id)
        event_rows.append(
            {
                "event_id": event.event_id,
                "case_id": event.case_id,
                "version": event.version,
                "type": event.type,
                "occurred_at": event.occurred_at,
                "actor": event.actor,
                "body": event.model_dump(mode="json"),
                "decision": decisions.get(event.event_id) if decisions else None,
            }
        )
        for department in departments_of(event):
            if (event.case_id, department) not in involved:
                involved.add((event.case_id, department))
                department_rows.append({"case_id": event.case_id, "department_id": department})
        report = report_of(event)
        if report is not None and (report.idempotency_key, event.case_id) not in reports:
            reports.add((report.idempotency_key, event.case_id))
            report_rows.append(
                {
                    "idempotency_key": report.idempotency_key,
                    "case_id": event.case_id,
                    "source": report.source.value,
                    "category_code": report.category_code,
                    "occurred_at": report.occurred_at,
                    "received_at": report.received_at,
                    "body": report.model_dump(mode="json"),
                }
            )
        applied += 1
    # A case's columns (its whole state among them) once per batch, after its last event: per
    # event, a storm case with thousands of reports was dumped again for every report.
    for case_id in changed:
        columns = _case_columns(states[case_id])
        stored = rows.get(case_id)
        if stored is None:
            session.add(CaseRow(case_id=case_id, **columns))
        else:
            for column, value in columns.items():
                setattr(stored, column, value)
    for table, new_rows in (
        (CaseEventRow, event_rows),  # in topic order: the live stream's positions follow it
        (ReportRow, report_rows),
        (CaseDepartmentRow, department_rows),
    ):
        if new_rows:
            await session.execute(insert(table), new_rows)
    await session.commit()
    if cache is not None:
        cache.put(states[case_id] for case_id in changed)
    return applied


def decode(values: Iterable[bytes | None], adapter: TypeAdapter[T]) -> list[T]:
    """Records of one kind; a foreign record is logged and skipped, never fatal (only the
    worker writes these topics)."""
    decoded = []
    for value in values:
        try:
            decoded.append(adapter.validate_json(value or b""))
        except ValidationError as exc:
            log.error("skipped a record that is not %s: %s", adapter, exc)
    return decoded


OUTCOME_ADAPTER = TypeAdapter(CommandOutcome)


def case_events_of(records: Iterable[Any]) -> tuple[list[CaseEvent], dict[str, str]]:
    """The case events of records of whole decisions, and each one's place in its decision
    ("i/n", from the record's header) by event id, which the read model keeps."""
    events: list[CaseEvent] = []
    decisions: dict[str, str] = {}
    for record in records:
        try:
            event = CASE_EVENT_ADAPTER.validate_json(record.value or b"")
        except ValidationError as exc:
            log.error("skipped a record that is not %s: %s", CASE_EVENT_ADAPTER, exc)
            continue
        events.append(event)
        index, size = decision_part(record.headers)
        decisions[event.event_id] = f"{index}/{size}"
    return events, decisions


async def project_or_skip(
    sessions: async_sessionmaker[AsyncSession],
    events: Sequence[CaseEvent],
    cache: StateCache | None = None,
    decisions: Mapping[str, str] | None = None,
) -> tuple[int, int]:
    """Project a batch; if the database refuses it, project the events one by one and skip
    those it refuses, loudly — one bad record must not stop the read model for every case.
    An event is skipped only while the database answers otherwise: when it does not answer,
    the error propagates and the caller retries the whole batch later. Returns (applied,
    skipped)."""
    try:
        async with sessions() as session:
            return await project(session, events, cache, decisions), 0
    except DBAPIError as refused:
        log.error("the read model refused a batch (%s); projecting it event by event", refused)
    applied = skipped = 0
    for event in events:
        try:
            async with sessions() as session:
                applied += await project(session, [event], cache, decisions)
        except DBAPIError as refused:
            async with sessions() as session:  # down, not refusing? then this raises: retry
                await session.execute(text("select 1"))
            skipped += 1
            log.error(
                "skipped %s v%s of case %s: the read model cannot store it (%s)",
                event.type,
                event.version,
                event.case_id,
                refused.orig,
            )
    return applied, skipped


def departments_of(event: CaseEvent) -> list[str]:
    """The departments an event puts on a case."""
    if isinstance(event, CaseDispatched):
        return [event.assignment.lead_department, *event.assignment.co_departments]
    if isinstance(event, AssistanceAdded):
        return [event.department]
    return []


async def record_outcomes(session: AsyncSession, outcomes: Sequence[CommandOutcome]) -> None:
    """Settle the commands the API posted (and remember those it did not, e.g. from the CLI)."""
    ids = {outcome.command_id for outcome in outcomes}
    rows = {
        row.command_id: row
        for row in (
            await session.execute(select(CommandRow).where(CommandRow.command_id.in_(ids)))
        ).scalars()
    }
    for outcome in outcomes:
        row = rows.get(outcome.command_id)
        if row is None:
            row = CommandRow(
                command_id=outcome.command_id,
                case_id=outcome.case_id,
                command_type=outcome.command_type,
                actor=outcome.actor,
                issued_at=outcome.decided_at,
                event_types=[],
            )
            rows[outcome.command_id] = row
            session.add(row)
        row.applied = outcome.applied
        row.reason = outcome.reason
        row.event_types = outcome.event_types
        row.decided_at = outcome.decided_at
    await session.commit()


def committable(batches: dict[Any, list[Any]], assembler: DecisionAssembler) -> dict[Any, int]:
    """Offsets to commit after a batch: past every record read, but never past the first part of
    a decision that still waits for its last, so a restart reads that decision whole."""
    waiting = assembler.waiting_since()
    offsets = {}
    for tp, batch in batches.items():
        if batch:
            offsets[tp] = min(batch[-1].offset + 1, waiting.get((tp.topic, tp.partition), 1 << 62))
    return offsets


class Projector:
    """A consumer of the case-event topic that keeps the read model current."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        group_id: str,
        metrics: Metrics | None = None,
        clock: Clock = wall_clock,
    ):
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.sessions = sessions
        self.group_id = group_id
        self.applied = 0
        self.last_error: str | None = None
        self.projected = asyncio.Event()  # set, then replaced, each time new events are stored
        self.states = StateCache()

    def _announce(self) -> None:
        announced, self.projected = self.projected, asyncio.Event()
        announced.set()

    async def run(self, stop: asyncio.Event) -> None:
        names = topics_for(self.settings)
        while not stop.is_set():
            consumer = async_consumer(
                self.settings,
                names.case_events,
                names.command_outcomes,
                names.dead_letters,
                group_id=self.group_id,
            )
            assembler = DecisionAssembler()  # fresh with each consumer: it re-reads what waited
            try:
                await consumer.start()
                while not stop.is_set():
                    batches = await consumer.getmany(timeout_ms=200, max_records=500)
                    records = [record for batch in batches.values() for record in batch]
                    events, decisions = case_events_of(
                        assembler.take_all(r for r in records if r.topic == names.case_events)
                    )
                    outcomes = decode(
                        (r.value for r in records if r.topic == names.command_outcomes),
                        OUTCOME_ADAPTER,
                    )
                    if self.metrics is not None:
                        for record in records:
                            if record.topic == names.dead_letters:
                                reason = dict(record.headers or ()).get("reason", b"unknown")
                                self.metrics.dead_letters.labels(reason=reason.decode()).inc()
                    if events:
                        applied, unstorable = await project_or_skip(
                            self.sessions, events, self.states, decisions
                        )
                        self.applied += applied
                        if self.metrics is not None and unstorable:
                            self.metrics.unstorable_events.inc(unstorable)
                        self._announce()
                        if self.metrics is not None:
                            age = self.clock() - max(e.occurred_at for e in events)
                            self.metrics.projection_lag.set(max(age.total_seconds(), 0.0))
                    if outcomes:
                        async with self.sessions() as session:
                            await record_outcomes(session, outcomes)
                    if batches:
                        await consumer.commit(committable(batches, assembler))
                    self.last_error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep projecting after a broker or database outage
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("projector paused: %s", self.last_error)
                await asyncio.sleep(1.0)
            finally:
                await consumer.stop()


REBUILT_TABLES = (CaseRow, CaseEventRow, ReportRow, CaseDepartmentRow)
"""What a rebuild clears and refills. `commands` stays: it is the API's own record of what it
was asked, not a projection of the topic."""


async def rebuild(settings: Settings, batch: int = 500) -> int:
    """Empty the read model's case tables and fold the whole case-event topic into them again;
    returns how many events it applied. The same topic gives the same tables every time."""
    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        async with engine.begin() as connection:
            for table in REBUILT_TABLES:
                await connection.execute(delete(table))
        sessions = session_factory(engine)
        records = whole_decisions(
            read_records(settings.bootstrap_servers, topics_for(settings).case_events)
        )
        applied = 0
        cache = StateCache()
        while chunk := await asyncio.to_thread(lambda: list(islice(records, batch))):
            events, decisions = case_events_of(chunk)
            applied += (await project_or_skip(sessions, events, cache, decisions))[0]
        return applied
    finally:
        await engine.dispose()
