"""The case read model's tables and the async engine that reaches them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.engine import Connection, Dialect, Engine, make_url
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and read back timezone-aware, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: cityloop stores only timezone-aware times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class minutes_between(FunctionElement[float]):  # noqa: N801 - a SQL function, named as one
    """The minutes from one stored time to another, to the millisecond, worked out in the
    database (NULL if either is): the rows a whole period's figures come from then carry a
    number, not two timestamps to parse in Python (100,000 cases: 1.6 s of reading and 0.9 s
    of models, in one run)."""

    type = Float()
    inherit_cache = True
    name = "minutes_between"


@compiles(minutes_between)
def _minutes_elsewhere(element: minutes_between, compiler: SQLCompiler, **kw: Any) -> str:
    raise CompileError(f"minutes_between is not written for {compiler.dialect.name}")


@compiles(minutes_between, "sqlite")
def _minutes_on_sqlite(element: minutes_between, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps UTCDateTime as ISO text in UTC; julianday reads each time to the
    # millisecond, as a day number whose last bits are noise (5 minutes came out 4.9999997):
    # rounded to whole milliseconds
    start, end = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"(round((julianday({end}) - julianday({start})) * 86400000.0) / 60000.0)"


@compiles(minutes_between, "postgresql")
def _minutes_on_postgresql(element: minutes_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(clause, **kw) for clause in element.clauses)
    # to the millisecond, as on SQLite (which reads each time to the millisecond first, so the
    # two can differ by a millisecond)
    epoch = f"EXTRACT(EPOCH FROM ({end} - {start}))"
    return f"(CAST(round({epoch} * 1000) AS DOUBLE PRECISION) / 60000.0)"


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON}


class CaseRow(Base):
    __tablename__ = "cases"

    case_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    category_code: Mapped[str] = mapped_column(String(60))
    title: Mapped[str] = mapped_column(Text)
    severity: Mapped[str | None] = mapped_column(String(4))
    loop: Mapped[str | None] = mapped_column(String(10))
    handling_area: Mapped[str | None] = mapped_column(String(20), index=True)
    # its first six characters (handlers.access.district_code): what a district's page reads by
    handling_district: Mapped[str | None] = mapped_column(String(6))
    lead_department: Mapped[str | None] = mapped_column(String(80))
    coordinating_centre: Mapped[str | None] = mapped_column(String(80))
    correlation_key: Mapped[str] = mapped_column(String(120))
    area_codes: Mapped[list[str]] = mapped_column(JSON)
    primary_area: Mapped[str] = mapped_column(String(20), index=True)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    accept_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolve_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    report_count: Mapped[int] = mapped_column(Integer)
    duplicate_count: Mapped[int] = mapped_column(Integer)
    # for assessment (考核): when it was accepted and resolved, and whether a deadline slipped
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    accept_missed: Mapped[bool] = mapped_column(Boolean)
    resolve_missed: Mapped[bool] = mapped_column(Boolean)
    returns: Mapped[int] = mapped_column(Integer)
    escalations: Mapped[int] = mapped_column(Integer)
    reopens: Mapped[int] = mapped_column(Integer)
    topology_version: Mapped[str | None] = mapped_column(String(80))
    state: Mapped[dict[str, Any]] = mapped_column(JSON)

    # Pages are newest first: each filter a page may have on its own leads an index that
    # continues in that order, so a page of 50 reads about 50 rows whatever the filter's share
    # (an index on the filter alone made the database sort every match: 0.36 s for one status
    # of 100,000 cases on SQLite)
    __table_args__ = (
        Index("ix_cases_opened", "opened_at", "case_id"),
        # with the areas a duty officer's scope tests, tested on the index (migration 0004)
        Index(
            "ix_cases_status_opened_areas",
            "status",
            "opened_at",
            "case_id",
            "handling_area",
            "primary_area",
        ),
        Index("ix_cases_category_opened", "category_code", "opened_at", "case_id"),
        Index("ix_cases_loop_opened", "loop", "opened_at", "case_id"),
        Index("ix_cases_lead_opened", "lead_department", "opened_at", "case_id"),
        Index("ix_cases_district_opened", "handling_district", "opened_at", "case_id"),
        Index(
            "ix_cases_status_district_opened",
            "status",
            "handling_district",
            "opened_at",
            "case_id",
        ),
    )


class CaseEventRow(Base):
    __tablename__ = "case_events"

    # the order the read model learned of events in: what the live stream resumes from
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    case_id: Mapped[str] = mapped_column(String(40), index=True)
    version: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(120))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    # its place in the decision that wrote it ("i/n", streams/decisions.py): a restart on an
    # empty broker puts the events back on the topic as they were (api/restore.py)
    decision: Mapped[str | None] = mapped_column(String(24))

    __table_args__ = (
        UniqueConstraint("case_id", "version", name="uq_case_version"),
        {"sqlite_autoincrement": True},  # never reuse a position, even after a rebuild
    )


class ReportRow(Base):
    """A report on a case. After a merge a report is on both: the merged case keeps its history,
    the surviving case has it too — so the table is the same whatever order it was built in."""

    __tablename__ = "reports"

    idempotency_key: Mapped[str] = mapped_column(String(450), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)
    source: Mapped[str] = mapped_column(String(10), index=True)
    category_code: Mapped[str] = mapped_column(String(60))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    body: Mapped[dict[str, Any]] = mapped_column(JSON)


class CaseDepartmentRow(Base):
    """Every department that handles or handled a case: what a department may see."""

    __tablename__ = "case_departments"

    case_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    department_id: Mapped[str] = mapped_column(String(80), primary_key=True, index=True)


class CommandRow(Base):
    """A command posted through the API, pending until its outcome is projected."""

    __tablename__ = "commands"

    command_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    case_id: Mapped[str | None] = mapped_column(String(40), index=True)
    command_type: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(120), index=True)
    applied: Mapped[bool | None] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)
    event_types: Mapped[list[str]] = mapped_column(JSON)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WrittenJSON(str):
    """A JSON document written out already, e.g. by pydantic from the model it was validated
    as: a JSON column stores it as it is. The projector writes each event, report and case state
    so; building a dict from the model for `json.dumps` to write again cost it twice."""

    __slots__ = ()


def _json_serializer(value: Any) -> str:
    return str(value) if isinstance(value, WrittenJSON) else json.dumps(value)


def create_engine(database_url: str) -> AsyncEngine:
    url = make_url(database_url)
    sqlite = url.get_backend_name() == "sqlite"
    if sqlite and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    # a server's connections can die under the pool (a restart, an idle timeout): each is
    # pinged when taken; a SQLite file has no connection to lose, and a ping per request was
    # a fifth of a case detail's database time
    engine = create_async_engine(url, pool_pre_ping=not sqlite, json_serializer=_json_serializer)
    if sqlite:
        write_ahead(engine.sync_engine)
    return engine


def remove_sqlite_file(database: Path) -> bool:
    """Delete a SQLite database and its write-ahead log with it: a log left beside a new file
    of the same name would be replayed into it. Whether there was a database to delete."""
    existed = database.exists()
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        path.unlink(missing_ok=True)
    return existed


def write_ahead(engine: Engine) -> None:
    """Each new connection of a SQLite engine uses the write-ahead log, so that the projector's
    writes and the API's reads do not wait for each other: with the rollback journal a commit
    waits for every reader to finish and locks them out while it writes. The file keeps the
    mode; asking again is a no-op. Commits stay synchronous (FULL): the projector commits its
    offsets after the database, so a commit it was told of must survive a power cut."""

    @event.listens_for(engine, "connect")
    def _write_ahead(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[Any]:
    return async_sessionmaker(engine, expire_on_commit=False)


def migrations_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for the read model's migrations (api/migrations)."""
    config = Config()
    config.set_main_option("script_location", "api:migrations")
    config.attributes["connection"] = connection
    return config


async def migrate(engine: AsyncEngine) -> None:
    """Bring the read model's schema to the newest migration (a no-op when it is there)."""
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: command.upgrade(migrations_config(sync), "head"))
