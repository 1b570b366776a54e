"""The Chengdu catalogue: its two-level tree, the plan's categories, and that each is routable."""

from __future__ import annotations

from collections import defaultdict

import pytest

from cityloop.contracts import AreaLevel, Loop, Mode, Severity
from topology import CategorySpec, Topology, route
from topology.model import LOOP_RANK, NATIONAL_SEVERITY_FLOOR

CLASSES = [
    ("labour", "劳动和社会保障"),
    ("education", "教育"),
    ("health", "卫生健康与食品药品"),
    ("housing", "住房和城乡建设"),
    ("market", "市场监管与消费"),
    ("transport", "交通运输"),
    ("environment", "生态环境"),
    ("urban", "城市管理与市容环卫"),
    ("utilities", "公用事业"),
    ("public_security", "公共安全与治安"),
    ("civil_affairs", "民政与社会救助"),
    ("emergency", "应急与灾害"),
    ("culture_tourism", "文化旅游体育"),
    ("agriculture", "农业农村"),
]
# The plan's table (the categories that were there before keep their own lead, co-handlers
# and lowest loop): code, class, lead kind, co-handler kinds, lowest loop.
CATALOGUE: list[tuple[str, str, str, tuple[str, ...], Loop]] = [
    ("wage_arrears", "labour", "human_resources", (), Loop.MEDIUM),
    ("labour_contract", "labour", "human_resources", (), Loop.MEDIUM),
    ("social_insurance", "labour", "human_resources", (), Loop.MEDIUM),
    ("pension", "labour", "human_resources", (), Loop.MEDIUM),
    ("medical_insurance", "labour", "medical_insurance", (), Loop.MEDIUM),
    ("employment_service", "labour", "human_resources", (), Loop.MEDIUM),
    ("work_injury", "labour", "human_resources", (), Loop.MEDIUM),
    ("talent_settlement", "labour", "human_resources", ("police",), Loop.MEDIUM),
    ("school_enrollment", "education", "education", (), Loop.MEDIUM),
    ("school_fees", "education", "education", (), Loop.MEDIUM),
    ("off_campus_training", "education", "education", ("market_regulation",), Loop.MEDIUM),
    ("school_safety", "education", "education", ("market_regulation",), Loop.MEDIUM),
    ("teacher_conduct", "education", "education", (), Loop.MEDIUM),
    ("kindergarten", "education", "education", (), Loop.MEDIUM),
    ("student_burden", "education", "education", (), Loop.MEDIUM),
    ("medical_service", "health", "health", (), Loop.MEDIUM),
    ("medical_dispute", "health", "health", (), Loop.MEDIUM),
    ("illegal_medical_practice", "health", "health", (), Loop.MEDIUM),
    ("vaccination", "health", "health", (), Loop.MEDIUM),
    ("food_safety", "health", "market_regulation", ("health",), Loop.SMALL),
    ("drug_safety", "health", "market_regulation", (), Loop.MEDIUM),
    ("public_health_event", "health", "health", ("emergency",), Loop.MEDIUM),
    ("maternal_child_health", "health", "health", (), Loop.MEDIUM),
    ("property_dispute", "housing", "housing", ("property", "residents_committee"), Loop.SMALL),
    ("property_fee", "housing", "housing", ("property",), Loop.SMALL),
    ("housing_delivery", "housing", "housing", (), Loop.MEDIUM),
    ("property_certificate", "housing", "planning", (), Loop.MEDIUM),
    ("demolition_resettlement", "housing", "housing", ("planning",), Loop.MEDIUM),
    ("old_community_renovation", "housing", "housing", (), Loop.SMALL),
    ("rental_housing", "housing", "housing", (), Loop.MEDIUM),
    ("illegal_construction", "housing", "urban_management", ("planning",), Loop.SMALL),
    ("structural_danger", "housing", "housing", ("emergency",), Loop.SMALL),
    ("construction_site", "housing", "housing", ("urban_management",), Loop.MEDIUM),
    ("price_complaint", "market", "market_regulation", (), Loop.SMALL),
    ("consumer_dispute", "market", "market_regulation", (), Loop.SMALL),
    ("counterfeit_goods", "market", "market_regulation", (), Loop.SMALL),
    ("prepaid_card", "market", "market_regulation", (), Loop.MEDIUM),
    ("unlicensed_business", "market", "market_regulation", (), Loop.SMALL),
    ("false_advertising", "market", "market_regulation", (), Loop.MEDIUM),
    ("online_shopping", "market", "market_regulation", (), Loop.MEDIUM),
    ("elevator_fault", "market", "market_regulation", ("property",), Loop.SMALL),
    ("bus_service", "transport", "transport", (), Loop.MEDIUM),
    ("taxi_service", "transport", "transport", (), Loop.MEDIUM),
    ("metro_service", "transport", "transport", (), Loop.MEDIUM),
    ("parking", "transport", "transport", ("traffic_police",), Loop.MEDIUM),
    ("illegal_parking", "transport", "traffic_police", (), Loop.SMALL),
    ("traffic_signal_failure", "transport", "traffic_police", ("transport",), Loop.MEDIUM),
    ("traffic_congestion", "transport", "traffic_police", ("transport",), Loop.MEDIUM),
    ("traffic_accident", "transport", "traffic_police", ("health",), Loop.SMALL),
    ("road_construction", "transport", "transport", ("traffic_police",), Loop.MEDIUM),
    ("shared_bikes", "transport", "transport", ("urban_management",), Loop.SMALL),
    ("air_pollution", "environment", "ecology", (), Loop.MEDIUM),
    ("water_pollution", "environment", "ecology", ("water",), Loop.MEDIUM),
    ("black_smelly_river", "environment", "water", ("ecology",), Loop.SMALL),
    ("river_garbage", "environment", "water", ("urban_management",), Loop.SMALL),
    ("river_dredging", "environment", "water", (), Loop.MEDIUM),
    ("sewage_discharge", "environment", "ecology", ("water",), Loop.MEDIUM),
    ("industrial_pollution", "environment", "ecology", (), Loop.MEDIUM),
    ("noise", "environment", "police", (), Loop.MICRO),
    ("construction_noise", "environment", "urban_management", ("ecology",), Loop.SMALL),
    ("restaurant_fumes", "environment", "urban_management", ("ecology",), Loop.SMALL),
    ("open_burning", "environment", "urban_management", ("ecology",), Loop.SMALL),
    ("livestock_pollution", "environment", "ecology", ("agriculture",), Loop.MEDIUM),
    ("garbage_exposed", "urban", "urban_management", (), Loop.MICRO),
    ("garbage_collection", "urban", "urban_management", (), Loop.MICRO),
    ("street_vending", "urban", "urban_management", (), Loop.MICRO),
    ("illegal_advertising", "urban", "urban_management", (), Loop.SMALL),
    ("construction_waste", "urban", "urban_management", ("housing",), Loop.SMALL),
    ("pothole", "urban", "urban_management", (), Loop.SMALL),
    ("manhole_cover_missing", "urban", "urban_management", (), Loop.SMALL),
    ("manhole_cover_displaced", "urban", "urban_management", (), Loop.SMALL),
    ("streetlight_out", "urban", "urban_management", ("power_utility",), Loop.SMALL),
    ("tree_fallen", "urban", "parks", ("urban_management",), Loop.SMALL),
    ("greenery_maintenance", "urban", "parks", (), Loop.SMALL),
    ("public_toilet", "urban", "urban_management", (), Loop.SMALL),
    ("stray_animals", "urban", "police", ("urban_management",), Loop.SMALL),
    ("sewage_overflow", "urban", "water", ("urban_management",), Loop.SMALL),
    ("water_outage", "utilities", "water_utility", (), Loop.MEDIUM),
    ("water_quality", "utilities", "water_utility", ("health",), Loop.MEDIUM),
    ("power_outage", "utilities", "power_utility", (), Loop.MEDIUM),
    ("gas_supply", "utilities", "gas_utility", (), Loop.MEDIUM),
    ("heating_supply", "utilities", "gas_utility", (), Loop.MEDIUM),
    ("water_main_burst", "utilities", "water", ("water_utility", "traffic_police"), Loop.MEDIUM),
    ("public_security", "public_security", "police", (), Loop.SMALL),
    ("crowd_gathering", "public_security", "police", ("emergency",), Loop.MEDIUM),
    ("fraud", "public_security", "police", (), Loop.MEDIUM),
    ("household_registration", "public_security", "police", (), Loop.MEDIUM),
    ("gambling_drugs", "public_security", "police", (), Loop.SMALL),
    ("neighbour_dispute", "public_security", "police", ("residents_committee",), Loop.MICRO),
    ("elderly_assistance", "civil_affairs", "civil_affairs", ("residents_committee",), Loop.SMALL),
    ("subsistence_allowance", "civil_affairs", "civil_affairs", (), Loop.SMALL),
    ("disability_support", "civil_affairs", "civil_affairs", (), Loop.SMALL),
    ("funeral_services", "civil_affairs", "civil_affairs", (), Loop.MEDIUM),
    ("veterans_affairs", "civil_affairs", "civil_affairs", (), Loop.MEDIUM),
    ("marriage_registration", "civil_affairs", "civil_affairs", (), Loop.MEDIUM),
    ("gas_leak", "emergency", "emergency", ("gas_utility", "fire_rescue", "police"), Loop.MEDIUM),
    ("fire", "emergency", "fire_rescue", ("emergency", "police", "health"), Loop.MEDIUM),
    (
        "hazardous_chemicals",
        "emergency",
        "emergency",
        ("fire_rescue", "ecology", "police"),
        Loop.MEDIUM,
    ),
    (
        "elevator_entrapment",
        "emergency",
        "market_regulation",
        ("property", "fire_rescue"),
        Loop.SMALL,
    ),
    ("landslide", "emergency", "planning", ("emergency",), Loop.MEDIUM),
    ("river_flood", "emergency", "water", ("emergency",), Loop.MEDIUM),
    ("waterlogging", "emergency", "water", ("urban_management", "traffic_police"), Loop.SMALL),
    ("road_collapse", "emergency", "urban_management", ("housing", "traffic_police"), Loop.MEDIUM),
    (
        "tourism_complaint",
        "culture_tourism",
        "culture_tourism",
        ("market_regulation",),
        Loop.MEDIUM,
    ),
    ("cultural_venue", "culture_tourism", "culture_tourism", (), Loop.MEDIUM),
    ("sports_facility", "culture_tourism", "culture_tourism", (), Loop.SMALL),
    ("entertainment_venue", "culture_tourism", "culture_tourism", ("police",), Loop.MEDIUM),
    ("land_contract", "agriculture", "agriculture", (), Loop.MEDIUM),
    ("agricultural_subsidy", "agriculture", "agriculture", (), Loop.MEDIUM),
    ("rural_affairs", "agriculture", "agriculture", ("civil_affairs",), Loop.MEDIUM),
]
NEW_KINDS = ["human_resources", "medical_insurance", "education", "culture_tourism", "agriculture"]
# Kinds that only exist in communities: routing takes the one where the case happened, if any.
LOCAL_ONLY_KINDS = {"property", "residents_committee"}
# A person's own matter: two citizens' orders must never become one case.
PERSONAL_MATTERS = [
    "wage_arrears",
    "labour_contract",
    "social_insurance",
    "pension",
    "medical_insurance",
    "employment_service",
    "work_injury",
    "talent_settlement",
    "school_enrollment",
    "school_fees",
    "teacher_conduct",
    "kindergarten",
    "student_burden",
    "medical_service",
    "medical_dispute",
    "vaccination",
    "maternal_child_health",
    "property_certificate",
    "demolition_resettlement",
    "rental_housing",
    "consumer_dispute",
    "prepaid_card",
    "online_shopping",
    "bus_service",
    "taxi_service",
    "gas_supply",
    "fraud",
    "household_registration",
    "subsistence_allowance",
    "disability_support",
    "veterans_affairs",
    "marriage_registration",
    "tourism_complaint",
    "land_contract",
    "agricultural_subsidy",
    "rural_affairs",
]
# A matter of a place: reports from neighbours within this many metres are one case.
SPATIAL_MATTERS = [
    ("black_smelly_river", 300),
    ("river_garbage", 100),
    ("river_dredging", 300),
    ("sewage_discharge", 200),
    ("industrial_pollution", 500),
    ("construction_noise", 100),
    ("restaurant_fumes", 50),
    ("garbage_collection", 50),
    ("noise", 100),
    ("garbage_exposed", 100),
    ("water_quality", 500),
    ("stray_animals", 100),
]


