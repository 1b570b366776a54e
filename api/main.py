"""The FastAPI application: routers, and the producer, projector and topology feed its lifespan
owns."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from api.access import AccessLog
from api.auth import VerifiedTokens
from api.console import install_console
from api.console.docs import install_docs
from api.console.geo import map_base
from api.db import create_engine, migrate, session_factory
from api.errors import PROBLEM_MODELS, install_refusals
from api.metrics import Metrics
from api.projection import Projector
from api.reading import reader_for
from api.routes import cases, commands, events, health, open311, stats
from api.schemas import COMPONENTS, CaseChange
from api.topology_feed import TopologyFeed
from cityloop.clock import Clock, wall_clock
from cityloop.contracts import CloudEvent
from cityloop.errors import ConfigurationError
from cityloop.settings import Settings, get_settings
from streams.clients import async_producer
from topology import Topology, load_topology

REFERENCED_MODELS: tuple[type[BaseModel], ...] = (CloudEvent, CaseChange, *PROBLEM_MODELS)
"""Models the OpenAPI document refers to by hand (a raw ingest body, a live stream event, the
refusal bodies), so FastAPI does not put them in its components itself."""


def referenced_components() -> dict[str, Any]:
    """The schemas of REFERENCED_MODELS (with the models they nest) and of the action bodies."""
    components: dict[str, Any] = {}
    for model in REFERENCED_MODELS:
        schema = model.model_json_schema(ref_template=COMPONENTS + "{model}", mode="serialization")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
    return {**components, **commands.action_schemas()}


def create_app(settings: Settings | None = None, clock: Clock = wall_clock) -> FastAPI:
    """The API; `clock` is the moment each request is handled at (tokens' expiry, `now` of the
    routes' defaults, a command's issue time)."""
    settings = settings or get_settings()
    if not settings.jwt_secret.get_secret_value():
        raise ConfigurationError(
            "set CITYLOOP_JWT_SECRET: the API signs and checks bearer tokens with it "
            "(`cityloop up` makes one for its session)"
        )

    def put_in_service(topology: Topology) -> None:
        """A published version replaces the one requests are validated against."""
        app.state.topology = topology  # one rebinding: a request sees the old version or the new
        map_base.cache_clear()  # the console's maps of the old version
        gc.freeze()  # out of the collector's sight as the first was (see the lifespan)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        await migrate(engine)
        app.state.reader = reader_for(settings.database_url)
        app.state.sessions = session_factory(engine)
        # the version in service on the topology topic, else the file: what the worker uses
        app.state.topology_feed = TopologyFeed(settings, put_in_service)
        app.state.topology = await app.state.topology_feed.newest() or load_topology(
            settings.topology_file
        )
        app.state.producer = async_producer(settings)
        await app.state.producer.start()
        app.state.projector = Projector(
            settings,
            app.state.sessions,
            group_id=f"{settings.topic_prefix}-projector",
            metrics=app.state.metrics,
            clock=clock,
        )
        # what was loaded to start (the topology's graph of thousands of departments, the
        # modules) lives as long as the process: out of the collector's sight, a full
        # collection no longer walks it (tens of ms, the tail of a case detail's latency)
        gc.freeze()
        stop = asyncio.Event()
        projecting = asyncio.create_task(app.state.projector.run(stop), name="projector")
        following = asyncio.create_task(app.state.topology_feed.run(stop), name="topology-feed")
        try:
            yield
        finally:
            stop.set()
            for task in (projecting, following):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await app.state.producer.stop()
            await app.state.reader.close()
            await engine.dispose()

    app = FastAPI(
        title="cityloop",
        version="0.1.0",
        summary="Incident coordination across the city's four operations loops",
        lifespan=lifespan,
        # served from the package (api.console.docs): FastAPI's own pages load a CDN's scripts
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.tokens = VerifiedTokens(
        settings.jwt_secret.get_secret_value(), clock=lambda: clock().timestamp()
    )
    app.state.metrics = Metrics()
    app.add_middleware(AccessLog)
    install_refusals(app)
    app.include_router(events.router)
    app.include_router(cases.router)
    app.include_router(commands.router)
    app.include_router(stats.router)
    app.include_router(health.router)
    app.include_router(open311.router)
    install_console(app)
    install_docs(app)

    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        schema = base_openapi()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, component in referenced_components().items():
            components.setdefault(name, component)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
