"""Bearer tokens: signed JWTs (HS256) carrying a role and a scope, with a secret from settings."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta

import jwt

from cityloop.clock import wall_clock
from handlers.access import Principal, Role

ALGORITHM = "HS256"
ISSUER = "cityloop"


class InvalidToken(Exception):
    """A token that is missing, malformed, expired or not signed with our secret."""


def mint_token(
    secret: str, principal: Principal, ttl: timedelta, now: datetime | None = None
) -> str:
    if not secret:
        raise ValueError("no secret: set CITYLOOP_JWT_SECRET")
    issued = now or wall_clock()
    claims = {
        "iss": ISSUER,
        "sub": principal.subject,
        "role": principal.role.value,
        "scope": principal.scope,
        "iat": int(issued.timestamp()),
        "exp": int((issued + ttl).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_token(secret: str, token: str, now: float) -> tuple[Principal, int]:
    """The principal a token names, and when the token expires (seconds since the epoch);
    expiry is judged against `now`, the caller's clock, not PyJWT's."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "sub", "iss"], "verify_exp": False},
        )
        expires = int(claims["exp"])
        principal = Principal(
            subject=claims["sub"], role=Role(claims["role"]), scope=claims.get("scope", "")
        )
    except (jwt.PyJWTError, KeyError, ValueError, TypeError) as exc:
        raise InvalidToken(str(exc)) from exc
    if expires <= now:
        raise InvalidToken("the token has expired")
    return principal, expires


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

    def __len__(self) -> int:
        return len(self._known)

    def principal(self, token: str) -> Principal:
        now = self._clock()
        known = self._known.get(token)
        if known is not None and now < known[1]:
            self._known.move_to_end(token)
            return known[0]
        principal, expires = read_token(self._secret, token, now)  # raises InvalidToken
        self._known[token] = (principal, expires)
        self._known.move_to_end(token)
        if len(self._known) > self._capacity:
            self._known.popitem(last=False)
        return principal