def _communities_by_district(topology: Topology) -> dict[str, str]:
    """One community in each district: the first by code."""
    first: dict[str, str] = {}
    for code in sorted(topology.areas):
        if topology.level_of(code) is AreaLevel.COMMUNITY:
            district = topology.ancestor_at(code, AreaLevel.DISTRICT)
            assert district is not None
            first.setdefault(district, code)
    return first


def test_the_tree_has_the_plans_classes_in_order(chengdu: Topology) -> None:
    assert [(code, spec.name) for code, spec in chengdu.classes.items()] == CLASSES
    assert all(spec.description for spec in chengdu.classes.values())


def test_the_catalogue_is_the_plans(chengdu: Topology) -> None:
    assert len(chengdu.categories) == len(CATALOGUE) >= 80
    assert set(chengdu.categories) == {row[0] for row in CATALOGUE}
    for code, class_code, lead, co, lowest in CATALOGUE:
        spec = chengdu.categories[code]
        assert (
            spec.class_code,
            spec.lead_kind,
            tuple(spec.co_handler_kinds),
            spec.lowest_level,
        ) == (
            class_code,
            lead,
            co,
            lowest,
        ), code
    assert chengdu.categories["property_dispute"].name == "物业服务"


def test_no_catch_all_in_chengdu_but_tiny_keeps_its_own(chengdu: Topology, tiny: Topology) -> None:
    assert chengdu.category("general") is None
    assert tiny.category("general") is not None


