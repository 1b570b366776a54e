"""The example city in docs/topology.md loads and routes as the page says it does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cityloop.contracts import Loop
from topology import Topology, load_topology_text, route

DOC = Path(__file__).parents[2] / "docs" / "topology.md"


@pytest.fixture(scope="module")
def example() -> Topology:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- example-city.*?-->\s*```yaml\n(.*?)```", text, re.S)
    assert block is not None, "the example-city block is missing from docs/topology.md"
    return load_topology_text(block.group(1), source="docs/topology.md")


def test_garbage_stays_in_a_community_with_a_station(example: Topology) -> None:
    assignment = route(example, "garbage_exposed", ["510703001001001"])
    assert (assignment.loop, assignment.lead_department) == (
        Loop.MICRO,
        "510703001001.urban_management",
    )


def test_garbage_goes_to_the_street_team_where_there_is_no_station(example: Topology) -> None:
    assignment = route(example, "garbage_exposed", ["510703001002"])
    assert (assignment.loop, assignment.lead_department, assignment.coordinating_centre) == (
        Loop.SMALL,
        "510703001.urban_management",
        "centre:510703001",
    )
    assert "no_department_at_level" in [reason.rule for reason in assignment.reasons]


def test_waterlogging_in_each_district(example: Topology) -> None:
    fucheng = route(example, "waterlogging", ["510703001002"])
    assert (
        fucheng.loop,
        fucheng.lead_department,
        fucheng.co_departments,
        fucheng.coordinating_centre,
    ) == (
        Loop.MEDIUM,
        "510703.water",
        ["510703.urban_management", "510703.traffic_police"],
        "centre:510703",
    )
    youxian = route(example, "waterlogging", ["510704001001"])
    assert (youxian.loop, youxian.co_departments, youxian.coordinating_centre) == (
        Loop.BIG,
        ["510704.urban_management", "510700.traffic_police"],
        "centre:510700",
    )


def test_a_street_without_a_centre_borrows_its_districts(example: Topology) -> None:
    assignment = route(example, "garbage_exposed", ["510704001001"])
    assert (assignment.loop, assignment.coordinating_centre) == (Loop.SMALL, "centre:510704")
    assert "no_centre_at_level" in [reason.rule for reason in assignment.reasons]


def test_the_example_city_is_a_two_level_tree(example: Topology) -> None:
    assert list(example.classes) == ["urban", "emergency"]
    assert example.class_of("garbage_exposed") == "urban"
    assert example.class_of("waterlogging") == "emergency"


def test_the_class_table_is_chengdus(chengdu: Topology) -> None:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- chengdu-classes.*?-->\n(.*?)\n\n", text, re.S)
    assert block is not None, "the chengdu-classes table is missing from docs/topology.md"
    rows = [line for line in block.group(1).splitlines() if line.startswith("| `")]
    documented: dict[str, tuple[str, str]] = {}  # category: (class, lead kind)
    for row in rows:
        class_code, name, cell = (part.strip() for part in row.strip("|").split("|"))
        class_code = class_code.strip("`")
        assert chengdu.classes[class_code].name == name
        for group in cell.split("; "):
            match = re.fullmatch(r"\*\*(\w+)\*\*: (.*)", group)
            assert match is not None, group
            lead, codes = match.groups()
            for code in codes.split(", "):
                documented[code.strip("`")] = (class_code, lead)
    assert [row.split("`")[1] for row in rows] == list(chengdu.classes)
    assert documented == {
        code: (spec.class_code, spec.lead_kind) for code, spec in chengdu.categories.items()
    }
