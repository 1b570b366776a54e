"""`cityloop projection`: the SQL read model of cases, rebuilt from the case-event topic."""

from __future__ import annotations

import asyncio
import time

import typer
from rich.console import Console

from cityloop.logs import redacted_url
from cityloop.settings import get_settings

app = typer.Typer(name="projection", help="Manage the case read model.", no_args_is_help=True)
console = Console(soft_wrap=True)


@app.command()
def rebuild() -> None:
    """Empty the case tables and fold the whole case-event topic into them again (schema
    migrated first). Safe while the API runs: its projector applies each case version once."""
    from api.projection import RebuildProgress
    from api.projection import rebuild as rebuild_projection

    settings = get_settings()

    def report(progress: RebuildProgress) -> None:
        console.print(
            f"{progress.read:,} case events read, {progress.applied:,} applied, "
            f"{progress.events_per_s:,.0f} events/s"
        )

    started = time.monotonic()
    done = asyncio.run(rebuild_projection(settings, progress=report))
    seconds = time.monotonic() - started
    console.print(
        f"rebuilt the read model at {redacted_url(settings.database_url)}: {done.applied} case "
        f"events in {seconds:.1f}s ({done.events_per_s:,.0f} events/s)"
    )


@app.command()
def migrate() -> None:
    """Bring the read model's schema to the newest migration (the API does it when it starts)."""
    from api.db import create_engine
    from api.db import migrate as migrate_schema

    settings = get_settings()

    async def run() -> None:
        engine = create_engine(settings.database_url)
        try:
            await migrate_schema(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
    console.print(
        f"the read model at {redacted_url(settings.database_url)} is at the newest migration"
    )


@app.command()
def revision(message: str) -> None:
    """Write the next migration by comparing api/db.py's models with the database (which must
    be at the previous newest migration). Review what it wrote before committing it."""
    from alembic import command

    from api.db import migrations_config

    command.revision(migrations_config(), message=message, autogenerate=True)
