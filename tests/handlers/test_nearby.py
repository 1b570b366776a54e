"""The index of a correlation key's open cases chooses whom correlation measures, never what it
decides: every case the match could accept is among those it gives."""

from __future__ import annotations

import math
from functools import lru_cache
from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import handlers.nearby
from cityloop.contracts import GeoPoint
from cityloop.loadtest.generate import ScenarioConfig, generate
from handlers.case import CaseState
from handlers.cells import communities_of
from handlers.nearby import NEAR_CELL_DEGREES, KeyIndex, cells_within
from handlers.partition import CasePartition, Destination, WorkRecord, take_source_record
from topology import Topology, load_topology
from topology.geo import distance_m


@lru_cache
def chengdu() -> Topology:
    return load_topology()


def _cell_of(point: GeoPoint) -> tuple[int, int]:
    return math.floor(point.lat / NEAR_CELL_DEGREES), math.floor(point.lon / NEAR_CELL_DEGREES)


@given(
    st.floats(min_value=-80.0, max_value=80.0),
    st.floats(min_value=-179.0, max_value=179.0),
    st.floats(min_value=1.0, max_value=5_000.0),
    st.floats(min_value=-1.0, max_value=1.0),
    st.floats(min_value=-1.0, max_value=1.0),
)
def test_every_point_within_the_radius_lies_in_a_cell_looked_at(
    lat: float, lon: float, radius: float, north: float, east: float
) -> None:
    centre = GeoPoint(lat=lat, lon=lon)
    spread = math.degrees(radius / 6_371_000) * 1.5  # a box a little wider than the circle
    other = GeoPoint(
        lat=lat + north * spread,
        lon=lon + east * spread / math.cos(math.radians(abs(lat) + spread)),
    )
    assume(distance_m(lat, lon, other.lat, other.lon) <= radius)
    assert _cell_of(other) in set(cells_within(centre, radius))


def _state(case_id: str, category: str, areas: list[str], point: GeoPoint | None) -> CaseState:
    return cast(
        CaseState,
        SimpleNamespace(
            case_id=case_id,
            category_code=category,
            area_codes=areas,
            location=point,
            location_precise=point is not None,
        ),
    )


def _a_community(topology: Topology) -> str:
    return next(code for code, area in topology.areas.items() if area.level.value == "community")


def test_a_case_is_found_where_it_is_now_and_not_where_it_was() -> None:
    topology = chengdu()
    community = _a_community(topology)
    communities = communities_of(topology, (community,))
    here = GeoPoint(lat=30.66, lon=104.06)
    index = KeyIndex(topology)

    index.place(_state("precise", "waterlogging", [community], here))
    index.place(_state("by-area", "waterlogging", [community], None))
    near_here = index.near(here, True, "waterlogging", communities, 100.0)
    assert near_here == {"precise", "by-area"}
    far = GeoPoint(lat=30.70, lon=104.06)  # about 4.4 km north
    assert index.near(far, True, "waterlogging", communities, 100.0) == {"by-area"}
    # a report placed only by area meets the cases of its own category in its communities
    assert index.near(None, False, "waterlogging", communities, 100.0) == {"precise", "by-area"}
    assert index.near(None, False, "noise", communities, 100.0) == set()

    # a dispatcher gives the area-only case another category: it is found under that one
    index.place(_state("by-area", "noise", [community], None))
    assert index.near(None, False, "noise", communities, 100.0) == {"by-area"}
    assert index.near(here, True, "waterlogging", communities, 100.0) == {"precise"}

    index.remove("precise")
    assert index.near(here, True, "waterlogging", communities, 100.0) == set()
    assert index.by_cell == {}  # nothing left behind for a case that left


def _decisions(topology: Topology, swap_at: int | None = None) -> list[bytes]:
    """Every record a stream makes the worker's handlers write, one partition deciding all."""
    stream = generate(topology, ScenarioConfig(minutes=40, rate=8.0, seed=21))
    core = CasePartition(0)
    written: list[bytes] = []
    current = topology
    for number, record in enumerate(stream.records):
        assert record.value is not None and record.timestamp_ms is not None
        if number == swap_at:
            current = load_topology()  # another topology object: the index is built again
        work = WorkRecord("cityloop.source", 0, number, None, record.value, record.timestamp_ms)
        out = take_source_record(work, current, record.source, None)
        if out.to is not Destination.INCIDENTS:
            written.append(out.value)
            continue
        incident = WorkRecord(
            "cityloop.incidents", 0, number, out.key, out.value, record.timestamp_ms
        )
        for send in core.take(incident, current, {}, "cityloop.incidents"):
            written.append((send.key or b"") + send.value)
    return written


@pytest.fixture
def index_from(monkeypatch: pytest.MonkeyPatch) -> Any:
    def choose(open_cases: int) -> None:
        monkeypatch.setattr(handlers.nearby, "INDEX_FROM", open_cases)

    return choose


def test_correlation_decides_the_same_with_the_index_as_by_measuring_every_case(
    index_from: Any,
) -> None:
    topology = chengdu()
    index_from(10**9)
    measuring_each = _decisions(topology)
    index_from(0)
    indexed = _decisions(topology, swap_at=len(measuring_each) // 2)
    assert indexed == measuring_each
    attached = sum(b'"type":"ReportAttached"' in record for record in indexed)
    assert attached > 100  # the stream did correlate: there was something to get wrong
