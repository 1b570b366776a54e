"""The compiled responsibility graph: an immutable topology with every index built once."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import networkx as nx

from cityloop.contracts import AreaLevel, GeoPoint, RoutingReason, Severity
from topology.errors import TopologyValidationError
from topology.geo import Place, PlaceIndex, make_place
from topology.model import (
    LEVEL_RANK,
    LOOP_RANK,
    AreaSpec,
    CategoryClassSpec,
    CategorySpec,
    CentreSpec,
    DepartmentSpec,
    SensorTypeSpec,
    TopologyDocument,
)
from topology.validate import structural_problems

_EMPTY: Mapping[str, DepartmentSpec] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class CategoryRouting:
    """A category's floors as ranks (0 = micro ... 3 = big), precomputed for routing."""

    spec: CategorySpec
    lowest_rank: int
    severity_rank: Mapping[Severity | None, int]
    emergency_rank: int
    reason: RoutingReason  # every decision starts with it

    @classmethod
    def of(cls, spec: CategorySpec) -> CategoryRouting:
        lowest = LOOP_RANK[spec.lowest_level]
        return cls(
            spec=spec,
            lowest_rank=lowest,
            severity_rank={
                severity: LOOP_RANK[spec.floor_for(severity)] for severity in (None, *Severity)
            },
            emergency_rank=(
                lowest if spec.emergency_floor is None else LOOP_RANK[spec.emergency_floor]
            ),
            reason=RoutingReason(
                rule="lowest_capable_level",
                detail=f"{spec.code} is handled from the {spec.lowest_level} loop up",
            ),
        )


