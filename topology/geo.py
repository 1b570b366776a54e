"""Plane geometry for placing a point in a community: polygons first, else nearest centroid."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from cityloop.contracts import GeoPoint

EARTH_RADIUS_M = 6_371_000.0


@dataclass(frozen=True, slots=True)
class Place:
    """A community as the locator sees it: where its middle is and, if known, its outline."""

    code: str
    lat: float
    lon: float
    ring: tuple[tuple[float, float], ...] | None
    bbox: tuple[float, float, float, float] | None  # min lat, min lon, max lat, max lon

    def contains(self, lat: float, lon: float) -> bool:
        if self.ring is None or self.bbox is None:
            return False
        min_lat, min_lon, max_lat, max_lon = self.bbox
        if not (min_lat <= lat <= max_lat and min_lon <= lon <= max_lon):
            return False
        return point_in_ring(lat, lon, self.ring)


def point_in_ring(lat: float, lon: float, ring: Sequence[tuple[float, float]]) -> bool:
    """Even-odd rule; a city-sized area is small enough to treat lat/lon as a plane."""
    inside = False
    last_lat, last_lon = ring[-1]
    for vertex_lat, vertex_lon in ring:
        if (vertex_lat > lat) != (last_lat > lat):
            crossing = vertex_lon + (lat - vertex_lat) * (last_lon - vertex_lon) / (
                last_lat - vertex_lat
            )
            if lon < crossing:
                inside = not inside
        last_lat, last_lon = vertex_lat, vertex_lon
    return inside


def distance_m(a_lat: float, a_lon: float, b_lat: float, b_lon: float) -> float:
    """Equirectangular distance: within a city it is within a fraction of a percent."""
    x = math.radians(b_lon - a_lon) * math.cos(math.radians((a_lat + b_lat) / 2))
    y = math.radians(b_lat - a_lat)
    return EARTH_RADIUS_M * math.hypot(x, y)


def make_place(
    code: str, centroid: GeoPoint | None, polygon: Sequence[GeoPoint] | None
) -> Place | None:
    """A locatable place, or None for an area with neither centroid nor polygon."""
    ring = tuple((p.lat, p.lon) for p in polygon) if polygon else None
    if centroid is not None:
        lat, lon = centroid.lat, centroid.lon
    elif ring is not None:
        lat = sum(p[0] for p in ring) / len(ring)
        lon = sum(p[1] for p in ring) / len(ring)
    else:
        return None
    bbox = None
    if ring is not None:
        lats = [p[0] for p in ring]
        lons = [p[1] for p in ring]
        bbox = (min(lats), min(lons), max(lats), max(lons))
    return Place(code=code, lat=lat, lon=lon, ring=ring, bbox=bbox)


def locate_among(places: Sequence[Place], point: GeoPoint) -> tuple[str, str] | None:
    """(code, "polygon") when an outline holds the point, else (code, "nearest_centroid")."""
    lat, lon = point.lat, point.lon
    for place in places:
        if place.contains(lat, lon):
            return place.code, "polygon"
    if not places:
        return None
    # Ties go to the first place in file order, so the answer never depends on hashing.
    nearest = min(places, key=lambda place: distance_m(lat, lon, place.lat, place.lon))
    return nearest.code, "nearest_centroid"


class PlaceIndex:
    """Places bucketed on a lat/lon grid so that a lookup reads a few cells, not all of
    them; answers exactly what `locate_among` answers over the same places."""

    LINEAR_BELOW = 64  # fewer places than this: a plain scan is as fast

    def __init__(self, places: Sequence[Place], cell_degrees: float = 0.02) -> None:
        self.places = tuple(places)
        self.cell = cell_degrees
        self.centroids: dict[tuple[int, int], list[int]] = {}
        self.outlines: dict[tuple[int, int], list[int]] = {}
        for index, place in enumerate(self.places):
            self.centroids.setdefault(self._cell(place.lat, place.lon), []).append(index)
            if place.bbox is not None:
                low_i, low_j = self._cell(place.bbox[0], place.bbox[1])
                high_i, high_j = self._cell(place.bbox[2], place.bbox[3])
                for i in range(low_i, high_i + 1):
                    for j in range(low_j, high_j + 1):
                        self.outlines.setdefault((i, j), []).append(index)
        cells = list(self.centroids)
        self.bounds = (
            (
                min(i for i, _ in cells),
                min(j for _, j in cells),
                max(i for i, _ in cells),
                max(j for _, j in cells),
            )
            if cells
            else (0, 0, -1, -1)
        )

    def _cell(self, lat: float, lon: float) -> tuple[int, int]:
        return math.floor(lat / self.cell), math.floor(lon / self.cell)

    def locate(self, point: GeoPoint) -> tuple[str, str] | None:
        lat, lon = point.lat, point.lon
        home_i, home_j = self._cell(lat, lon)
        min_i, min_j, max_i, max_j = self.bounds
        outside = not (min_i <= home_i <= max_i and min_j <= home_j <= max_j)
        if len(self.places) < self.LINEAR_BELOW or outside:
            return locate_among(self.places, point)  # far away points are rare: scan
        for index in self.outlines.get((home_i, home_j), ()):  # file order, as in a scan
            if self.places[index].contains(lat, lon):
                return self.places[index].code, "polygon"
        best: tuple[float, int] | None = None
        max_ring = max(home_i - min_i, max_i - home_i, home_j - min_j, max_j - home_j)
        for ring in range(max_ring + 1):
            for i in range(home_i - ring, home_i + ring + 1):
                edge = abs(i - home_i) == ring
                for j in (
                    range(home_j - ring, home_j + ring + 1)
                    if edge
                    else (home_j - ring, home_j + ring)
                ):
                    for index in self.centroids.get((i, j), ()):
                        place = self.places[index]
                        candidate = (distance_m(lat, lon, place.lat, place.lon), index)
                        if best is None or candidate < best:
                            best = candidate
            if best is not None:
                # Everything in the next ring is at least `ring` whole cells away in
                # latitude or longitude; stop once that is farther than the best so far.
                widest_lat = min(89.9, abs(lat) + (ring + 2) * self.cell)
                nearest_next = (
                    EARTH_RADIUS_M
                    * math.radians(ring * self.cell)
                    * math.cos(math.radians(widest_lat))
                )
                if nearest_next > best[0]:
                    break
        if best is None:
            return None
        return self.places[best[1]].code, "nearest_centroid"
