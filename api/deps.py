"""Dependencies as Annotated aliases: settings, database session, reader, producer, topology,
the caller, and the moment a request is handled (the app's clock, `create_app`).

All `async def`: FastAPI runs a plain `def` dependency in a thread pool, a hop per request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import InvalidToken, VerifiedTokens
from api.errors import refuse
from api.reading import Reader
from cityloop.clock import Clock
from cityloop.settings import Settings
from handlers.access import Principal
from topology import Topology


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


async def _reader(request: Request) -> Reader:
    reader: Reader = request.app.state.reader
    return reader


async def _producer(request: Request) -> Any:
    return request.app.state.producer


async def _topology(request: Request) -> Topology:
    topology: Topology = request.app.state.topology
    return topology


bearer = HTTPBearer(auto_error=False, description="a token from `cityloop token`")


async def _now(request: Request) -> datetime:
    clock: Clock = request.app.state.clock
    return clock()


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if credentials is None:
        raise refuse(
            status.HTTP_401_UNAUTHORIZED,
            "unauthenticated",
            "a bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        tokens: VerifiedTokens = request.app.state.tokens
        return tokens.principal(credentials.credentials)
    except InvalidToken as exc:
        raise refuse(
            status.HTTP_401_UNAUTHORIZED,
            "invalid_token",
            str(exc),
            headers={"WWW-Authenticate": "Bearer"},
        ) from exc


SettingsDep = Annotated[Settings, Depends(_settings)]
PrincipalDep = Annotated[Principal, Depends(_principal)]
SessionDep = Annotated[AsyncSession, Depends(_session)]
ReaderDep = Annotated[Reader, Depends(_reader)]
ProducerDep = Annotated[Any, Depends(_producer)]
TopologyDep = Annotated[Topology, Depends(_topology)]
NowDep = Annotated[datetime, Depends(_now)]
