"""Broken topology files: each kind of problem is found and named on its own line."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from topology import (
    TopologyError,
    TopologyValidationError,
    load_topology,
    load_topology_text,
    tiny_topology_path,
)

DATA = Path(__file__).parent / "data"
Document = dict[str, Any]


@pytest.fixture(scope="module")
def tiny_document() -> Document:
    loaded: Document = yaml.safe_load(tiny_topology_path().read_text(encoding="utf-8"))
    return loaded


def _area(document: Document, code: str) -> dict[str, Any]:
    return next(area for area in document["areas"] if area["code"] == code)


def _category(document: Document, code: str) -> dict[str, Any]:
    return next(c for c in document["categories"] if c["code"] == code)


def _drop_departments(document: Document, kind: str, keep: str | None = None) -> None:
    document["departments"] = [
        d for d in document["departments"] if d["kind"] != kind or d["area"] == keep
    ]


def _classify(document: Document, *codes: str, default: str | None = "urban") -> Document:
    """Declare classes `codes` and put every category in `default` (None: in none)."""
    document["classes"] = [{"code": code, "name": code.title()} for code in codes]
    for category in document["categories"]:
        category.pop("class_code", None)
        if default is not None:
            category["class_code"] = default
    return document


MUTATIONS: list[tuple[str, Callable[[Document], object], str]] = [
    (
        "duplicate area code",
        lambda d: d["areas"].append(dict(_area(d, "510104001001"))),
        "duplicate area code 510104001001",
    ),
    (
        "unknown parent",
        lambda d: _area(d, "510104002").update(parent="510109"),
        "unknown parent 510109; it cannot reach the city",
    ),
    (
        "area without parent",
        lambda d: _area(d, "510104002").pop("parent"),
        "needs a parent; it cannot reach the city",
    ),
    (
        "cycle",
        lambda d: (
            _area(d, "510100").update(parent="510104", level="district"),
            _area(d, "510104").update(parent="510100"),
        ),
        "cycle in parents",
    ),
    ("no city", lambda d: d["areas"].remove(_area(d, "510100")), "exactly one city area, found 0"),
    (
        "two cities",
        lambda d: d["areas"].append({"code": "510200", "name": "x", "level": "city"}),
        "exactly one city area, found 2",
    ),
    (
        "city with a parent",
        lambda d: _area(d, "510100").update(parent="510104"),
        "the city has no parent",
    ),
    (
        "level skipped",
        lambda d: _area(d, "510104001001").update(parent="510104"),
        "a community cannot sit under a district",
    ),
    (
        "code length",
        lambda d: d["areas"].append(
            {"code": "5101040011", "name": "x", "level": "community", "parent": "510104001"}
        ),
        "should match pattern",
    ),
    (
        "code of the wrong length for its level",
        lambda d: _area(d, "510104002").update(level="community", parent="510104001"),
        "a community code has 12 digits, not 9",
    ),
    (
        "code not under its parent's",
        lambda d: _area(d, "510104002001").update(parent="510104001"),
        "code does not start with its parent's code 510104001",
    ),
    (
        "duplicate department id",
        lambda d: d["departments"].append(dict(d["departments"][0], area="510104")),
        "duplicate department id 510100.urban_management",
    ),
    (
        "department in an unknown area",
        lambda d: d["departments"].append(
            {"id": "x.water", "name": "x", "kind": "water", "area": "510199"}
        ),
        "department x.water: unknown area 510199",
    ),
    (
        "department at a grid",
        lambda d: d["departments"].append(
            {"id": "g.water", "name": "x", "kind": "noise_team", "area": "510104001001001"}
        ),
        "a grid (510104001001001) holds no jurisdiction",
    ),
    (
        "two departments of one kind in one area",
        lambda d: d["departments"].append(
            {"id": "510104.water2", "name": "x", "kind": "water", "area": "510104"}
        ),
        "area 510104: 2 departments of kind water",
    ),
    (
        "centre at a community",
        lambda d: d["centres"].append({"id": "c:x", "name": "x", "area": "510104001001"}),
        "centres sit at city, district or street level",
    ),
    (
        "centre in an unknown area",
        lambda d: d["centres"].append({"id": "c:x", "name": "x", "area": "510199"}),
        "centre c:x: unknown area 510199",
    ),
    (
        "two centres in one area",
        lambda d: d["centres"].append({"id": "c:x", "name": "x", "area": "510104"}),
        "area 510104: 2 operations centres",
    ),
    ("city without a centre", lambda d: d["centres"].pop(0), "the city has no operations centre"),
    (
        "duplicate category",
        lambda d: d["categories"].append(dict(d["categories"][0])),
        "duplicate category code garbage_exposed",
    ),
    (
        "duplicate class",
        lambda d: _classify(d, "urban", "emergency", "urban"),
        "duplicate class code urban (2 times)",
    ),
    (
        "category of an unknown class",
        lambda d: (_classify(d, "urban"), _category(d, "fire").update(class_code="emergency")),
        "category fire: unknown class emergency",
    ),
    (
        "category of a class in a file that declares none",
        lambda d: _category(d, "fire").update(class_code="emergency"),
        "category fire: unknown class emergency",
    ),
    (
        "category without a class when the file declares classes",
        lambda d: (_classify(d, "urban"), _category(d, "noise").pop("class_code")),
        "category noise: no class_code; every category needs one",
    ),
    (
        "no category classified when the file declares classes",
        lambda d: _classify(d, "urban", default=None),
        "category garbage_exposed: no class_code",
    ),
    (
        "class code that is not a kind",
        lambda d: _classify(d, "Urban Affairs", default=None),
        "classes.0.code: String should match pattern",
    ),
    (
        "lead kind that no department has",
        lambda d: _category(d, "pothole").update(lead_kind="road_authority"),
        "category pothole: no department of kind road_authority anywhere",
    ),
    (
        "category that cannot be routed in some area",
        lambda d: _drop_departments(d, "water", keep="510104"),
        "category waterlogging: no lead department of kind water at or above",
    ),
    (
        "sensor type of an unknown category",
        lambda d: d["sensor_types"].append(
            {"sensor_type": "radiation", "category_code": "nuclear", "needs_verification": True}
        ),
        "sensor type radiation: unknown category nuclear",
    ),
    (
        "duplicate sensor type",
        lambda d: d["sensor_types"].append(dict(d["sensor_types"][0])),
        "duplicate sensor type water_level",
    ),
    ("missing field", lambda d: _area(d, "510104").pop("name"), "areas.1.name: Field required"),
    (
        "unknown field",
        lambda d: _area(d, "510104").update(population=1),
        "areas.1.population: Extra inputs are not permitted",
    ),
    (
        "unknown level",
        lambda d: _area(d, "510104").update(level="province"),
        "areas.1.level: Input should be",
    ),
    (
        "accept after resolve",
        lambda d: _category(d, "pothole").update(sla={"accept_minutes": 90, "resolve_minutes": 60}),
        "accept_minutes must not exceed resolve_minutes",
    ),
    (
        "lead kind also a co-handler",
        lambda d: _category(d, "waterlogging").update(co_handler_kinds=["water"]),
        "lead_kind and co_handler_kinds must all be different",
    ),
    (
        "unknown loop in a floor",
        lambda d: _category(d, "fire").update(severity_floor={"I": "galaxy"}),
        "categories.6.severity_floor.I: Input should be",
    ),
    (
        "bad severity grade",
        lambda d: _category(d, "fire").update(severity_floor={"V": "big"}),
        "categories.6.severity_floor.V",
    ),
    (
        "bad coordinates",
        lambda d: _area(d, "510104").update(centroid=[130.0, 104.0]),
        "areas.1.centroid.lat",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [(mutate, expected) for _, mutate, expected in MUTATIONS],
    ids=[name for name, _, _ in MUTATIONS],
)
def test_broken_document_is_refused_with_the_problem(
    tiny_document: Document, mutate: Callable[[Document], object], expected: str
) -> None:
    document = copy.deepcopy(tiny_document)
    mutate(document)
    with pytest.raises(TopologyValidationError) as raised:
        load_topology_text(yaml.safe_dump(document, allow_unicode=True), source="mutated")
    assert any(expected in problem for problem in raised.value.problems), raised.value.problems
    assert all("\n" not in problem for problem in raised.value.problems)
    assert isinstance(raised.value, TopologyError)


def test_the_unmutated_document_loads(tiny_document: Document) -> None:
    assert load_topology_text(yaml.safe_dump(tiny_document, allow_unicode=True)).version == (
        "tiny-1"
    )


def test_a_document_with_classes_loads_and_answers_class_of(tiny_document: Document) -> None:
    document = copy.deepcopy(tiny_document)
    _classify(document, "urban", "emergency")
    for code in ("waterlogging", "gas_leak", "fire", "elevator_entrapment"):
        _category(document, code)["class_code"] = "emergency"
    topology = load_topology_text(yaml.safe_dump(document, allow_unicode=True))
    assert list(topology.classes) == ["urban", "emergency"]
    assert topology.classes["emergency"].name == "Emergency"
    assert topology.class_of("fire") == "emergency"
    assert topology.class_of("pothole") == "urban"
    assert topology.class_of("no_such_category") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "the file must be a YAML mapping"),
        ("version: a\nversion: b\n", "duplicate key 'version'"),
        ("", "the file must be a YAML mapping"),
    ],
)
def test_text_that_is_not_a_topology(text: str, expected: str) -> None:
    with pytest.raises(TopologyValidationError) as raised:
        load_topology_text(text)
    assert any(expected in problem for problem in raised.value.problems), raised.value.problems


def test_every_problem_of_a_file_is_reported() -> None:
    with pytest.raises(TopologyValidationError) as raised:
        load_topology(DATA / "broken_many.yaml")
    problems = raised.value.problems
    for expected in [
        "duplicate area code 990101",
        "area 990102001 (Orphan Street): unknown parent 990102",
        "a community cannot sit under a district",
        "department 990103.police: unknown area 990103",
        "the city has no operations centre",
        "sensor type smoke: unknown category fire",
    ]:
        assert any(expected in problem for problem in problems), (expected, problems)
    assert str(DATA / "broken_many.yaml") in str(raised.value)


def test_a_cycle_file_is_refused() -> None:
    with pytest.raises(TopologyValidationError) as raised:
        load_topology(DATA / "broken_cycle.yaml")
    cycles = [p for p in raised.value.problems if p.startswith("cycle in parents")]
    assert len(cycles) == 1
    assert "990101001" in cycles[0] and "990101002" in cycles[0]


def test_a_missing_file_is_a_validation_error(tmp_path: Path) -> None:
    with pytest.raises(TopologyValidationError) as raised:
        load_topology(tmp_path / "absent.yaml")
    assert raised.value.problems[0].startswith("cannot read")
