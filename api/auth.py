"""Bearer tokens: signed JWTs (HS256) carrying a role and a scope, with a secret from settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

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
    issued = now or datetime.now(UTC)
    claims = {
        "iss": ISSUER,
        "sub": principal.subject,
        "role": principal.role.value,
        "scope": principal.scope,
        "iat": int(issued.timestamp()),
        "exp": int((issued + ttl).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_token(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "sub", "iss"]},
        )
        return Principal(
            subject=claims["sub"], role=Role(claims["role"]), scope=claims.get("scope", "")
        )
    except (jwt.PyJWTError, KeyError, ValueError) as exc:
        raise InvalidToken(str(exc)) from exc
