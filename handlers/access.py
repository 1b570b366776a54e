"""Who may see and do what: roles, scopes, and whose eyes see callers' personal data (pure)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cityloop.contracts import Source
from cityloop.errors import CityloopError


class Role(StrEnum):
    PUBLISHER = "publisher"
    """A departmental system that posts events of one source."""
    DEPARTMENT = "department"
    """A department: sees and acts on the cases it handles or handled."""
    DUTY_OFFICER = "duty_officer"
    """An operations centre's duty officer: sees its area's subtree, coordinates there."""
    DISPATCHER = "dispatcher"
    """A 12345 centre's dispatcher (派单员): sees its area's subtree, dispatches and
    re-dispatches what the desk holds."""
    AUDITOR = "auditor"
    """Supervision and evaluation (考核): sees everything, acts on nothing, no personal data."""


class Principal(BaseModel):
    """The caller, as its bearer token says."""

    model_config = ConfigDict(frozen=True)

    subject: str = Field(description="who: a system, a person or a desk")
    role: Role
    scope: str = Field(
        default="",
        description="publisher: its source; department: its id; duty officer and dispatcher: "
        "its area code",
    )
    sources: tuple[str, ...] = Field(
        default=(),
        description="publisher: the CloudEvent `source` URIs it may publish (the token's "
        "`sources` claim); a publisher without them may publish nothing",
    )

    @model_validator(mode="after")
    def _sources_are_a_publishers(self) -> Principal:
        if self.sources and self.role is not Role.PUBLISHER:
            raise ValueError("only a publisher names the sources it publishes")
        return self

    @property
    def actor(self) -> str:
        """How commands name this caller; the case handlers authorise by it."""
        if self.role is Role.DEPARTMENT:
            return f"dept:{self.scope}"
        if self.role is Role.DUTY_OFFICER:
            return f"centre:{self.scope}"
        if self.role is Role.DISPATCHER:
            return f"desk:{self.scope}"
        return f"{self.role.value}:{self.subject}"


class Denied(Exception):
    """A request the principal may not make; `reason` says why for people, `code` for programs
    (the 403's `reason`)."""

    def __init__(self, reason: str, code: str = "forbidden"):
        super().__init__(reason)
        self.reason = reason
        self.code = code


NO_SOURCE_CLAIM = "no_source_claim"
"""A publisher's token that names no CloudEvent source: it may publish nothing."""
SOURCE_NOT_ALLOWED = "source_not_allowed"
"""An event whose CloudEvent `source` the publisher's token does not name."""


def check_may_publish(principal: Principal, source: Source) -> None:
    """A publisher of this kind of source, whose token names the source URIs it may publish."""
    if principal.role is not Role.PUBLISHER:
        raise Denied(f"only publishers post events; this token is a {principal.role.value}'s")
    if principal.scope != source.value:
        raise Denied(f"this publisher may post {principal.scope} events, not {source.value}")
    if not principal.sources:
        raise Denied(
            "this publisher's token names no CloudEvent source it may publish; mint one with "
            "`cityloop token --role publisher --scope KIND --source URI`",
            NO_SOURCE_CLAIM,
        )


def check_may_publish_as(principal: Principal, event_source: str) -> None:
    """The event's CloudEvent `source` is one the token names: `source` + `id` is the event's
    idempotency key, so a publisher that could write another's source could take its ids and
    have the real events refused as conflicting duplicates."""
    if not principal.sources:
        raise Denied("this publisher's token names no CloudEvent source", NO_SOURCE_CLAIM)
    if event_source not in principal.sources:
        raise Denied(
            f"this publisher may post events of source {', '.join(principal.sources)}, "
            f"not {event_source[:200]!r}",
            SOURCE_NOT_ALLOWED,
        )


AREA_SCOPED_ROLES = frozenset({Role.DUTY_OFFICER, Role.DISPATCHER})
"""Roles whose scope is an area code: they see the cases of its subtree."""


class NoSuchPrincipal(CityloopError):
    """A token asked for that names no principal cityloop knows (`cityloop token`)."""


AREA_CODE = re.compile(r"[0-9]{6}(?:[0-9]{3}){0,3}")
"""A GB/T 2260 code: six digits, three more per level below the district."""
PLAIN_CODE = re.compile(r"[!-~]{1,200}")
"""A department id or a CloudEvent `source` URI-reference a token names: printable ASCII, no
spaces."""


def principal_to_mint(
    role: str, scope: str, sources: Sequence[str] = (), subject: str | None = None
) -> Principal:
    """The principal a token is minted for, or NoSuchPrincipal saying what is missing. Every
    role but the auditor's names its scope: a duty officer or dispatcher without one would be
    the whole city's, so the city is named as any other area (`510100`); a publisher names its
    kind of source and the CloudEvent source URIs it publishes."""
    roles = ", ".join(known.value for known in Role)
    try:
        wanted = Role(role)
    except ValueError:
        raise NoSuchPrincipal(f"unknown role {role!r}; one of {roles}") from None
    if wanted is not Role.PUBLISHER and sources:
        raise NoSuchPrincipal(f"only a publisher names sources, not a {wanted.value}")
    if wanted is Role.AUDITOR:
        if scope:
            raise NoSuchPrincipal("an auditor sees every case: it has no --scope")
    elif not scope:
        raise NoSuchPrincipal(f"a {wanted.value}'s token needs --scope: {SCOPE_HELP[wanted]}")
    if wanted in AREA_SCOPED_ROLES and not AREA_CODE.fullmatch(scope):
        raise NoSuchPrincipal(f"--scope {scope!r}: {SCOPE_HELP[wanted]}")
    if wanted is Role.DEPARTMENT and not PLAIN_CODE.fullmatch(scope):
        raise NoSuchPrincipal(f"--scope {scope!r}: {SCOPE_HELP[wanted]}")
    if wanted is Role.PUBLISHER:
        if scope not in {kind.value for kind in Source}:
            raise NoSuchPrincipal(f"--scope {scope!r}: {SCOPE_HELP[wanted]}")
        if not sources:
            raise NoSuchPrincipal(
                "a publisher's token names the CloudEvent sources it publishes: "
                "--source URI (once per source, e.g. --source /12345/chengdu)"
            )
        for uri in sources:
            if not PLAIN_CODE.fullmatch(uri):
                raise NoSuchPrincipal(
                    f"--source {uri!r}: a source URI is printable text without spaces, "
                    "at most 200 characters"
                )
    return Principal(
        subject=subject or f"{wanted.value}:{scope}",
        role=wanted,
        scope=scope,
        sources=tuple(dict.fromkeys(sources)),
    )


SCOPE_HELP = {
    Role.PUBLISHER: "its kind of source: " + ", ".join(kind.value for kind in Source),
    Role.DEPARTMENT: "its department id (510104001.water)",
    Role.DUTY_OFFICER: "its centre's area code (510104; the whole city's is named too: 510100)",
    Role.DISPATCHER: "its 12345 centre's area code (510104; the whole city's: 510100)",
    Role.AUDITOR: "none",
}


def check_may_act(principal: Principal) -> None:
    if principal.role not in (Role.DEPARTMENT, Role.DUTY_OFFICER, Role.DISPATCHER):
        raise Denied(f"a {principal.role.value} does not act on cases")


def check_may_read_cases(principal: Principal) -> None:
    if principal.role is Role.PUBLISHER:
        raise Denied("publishers post events; they do not read cases")


def subtree_prefix(area: str, city: str) -> str | None:
    """The code prefix of the subtree a duty officer of `area` sees; None for the whole city.
    Below the district, codes extend their parent's (510104 → 510104001 → 510104001001);
    districts do not extend the city's code (510100 → 510104): the city sees everything."""
    return None if area == city else area


DISTRICT_CODE_LENGTH = 6
"""A district's code is six digits (GB/T 2260's county level), and every code below it extends
them, so an area code's first six characters are its district's."""


def district_code(area: str) -> str:
    """The district an area code is in (the city's own code, for the city)."""
    return area[:DISTRICT_CODE_LENGTH]


def subtree_district(area: str) -> str | None:
    """The district every code of an area's subtree is in; None for a code shorter than a
    district's, whose subtree is not within one."""
    return district_code(area) if len(area) >= DISTRICT_CODE_LENGTH else None


def sees_personal_data(principal: Principal) -> bool:
    """Only duty officers see callers' names and phones: calling back (回访) is theirs."""
    return principal.role is Role.DUTY_OFFICER
