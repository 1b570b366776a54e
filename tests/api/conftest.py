"""What the read-model tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.db import Base, create_engine, migrate


@pytest.fixture(params=["sqlite", "postgres"])
async def engine(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str
) -> AsyncIterator[AsyncEngine]:
    """A fresh read model on each kind of database."""
    url = f"sqlite+aiosqlite:///{tmp_path}/cases.db" if request.param == "sqlite" else postgres_url
    engine = create_engine(url)
    async with engine.begin() as connection:  # start from nothing, as a new installation does
        await connection.run_sync(Base.metadata.drop_all)
        await connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    await migrate(engine)
    yield engine
    await engine.dispose()
