"""Table-driven routing cases on the tiny topology: one per rule, then combinations."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from cityloop.contracts import Loop, Mode, Severity
from topology import Topology, UnroutableError, escalation_target, route

# tiny.yaml in one breath: city 510100; districts 510104 锦江, 510105 青羊; streets
# 5101040{01,02}, 5101050{01,02}; communities <street>00{1,2}; grids under 510104001001
# and 510105002001. Street 510105002 has no water station; no street has fire_rescue;
# only 510104001001/002 have property managers.


@dataclass(frozen=True)
class Case:
    name: str
    category: str
    areas: tuple[str, ...]
    loop: Loop
    handling_area: str
    lead: str
    co: tuple[str, ...] = ()
    centre: str | None = None
    rules: frozenset[str] = frozenset()  # must appear, besides the ever-present ones
    absent: frozenset[str] = frozenset()  # must not appear
    severity: Severity | None = None
    mode: Mode = Mode.NORMAL
    extra: dict[str, str] = field(default_factory=dict)


CASES = [
    # --- one rule each ---------------------------------------------------------------
    Case(
        "lowest level: community matter stays in the community",
        "garbage_exposed",
        ("510104001001",),
        Loop.MICRO,
        "510104001001",
        "510104001001.urban_management",
        absent=frozenset({"cross_department", "cross_area_common_ancestor", "severity_floor"}),
    ),
    Case(
        "lowest level: a grid's case is its community's",
        "garbage_exposed",
        ("510104001001001",),
        Loop.MICRO,
        "510104001001",
        "510104001001.urban_management",
    ),
    Case(
        "lowest level: community police office handles noise",
        "noise",
        ("510104002002",),
        Loop.MICRO,
        "510104002002",
        "510104002002.police",
    ),
    Case(
        "lowest level: a street matter reported in a community goes to its street",
        "pothole",
        ("510104002001",),
        Loop.SMALL,
        "510104002",
        "510104002.urban_management",
        centre="centre:510104002",
    ),
    Case(
        "lowest level: a district matter goes to the district",
        "water_main_burst",
        ("510105001002",),
        Loop.MEDIUM,
        "510105",
        "510105.water",
        co=("510105.water_utility", "510105.traffic_police"),
        centre="centre:510105",
        rules=frozenset({"cross_department"}),
    ),
    Case(
        "cross department: all at the street, the street centre coordinates",
        "waterlogging",
        ("510104001001",),
        Loop.SMALL,
        "510104001",
        "510104001.water",
        co=("510104001.urban_management", "510104001.traffic_police"),
        centre="centre:510104001",
        rules=frozenset({"cross_department"}),
        absent=frozenset({"no_department_at_level"}),
    ),
    Case(
        "cross department: all in one community, its committee coordinates (no centre)",
        "general",
        ("510105001001",),
        Loop.MICRO,
        "510105001001",
        "510105001001.urban_management",
        co=("510105001001.residents_committee",),
        rules=frozenset({"cross_department"}),
    ),
    Case(
        "cross area: two grids of one community stay in the community",
        "garbage_exposed",
        ("510104001001001", "510104001001002"),
        Loop.MICRO,
        "510104001001",
        "510104001001.urban_management",
        absent=frozenset({"cross_area_common_ancestor"}),
    ),
    Case(
        "cross area: two communities of one street -> the street",
        "garbage_exposed",
        ("510104001001", "510104001002"),
        Loop.SMALL,
        "510104001",
        "510104001.urban_management",
        centre="centre:510104001",
        rules=frozenset({"cross_area_common_ancestor"}),
    ),
    Case(
        "cross area: two streets of one district -> the district",
        "garbage_exposed",
        ("510104001001", "510104002001"),
        Loop.MEDIUM,
        "510104",
        "510104.urban_management",
        centre="centre:510104",
        rules=frozenset({"cross_area_common_ancestor"}),
    ),
    Case(
        "cross area: two districts -> the city",
        "garbage_exposed",
        ("510104001001", "510105002001"),
        Loop.BIG,
        "510100",
        "510100.urban_management",
        centre="centre:510100",
        rules=frozenset({"cross_area_common_ancestor"}),
    ),
    Case(
        "cross area: a community and its own street -> the street",
        "noise",
        ("510104001002", "510104001"),
        Loop.SMALL,
        "510104001",
        "510104001.police",
        centre="centre:510104001",
        rules=frozenset({"cross_area_common_ancestor"}),
    ),
    Case(
        "severity floor: a grade I fire goes to the city",
        "fire",
        ("510104001001",),
        Loop.BIG,
        "510100",
        "510100.fire_rescue",
        co=("510100.emergency", "510100.police", "510100.health"),
        centre="centre:510100",
        rules=frozenset({"severity_floor", "cross_department"}),
        severity=Severity.I,
    ),
    Case(
        "severity floor: a grade I gas leak goes to the city",
        "gas_leak",
        ("510105002002",),
        Loop.BIG,
        "510100",
        "510100.emergency",
        co=("510100.gas_utility", "510100.fire_rescue", "510100.police"),
        centre="centre:510100",
        rules=frozenset({"severity_floor"}),
        severity=Severity.I,
    ),
    Case(
        "severity floor: by the national grading a grade III fire goes to the city",
        "fire",
        ("510104001001",),
        Loop.BIG,
        "510100",
        "510100.fire_rescue",
        co=("510100.emergency", "510100.police", "510100.health"),
        centre="centre:510100",
        rules=frozenset({"severity_floor"}),
        severity=Severity.III,
    ),
    Case(
        "severity floor: a grade IV fire stays at the district, its lowest loop",
        "fire",
        ("510104001001",),
        Loop.MEDIUM,
        "510104",
        "510104.fire_rescue",
        co=("510104.emergency", "510104.police", "510104.health"),
        centre="centre:510104",
        absent=frozenset({"severity_floor"}),
        severity=Severity.IV,
    ),
    Case(
        "severity floor: by the national grading a grade IV pothole goes to the district",
        "pothole",
        ("510104001001",),
        Loop.MEDIUM,
        "510104",
        "510104.urban_management",
        centre="centre:510104",
        rules=frozenset({"severity_floor"}),
        severity=Severity.IV,
    ),
    Case(
        "emergency floor: waterlogging in emergency mode goes to the district",
        "waterlogging",
        ("510104001001",),
        Loop.MEDIUM,
        "510104",
        "510104.water",
        co=("510104.urban_management", "510104.traffic_police"),
        centre="centre:510104",
        rules=frozenset({"emergency_floor"}),
        mode=Mode.EMERGENCY,
    ),
    Case(
        "emergency mode without a floor changes nothing",
        "pothole",
        ("510104001001",),
        Loop.SMALL,
        "510104001",
        "510104001.urban_management",
        centre="centre:510104001",
        absent=frozenset({"emergency_floor"}),
        mode=Mode.EMERGENCY,
    ),
    Case(
        "emergency floor not above the lowest level is not a reason",
        "gas_leak",
        ("510104002002",),
        Loop.MEDIUM,
        "510104",
        "510104.emergency",
        co=("510104.gas_utility", "510104.fire_rescue", "510104.police"),
        centre="centre:510104",
        absent=frozenset({"emergency_floor"}),
        mode=Mode.EMERGENCY,
    ),
    Case(
        "no department at level: no water station in the street -> the district leads",
        "waterlogging",
        ("510105002001",),
        Loop.MEDIUM,
        "510105",
        "510105.water",
        co=("510105.urban_management", "510105.traffic_police"),
        centre="centre:510105",
        rules=frozenset({"no_department_at_level", "cross_department"}),
    ),
    Case(
        "no department at level for a co-handler: the district's fire rescue joins",
        "elevator_entrapment",
        ("510104001001",),
        Loop.MEDIUM,
        "510104",
        "510104001.market_regulation",
        co=("510104001001.property", "510104.fire_rescue"),
        centre="centre:510104",
        rules=frozenset({"no_department_at_level", "local_department", "cross_department"}),
    ),
    Case(
        "a local-only co-handler missing where it happened is left out, with the reason",
        "elevator_entrapment",
        ("510104002001",),
        Loop.MEDIUM,
        "510104",
        "510104002.market_regulation",
        co=("510104.fire_rescue",),
        centre="centre:510104",
        rules=frozenset({"no_department_for_kind", "no_department_at_level"}),
    ),
    # --- combinations ----------------------------------------------------------------
    Case(
        "cross area + severity: severity lifts above the common street",
        "waterlogging",
        ("510104001001", "510104001002"),
        Loop.MEDIUM,
        "510104",
        "510104.water",
        co=("510104.urban_management", "510104.traffic_police"),
        centre="centre:510104",
        rules=frozenset({"cross_area_common_ancestor", "severity_floor"}),
        severity=Severity.IV,
    ),
    Case(
        "cross area above the severity floor: the common ancestor wins",
        "waterlogging",
        ("510104001001", "510105001001"),
        Loop.BIG,
        "510100",
        "510100.water",
        co=("510100.urban_management", "510100.traffic_police"),
        centre="centre:510100",
        rules=frozenset({"cross_area_common_ancestor", "severity_floor"}),
        severity=Severity.IV,
    ),
    Case(
        "cross area + missing department: two communities of the street without water",
        "waterlogging",
        ("510105002001", "510105002002"),
        Loop.MEDIUM,
        "510105",
        "510105.water",
        co=("510105.urban_management", "510105.traffic_police"),
        centre="centre:510105",
        rules=frozenset({"cross_area_common_ancestor", "no_department_at_level"}),
    ),
    Case(
        "emergency + severity: the higher floor wins",
        "waterlogging",
        ("510105001001",),
        Loop.BIG,
        "510100",
        "510100.water",
        co=("510100.urban_management", "510100.traffic_police"),
        centre="centre:510100",
        rules=frozenset({"severity_floor", "emergency_floor"}),
        severity=Severity.I,
        mode=Mode.EMERGENCY,
    ),
    Case(
        "cross area from grids in two streets",
        "noise",
        ("510104001001001", "510104002002"),
        Loop.MEDIUM,
        "510104",
        "510104.police",
        centre="centre:510104",
        rules=frozenset({"cross_area_common_ancestor"}),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_route(tiny: Topology, case: Case) -> None:
    assignment = route(tiny, case.category, case.areas, case.severity, case.mode)

    assert assignment.loop is case.loop
    assert assignment.handling_area == case.handling_area
    assert assignment.lead_department == case.lead
    assert tuple(assignment.co_departments) == case.co
    assert assignment.coordinating_centre == case.centre
    assert assignment.escalation_chain == list(tiny.ancestors(case.handling_area))
    assert assignment.escalation_chain[-1] == "510100"
    assert assignment.topology_version == "tiny-1"
    rules = [reason.rule for reason in assignment.reasons]
    assert rules[0] == "lowest_capable_level"
    assert "lead_department" in rules
    assert case.rules <= set(rules), rules
    assert not case.absent & set(rules), rules
    assert all(reason.detail for reason in assignment.reasons)


def test_reasons_name_the_areas_and_departments(tiny: Topology) -> None:
    assignment = route(tiny, "waterlogging", ["510105002001"])
    details = {reason.rule: reason.detail for reason in assignment.reasons}
    assert "street 510105002" in details["no_department_at_level"]
    assert "district 510105" in details["no_department_at_level"]
    assert "510105.traffic_police" in details["cross_department"]


def test_a_lone_code_string_is_one_area(tiny: Topology) -> None:
    assert route(tiny, "pothole", "510104001001").handling_area == "510104001"


def test_duplicate_area_codes_count_once(tiny: Topology) -> None:
    assignment = route(tiny, "garbage_exposed", ["510104001001", "510104001001"])
    assert assignment.loop is Loop.MICRO
    assert "cross_area_common_ancestor" not in [r.rule for r in assignment.reasons]


@pytest.mark.parametrize(
    ("category", "areas", "reason"),
    [
        ("no_such_category", ["510104001001"], "unknown_category"),
        ("pothole", ["510199001001"], "unknown_area"),
        ("pothole", ["510104001001", "999999"], "unknown_area"),
        ("pothole", [], "no_area"),
    ],
)
def test_unroutable(tiny: Topology, category: str, areas: list[str], reason: str) -> None:
    with pytest.raises(UnroutableError) as raised:
        route(tiny, category, areas)
    assert raised.value.reason == reason
    assert str(raised.value)


def test_escalation_walks_up_one_loop_at_a_time(tiny: Topology) -> None:
    assignment = route(tiny, "garbage_exposed", ["510104001001"])
    seen = [(assignment.loop, assignment.handling_area, assignment.lead_department)]
    step = escalation_target(tiny, assignment, "garbage_exposed")
    while step is not None:
        assert step.reasons[0].rule == "escalated"
        seen.append((step.loop, step.handling_area, step.lead_department))
        step = escalation_target(tiny, step, "garbage_exposed")
    assert seen == [
        (Loop.MICRO, "510104001001", "510104001001.urban_management"),
        (Loop.SMALL, "510104001", "510104001.urban_management"),
        (Loop.MEDIUM, "510104", "510104.urban_management"),
        (Loop.BIG, "510100", "510100.urban_management"),
    ]


def test_escalation_repicks_departments_and_keeps_local_ones(tiny: Topology) -> None:
    at_district = route(tiny, "elevator_entrapment", ["510104001001"])
    at_city = escalation_target(tiny, at_district, "elevator_entrapment")
    assert at_city is not None
    assert at_city.loop is Loop.BIG
    assert at_city.lead_department == "510100.market_regulation"
    assert at_city.co_departments == ["510104001001.property", "510100.fire_rescue"]
    assert at_city.coordinating_centre == "centre:510100"
    assert escalation_target(tiny, at_city, "elevator_entrapment") is None


def test_escalation_skips_a_level_without_the_lead_kind(tiny: Topology) -> None:
    micro = route(tiny, "general", ["510105002001"])
    assert micro.loop is Loop.MICRO
    small = escalation_target(tiny, micro, "waterlogging")
    assert small is not None
    assert small.handling_area == "510105"  # street 510105002 has no water station
    assert [r.rule for r in small.reasons][:2] == ["escalated", "no_department_at_level"]


def test_escalation_of_an_unknown_area_is_unroutable(tiny: Topology) -> None:
    assignment = route(tiny, "pothole", ["510104001001"]).model_copy(
        update={"handling_area": "510199001"}
    )
    with pytest.raises(UnroutableError):
        escalation_target(tiny, assignment, "pothole")
