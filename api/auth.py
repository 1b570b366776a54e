"""Bearer tokens: signed JWTs (HS256) carrying a role and a scope, with a secret from settings.

The console's session cookie holds such a token too, so a cookie and a header end in the same
`Principal` through the same check (`VerifiedTokens`). A login ticket (the link `cityloop up
--demo` prints) is signed with the same secret but by another issuer, so it is never taken for
a bearer token: the console exchanges it, once, for a session."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from cityloop.clock import wall_clock
from handlers.access import Principal, Role

ALGORITHM = "HS256"
ISSUER = "cityloop"
LOGIN_ISSUER = "cityloop:login"
"""The issuer of login tickets: `read_token` wants ISSUER, so a ticket is no bearer token."""
SOURCES_CLAIM = "sources"
"""A publisher's token names the CloudEvent `source` URIs it may publish (`Principal.sources`)."""
SESSION_COOKIE = "cityloop_session"
"""The console's session cookie: a bearer token the browser keeps (HttpOnly, SameSite=Strict)."""


class InvalidToken(Exception):
    """A token that is missing, malformed, expired or not signed with our secret."""


def mint_token(
    secret: str, principal: Principal, ttl: timedelta, now: datetime | None = None
) -> str:
    if not secret:
        raise ValueError("no secret: set CITYLOOP_JWT_SECRET")
    return jwt.encode(
        _claims(principal, ISSUER, now or wall_clock(), ttl), secret, algorithm=ALGORITHM
    )


def _claims(
    principal: Principal, issuer: str, issued: datetime, ttl: timedelta
) -> dict[str, object]:
    claims: dict[str, object] = {
        "iss": issuer,
        "sub": principal.subject,
        "role": principal.role.value,
        "scope": principal.scope,
        "iat": int(issued.timestamp()),
        "exp": int((issued + ttl).timestamp()),
    }
    if principal.sources:
        claims[SOURCES_CLAIM] = list(principal.sources)
    return claims


def _numeric_date(value: object) -> int:
    """A JWT NumericDate (RFC 7519: a JSON number of seconds); text such as "1764000000" is no
    number, and a token that carries it is not one we minted."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"exp is not a number: {value!r}")
    return int(value)  # NaN and infinity raise ValueError and OverflowError


def _sources(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidToken(f"the {SOURCES_CLAIM} claim is not a list of source URIs")
    return tuple(value)


def read_token(secret: str, token: str, now: float) -> tuple[Principal, int]:
    """The principal a token names, and when the token expires (seconds since the epoch);
    expiry is judged against `now`, the caller's clock, not PyJWT's."""
    principal, expires, _ = _read(secret, token, now, ISSUER)
    return principal, expires


def _read(
    secret: str, token: str, now: float, issuer: str
) -> tuple[Principal, int, dict[str, object]]:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=issuer,
            options={"require": ["exp", "sub", "iss"], "verify_exp": False},
        )
        expires = _numeric_date(claims["exp"])
        principal = Principal(
            subject=claims["sub"],
            role=Role(claims["role"]),
            scope=claims.get("scope", ""),
            sources=_sources(claims.get(SOURCES_CLAIM, [])),
        )
    except (jwt.PyJWTError, KeyError, ValueError, TypeError, OverflowError) as exc:
        raise InvalidToken(str(exc)) from exc
    if expires <= now:
        raise InvalidToken("the token has expired")
    return principal, expires, claims


@dataclass(frozen=True)
class LoginTicket:
    """What a login link carries: who signs in, the ticket's own id (it is taken once) and
    when it expires (seconds since the epoch)."""

    principal: Principal
    ticket_id: str
    expires: int


def mint_login_ticket(
    secret: str, principal: Principal, ttl: timedelta, now: datetime | None = None
) -> str:
    """A short-lived ticket for a login link; the console exchanges it once for a session."""
    if not secret:
        raise ValueError("no secret: set CITYLOOP_JWT_SECRET")
    claims = _claims(principal, LOGIN_ISSUER, now or wall_clock(), ttl)
    claims["jti"] = uuid.uuid4().hex
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_login_ticket(secret: str, ticket: str, now: float) -> LoginTicket:
    """The ticket's contents if we signed it as a ticket and it has not expired; whether it
    was taken already is the console's to know."""
    principal, expires, claims = _read(secret, ticket, now, LOGIN_ISSUER)
    ticket_id = claims.get("jti")
    if not isinstance(ticket_id, str) or not ticket_id:
        raise InvalidToken("a login ticket without an id")
    return LoginTicket(principal, ticket_id, expires)


class VerifiedTokens:
    """Tokens whose signature this process has checked already, each until it expires.

    A duty officer's screen sends the same token with every request; checking its signature
    and claims each time was a twentieth of a case detail's cost. A token is remembered by its
    whole text, which the secret signed, so a hit is the same token verified before; the
    least recently used are forgotten past `capacity`, and an expired one is checked (and
    refused) again."""

    def __init__(
        self, secret: str, capacity: int = 4096, clock: Callable[[], float] = time.time
    ) -> None:
        self._secret = secret
        self._capacity = capacity
        self._clock = clock
        self._known: OrderedDict[str, tuple[Principal, int]] = OrderedDict()
        self._signed_out: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._known)

    def principal(self, token: str) -> Principal:
        return self.verified(token)[0]

    def verified(self, token: str) -> tuple[Principal, int]:
        """The principal a token names and when it expires; InvalidToken if it is not ours,
        has expired or was signed out."""
        now = self._clock()
        known = self._known.get(token)
        if known is not None and now < known[1]:
            self._known.move_to_end(token)
            return known
        if token in self._signed_out:
            raise InvalidToken("signed out")
        principal, expires = read_token(self._secret, token, now)  # raises InvalidToken
        self._known[token] = (principal, expires)
        self._known.move_to_end(token)
        if len(self._known) > self._capacity:
            self._known.popitem(last=False)
        return principal, expires

    def sign_out(self, token: str) -> None:
        """Refuse this token from now on (a console session's, at logout), until it expires
        anyway. Kept in this process: a session signed out at one API replica is still taken by
        another until it expires."""
        now = self._clock()
        try:
            _, expires = read_token(self._secret, token, now)
        except InvalidToken:
            return  # refused already
        self._known.pop(token, None)
        self._signed_out = {
            signed: until for signed, until in self._signed_out.items() if until > now
        }
        self._signed_out[token] = expires
