"""Locating: the grid index answers exactly what a scan over every community answers."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cityloop.contracts import AreaLevel, GeoPoint
from topology import Topology
from topology.geo import Place, PlaceIndex, distance_m, locate_among, make_place, point_in_ring

SQUARE = ((0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0))


def test_point_in_ring() -> None:
    assert point_in_ring(0.5, 0.5, SQUARE)
    assert not point_in_ring(1.5, 0.5, SQUARE)
    assert not point_in_ring(0.5, -0.1, SQUARE)


def test_distance_is_about_right_in_chengdu() -> None:
    # one minute of latitude is one nautical mile, 1852 m
    assert abs(distance_m(30.0, 104.0, 30.0 + 1 / 60, 104.0) - 1852) < 5
    assert distance_m(30.6, 104.0, 30.6, 104.0) == 0


def test_a_place_needs_a_centroid_or_an_outline() -> None:
    assert make_place("510104001001", None, None) is None
    ring = [GeoPoint(lat=lat, lon=lon) for lat, lon in SQUARE]
    place = make_place("510104001001", None, ring)
    assert place is not None and (place.lat, place.lon) == (0.5, 0.5)


_PLACES: dict[str, list[Place]] = {}


def _all_places(topology: Topology) -> list[Place]:
    """Every locatable community in file order, built independently of the index."""
    if topology.version not in _PLACES:
        places = []
        for code, area in topology.areas.items():
            if area.level is AreaLevel.COMMUNITY:
                place = make_place(code, area.centroid, area.polygon)
                if place is not None:
                    places.append(place)
        _PLACES[topology.version] = places
    return _PLACES[topology.version]


@given(
    lat=st.floats(min_value=29.9, max_value=31.3),
    lon=st.floats(min_value=103.2, max_value=104.9),
)
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_index_matches_a_full_scan(chengdu: Topology, lat: float, lon: float) -> None:
    point = GeoPoint(lat=lat, lon=lon)
    places = _all_places(chengdu)
    assert chengdu.locate(point) == locate_among(places, point)


def test_index_falls_back_to_a_scan_far_away(chengdu: Topology) -> None:
    beijing = GeoPoint(lat=39.9, lon=116.4)
    located = chengdu.locate(beijing)
    assert located is not None and located[1] == "nearest_centroid"
    assert located == locate_among(_all_places(chengdu), beijing)


def test_an_empty_index_finds_nothing() -> None:
    assert PlaceIndex([]).locate(GeoPoint(lat=30.0, lon=104.0)) is None
