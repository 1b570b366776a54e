"""The handlers' fast paths give exactly what the plain definitions they replace give."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from cityloop.contracts import GeoPoint
from handlers.case import EVENT_NAMESPACE, case_event_id
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
