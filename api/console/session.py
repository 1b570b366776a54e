"""Signing in to the console: a bearer token pasted on the sign-in page, or a one-time login
ticket from a link, becomes a session cookie that holds a bearer token of the same principal
(`api.auth`); logging out forgets it. Pages that need a principal take it as the API does
(`api.deps.principal_of`), and send a browser without one to the sign-in page."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials

from api.auth import (
    SESSION_COOKIE,
    InvalidToken,
    LoginTicket,
    VerifiedTokens,
    mint_token,
    read_login_ticket,
)
from api.deps import bearer, principal_of
from handlers.access import Denied, Principal, check_may_read_cases

SESSION_TTL = timedelta(hours=12)
"""A session lasts a duty shift at most, and never longer than the token it was made from."""

LOGIN_TICKET_TTL = timedelta(minutes=15)
"""How long a login link can be used (once)."""

CONSOLE = "/console"


class SignInRequired(Exception):
    """A console page asked for without a valid session: the browser goes to the sign-in page,
    and comes back to `next` after."""

    def __init__(self, next_path: str, reason: str = "") -> None:
        super().__init__(reason)
        self.next_path = next_path
        self.reason = reason


class SpentTickets:
    """The login tickets taken already, each until it expires: a ticket is taken once. Kept in
    this process, which is where `cityloop up` sends its link."""

    def __init__(self) -> None:
        self._spent: dict[str, int] = {}

    def take(self, ticket: LoginTicket, now: float) -> bool:
        """True the first time a ticket is taken, False after."""
        self._spent = {ticket_id: until for ticket_id, until in self._spent.items() if until > now}
        if ticket.ticket_id in self._spent:
            return False
        self._spent[ticket.ticket_id] = ticket.expires
        return True


def safe_next(path: str | None) -> str:
    """Where to go after signing in: a console page, never another site."""
    if not path or not path.startswith(CONSOLE) or path.startswith("//") or "\\" in path:
        return CONSOLE
    return path


def sign_in_url(next_path: str, reason: str = "") -> str:
    url = f"{CONSOLE}/login?next={quote(safe_next(next_path), safe='/')}"
    return f"{url}&reason={quote(reason)}" if reason else url


async def console_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The signed-in principal, checked exactly as the API checks a caller."""
    try:
        principal = await principal_of(request, credentials)
    except HTTPException as exc:
        if exc.status_code == status.HTTP_401_UNAUTHORIZED:
            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            reason = "expired" if SESSION_COOKIE in request.cookies else ""
            raise SignInRequired(here, reason) from exc
        raise
    return principal


ConsolePrincipal = Annotated[Principal, Depends(console_principal)]


def may_use_console(principal: Principal) -> str | None:
    """Why this principal cannot sign in to the console (it reads cases), or None."""
    try:
        check_may_read_cases(principal)
    except Denied as denied:
        return denied.reason
    return None


def ticket_from(request: Request, ticket: str, now: datetime) -> Principal:
    """The principal of a login ticket we signed, taken for the first time; InvalidToken else."""
    secret = request.app.state.settings.jwt_secret.get_secret_value()
    found = read_login_ticket(secret, ticket, now.timestamp())
    spent: SpentTickets = request.app.state.console_tickets
    if not spent.take(found, now.timestamp()):
        raise InvalidToken("this login link was used already")
    return found.principal


def start_session(
    request: Request,
    response: Response,
    principal: Principal,
    now: datetime,
    expires: float | None = None,
) -> None:
    """Set the session cookie: a bearer token of the principal, for at most SESSION_TTL and no
    longer than the token it was made from lasts (`expires`, seconds since the epoch)."""
    secret = request.app.state.settings.jwt_secret.get_secret_value()
    ttl = SESSION_TTL
    if expires is not None:
        ttl = min(ttl, timedelta(seconds=max(0.0, expires - now.timestamp())))
    token = mint_token(secret, principal, ttl, now=now)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(ttl.total_seconds()),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def end_session(request: Request, response: Response) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        tokens: VerifiedTokens = request.app.state.tokens
        tokens.sign_out(token)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
