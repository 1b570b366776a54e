"""Who may publish what, and which principals `cityloop token` mints (pure)."""

from __future__ import annotations

import re

import pytest

from cityloop.contracts import Source
from handlers.access import (
    NO_SOURCE_CLAIM,
    SOURCE_NOT_ALLOWED,
    Denied,
    NoSuchPrincipal,
    Principal,
    Role,
    check_may_publish,
    check_may_publish_as,
    principal_to_mint,
)

HOTLINE_SYSTEM = Principal(
    subject="12345", role=Role.PUBLISHER, scope="hotline", sources=("/12345/chengdu",)
)


@pytest.mark.parametrize(
    ("principal", "source", "event_source", "code"),
    [
        (HOTLINE_SYSTEM, Source.HOTLINE, "/12345/chengdu", None),
        (HOTLINE_SYSTEM, Source.HOTLINE, "/cim/iot", SOURCE_NOT_ALLOWED),  # squatting
        (HOTLINE_SYSTEM, Source.HOTLINE, "/12345/chengdu/", SOURCE_NOT_ALLOWED),  # exact only
        (HOTLINE_SYSTEM, Source.IOT, "/12345/chengdu", "forbidden"),  # not its kind
        (
            Principal(subject="old", role=Role.PUBLISHER, scope="hotline"),
            Source.HOTLINE,
            "/12345/chengdu",
            NO_SOURCE_CLAIM,
        ),
        (
            Principal(subject="o", role=Role.DUTY_OFFICER, scope="510100"),
            Source.HOTLINE,
            "/12345/chengdu",
            "forbidden",
        ),
    ],
)
def test_a_publisher_posts_only_the_sources_its_token_names(
    principal: Principal, source: Source, event_source: str, code: str | None
) -> None:
    try:
        check_may_publish(principal, source)
        check_may_publish_as(principal, event_source)
    except Denied as denied:
        assert denied.code == code, denied.reason
    else:
        assert code is None


def test_only_a_publisher_names_sources() -> None:
    with pytest.raises(ValueError, match="only a publisher"):
        Principal(subject="x", role=Role.AUDITOR, sources=("/x",))


@pytest.mark.parametrize(
    ("role", "scope", "sources", "problem"),
    [
        ("bogus", "", (), "unknown role 'bogus'"),
        ("duty_officer", "", (), "needs --scope"),
        ("dispatcher", "", (), "needs --scope"),
        ("department", "", (), "needs --scope"),
        ("duty_officer", "5101", (), "area code"),  # a prefix of the city is no area
        ("duty_officer", "510104\n", (), "area code"),
        ("publisher", "hotline", (), "--source"),
        ("publisher", "", ("/12345/chengdu",), "needs --scope"),
        ("publisher", "drone", ("/drone",), "kind of source"),
        ("publisher", "hotline", ("/12345 chengdu",), "printable"),
        ("auditor", "510100", (), "no --scope"),
        ("department", "510104001.water", ("/x",), "only a publisher"),
    ],
)
def test_a_token_is_refused_unless_it_names_a_principal(
    role: str, scope: str, sources: tuple[str, ...], problem: str
) -> None:
    with pytest.raises(NoSuchPrincipal, match=re.escape(problem)):
        principal_to_mint(role, scope, sources)


@pytest.mark.parametrize(
    ("role", "scope", "sources"),
    [
        ("duty_officer", "510100", ()),  # the whole city, named
        ("duty_officer", "510104001", ()),
        ("dispatcher", "510104", ()),
        ("department", "510104001.water", ()),
        ("publisher", "hotline", ("/12345/chengdu", "/cityloop/open311", "/12345/chengdu")),
        ("auditor", "", ()),
    ],
)
def test_the_principals_a_token_is_minted_for(
    role: str, scope: str, sources: tuple[str, ...]
) -> None:
    principal = principal_to_mint(role, scope, sources)
    assert principal.role == Role(role) and principal.scope == scope
    assert principal.sources == tuple(dict.fromkeys(sources))
