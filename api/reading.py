"""The API's reads of the read model: a read is a plain function of a connection, run whole
in one step, outside a transaction, with the statements built once where they can be. Every
route that only reads goes through a `Reader` (`ReaderDep`); what writes (a command's record,
the projector) goes through a session.

Reads run in the event loop. On PostgreSQL a read runs on asyncpg (`AsyncConnection.run_sync`).
On SQLite it runs on the standard library's driver, straight through: a detail's or a page's
statements take 0.1-0.3 ms in the database. aiosqlite hands every call of a read (execute,
fetch, close, the pool's rollback) to its thread and back, which cost 1.6 ms of CPU against
0.4 ms in one hop; one hop to a reader thread still cost a third of the requests a second, for
the thread and the event loop then take turns at the GIL (docs/benchmarks.md, "The read model
at 100,000 cases"). A long read (the figures of a whole city's month) is a `scan`, whose rows
come a batch at a time with the loop free between batches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar, TypeVarTuple

from sqlalchemy import Connection, Result, Row, Select
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import Session

from api.db import write_ahead

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

READ_LOCK_WAIT_S = 1.0
"""How long a SQLite read waits for a lock before it fails (the driver's default: 5 s)."""

SQLITE_SCANS = 4
"""SQLite scans at once. A scan keeps its connection while the loop answers others, and the
pool (5, and 10 more) hands out connections in the event loop's thread: one more scan than it
has would wait there for a connection only the loop can give back."""

READER_CONNECTIONS = 8
"""PostgreSQL connections for reads: the event loop, not the server, is what a read waits on."""


SCAN_BATCH = 2_000
"""Rows of a scan turned into Python between two turns of the event loop (about 10 ms)."""


class Reader(Protocol):
    """Runs reads of the read model for the API's routes (`ReaderDep`)."""

    async def __call__(self, read: Callable[[Connection], T]) -> T: ...

    def scan(
        self, query: Select[*Ts], values: Mapping[str, Any], size: int = SCAN_BATCH
    ) -> AsyncIterator[Sequence[Row[*Ts]]]:
        """A long read's rows, `size` at a time, with the event loop free to answer others
        between them: turning 100,000 rows into Python takes the better part of a second."""
        ...

    async def close(self) -> None: ...


class LoopReader:
    """Reads on the async engine, in the event loop (PostgreSQL)."""

    def __init__(self, database_url: str) -> None:
        # autocommit: a read's BEGIN and ROLLBACK were a third of its round trips
        # a fixed pool: past it a read waits for a connection rather than open one for itself,
        # which the default overflow did, and closed again after (a connect is milliseconds)
        # not pinged: a ping when a connection is taken was a fourth of a case detail's round
        # trips; a read that finds its connection dead is read again instead (`__call__`)
        self._engine = create_async_engine(
            database_url,
            isolation_level="AUTOCOMMIT",
            pool_size=READER_CONNECTIONS,
            max_overflow=0,
        )

        self._turns = asyncio.Semaphore(READER_CONNECTIONS)

    async def __call__(self, read: Callable[[Connection], T]) -> T:
        return await self._again_if_closed(lambda: self._read(read))

    async def scan(
        self, query: Select[*Ts], values: Mapping[str, Any], size: int = SCAN_BATCH
    ) -> AsyncIterator[Sequence[Row[*Ts]]]:
        # asyncpg hands over the rows whole, and fast: the result is buffered and the connection
        # back in the pool before the long part, turning the rows into Python
        result = await self._again_if_closed(lambda: self._buffered(query, values))
        for rows in result.partitions(size):
            yield rows
            await asyncio.sleep(0)

    async def _again_if_closed(self, reading: Callable[[], Awaitable[T]]) -> T:
        async with self._turns:
            try:
                return await reading()
            except DBAPIError as error:
                # the server closed the connection under the pool (a restart, an idle
                # timeout): the pool drops its connections, and a read changes nothing, so it
                # is read again, once, on a new one
                if not error.connection_invalidated:
                    raise
                return await reading()

    async def _read(self, read: Callable[[Connection], T]) -> T:
        async with self._engine.connect() as connection:
            return await connection.run_sync(read)

    async def _buffered(self, query: Select[*Ts], values: Mapping[str, Any]) -> Result[*Ts]:
        async with self._engine.connect() as connection:
            return await connection.execute(query, values)

    async def close(self) -> None:
        await self._engine.dispose()


class SQLiteReader:
    """Reads on the standard library's sqlite3 driver, whole, in the event loop (SQLite)."""

    def __init__(self, database_url: str) -> None:
        # no transaction: each statement reads what was committed when it started, as SQLite's
        # reads outside a transaction always did
        # a read waits for a lock (rare with the write-ahead log: a log being recovered) at most
        # READ_LOCK_WAIT_S, since the event loop waits with it
        self._engine = create_sync_engine(
            make_url(database_url).set(drivername="sqlite"),
            isolation_level="AUTOCOMMIT",
            connect_args={"timeout": READ_LOCK_WAIT_S},
            # a read that finds the pool empty waits in the loop, where nothing can return a
            # connection: it fails at once rather than hold the API (scans are counted for that)
            pool_timeout=READ_LOCK_WAIT_S,
        )
        write_ahead(self._engine)
        self._scans = asyncio.Semaphore(SQLITE_SCANS)

    async def __call__(self, read: Callable[[Connection], T]) -> T:
        with self._engine.connect() as connection:
            return read(connection)

    async def scan(
        self, query: Select[*Ts], values: Mapping[str, Any], size: int = SCAN_BATCH
    ) -> AsyncIterator[Sequence[Row[*Ts]]]:
        # the cursor fetches as it goes; its connection stays out of the pool until the end
        async with self._scans:
            with self._engine.connect() as connection:
                for rows in connection.execute(query, values).partitions(size):
                    yield rows
                    await asyncio.sleep(0)

    async def close(self) -> None:
        self._engine.dispose()


def entities(query: Select[*Ts]) -> Callable[[Connection], list[Row[*Ts]]]:
    """A read of mapped objects (rows of ORM entities): a session on the read's connection
    runs the query, and the objects come out detached, with what the query loaded."""

    def read(connection: Connection) -> list[Row[*Ts]]:
        with Session(connection) as session:
            return list(session.execute(query).all())

    return read


def reader_for(database_url: str) -> Reader:
    if make_url(database_url).get_backend_name() == "sqlite":
        return SQLiteReader(database_url)
    return LoopReader(database_url)
