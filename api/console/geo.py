"""The console's map, drawn from the topology itself: each area below the one in view as its
polygon, or the hull of everything under it, projected to SVG coordinates; no map tiles."""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from topology import Topology

Point = tuple[float, float]
"""(lat, lon)"""

WIDTH = 1000.0
PADDING = 30.0


def hull(points: Iterable[Point]) -> list[Point]:
    """The convex hull of the points (Andrew's monotone chain), counter-clockwise; fewer than
    three distinct points are returned as they are."""
    unique = sorted(set(points), key=lambda point: (point[1], point[0]))
    if len(unique) < 3:
        return unique

    def turn(o: Point, a: Point, b: Point) -> float:
        return (a[1] - o[1]) * (b[0] - o[0]) - (a[0] - o[0]) * (b[1] - o[1])

    lower: list[Point] = []
    for point in unique:
        while len(lower) >= 2 and turn(lower[-2], lower[-1], point) <= 0:
            lower.pop()
        lower.append(point)
    upper: list[Point] = []
    for point in reversed(unique):
        while len(upper) >= 2 and turn(upper[-2], upper[-1], point) <= 0:
            upper.pop()
        upper.append(point)
    return lower[:-1] + upper[:-1]


def outline_of(topology: Topology, code: str) -> list[Point]:
    """An area's polygon, or else the hull of everything under it."""
    spec = topology.area(code)
    if spec is not None and spec.polygon:
        return [(corner.lat, corner.lon) for corner in spec.polygon]
    return hull(_points_under(topology, code))


def _points_under(topology: Topology, code: str) -> list[Point]:
    """Every centroid and polygon corner of an area and the areas below it."""
    points: list[Point] = []
    pending = [code]
    while pending:
        current = pending.pop()
        spec = topology.area(current)
        if spec is None:
            continue
        if spec.polygon:
            points.extend((corner.lat, corner.lon) for corner in spec.polygon)
        if spec.centroid is not None:
            points.append((spec.centroid.lat, spec.centroid.lon))
        pending.extend(topology.children(current))
    return points


@dataclass(frozen=True)
class Region:
    """An area below the one in view: its outline and where its name goes."""

    code: str
    name: str
    outline: tuple[Point, ...]
    label: Point | None


@dataclass(frozen=True)
class Frame:
    """The part of the earth a picture shows, and how it is projected into SVG units: an
    equirectangular projection, squeezed by the cosine of the middle latitude."""

    south: float
    west: float
    north: float
    east: float

    @classmethod
    def around(cls, points: Sequence[Point], margin: float = 0.002) -> Frame:
        lats = [point[0] for point in points] or [0.0]
        lons = [point[1] for point in points] or [0.0]
        return cls(min(lats) - margin, min(lons) - margin, max(lats) + margin, max(lons) + margin)

    @property
    def _squeeze(self) -> float:
        return math.cos(math.radians((self.north + self.south) / 2))

    @property
    def scale(self) -> float:
        """SVG units per degree of longitude."""
        span = max(self.east - self.west, (self.north - self.south) / self._squeeze, 1e-6)
        return (WIDTH - 2 * PADDING) / span

    @property
    def height(self) -> float:
        return round((self.north - self.south) / self._squeeze * self.scale + 2 * PADDING, 1)

    def xy(self, point: Point) -> tuple[float, float]:
        lat, lon = point
        x = PADDING + (lon - self.west) * self.scale
        y = PADDING + (self.north - lat) / self._squeeze * self.scale
        return round(x, 1), round(y, 1)

    def path(self, outline: Sequence[Point]) -> str:
        return "M" + " L".join("{},{}".format(*self.xy(point)) for point in outline) + " Z"


@dataclass(frozen=True)
class MapBase:
    """What the map of one area draws before any case: the regions below it, and the places
    one level further down as dots."""

    focus: str
    regions: tuple[Region, ...]
    inner: tuple[tuple[Point, ...], ...]
    """The outlines of the areas one level further down."""
    dots: tuple[Point, ...]
    """Where those of them without an outline are."""

    def frame(self, busy: Iterable[str] = (), points: Sequence[Point] = ()) -> Frame:
        """The whole area; or, given the regions where cases are (and the cases' points),
        just those, so that a city whose cases are all downtown shows downtown."""
        wanted = set(busy)
        chosen = [
            point
            for region in self.regions
            if not wanted or region.code in wanted
            for point in (*region.outline, *((region.label,) if region.label else ()))
        ]
        return Frame.around([*chosen, *points] or [*self.everywhere()])

    def everywhere(self) -> list[Point]:
        return [
            point
            for region in self.regions
            for point in (*region.outline, *((region.label,) if region.label else ()))
        ] or list(self.dots)


@functools.lru_cache(maxsize=64)
def map_base(topology: Topology, focus: str) -> MapBase:
    """The map of `focus` (cached: a compiled topology never changes; the API clears the cache
    when it puts a published version in service, api/main.py)."""
    regions: list[Region] = []
    inner: list[tuple[Point, ...]] = []
    dots: list[Point] = []
    for child in topology.children(focus) or (focus,):
        spec = topology.area(child)
        if spec is None:
            continue
        outline = outline_of(topology, child)
        label = (spec.centroid.lat, spec.centroid.lon) if spec.centroid else None
        if label is None and outline:
            label = (
                sum(point[0] for point in outline) / len(outline),
                sum(point[1] for point in outline) / len(outline),
            )
        regions.append(Region(child, spec.name, tuple(outline) if len(outline) >= 3 else (), label))
        for grandchild in topology.children(child):
            shape = outline_of(topology, grandchild)
            if len(shape) >= 3:
                inner.append(tuple(shape))
            else:
                place = topology.area(grandchild)
                if place is not None and place.centroid is not None:
                    dots.append((place.centroid.lat, place.centroid.lon))
    return MapBase(focus, tuple(regions), tuple(inner), tuple(dots))


def where(
    topology: Topology, lat: float | None, lon: float | None, areas: Sequence[str]
) -> Point | None:
    """Where a case goes on the map: its location, else its first area's centroid (or the
    nearest area above it that has one)."""
    if lat is not None and lon is not None:
        return (lat, lon)
    for code in areas:
        for above in topology.ancestors(code):
            spec = topology.area(above)
            if spec is not None and spec.centroid is not None:
                return (spec.centroid.lat, spec.centroid.lon)
    return None


def nudge(case_id: str, radius: float) -> tuple[float, float]:
    """A small offset of its own for each case, so cases at one centroid do not hide each
    other."""
    digest = hashlib.sha256(case_id.encode()).digest()
    angle = digest[0] / 256 * 2 * math.pi
    distance = radius * (0.3 + 0.7 * digest[1] / 256)
    return round(math.cos(angle) * distance, 1), round(math.sin(angle) * distance, 1)
