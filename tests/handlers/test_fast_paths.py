"""The handlers' fast paths give exactly what the plain definitions they replace give."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from cityloop.contracts import GeoPoint
from handlers.case import EVENT_NAMESPACE, case_event_id, micros
from handlers.cells import cells_touched, owner_cell


@given(st.text(max_size=40), st.integers(min_value=0, max_value=10**9))
def test_case_event_ids_are_the_uuid5_they_always_were(case_id: str, version: int) -> None:
    # ids already on the case-event topic must be reproduced after a crash: never change them
    assert case_event_id(case_id, version) == str(
        uuid.uuid5(EVENT_NAMESPACE, f"{case_id}#{version}")
    )


@given(
    st.floats(min_value=-89.0, max_value=89.0),
    st.floats(min_value=-180.0, max_value=180.0),
    st.floats(min_value=0.0, max_value=20_000.0),
)
def test_the_owner_cell_is_the_lowest_cell_touched(lat: float, lon: float, radius: float) -> None:
    point = GeoPoint(lat=lat, lon=lon)
    assert owner_cell(point, radius) == min(cells_touched(point, radius))


_AWARE = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))]),
)


@given(_AWARE, _AWARE, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=60)))
def test_times_in_micros_compare_as_the_datetimes_do(
    a: datetime, b: datetime, window: timedelta
) -> None:
    # the correlation window is checked on integers: it must say what the datetimes say
    assert (a < b, a == b, a > b) == (
        micros(a) < micros(b),
        micros(a) == micros(b),
        micros(a) > micros(b),
    )
    assert (a - window <= b <= a + window) == (
        micros(a) - window // timedelta(microseconds=1)
        <= micros(b)
        <= micros(a) + window // timedelta(microseconds=1)
    )
