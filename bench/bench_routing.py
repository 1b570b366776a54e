"""Routing throughput: decisions per second on Chengdu and on a synthetic 20,000-area city.

    .venv/bin/python bench/bench_routing.py [--queries 200000] [--seed 7]

Every figure is measured in the same run as its baselines, so ratios hold across machines:
- `dict loop`: the same query loop doing two dict lookups per query (Python's floor);
- `naive nx`: the same rules evaluated by walking the networkx tree and scanning each
  area's departments on every decision (no precomputed chains or per-kind lookups).
"""

from __future__ import annotations

import argparse
import platform
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import networkx as nx

from cityloop.contracts import AreaLevel, Assignment, GeoPoint, Mode, Severity
from topology import Topology, TopologyDocument, load_topology, route
from topology.geo import locate_among, make_place
from topology.model import LEVEL_RANK, LOOP_ORDER, LOOP_RANK

Query = tuple[str, tuple[str, ...], Severity | None, Mode]
KINDS_EVERYWHERE = ["urban_management", "police"]
DISTRICT_KINDS = [
    "urban_management",
    "water",
    "transport",
    "police",
    "traffic_police",
    "emergency",
    "fire_rescue",
    "ecology",
    "housing",
    "market_regulation",
    "health",
    "planning",
    "parks",
    "civil_affairs",
    "gas_utility",
    "water_utility",
    "power_utility",
]
STREET_KINDS = [
    "urban_management",
    "police",
    "emergency",
    "market_regulation",
    "health",
    "civil_affairs",
    "water",
    "traffic_police",
    "fire_rescue",
]


def synthetic_document(categories: list[Any], target_areas: int = 20_000) -> TopologyDocument:
    """A city of exactly `target_areas` areas: 25 districts x 16 streets x 16 communities,
    grids filling the rest; every level staffed like Chengdu."""
    areas: list[dict[str, Any]] = [{"code": "990100", "name": "Synthetic City", "level": "city"}]
    departments: list[dict[str, Any]] = []
    centres = [{"id": "centre:990100", "name": "City centre", "area": "990100"}]

    def staff(area: str, kinds: Sequence[str]) -> None:
        departments.extend(
            {"id": f"{area}.{kind}", "name": f"{area} {kind}", "kind": kind, "area": area}
            for kind in kinds
        )

    staff("990100", DISTRICT_KINDS)
    communities: list[str] = []
    for d in range(1, 26):
        district = f"9901{d:02d}"
        areas.append({"code": district, "name": district, "level": "district", "parent": "990100"})
        centres.append({"id": f"centre:{district}", "name": district, "area": district})
        staff(district, DISTRICT_KINDS)
        for s in range(1, 17):
            street = f"{district}{s:03d}"
            areas.append({"code": street, "name": street, "level": "street", "parent": district})
            centres.append({"id": f"centre:{street}", "name": street, "area": street})
            staff(street, STREET_KINDS)
            for c in range(1, 17):
                community = f"{street}{c:03d}"
                areas.append(
                    {"code": community, "name": community, "level": "community", "parent": street}
                )
                staff(community, [*KINDS_EVERYWHERE, "residents_committee", "property"])
                communities.append(community)
    grid_number = 0
    while len(areas) < target_areas:
        community = communities[grid_number % len(communities)]
        index = grid_number // len(communities) + 1
        areas.append(
            {
                "code": f"{community}{index:03d}",
                "name": "grid",
                "level": "grid",
                "parent": community,
            }
        )
        grid_number += 1
    return TopologyDocument.model_validate(
        {
            "version": "synthetic-20k",
            "name": "Synthetic City",
            "areas": areas,
            "departments": departments,
            "centres": centres,
            "categories": categories,
        }
    )


def make_queries(topology: Topology, count: int, seed: int) -> list[Query]:
    """A replay-like mix: mostly single reports from communities and grids, some spanning
    two or three areas, a share with a severity, a tenth in emergency mode."""
    rng = random.Random(seed)
    leaves = sorted(
        code
        for code, area in topology.areas.items()
        if area.level in (AreaLevel.COMMUNITY, AreaLevel.GRID)
    )
    categories = sorted(topology.categories)
    severities: list[Severity | None] = [*([None] * 7), *Severity]
    queries: list[Query] = []
    for _ in range(count):
        spread = rng.choices((1, 2, 3), weights=(80, 15, 5))[0]
        areas = tuple(rng.choice(leaves) for _ in range(spread))
        mode = Mode.EMERGENCY if rng.random() < 0.1 else Mode.NORMAL
        queries.append((rng.choice(categories), areas, rng.choice(severities), mode))
    return queries


