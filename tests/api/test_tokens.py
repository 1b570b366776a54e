"""Bearer tokens remembered once verified: never past their expiry, never a different token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
