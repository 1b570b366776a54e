"""The API's readers against real databases: PostgreSQL's reads survive a connection the server
closed, and SQLite's file is written ahead (reads and the projector's commits do not wait for
each other)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import Connection, bindparam, literal, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from api.db import create_engine, remove_sqlite_file
from api.reading import reader_for


def backend(connection: Connection) -> int:
    return int(connection.scalar(text("select pg_backend_pid()")) or 0)


async def test_a_postgres_read_is_read_again_when_the_server_closed_its_connection(
    postgres_url: str,
) -> None:
    read = reader_for(postgres_url)
    try:
        first = await read(backend)
        # what a server restart or an idle timeout does to a pooled connection
        server = await asyncpg.connect(
            make_url(postgres_url).set(drivername="postgresql").render_as_string(False)
        )
        try:
            # waits (up to 5 s) until the backend is gone, so the next read cannot still reach it
            assert await server.fetchval("select pg_terminate_backend($1, 5000)", first)
        finally:
            await server.close()
        again = await read(backend)
        assert again != first
        assert await read(backend) == again  # the new connection stays in the pool
    finally:
        await read.close()


async def test_a_postgres_read_that_fails_otherwise_fails_once(postgres_url: str) -> None:
    read = reader_for(postgres_url)
    calls = 0

    def wrong(connection: Connection) -> None:
        nonlocal calls
        calls += 1
        connection.execute(text("select * from no_such_table"))

    try:
        with pytest.raises(DBAPIError, match="no_such_table"):
            await read(wrong)
        assert calls == 1
    finally:
        await read.close()


async def test_sqlite_reads_and_writes_use_the_write_ahead_log(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/cases.db"
    engine = create_engine(url)
    read = reader_for(url)
    try:
        async with engine.begin() as connection:
            assert (await connection.scalar(text("pragma journal_mode"))) == "wal"
            await connection.execute(text("create table cases (case_id text primary key)"))
            await connection.execute(text("insert into cases values ('CL-1')"))
        assert await read(lambda c: c.scalar(text("pragma journal_mode"))) == "wal"
        # a reader in the middle of a read: with the rollback journal, a commit waits for it to
        # finish (and gives up: "database is locked"); with the log it commits beside it
        reading = sqlite3.connect(tmp_path / "cases.db", isolation_level=None)
        try:
            reading.execute("begin")
            assert reading.execute("select count(*) from cases").fetchone() == (1,)
            async with engine.begin() as writing:
                await writing.execute(text("pragma busy_timeout = 200"))
                await writing.execute(text("insert into cases values ('CL-2')"))
            assert reading.execute("select count(*) from cases").fetchone() == (1,)
            reading.execute("commit")
        finally:
            reading.close()
        assert await read(lambda c: c.scalar(text("select count(*) from cases"))) == 2
    finally:
        await read.close()
        await engine.dispose()


async def test_a_sqlite_database_is_removed_with_its_log(tmp_path: Path) -> None:
    database = tmp_path / "cases.db"
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    try:
        async with engine.begin() as connection:
            await connection.execute(text("create table cases (case_id text primary key)"))
        # the log and its index stay beside the file while a connection is open (and after a
        # crash): a new file of the same name must not meet them
        assert Path(f"{database}-wal").exists() and Path(f"{database}-shm").exists()
        assert remove_sqlite_file(database)
        assert sorted(tmp_path.iterdir()) == []
        assert not remove_sqlite_file(database)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_a_scan_gives_the_loop_back_between_batches(
    database: str, tmp_path: Path, postgres_url: str
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/cases.db" if database == "sqlite" else postgres_url
    numbers = select(literal(1).label("i")).cte("numbers", recursive=True)
    numbers = numbers.union_all(select(numbers.c.i + 1).where(numbers.c.i < 5_000))
    query = select(numbers.c.i).where(numbers.c.i > bindparam("above"))
    ticks = 0

    async def others() -> None:  # what else the loop has to do meanwhile
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    read = reader_for(url)
    meanwhile = asyncio.create_task(others())
    await asyncio.sleep(0)
    try:
        sizes, ticks_seen = [], []
        async for rows in read.scan(query, {"above": 500}, size=2_000):
            sizes.append(len(rows))
            ticks_seen.append(ticks)
        assert sizes == [2_000, 2_000, 500]
        assert ticks_seen == sorted(set(ticks_seen))  # the others ran between every two
    finally:
        meanwhile.cancel()
        await read.close()


async def test_many_sqlite_scans_at_once_all_finish(tmp_path: Path) -> None:
    """More scans than the pool has connections: each holds one while the loop turns, so the
    ones past it must wait in the loop, not in the pool (which would stop the loop)."""
    url = f"sqlite+aiosqlite:///{tmp_path}/cases.db"
    numbers = select(literal(1).label("i")).cte("numbers", recursive=True)
    numbers = numbers.union_all(select(numbers.c.i + 1).where(numbers.c.i < 3_000))
    query = select(numbers.c.i).where(numbers.c.i > bindparam("above"))
    read = reader_for(url)

    async def count() -> int:
        return sum([len(rows) async for rows in read.scan(query, {"above": 0}, size=100)])

    try:
        counts = await asyncio.wait_for(asyncio.gather(*(count() for _ in range(24))), 20)
        assert counts == [3_000] * 24
        assert await read(lambda c: c.scalar(text("select 1"))) == 1
    finally:
        await read.close()