class NaiveRouter:
    """The same rules with no indices: every decision walks the networkx tree."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.tree = nx.DiGraph()
        for code, area in topology.areas.items():
            self.tree.add_node(code, level=area.level, departments=[], centre=None)
            if area.parent is not None:
                self.tree.add_edge(area.parent, code)
        for department in topology.departments.values():
            self.tree.nodes[department.area]["departments"].append(department)
        for centre in topology.centres.values():
            self.tree.nodes[centre.area]["centre"] = centre

    def chain(self, code: str) -> list[str]:
        path = [code]
        while self.tree.in_degree(path[-1]):
            path.append(next(iter(self.tree.predecessors(path[-1]))))
        return path

    def rank(self, code: str) -> int:
        return LEVEL_RANK[self.tree.nodes[code]["level"]]

    def find(self, kind: str, start: str) -> Any:
        for code in self.chain(start):
            for department in self.tree.nodes[code]["departments"]:
                if department.kind == kind:
                    return department
        return None

    def route(
        self, category_code: str, area_codes: Sequence[str], severity: Severity | None, mode: Mode
    ) -> Assignment:
        spec = self.topology.categories[category_code]
        homes = []
        for code in area_codes:
            homes.append(self.chain(code)[1] if self.rank(code) < 0 else code)
        chains = [self.chain(home) for home in dict.fromkeys(homes)]
        common = set(chains[0]).intersection(*chains[1:])
        origin = next(code for code in chains[0] if code in common)
        floor = max(LOOP_RANK[spec.floor_for(severity, mode)], self.rank(origin))
        start = self.chain(origin)[floor - self.rank(origin)]
        lead = self.find(spec.lead_kind, start)
        handling = lead.area
        co, top = [], self.rank(handling)
        for kind in spec.co_handler_kinds:
            helper = self.find(kind, handling) or self.find(kind, origin)
            if helper is None:
                continue
            if self.rank(helper.area) > top:
                top = self.rank(helper.area)
            co.append(helper.id)
        if co:
            handling = self.chain(handling)[top - self.rank(handling)]
        centre = None
        if self.rank(handling) >= 1:
            centre = next(
                (
                    self.tree.nodes[c]["centre"]
                    for c in self.chain(handling)
                    if self.tree.nodes[c]["centre"] is not None
                ),
                None,
            )
        return Assignment.model_validate(
            {
                "loop": LOOP_ORDER[self.rank(handling)],
                "handling_area": handling,
                "lead_department": lead.id,
                "co_departments": co,
                "coordinating_centre": centre.id if centre else None,
                "escalation_chain": self.chain(handling),
                "reasons": [],
                "topology_version": self.topology.version,
            }
        )


def rate(run: Callable[[list[Any]], object], queries: list[Any]) -> float:
    """Decisions per second, best of three passes (the machine is shared)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        run(queries)
        best = min(best, time.perf_counter() - started)
    return len(queries) / best


def bench(name: str, topology: Topology, queries: list[Query], naive_share: int) -> None:
    categories = {code: code for code in topology.categories}
    areas = {code: code for code in topology.areas}

    def dict_loop(batch: list[Query]) -> None:
        for category, codes, _severity, _mode in batch:
            categories[category]
            areas[codes[0]]

    def indexed(batch: list[Query]) -> None:
        for category, codes, severity, mode in batch:
            route(topology, category, codes, severity, mode)

    naive = NaiveRouter(topology)

    def naive_loop(batch: list[Query]) -> None:
        for category, codes, severity, mode in batch:
            naive.route(category, codes, severity, mode)

    for query in queries[:2000]:  # the baseline must make the same decisions
        fast, slow = route(topology, *query), naive.route(*query)
        fields = (
            "loop",
            "handling_area",
            "lead_department",
            "co_departments",
            "coordinating_centre",
        )
        if [getattr(fast, f) for f in fields] != [getattr(slow, f) for f in fields]:
            raise SystemExit(f"naive baseline disagrees on {query}: {fast} != {slow}")

    routed = rate(indexed, queries)
    floor = rate(dict_loop, queries)
    slow_rate = rate(naive_loop, queries[: len(queries) // naive_share])
    print(
        f"| {name} | {len(topology.areas):,} | {routed:,.0f} | {slow_rate:,.0f} | "
        f"{routed / slow_rate:.1f}x | {floor:,.0f} | {routed / floor:.3f} |"
    )


def bench_locate(topology: Topology, count: int, seed: int) -> None:
    """City-wide locating of coordinates-only reports: grid index vs scanning all."""
    rng = random.Random(seed)
    points = [
        GeoPoint(lat=rng.uniform(30.1, 31.1), lon=rng.uniform(103.4, 104.6)) for _ in range(count)
    ]
    places = [
        place
        for code, area in topology.areas.items()
        if area.level is AreaLevel.COMMUNITY
        and (place := make_place(code, area.centroid, area.polygon)) is not None
    ]
    for point in points[:500]:
        if topology.locate(point) != locate_among(places, point):
            raise SystemExit(f"index and scan disagree at {point}")

    def indexed(batch: list[GeoPoint]) -> None:
        for point in batch:
            topology.locate(point)

    def scan(batch: list[GeoPoint]) -> None:
        for point in batch:
            locate_among(places, point)

    fast = rate(indexed, points)
    slow = rate(scan, points[: count // 20])
    print(
        f"\nlocate(point) city-wide over {len(places):,} communities: {fast:,.0f}/s with "
        f"the grid index, {slow:,.0f}/s scanning all ({fast / slow:.0f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    started = time.perf_counter()
    chengdu = load_topology()
    chengdu_load = time.perf_counter() - started
    started = time.perf_counter()
    document = synthetic_document([c.model_dump() for c in chengdu.categories.values()])
    synthetic = Topology.compile(document, source="synthetic")
    synthetic_build = time.perf_counter() - started

    print(
        f"python {platform.python_version()} on {platform.machine()}, one process, "
        f"{args.queries:,} queries per topology (seed {args.seed})"
    )
    print(
        f"load chengdu.yaml: {chengdu_load:.2f} s; build synthetic-20k: {synthetic_build:.2f} s\n"
    )
    print(
        "| topology | areas | route() decisions/s | naive nx decisions/s | speed-up "
        "| dict loop/s | route / dict loop |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    bench("chengdu", chengdu, make_queries(chengdu, args.queries, args.seed), naive_share=20)
    bench(
        "synthetic-20k", synthetic, make_queries(synthetic, args.queries, args.seed), naive_share=20
    )
    bench_locate(chengdu, 20_000, args.seed)


if __name__ == "__main__":
    main()
