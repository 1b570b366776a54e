"""Who may see and do what: roles, scopes, and whose eyes see callers' personal data (pure)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from cityloop.contracts import Source


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
    """A request the principal may not make; `reason` says why (for a 403)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def check_may_publish(principal: Principal, source: Source) -> None:
    if principal.role is not Role.PUBLISHER:
        raise Denied(f"only publishers post events; this token is a {principal.role.value}'s")
    if principal.scope != source.value:
        raise Denied(f"this publisher may post {principal.scope} events, not {source.value}")


AREA_SCOPED_ROLES = frozenset({Role.DUTY_OFFICER, Role.DISPATCHER})
"""Roles whose scope is an area code: they see the cases of its subtree."""


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
