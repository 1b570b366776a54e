"""The API's reads of the read model: a read is a plain function of a connection, run whole
in one step, outside a transaction, with the statements built once where they can be. Every
route that only reads goes through a `Reader` (`ReaderDep`); what writes (a command's record,
the projector) goes through a session, and so does what a write depends on.

On PostgreSQL a read runs on asyncpg in the event loop (`AsyncConnection.run_sync`). On SQLite
it runs on the standard library's driver in a reader thread: aiosqlite hands every call of a
read (execute, fetch, close, the pool's rollback) to its thread and back, a dozen hops for a
case's detail, each waiting for the GIL, and that cost 1.6 ms of CPU against 0.4 ms for the
same statements run in one hop (docs/benchmarks.md, "The read model at 100,000 cases")."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar, TypeVarTuple

from sqlalchemy import Connection, Row, Select
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import Session

from api.db import write_ahead

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

READER_THREADS = 2
"""SQLite runs a statement without the GIL: a second thread reads while the first one's result
is turned into Python; more only wait for the GIL."""


READER_CONNECTIONS = 8
"""PostgreSQL connections for reads: the event loop, not the server, is what a read waits on."""


class Reader(Protocol):
    """Runs reads of the read model for the API's routes (`ReaderDep`)."""

    async def __call__(self, read: Callable[[Connection], T]) -> T: ...

    async def close(self) -> None: ...


class LoopReader:
    """Reads on the async engine, in the event loop (PostgreSQL)."""

    def __init__(self, database_url: str) -> None:
        # autocommit: a read's BEGIN and ROLLBACK were a third of its round trips; pinged, for
        # a server's connections can die under the pool (a restart, an idle timeout)
        # a fixed pool: past it a read waits for a connection rather than open one for itself,
        # which the default overflow did, and closed again after (a connect is milliseconds)
        self._engine = create_async_engine(
            database_url,
            isolation_level="AUTOCOMMIT",
            pool_pre_ping=True,
            pool_size=READER_CONNECTIONS,
            max_overflow=0,
        )

        self._turns = asyncio.Semaphore(READER_CONNECTIONS)

    async def __call__(self, read: Callable[[Connection], T]) -> T:
        async with self._turns, self._engine.connect() as connection:
            return await connection.run_sync(read)

    async def close(self) -> None:
        await self._engine.dispose()


class ThreadReader:
    """Reads on the standard library's sqlite3 driver, whole, in reader threads (SQLite)."""

    def __init__(self, database_url: str) -> None:
        # no transaction: each statement reads what was committed when it started, as SQLite's
        # reads outside a transaction always did
        self._engine = create_sync_engine(
            make_url(database_url).set(drivername="sqlite"), isolation_level="AUTOCOMMIT"
        )
        write_ahead(self._engine)
        self._threads = ThreadPoolExecutor(READER_THREADS, thread_name_prefix="read-model")

    async def __call__(self, read: Callable[[Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._threads, functools.partial(self._read, read)
        )

    def _read(self, read: Callable[[Connection], T]) -> T:
        with self._engine.connect() as connection:
            return read(connection)

    async def close(self) -> None:
        self._threads.shutdown(wait=True)
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
        return ThreadReader(database_url)
    return LoopReader(database_url)
