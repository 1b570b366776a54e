"""`cityloop projection`: the SQL read model of cases, rebuilt from the case-event topic."""

from __future__ import annotations

import asyncio
import time

import typer
from rich.console import Console

from cityloop.settings import get_settings

app = typer.Typer(name="projection", help="Manage the case read model.", no_args_is_help=True)
console = Console(soft_wrap=True)


@app.command()
def rebuild() -> None:
    """Empty the case tables and fold the whole case-event topic into them again (schema
    migrated first). Safe while the API runs: its projector applies each case version once."""
    from api.projection import rebuild as rebuild_projection

    settings = get_settings()
    started = time.monotonic()
    applied = asyncio.run(rebuild_projection(settings))
    console.print(
        f"rebuilt the read model at {settings.database_url}: {applied} case events "
        f"in {time.monotonic() - started:.1f}s"
    )
