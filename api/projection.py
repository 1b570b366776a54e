"""The projector: folds the case-event topic into the SQL read model, each case version once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Executable, Table, bindparam, delete, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
from typing_extensions import TypedDict

from api.db import (
    Base,
    CaseDepartmentRow,
    CaseEventRow,
    CaseRow,
    CommandRow,
    ReportRow,
    WrittenJSON,
    create_engine,
    migrate,
    session_factory,
)
from api.metrics import Metrics
from cityloop.clock import Clock, wall_clock
from cityloop.contracts import (
    CASE_EVENT_ADAPTER,
    Assignment,
    AssistanceAdded,
    CaseDispatched,
    CaseEvent,
    CommandOutcome,
)
from cityloop.settings import Settings
from handlers.access import district_code
from handlers.case import CaseDocument, CaseState, OutOfOrderEvent, apply, report_of
from streams.clients import async_consumer
from streams.decisions import DecisionAssembler, decision_part, whole_decisions
from streams.history import read_records
from streams.topics import topics_for

log = logging.getLogger(__name__)
T = TypeVar("T")


_DOCUMENT_FIELDS = tuple(name for name in CaseDocument.model_fields if name != "reports")
REPORTING_EVENTS = ("CaseOpened", "ReportAttached")
"""The events that bring a report to their case (`handlers.case.report_of`): a case's reports,
in its order, are theirs."""


_DOCUMENT = TypeAdapter(
    TypedDict(  # type: ignore[operator]
        "StoredCaseDocument",
        {name: CaseDocument.model_fields[name].annotation for name in _DOCUMENT_FIELDS},
    )
)
"""`CaseDocument` but its reports, as a plain dict's type: written without building a model."""


def _document(state: CaseState, assignment: Assignment | None) -> WrittenJSON:
    """What the `state` column keeps of a case: `CaseDocument`'s fields but its reports, which
    the case's `CaseOpened` and `ReportAttached` events in `case_events` hold already, in order
    (`case_documents` puts them back). With them, a case of a storm's thousand reports was
    written whole again for every batch that touched it."""
    fields = {name: getattr(state, name) for name in _DOCUMENT_FIELDS if name != "assignment"}
    fields["assignment"] = assignment  # read back from its JSON once, by the caller
    return WrittenJSON(_DOCUMENT.dump_json(fields).decode())


def _report_in(body: Mapping[str, Any]) -> Any:
    """The report in a stored `CaseOpened` or `ReportAttached` event's body."""
    return body["report"] if body["type"] == "ReportAttached" else body["first_report"]


def _case_columns(state: CaseState) -> dict[str, Any]:
    assignment = state.assignment
    return {
        "case_id": state.case_id,
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
        "report_count": state.report_count,
        "duplicate_count": state.duplicates,
        "accepted_at": state.accepted_at,
        "resolved_at": state.resolved_at,
        "accept_missed": state.accept_missed,
        "resolve_missed": state.resolve_missed,
        "returns": state.returns,
        "escalations": state.escalations,
        "reopens": state.reopens,
        "topology_version": assignment.topology_version if assignment else None,
        "state": _document(state, assignment),
    }


CASES, CASE_EVENTS, REPORTS, CASE_DEPARTMENTS = (
    Base.metadata.tables[row.__tablename__]
    for row in (CaseRow, CaseEventRow, ReportRow, CaseDepartmentRow)
)
"""The tables the projector writes, as core tables: its statements are the database's, not the
ORM's unit of work (which cost a third of a batch)."""
UPDATE_CASE = (
    update(CASES)
    .where(CASES.c.case_id == bindparam("changed_case_id"))
    .values({column.key: bindparam(column.key) for column in CASES.c if column.key != "case_id"})
)
"""A case's row rewritten whole, by case id: one executemany for a batch's changed cases."""