class Topology:
    """Areas, departments, centres and categories, with the lookups routing needs.

    Build it with `Topology.compile(document)` (or the loaders); it validates first and
    raises `TopologyValidationError` with every problem found. Nothing it answers changes
    after that; the only state that grows is caches (locating indices, shared routing
    reasons, the networkx view) built on first use. `topology.routing` reads the
    underscore indices directly: they are this class's contract with it.
    """

    def __init__(self, document: TopologyDocument, *, digest: str = "") -> None:
        # Callers go through compile(), which guarantees the document is structurally sound.
        self.document = document
        self.version = document.version
        self.name = document.name
        self.digest = digest

        self._areas: dict[str, AreaSpec] = {area.code: area for area in document.areas}
        self._rank: dict[str, int] = {
            code: LEVEL_RANK[area.level] for code, area in self._areas.items()
        }
        self._city = next(a.code for a in document.areas if a.level is AreaLevel.CITY)
        self._children: dict[str, list[str]] = {code: [] for code in self._areas}
        top_down = sorted(document.areas, key=lambda area: -LEVEL_RANK[area.level])
        self._chain: dict[str, tuple[str, ...]] = {}
        for area in top_down:
            if area.parent is None:
                self._chain[area.code] = (area.code,)
            else:
                self._chain[area.code] = (area.code, *self._chain[area.parent])
                self._children[area.parent].append(area.code)
        # Cases from a grid are handled by its community: routing works on "homes".
        self._home: dict[str, str] = {
            code: chain[1] if self._rank[code] < 0 else code for code, chain in self._chain.items()
        }

        self._departments: dict[str, DepartmentSpec] = {d.id: d for d in document.departments}
        own: dict[str, dict[str, DepartmentSpec]] = {}
        for department in document.departments:
            own.setdefault(department.area, {})[department.kind] = department
        self._own_departments = own
        # Per area, the nearest department of each kind at or above it: one dict lookup
        # answers "who of kind K holds jurisdiction here" without walking the tree.
        self._reachable: dict[str, dict[str, DepartmentSpec]] = {}
        for area in top_down:
            if self._rank[area.code] < 0:
                continue
            inherited = self._reachable[area.parent] if area.parent is not None else {}
            here = own.get(area.code)
            self._reachable[area.code] = {**inherited, **here} if here else inherited

        self._centres: dict[str, CentreSpec] = {c.id: c for c in document.centres}
        centre_at = {centre.area: centre for centre in document.centres}
        self._centre_above: dict[str, CentreSpec | None] = {}
        for area in top_down:
            inherited_centre = self._centre_above[area.parent] if area.parent is not None else None
            self._centre_above[area.code] = centre_at.get(area.code, inherited_centre)

        self._classes: dict[str, CategoryClassSpec] = {c.code: c for c in document.classes}
        self._categories: dict[str, CategorySpec] = {c.code: c for c in document.categories}
        self._class_of: dict[str, str | None] = {
            code: category.class_code for code, category in self._categories.items()
        }
        self._routing: dict[str, CategoryRouting] = {
            code: CategoryRouting.of(category) for code, category in self._categories.items()
        }
        self._sensor_types: dict[str, SensorTypeSpec] = {
            s.sensor_type: s for s in document.sensor_types
        }
        self._places: dict[str, PlaceIndex] = {}
        # Shared, immutable routing reasons by what they say (see topology.routing).
        self._reason_memo: dict[Hashable, RoutingReason] = {}
        self._graph: nx.DiGraph | None = None

    # --- building ------------------------------------------------------------------------

    @classmethod
    def compile(
        cls, document: TopologyDocument, *, source: str = "topology", digest: str = ""
    ) -> Topology:
        """Validate `document` and build the indices; raises TopologyValidationError."""
        problems = structural_problems(document)
        if problems:
            raise TopologyValidationError(problems, source)
        topology = cls(document, digest=digest)
        problems = topology.routability_problems()
        if problems:
            raise TopologyValidationError(problems, source)
        return topology

    def routability_problems(self) -> list[str]:
        """One line per category whose lead kind some area at or above its floor cannot
        reach. (Co-handlers may be local only, e.g. property managers: routing takes the
        one where the case happened, so they are not required at every level.)"""
        problems: list[str] = []
        routable_areas = [code for code in self._areas if self._rank[code] >= 0]
        for category in self._categories.values():
            lowest = LOOP_RANK[category.lowest_level]
            kind = category.lead_kind
            stranded = [
                code
                for code in routable_areas
                if self._rank[code] >= lowest and kind not in self._reachable[code]
            ]
            if stranded:
                problems.append(
                    f"category {category.code}: no lead department of kind {kind} at or above "
                    f"{len(stranded)} area(s), e.g. {', '.join(stranded[:3])}; "
                    "it cannot be routed there"
                )
        return problems

    # --- lookups --------------------------------------------------------------------------

    @property
    def areas(self) -> Mapping[str, AreaSpec]:
        return MappingProxyType(self._areas)

    @property
    def departments(self) -> Mapping[str, DepartmentSpec]:
        return MappingProxyType(self._departments)

    @property
    def centres(self) -> Mapping[str, CentreSpec]:
        return MappingProxyType(self._centres)

    @property
    def classes(self) -> Mapping[str, CategoryClassSpec]:
        """The catalogue's top-level classes by code, in file order (empty for a flat one)."""
        return MappingProxyType(self._classes)

    @property
    def categories(self) -> Mapping[str, CategorySpec]:
        return MappingProxyType(self._categories)

    @property
    def sensor_types(self) -> Mapping[str, SensorTypeSpec]:
        return MappingProxyType(self._sensor_types)

    @property
    def city(self) -> str:
        """The root area's code."""
        return self._city

    def category(self, code: str) -> CategorySpec | None:
        return self._categories.get(code)

    def class_of(self, category_code: str) -> str | None:
        """The class code of a category; None for an unknown category or a flat catalogue."""
        return self._class_of.get(category_code)

    def sensor_type(self, sensor_type: str) -> SensorTypeSpec | None:
        return self._sensor_types.get(sensor_type)

    def area(self, code: str) -> AreaSpec | None:
        return self._areas.get(code)

    def department(self, department_id: str) -> DepartmentSpec | None:
        return self._departments.get(department_id)

    def centre(self, centre_id: str) -> CentreSpec | None:
        return self._centres.get(centre_id)

    def children(self, code: str) -> tuple[str, ...]:
        return tuple(self._children.get(code, ()))

    def ancestors(self, code: str) -> tuple[str, ...]:
        """`code` itself first, then each parent up to the city; () for an unknown code."""
        return self._chain.get(code, ())

    def ancestor_at(self, code: str, level: AreaLevel) -> str | None:
        """The area at `level` that contains `code` (itself if it is at that level)."""
        chain = self._chain.get(code)
        if chain is None:
            return None
        steps = LEVEL_RANK[level] - self._rank[code]
        return chain[steps] if 0 <= steps < len(chain) else None

    def lowest_common_ancestor(self, codes: Iterable[str]) -> str | None:
        """The lowest area containing every one of `codes`; None if any is unknown."""
        chains = [self._chain.get(code) for code in codes]
        if not chains or any(chain is None for chain in chains):
            return None
        first, *others = [chain for chain in chains if chain is not None]
        common = set(first).intersection(*others)
        return next(code for code in first if code in common)

    def department_at(self, kind: str, area: str) -> DepartmentSpec | None:
        """The department of `kind` holding `area` itself (not an ancestor)."""
        return self._own_departments.get(area, _EMPTY).get(kind)

    def department_for(self, kind: str, area: str) -> DepartmentSpec | None:
        """The nearest department of `kind` at `area` or above it (a grid asks its community)."""
        home = self._home.get(area)
        if home is None:
            return None
        return self._reachable[home].get(kind)

    def centre_for(self, area: str) -> CentreSpec | None:
        """The operations centre at `area`, or the nearest one above it."""
        return self._centre_above.get(area)

    def level_of(self, code: str) -> AreaLevel | None:
        area = self._areas.get(code)
        return area.level if area is not None else None

    @property
    def graph(self) -> nx.DiGraph:
        """The tree as a networkx graph, parent -> child, built on first use."""
        if self._graph is None:
            tree = nx.DiGraph()
            for code, area in self._areas.items():
                tree.add_node(code, level=area.level, name=area.name)
                if area.parent is not None:
                    tree.add_edge(area.parent, code)
            self._graph = tree
        return self._graph

    # --- locating -------------------------------------------------------------------------

    def _places_under(self, code: str) -> PlaceIndex:
        cached = self._places.get(code)
        if cached is not None:
            return cached
        communities: list[str] = []
        pending = [code]
        while pending:
            current = pending.pop()
            if self._rank[current] == LEVEL_RANK[AreaLevel.COMMUNITY]:
                communities.append(current)
            elif self._rank[current] > LEVEL_RANK[AreaLevel.COMMUNITY]:
                pending.extend(reversed(self._children[current]))
        places: list[Place] = []
        for community in communities:
            spec = self._areas[community]
            place = make_place(community, spec.centroid, spec.polygon)
            if place is not None:
                places.append(place)
        self._places[code] = PlaceIndex(places)
        return self._places[code]

    def locate(self, point: GeoPoint, within: str | None = None) -> tuple[str, str] | None:
        """The community holding `point` and how it was found ("polygon" or
        "nearest_centroid"); `within` restricts the search to that area's subtree.
        None when no community there can be placed (or `within` is unknown)."""
        if within is None:
            within = self.city
        if within not in self._areas:
            return None
        scope = self._home[within]
        return self._places_under(scope).locate(point)
