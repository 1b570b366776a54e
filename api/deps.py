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

from api.auth import SESSION_COOKIE, InvalidToken, VerifiedTokens
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


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def same_origin(request: Request) -> bool:
    """Whether a request the browser marked with an Origin came from this server's own pages
    (one without an Origin is not a browser's cross-site request)."""
    origin = request.headers.get("origin")
    host = request.headers.get("host")
    return origin is None or (host is not None and origin.split("://", 1)[-1] == host)


async def principal_of(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller, from its bearer token, or else from the console's session cookie, which
    holds the same kind of token and is checked the same way."""
    token = credentials.credentials if credentials is not None else None
    if token is None:
        token = request.cookies.get(SESSION_COOKIE) or None
        # SameSite=Strict keeps the cookie off other sites' requests; a browser that does not
        # honour it still names the page that sent a POST
        if token is not None and request.method not in SAFE_METHODS and not same_origin(request):
            raise refuse(
                status.HTTP_403_FORBIDDEN,
                "cross_site",
                "a session cookie acts only from this server's own pages",
            )
    if token is None:
        raise refuse(
            status.HTTP_401_UNAUTHORIZED,
            "unauthenticated",
            "a bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        tokens: VerifiedTokens = request.app.state.tokens
        return tokens.principal(token)
    except InvalidToken as exc:
        raise refuse(
            status.HTTP_401_UNAUTHORIZED,
            "invalid_token",
            str(exc),
            headers={"WWW-Authenticate": "Bearer"},
        ) from exc


SettingsDep = Annotated[Settings, Depends(_settings)]
PrincipalDep = Annotated[Principal, Depends(principal_of)]
SessionDep = Annotated[AsyncSession, Depends(_session)]
ReaderDep = Annotated[Reader, Depends(_reader)]
ProducerDep = Annotated[Any, Depends(_producer)]
TopologyDep = Annotated[Topology, Depends(_topology)]
NowDep = Annotated[datetime, Depends(_now)]