def _insert_new(session: AsyncSession, table: Table) -> Executable:
    """An INSERT that leaves out rows the table has already (by its primary key): the reports and
    departments a batch brings need no read of those the database has."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql_insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite_insert(table).on_conflict_do_nothing()
    raise NotImplementedError(f"the read model runs on SQLite or PostgreSQL, not {dialect}")


async def case_documents(
    connection: AsyncConnection | AsyncSession, case_ids: Iterable[str] | None = None
) -> dict[str, dict[str, Any]]:
    """The stored cases' whole states as `CaseState.model_dump(mode="json")` writes them, by case
    id (of these cases, or of all): the `state` column with its reports put back from the case's
    events. A document written before the column left the reports out has them still."""
    wanted = None if case_ids is None else list(case_ids)
    if wanted is not None and not wanted:
        return {}
    documents: dict[str, dict[str, Any]] = {}
    query = select(CaseRow.case_id, CaseRow.state)
    if wanted is not None:
        query = query.where(CaseRow.case_id.in_(wanted))
    for case_id, document in await connection.execute(query):
        documents[case_id] = document
    without = {case_id for case_id, document in documents.items() if "reports" not in document}
    for document in documents.values():
        document.setdefault("reports", [])
    if without:
        query = (
            select(CaseEventRow.case_id, CaseEventRow.body)
            .where(CaseEventRow.type.in_(REPORTING_EVENTS))
            .order_by(CaseEventRow.case_id, CaseEventRow.version)
        )
        if wanted is not None:
            query = query.where(CaseEventRow.case_id.in_(without))
        for case_id, body in await connection.execute(query):
            if case_id in without:
                documents[case_id]["reports"].append(_report_in(body))
    return documents


class StateCache:
    """The newest decoded state of the cases a projector wrote last, by case id; bounded, least
    recently used out first. A state is taken from it only at the version the database holds,
    so a cache that missed a write (another projector took the partition meanwhile) is never
    believed. A miss costs reading the case's document and its reports' events back."""

    def __init__(self, capacity: int = 20_000) -> None:
        self.capacity = capacity
        self._states: OrderedDict[str, CaseState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._states)

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
    `decisions`: each event's place in its decision ("i/n") by event id, kept with it.

    Core statements, each run once for the whole batch (executemany): a case's row is written
    once, after its last event; reports and departments are inserted unless there already."""
    case_ids = {event.case_id for event in events}
    versions: dict[str, int] = {
        case_id: version
        for case_id, version in await session.execute(
            select(CaseRow.case_id, CaseRow.version).where(CaseRow.case_id.in_(case_ids))
        )
    }
    states: dict[str, CaseState] = {}
    for case_id, version in versions.items():
        cached = cache.get(case_id, version) if cache is not None else None
        if cached is not None:
            states[case_id] = cached
    missing = set(versions) - set(states)
    if missing:
        for case_id, document in (await case_documents(session, missing)).items():
            states[case_id] = CaseState.model_validate(document)
    applied = 0
    changed: dict[str, None] = {}  # in the order first changed: the same rows, the same order
    event_rows: list[dict[str, Any]] = []
    report_rows: dict[tuple[str, str], dict[str, Any]] = {}
    department_rows: dict[tuple[str, str], dict[str, Any]] = {}
    for event in events:
        case_id = event.case_id
        state = states.get(case_id)
        if state is not None and event.version <= state.version:
            continue  # already projected: replays and redeliveries are harmless
        try:
            state = apply(state, event)
        except OutOfOrderEvent:
            log.error("skipping out-of-order %s v%s of %s", event.type, event.version, case_id)
            continue
        states[case_id] = state
        changed[case_id] = None
        event_rows.append(
            {
                "event_id": event.event_id,
                "case_id": case_id,
                "version": event.version,
                "type": event.type,
                "occurred_at": event.occurred_at,
                "actor": event.actor,
                "body": WrittenJSON(event.model_dump_json()),
                "decision": decisions.get(event.event_id) if decisions else None,
            }
        )
        for department in departments_of(event):
            department_rows.setdefault(
                (case_id, department), {"case_id": case_id, "department_id": department}
            )
        report = report_of(event)
        if report is not None and (report.idempotency_key, case_id) not in report_rows:
            report_rows[report.idempotency_key, case_id] = {
                "idempotency_key": report.idempotency_key,
                "case_id": case_id,
                "source": report.source.value,
                "category_code": report.category_code,
                "occurred_at": report.occurred_at,
                "received_at": report.received_at,
                # the report as the state keeps it: its JSON, written when it was added
                "body": WrittenJSON(state.stored_reports()[-1][2].decode()),
            }
        applied += 1
    if not changed:
        await session.commit()
        return applied
    new_cases: list[dict[str, Any]] = []
    rewritten: list[dict[str, Any]] = []
    for case_id in changed:
        columns = _case_columns(states[case_id])
        if case_id in versions:
            columns["changed_case_id"] = columns.pop("case_id")
            rewritten.append(columns)
        else:
            new_cases.append(columns)
    # case events in topic order: the live stream's positions follow it
    await session.execute(insert(CASE_EVENTS), event_rows)
    if new_cases:
        await session.execute(insert(CASES), new_cases)
    if rewritten:
        await session.execute(UPDATE_CASE, rewritten)
    if report_rows:
        await session.execute(_insert_new(session, REPORTS), list(report_rows.values()))
    if department_rows:
        await session.execute(
            _insert_new(session, CASE_DEPARTMENTS), list(department_rows.values())
        )
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


@dataclass(frozen=True)
class RebuildProgress:
    """How far a rebuild is: events read from the topic and applied, and seconds since it began."""

    read: int
    applied: int
    seconds: float

    @property
    def events_per_s(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0


async def rebuild(
    settings: Settings,
    batch: int = 2000,
    progress: Callable[[RebuildProgress], None] | None = None,
    every_s: float = 10.0,
    states: int = 20_000,
) -> RebuildProgress:
    """Empty the read model's case tables and fold the whole case-event topic into them again;
    returns how far it got (all of it). The same topic gives the same tables every time.

    It holds at most two batches of records (one read while the other is projected) and the
    states of the `states` cases it touched last, whatever the topic's size; `progress` is told
    how far it is about every `every_s` seconds of it."""
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

        def next_chunk() -> list[Any]:
            return list(islice(records, batch))

        began = reported = time.monotonic()
        read = applied = 0
        cache = StateCache(states)
        # the next batch is read from the broker (in a thread) while this one is projected
        reading = asyncio.ensure_future(asyncio.to_thread(next_chunk))
        try:
            while chunk := await reading:
                reading = asyncio.ensure_future(asyncio.to_thread(next_chunk))
                events, decisions = case_events_of(chunk)
                read += len(events)
                applied += (await project_or_skip(sessions, events, cache, decisions))[0]
                now = time.monotonic()
                if progress is not None and now - reported >= every_s:
                    reported = now
                    progress(RebuildProgress(read, applied, now - began))
        finally:
            reading.cancel()  # a failed batch: the read under way is not wanted
        return RebuildProgress(read, applied, time.monotonic() - began)
    finally:
        await engine.dispose()