@pytest.mark.parametrize(
    ("which", "category", "expected"),
    [
        ("chengdu", "wage_arrears", "labour"),
        ("chengdu", "medical_insurance", "labour"),
        ("chengdu", "black_smelly_river", "environment"),
        ("chengdu", "noise", "environment"),
        ("chengdu", "food_safety", "health"),
        ("chengdu", "waterlogging", "emergency"),
        ("chengdu", "property_dispute", "housing"),
        ("chengdu", "general", None),
        ("chengdu", "no_such_category", None),
        ("tiny", "waterlogging", None),  # a flat catalogue: no classes at all
    ],
)
def test_class_of(
    which: str, category: str, expected: str | None, request: pytest.FixtureRequest
) -> None:
    topology: Topology = request.getfixturevalue(which)
    assert topology.class_of(category) == expected


def test_every_class_holds_categories_and_every_category_a_class(chengdu: Topology) -> None:
    members: dict[str | None, list[str]] = defaultdict(list)
    for code in chengdu.categories:
        members[chengdu.class_of(code)].append(code)
    assert None not in members
    assert set(members) == set(chengdu.classes)


@pytest.mark.parametrize("kind", NEW_KINDS)
def test_new_department_kinds_sit_at_the_city_and_every_district(
    chengdu: Topology, kind: str
) -> None:
    assert chengdu.department_at(kind, chengdu.city) is not None
    districts = [code for code, area in chengdu.areas.items() if area.level is AreaLevel.DISTRICT]
    assert len(districts) == 23
    for district in districts:
        department = chengdu.department_at(kind, district)
        assert department is not None, (kind, district)
        assert department.name.startswith(chengdu.areas[district].name)


