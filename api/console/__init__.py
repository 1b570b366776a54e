"""The operations console (一屏全观): server-rendered pages for duty officers, dispatchers,
departments and auditors, served by the API from this package; no CDN, no build step."""

from __future__ import annotations

import hashlib
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from api.console import labels
from api.console.routes import router
from api.console.session import SignInRequired, SpentTickets, sign_in_url
from cityloop.contracts import CASE_EVENT_ADAPTER

STATIC = "/console/static"


def asset_versions() -> dict[str, str]:
    """Each static file's name with a digest of its content, so that a browser holding an old
    copy asks again after an upgrade."""
    folder = resources.files("api.console") / "static"
    return {
        item.name: hashlib.sha256(item.read_bytes()).hexdigest()[:10]
        for item in folder.iterdir()
        if item.is_file()
    }


def case_event_types() -> list[str]:
    """The case events' types: the live stream names each event by its type, and a browser's
    EventSource hears only the names it listens for."""
    mapping = CASE_EVENT_ADAPTER.json_schema()["discriminator"]["mapping"]
    return sorted(mapping)


def console_templates() -> Jinja2Templates:
    environment = Environment(
        loader=PackageLoader("api.console", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    versions = asset_versions()
    environment.globals["asset"] = lambda name: f"{STATIC}/{name}?v={versions.get(name, '0')}"
    environment.filters["local_time"] = labels.local_time
    environment.filters["full_time"] = labels.full_time
    return Jinja2Templates(env=environment)


async def to_sign_in(request: Request, exc: Exception) -> RedirectResponse:
    assert isinstance(exc, SignInRequired)  # noqa: S101 - registered for it alone
    return RedirectResponse(sign_in_url(exc.next_path, exc.reason), status_code=303)


def install_console(app: FastAPI) -> None:
    """Mount the console's pages and static files on the API."""
    app.state.console_templates = console_templates()
    app.state.console_tickets = SpentTickets()
    app.state.console_event_types = case_event_types()
    app.mount(STATIC, StaticFiles(packages=[("api.console", "static")]), name="console-static")
    app.exception_handler(SignInRequired)(to_sign_in)
    app.include_router(router)
