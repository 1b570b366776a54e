"""Bearer tokens remembered once verified: never past their expiry, never a different token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from api.auth import InvalidToken, VerifiedTokens, mint_token
from handlers.access import Principal, Role
from tests.conftest import TEST_SECRET as SECRET

OFFICER = Principal(subject="desk-1", role=Role.DUTY_OFFICER, scope="510104")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now.timestamp()


def test_a_remembered_token_is_refused_once_it_expires() -> None:
    issued = datetime.now(UTC).replace(microsecond=0)
    clock = Clock(issued)
    tokens = VerifiedTokens(SECRET, clock=clock)
    token = mint_token(SECRET, OFFICER, timedelta(minutes=5), now=issued)
    assert tokens.principal(token) == OFFICER
    clock.now = issued + timedelta(minutes=4, seconds=59)
    assert tokens.principal(token) == OFFICER
    clock.now = issued + timedelta(minutes=5)
    with pytest.raises(InvalidToken, match="expired"):
        tokens.principal(token)
    assert len(tokens) == 1  # remembered, but not trusted past its expiry


def test_an_expired_token_is_refused_the_first_time_too() -> None:
    issued = datetime.now(UTC).replace(microsecond=0)
    tokens = VerifiedTokens(SECRET, clock=Clock(issued))
    with pytest.raises(InvalidToken, match="expired"):
        tokens.principal(
            mint_token(SECRET, OFFICER, timedelta(minutes=5), now=issued - timedelta(minutes=6))
        )
    assert len(tokens) == 0


def test_a_token_changed_by_one_character_is_checked_and_refused() -> None:
    tokens = VerifiedTokens(SECRET)
    token = mint_token(SECRET, OFFICER, timedelta(hours=1))
    assert tokens.principal(token) == OFFICER
    header, claims, signature = token.split(".")
    forged = ".".join((header, claims, signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")))
    with pytest.raises(InvalidToken):
        tokens.principal(forged)
    other = mint_token("another-secret-of-thirty-two-byte", OFFICER, timedelta(hours=1))
    with pytest.raises(InvalidToken):
        tokens.principal(other)


def test_it_remembers_at_most_its_capacity() -> None:
    tokens = VerifiedTokens(SECRET, capacity=3)
    minted = [
        mint_token(SECRET, OFFICER.model_copy(update={"subject": f"desk-{i}"}), timedelta(hours=1))
        for i in range(10)
    ]
    for token in minted:
        tokens.principal(token)
    assert len(tokens) == 3
    assert [tokens.principal(token).subject for token in minted[-3:]] == [
        "desk-7",
        "desk-8",
        "desk-9",
    ]


PUBLISHER = Principal(
    subject="12345",
    role=Role.PUBLISHER,
    scope="hotline",
    sources=("/12345/chengdu", "/cityloop/open311"),
)


def test_a_publishers_token_carries_the_sources_it_may_publish() -> None:
    token = mint_token(SECRET, PUBLISHER, timedelta(hours=1))
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], issuer="cityloop")
    assert claims["sources"] == ["/12345/chengdu", "/cityloop/open311"]
    assert VerifiedTokens(SECRET).principal(token) == PUBLISHER
    officer = jwt.decode(
        mint_token(SECRET, OFFICER, timedelta(hours=1)), SECRET, algorithms=["HS256"]
    )
    assert "sources" not in officer


def forged(**claims: object) -> str:
    """A token signed with our secret whose claims are not what `mint_token` writes."""
    return jwt.encode(
        {"iss": "cityloop", "sub": "x", "role": "duty_officer", "scope": "510104", **claims},
        SECRET,
        algorithm="HS256",
    )


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": "9999999999"},  # a number written as text is no NumericDate
        {"exp": True},
        {"exp": None},
        {"exp": [9999999999]},
        {"exp": 1e400},  # infinity, as JSON reads it
        {"exp": 9999999999, "sources": "/12345/chengdu"},  # a claim that is not a list
        {"exp": 9999999999, "role": "publisher", "scope": "hotline", "sources": [1]},
        {"exp": 9999999999, "sources": ["/12345/chengdu"]},  # sources on a duty officer's
        {"exp": 9999999999, "role": "bogus"},
    ],
)
def test_a_token_with_malformed_claims_is_refused(claims: dict[str, object]) -> None:
    with pytest.raises(InvalidToken):
        VerifiedTokens(SECRET).principal(forged(**claims))


def test_a_numeric_exp_may_have_a_fraction() -> None:
    assert VerifiedTokens(SECRET).principal(forged(exp=9999999999.5)) == OFFICER.model_copy(
        update={"subject": "x"}
    )