def test_every_category_routes_from_a_community_in_each_district(chengdu: Topology) -> None:
    assert chengdu.routability_problems() == []
    for district, community in _communities_by_district(chengdu).items():
        for code, spec in chengdu.categories.items():
            assignment = route(chengdu, code, [community])
            assert chengdu.departments[assignment.lead_department].kind == spec.lead_kind
            assert LOOP_RANK[assignment.loop] >= LOOP_RANK[spec.lowest_level], code
            assert assignment.handling_area in chengdu.ancestors(community)
            helpers = {chengdu.departments[d].kind for d in assignment.co_departments}
            assert set(spec.co_handler_kinds) - LOCAL_ONLY_KINDS <= helpers, (code, district)
            for department in (assignment.lead_department, *assignment.co_departments):
                assert chengdu.departments[department].area in chengdu.ancestors(community)


def test_keywords_are_few_and_distinct(chengdu: Topology) -> None:
    for code, spec in chengdu.categories.items():
        assert 3 <= len(spec.keywords) <= 8, code
        assert len(set(spec.keywords)) == len(spec.keywords), code


def test_each_first_keyword_leads_back_to_its_category(chengdu: Topology) -> None:
    """Keyword matching tries categories in file order and the first with a keyword in the text
    wins; the load generator writes each category's first keyword. No earlier category may
    take it (施工噪音 is not noise, 信号灯不亮 is not a street light)."""
    seen: list[tuple[str, list[str]]] = []
    for code, spec in chengdu.categories.items():
        first = spec.keywords[0].lower()
        taken = [earlier for earlier, words in seen if any(word in first for word in words)]
        assert not taken, (code, spec.keywords[0], taken)
        seen.append((code, [word.lower() for word in spec.keywords]))


@pytest.mark.parametrize("code", PERSONAL_MATTERS)
def test_personal_matters_meet_only_at_one_spot_within_the_hour(
    chengdu: Topology, code: str
) -> None:
    # Two categories of one family meet within the larger radius and window of the two, so
    # every category of the family must be as strict.
    spec = chengdu.categories[code]
    family = [other for other in chengdu.categories.values() if other.family == spec.family]
    for member in family:
        assert member.correlation.radius_m <= 30, (code, member.code)
        assert member.correlation.window_minutes <= 60, (code, member.code)


