"""What the API takes in paths, queries and headers: typed so that a value the read model cannot
hold is a 422 naming it, never a 500 from the database."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, StringConstraints

from cityloop.contracts import written_time

PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
"""Identifiers and codes are printable text: PostgreSQL cannot hold a NUL, and no code has a
control character."""

MAX_CODE_LENGTH = 200

Code = Annotated[str, StringConstraints(pattern=PRINTABLE, max_length=MAX_CODE_LENGTH)]
"""An identifier or code that did not come through a checked parameter (a cursor, a body)."""

MAX_POSITION = 2**31 - 1
"""The last stream position there can be: the read model numbers case events in an INTEGER."""

EARLIEST_YEAR = 1900


def representable(moment: datetime) -> datetime:
    """A time the read model can compare with: it converts to UTC, from 1900 on (a default
    period reaches 30 days back from it)."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range once converted to UTC") from None
    if utc.year < EARLIEST_YEAR:
        raise ValueError(f"before {EARLIEST_YEAR}")
    return moment


Moment = Annotated[AwareDatetime, BeforeValidator(written_time), AfterValidator(representable)]
"""An ISO 8601 time with its offset (`2026-11-22T08:15:00+08:00`); never a number (pydantic
alone would take `1764000000` as seconds since 1970)."""


def is_code(text: str) -> bool:
    return len(text) <= MAX_CODE_LENGTH and re.fullmatch(PRINTABLE, text) is not None


def parse_position(text: str) -> int | None:
    """A stream position sent as text (Last-Event-ID): ASCII digits only (`isdigit` also takes
    `²`, which `int` refuses), at most MAX_POSITION; else None."""
    if not (text.isascii() and text.isdigit() and len(text) <= len(str(MAX_POSITION))):
        return None
    position = int(text)
    return position if position <= MAX_POSITION else None
