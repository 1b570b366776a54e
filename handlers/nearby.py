"""Which open cases of a correlation key an incident could join, without measuring each one.

A correlation key is a cell of about 5 km (handlers/cells.py). In a city that runs for weeks it
holds every case still open there, hundreds to thousands in a busy district, and measuring each
against every incident made a decision's cost grow with them. Correlation joins only

- a precisely placed report to a precisely placed case of its family, within the larger of
  their categories' radii, or
- a report to a case of its own category in one of its communities, when either is placed only
  by its area (handlers/correlate.py).

So an index of a key's open cases by a fine grid cell (those with a precise point) and by
category and community (all of them, and apart the ones placed only by area) gives every case
the match could accept, and few it refuses. The match still decides; this only chooses whom
it measures. The index holds case ids: a case's state is a new object at every change, its
place rarely one."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from cityloop.contracts import GeoPoint
from handlers.case import CaseState
from handlers.cells import communities_of
from topology import Topology
from topology.geo import EARTH_RADIUS_M

NEAR_CELL_DEGREES = 0.005
"""About 550 m north-south: most correlation radii are 30-300 m, so a report looks in one to
four cells."""

INDEX_FROM = 48
"""Open cases a key holds before it is indexed: below that, measuring each is as cheap."""

_MARGIN = 1.000001
"""Rounding in `distance_m` must not put a case just inside the radius outside the cells."""

Cell = tuple[int, int]
Place = tuple[Cell | None, tuple[tuple[str, str], ...], bool]
"""Where the index keeps a case: its grid cell (None without a precise point), its category with
each of its communities, and whether it is placed only by its area."""


def _cell(lat: float, lon: float) -> Cell:
    return math.floor(lat / NEAR_CELL_DEGREES), math.floor(lon / NEAR_CELL_DEGREES)


def cells_within(point: GeoPoint, radius_m: float) -> Iterator[Cell]:
    """Every grid cell holding a point within `radius_m` of `point` by `distance_m`: its
    north-south offset is at most radius / R, its east-west offset at most that over the cosine
    of the pair's mean latitude, which is no further from the equator than point + offset."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M) * _MARGIN
    cosine = math.cos(math.radians(min(90.0, abs(point.lat) + dlat)))
    dlon = 180.0 if cosine < 1e-9 else min(180.0, dlat / cosine)
    south, west = _cell(point.lat - dlat, point.lon - dlon)
    north, east = _cell(point.lat + dlat, point.lon + dlon)
    for row in range(south, north + 1):
        for column in range(west, east + 1):
            yield row, column


class KeyIndex:
    """One correlation key's open cases by where a report could meet them: by grid cell (a
    precise point), and by category and community (every case, and apart those placed only by
    their area). Communities are the topology's: an index is for the topology it was built
    with, and is built again for another."""

    __slots__ = ("topology", "by_cell", "by_community", "area_only", "placed")

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.by_cell: dict[Cell, set[str]] = {}
        self.by_community: dict[tuple[str, str], set[str]] = {}
        """(category, community) -> cases of that category in that community."""
        self.area_only: dict[tuple[str, str], set[str]] = {}
        """The same, of cases placed only by their area (a precise report may join those)."""
        self.placed: dict[str, Place] = {}

    def place(self, state: CaseState) -> None:
        location = state.location
        cell = (
            _cell(location.lat, location.lon)
            if state.location_precise and location is not None
            else None
        )
        category = state.category_code
        kinds = tuple(
            (category, community)
            for community in communities_of(self.topology, tuple(state.area_codes))
        )
        where = (cell, kinds, not state.location_precise)
        case_id = state.case_id
        before = self.placed.get(case_id)
        if before == where:
            return
        if before is not None:
            self.remove(case_id)
        if cell is not None:
            self.by_cell.setdefault(cell, set()).add(case_id)
        for kind in kinds:
            self.by_community.setdefault(kind, set()).add(case_id)
            if where[2]:
                self.area_only.setdefault(kind, set()).add(case_id)
        self.placed[case_id] = where

    def remove(self, case_id: str) -> None:
        where = self.placed.pop(case_id, None)
        if where is None:
            return
        cell, kinds, area_only = where
        if cell is not None:
            _discard(self.by_cell, cell, case_id)
        for kind in kinds:
            _discard(self.by_community, kind, case_id)
            if area_only:
                _discard(self.area_only, kind, case_id)

    def near(
        self,
        point: GeoPoint | None,
        precise: bool,
        category_code: str,
        communities: frozenset[str],
        radius_m: float,
    ) -> set[str]:
        """The ids of the cases a report could join: for a precise report, the precise cases
        within `radius_m` and the cases of its category placed only by area in its communities;
        for a report placed only by area, the cases of its category in its communities."""
        found: set[str] = set()
        by_kind = self.by_community if not precise or point is None else self.area_only
        for community in communities:
            here = by_kind.get((category_code, community))
            if here:
                found |= here
        if precise and point is not None:
            by_cell = self.by_cell
            for cell in cells_within(point, radius_m):
                here = by_cell.get(cell)
                if here:
                    found |= here
        return found


def _discard(index: dict[Any, set[str]], key: Any, case_id: str) -> None:
    ids = index.get(key)
    if ids is not None:
        ids.discard(case_id)
        if not ids:
            del index[key]