@pytest.mark.parametrize(("code", "at_least_m"), SPATIAL_MATTERS)
def test_matters_of_a_place_keep_a_realistic_radius(
    chengdu: Topology, code: str, at_least_m: int
) -> None:
    spec = chengdu.categories[code]
    assert spec.correlation.radius_m >= at_least_m
    assert spec.correlation.window_minutes >= 180


def test_the_national_grading_table() -> None:
    assert NATIONAL_SEVERITY_FLOOR == {
        Severity.I: Loop.BIG,
        Severity.II: Loop.BIG,
        Severity.III: Loop.BIG,
        Severity.IV: Loop.MEDIUM,
    }


def _category(
    lowest: str, own: dict[str, str] | None = None, emergency: str | None = None
) -> CategorySpec:
    return CategorySpec.model_validate(
        {
            "code": "example",
            "name": "例",
            "family": "example",
            "lead_kind": "urban_management",
            "lowest_level": lowest,
            "severity_floor": own or {},
            "emergency_floor": emergency,
            "sla": {"accept_minutes": 30, "resolve_minutes": 240},
            "correlation": {"radius_m": 100, "window_minutes": 60},
        }
    )


@pytest.mark.parametrize(
    ("lowest", "own", "emergency", "severity", "mode", "expected"),
    [
        # the national grading lifts every category
        ("micro", None, None, None, Mode.NORMAL, Loop.MICRO),
        ("micro", None, None, Severity.I, Mode.NORMAL, Loop.BIG),
        ("micro", None, None, Severity.II, Mode.NORMAL, Loop.BIG),
        ("micro", None, None, Severity.III, Mode.NORMAL, Loop.BIG),
        ("micro", None, None, Severity.IV, Mode.NORMAL, Loop.MEDIUM),
        ("small", None, None, Severity.IV, Mode.NORMAL, Loop.MEDIUM),
        # a lowest level above the grade's floor stands
        ("big", None, None, Severity.IV, Mode.NORMAL, Loop.BIG),
        # a category floor above the national one wins; one below it changes nothing
        ("small", {"IV": "big"}, None, Severity.IV, Mode.NORMAL, Loop.BIG),
        ("micro", {"IV": "small"}, None, Severity.IV, Mode.NORMAL, Loop.MEDIUM),
        ("micro", {"III": "medium"}, None, Severity.III, Mode.NORMAL, Loop.BIG),
        # a category floor for a milder grade binds the graver ones
        ("micro", {"IV": "big"}, None, Severity.I, Mode.NORMAL, Loop.BIG),
        # the emergency floor is combined by max as well
        ("micro", None, "medium", None, Mode.EMERGENCY, Loop.MEDIUM),
        ("micro", None, "medium", Severity.II, Mode.EMERGENCY, Loop.BIG),
        ("micro", None, "big", Severity.IV, Mode.EMERGENCY, Loop.BIG),
        ("micro", None, "big", Severity.IV, Mode.NORMAL, Loop.MEDIUM),
    ],
)
def test_floor_for_combines_the_national_grading_with_the_categorys_floors(
    lowest: str,
    own: dict[str, str] | None,
    emergency: str | None,
    severity: Severity | None,
    mode: Mode,
    expected: Loop,
) -> None:
    assert _category(lowest, own, emergency).floor_for(severity, mode) is expected


@pytest.mark.parametrize(
    ("category", "severity", "loop", "lifted"),
    [
        ("wage_arrears", Severity.IV, Loop.MEDIUM, False),  # medium is its lowest loop anyway
        ("wage_arrears", Severity.III, Loop.BIG, True),
        ("garbage_exposed", None, Loop.MICRO, False),
        ("garbage_exposed", Severity.IV, Loop.MEDIUM, True),
        ("noise", Severity.II, Loop.BIG, True),
        ("structural_danger", Severity.III, Loop.BIG, True),
    ],
)
def test_chengdu_routes_by_the_national_grading(
    chengdu: Topology, category: str, severity: Severity | None, loop: Loop, lifted: bool
) -> None:
    assignment = route(chengdu, category, ["510104001001"], severity)
    assert assignment.loop is loop
    assert ("severity_floor" in [reason.rule for reason in assignment.reasons]) is lifted
