"""What the API takes as a time in a query or a cursor: ISO 8601 text with its offset, from 1900
on; never a number."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import AwareDatetime, TypeAdapter, ValidationError

from api.params import Moment

MOMENT = TypeAdapter(Moment)


@pytest.mark.parametrize(
    "value", [1764000000, 1764000000.5, "1764000000", "1764000000.5", "-1", True, "now"]
)
def test_a_number_is_not_a_moment(value: Any) -> None:
    with pytest.raises(ValidationError):
        MOMENT.validate_python(value)
    with pytest.raises(ValidationError):
        MOMENT.validate_json(f"{value}" if not isinstance(value, str) else f'"{value}"')


@pytest.mark.parametrize(
    "text", ["2026-11-22T08:15:00+08:00", "2026-11-22T00:15:03.5Z", "1900-01-01T00:00:00Z"]
)
def test_written_moments_read_as_before(text: str) -> None:
    assert MOMENT.validate_python(text) == TypeAdapter(AwareDatetime).validate_python(text)


@pytest.mark.parametrize("text", ["2026-11-22T08:15:00", "2026-11-22", "1899-12-31T23:00:00Z"])
def test_times_without_offset_or_before_1900_stay_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        MOMENT.validate_python(text)
