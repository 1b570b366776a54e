"""Geographic cells: the partition key of correlation work (a coarse lattice cell and a category
family), chosen so that two reports within correlation radius of each other meet in one cell."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from cityloop.contracts import AreaLevel, GeoPoint, Incident
from topology import Topology

CELL_DEGREES = 0.05
"""About 5.5 km north-south and 4.8 km east-west in Chengdu: far wider than any correlation
radius, so only reports near a cell's edge need the border rule."""

METRES_PER_DEGREE_LAT = 111_320.0


@dataclass(frozen=True, order=True)
class Cell:
    row: int
    col: int


def cell_of(point: GeoPoint) -> Cell:
    return Cell(math.floor(point.lat / CELL_DEGREES), math.floor(point.lon / CELL_DEGREES))


def cells_touched(point: GeoPoint, radius_m: float) -> list[Cell]:
    """The cells a disk of `radius_m` around `point` reaches (its bounding box's cells)."""
    dlat = radius_m / METRES_PER_DEGREE_LAT
    dlon = radius_m / (METRES_PER_DEGREE_LAT * max(math.cos(math.radians(point.lat)), 0.01))
    rows = range(
        math.floor((point.lat - dlat) / CELL_DEGREES),
        math.floor((point.lat + dlat) / CELL_DEGREES) + 1,
    )
    cols = range(
        math.floor((point.lon - dlon) / CELL_DEGREES),
        math.floor((point.lon + dlon) / CELL_DEGREES) + 1,
    )
    return [Cell(row, col) for row in rows for col in cols]


def owner_cell(point: GeoPoint, radius_m: float) -> Cell:
    """Border rule: a report whose correlation disk crosses into other cells belongs to the
    lowest of them, so two reports within radius on either side of an edge meet in one cell.
    That is the bounding box's south-west corner cell: `min(cells_touched(point, radius_m))`
    without building the list."""
    return Cell(*_owner_row_col(point, radius_m))


def _owner_row_col(point: GeoPoint, radius_m: float) -> tuple[int, int]:
    dlat = radius_m / METRES_PER_DEGREE_LAT
    dlon = radius_m / (METRES_PER_DEGREE_LAT * max(math.cos(math.radians(point.lat)), 0.01))
    return (
        math.floor((point.lat - dlat) / CELL_DEGREES),
        math.floor((point.lon - dlon) / CELL_DEGREES),
    )


@lru_cache(maxsize=64)
def family_radius(topology: Topology, family: str) -> float:
    """The widest correlation radius of a family's categories: how far apart two of its
    reports may be and still be one matter."""
    return max(
        (c.correlation.radius_m for c in topology.categories.values() if c.family == family),
        default=0.0,
    )


@lru_cache(maxsize=4096)
def family_of(topology: Topology, category_code: str) -> str:
    category = topology.category(category_code)
    return category.family if category is not None else category_code


def reference_point(topology: Topology, incident: Incident) -> tuple[GeoPoint | None, bool]:
    """Where the incident is, and whether that is a precise point (else an area's centroid)."""
    if incident.location is not None:
        return incident.location, True
    return _area_centroid(topology, tuple(incident.area_codes)), False


@lru_cache(maxsize=4096)
def _area_centroid(topology: Topology, area_codes: tuple[str, ...]) -> GeoPoint | None:
    """The centroid of the lowest area holding all of `area_codes` (else the first of them)."""
    area = topology.lowest_common_ancestor(area_codes) or area_codes[0]
    spec = topology.area(area)
    return spec.centroid if spec is not None else None


def correlation_key(topology: Topology, incident: Incident) -> str:
    """The partition key of the correlation work: category family and owner cell."""
    family = family_of(topology, incident.category_code)
    point, _ = reference_point(topology, incident)
    if point is None:
        return f"{family}|area:{incident.area_codes[0]}"
    row, col = _owner_row_col(point, family_radius(topology, family))  # no `Cell` to build
    return f"{family}|{row}|{col}"


@lru_cache(maxsize=4096)
def communities_of(topology: Topology, area_codes: tuple[str, ...]) -> frozenset[str]:
    """The communities the areas lie in (an area above community level stands for itself)."""
    return frozenset(topology.ancestor_at(code, AreaLevel.COMMUNITY) or code for code in area_codes)
