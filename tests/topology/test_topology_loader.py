"""Loading: the shipped files, the fast YAML path, lookups, locating and SLAs."""

from __future__ import annotations

import math

import pytest
import yaml

from cityloop.contracts import AreaLevel, GeoPoint, Loop, Mode, Severity
from topology import (
    Topology,
    default_topology_path,
    load_topology_text,
    route,
    tiny_topology_path,
)
from topology.loader import _fast_yaml

CHENGDU_DISTRICTS = {
    "510104": "锦江区",
    "510105": "青羊区",
    "510106": "金牛区",
    "510107": "武侯区",
    "510108": "成华区",
    "510112": "龙泉驿区",
    "510113": "青白江区",
    "510114": "新都区",
    "510115": "温江区",
    "510116": "双流区",
    "510117": "郫都区",
    "510118": "新津区",
    "510121": "金堂县",
    "510129": "大邑县",
    "510131": "蒲江县",
    "510181": "都江堰市",
    "510182": "彭州市",
    "510183": "邛崃市",
    "510184": "崇州市",
    "510185": "简阳市",
    "510190": "成都高新区",
    "510191": "天府新区成都直管区",
    "510192": "成都东部新区",
}
SHARED_CATEGORIES = {
    # code: (family, lead kind, co-handler kinds, lowest loop)
    "garbage_exposed": ("environment", "urban_management", [], Loop.MICRO),
    "pothole": ("municipal", "urban_management", [], Loop.SMALL),
    "waterlogging": ("flooding", "water", ["urban_management", "traffic_police"], Loop.SMALL),
    "water_main_burst": ("flooding", "water", ["water_utility", "traffic_police"], Loop.MEDIUM),
    "gas_leak": ("hazard", "emergency", ["gas_utility", "fire_rescue", "police"], Loop.MEDIUM),
    "noise": ("public_safety", "police", [], Loop.MICRO),
    "fire": ("hazard", "fire_rescue", ["emergency", "police", "health"], Loop.MEDIUM),
}
SHARED_SENSORS = {"water_level": True, "gas_concentration": False, "smoke": False}


def _count(topology: Topology, level: AreaLevel) -> int:
    return sum(1 for area in topology.areas.values() if area.level is level)


def test_chengdu_has_its_real_district_level_units(chengdu: Topology) -> None:
    districts = {
        code: area.name for code, area in chengdu.areas.items() if area.level is AreaLevel.DISTRICT
    }
    assert districts == CHENGDU_DISTRICTS
    assert chengdu.city == "510100"
    assert chengdu.version == "chengdu-2026.1"


def test_chengdu_is_city_sized(chengdu: Topology) -> None:
    assert 240 <= _count(chengdu, AreaLevel.STREET) <= 280
    assert 2800 <= _count(chengdu, AreaLevel.COMMUNITY) <= 3200
    assert _count(chengdu, AreaLevel.GRID) >= 2 * _count(chengdu, AreaLevel.COMMUNITY)
    assert len(chengdu.categories) >= 80 and len(chengdu.classes) >= 12
    families = {category.family for category in chengdu.categories.values()}
    assert {"environment", "municipal", "flooding", "hazard", "traffic"} <= families
    for sensor in [
        "water_level",
        "gas_concentration",
        "manhole_tilt",
        "smoke",
        "structural_strain",
    ]:
        spec = chengdu.sensor_type(sensor)
        assert spec is not None and spec.category_code in chengdu.categories
    kinds_by_level = {
        level: {
            chengdu.departments[d].kind
            for d in chengdu.departments
            if chengdu.level_of(chengdu.departments[d].area) is level
        }
        for level in (AreaLevel.CITY, AreaLevel.DISTRICT, AreaLevel.STREET, AreaLevel.COMMUNITY)
    }
    assert all(kinds for kinds in kinds_by_level.values())
    assert "residents_committee" in kinds_by_level[AreaLevel.COMMUNITY]


@pytest.mark.parametrize("which", ["tiny", "chengdu"])
def test_shared_category_codes_mean_the_same(which: str, request: pytest.FixtureRequest) -> None:
    topology: Topology = request.getfixturevalue(which)
    for code, (family, lead, co, lowest) in SHARED_CATEGORIES.items():
        spec = topology.category(code)
        assert spec is not None, code
        assert (spec.family, spec.lead_kind, spec.co_handler_kinds, spec.lowest_level) == (
            family,
            lead,
            co,
            lowest,
        ), code
        assert spec.keywords
    for sensor, verify in SHARED_SENSORS.items():
        sensor_spec = topology.sensor_type(sensor)
        assert sensor_spec is not None and sensor_spec.needs_verification is verify
    assert topology.categories["fire"].floor_for(Severity.I) is Loop.BIG
    assert topology.categories["fire"].floor_for(Severity.II) is Loop.BIG


def test_chengdu_routes_the_domain_table(chengdu: Topology) -> None:
    community = "510104001001"
    assert route(chengdu, "garbage_exposed", [community]).loop is Loop.MICRO
    assert route(chengdu, "pothole", [community]).loop is Loop.SMALL
    assert route(chengdu, "waterlogging", [community]).loop is Loop.SMALL
    assert route(chengdu, "waterlogging", [community, "510104002001"]).loop is Loop.MEDIUM
    assert route(chengdu, "gas_leak", [community]).loop is Loop.MEDIUM
    assert route(chengdu, "fire", [community], Severity.I).loop is Loop.BIG
    assert route(chengdu, "noise", [community]).loop is Loop.MICRO
    assert route(chengdu, "garbage_exposed", [community, "510105001001"]).loop is Loop.BIG


@pytest.mark.parametrize("path", [tiny_topology_path(), default_topology_path()])
def test_fast_yaml_builds_what_the_safe_loader_builds(path: object) -> None:
    text = path.read_bytes()  # type: ignore[attr-defined]
    assert _fast_yaml(text) == yaml.load(text, Loader=yaml.CSafeLoader)  # noqa: S506


def test_fast_yaml_resolves_scalars_like_yaml_1_1() -> None:
    text = (
        "a: yes\nb: ~\nc: 1e3\nd: 0x1F\ne: '510104'\nf: 510104\ng: 2024-01-02\n"
        "h: [1, 2.5, off, null, '']\ni: {j: .inf}\nk: -.5\n"
    )
    fast = _fast_yaml(text)
    assert fast == yaml.safe_load(text)
    assert fast["e"] == "510104" and fast["f"] == 510104 and math.isinf(fast["i"]["j"])


def test_anchors_and_merge_keys_use_the_full_loader() -> None:
    base = tiny_topology_path().read_text(encoding="utf-8")
    with_anchor = base.replace(
        "sla: {accept_minutes: 60, resolve_minutes: 1440}",
        "sla: &daily {accept_minutes: 60, resolve_minutes: 1440}",
        1,
    ).replace("sla: {accept_minutes: 60, resolve_minutes: 4320}", "sla: *daily", 1)
    assert with_anchor != base
    topology = load_topology_text(with_anchor)
    assert topology.categories["general"].sla.resolve_minutes == 1440


def test_text_and_bytes_load_alike_and_digest_tracks_content() -> None:
    text = tiny_topology_path().read_text(encoding="utf-8")
    from_text = load_topology_text(text)
    from_bytes = load_topology_text(text.encode())
    changed = load_topology_text(text.replace("version: tiny-1", "version: tiny-2"))
    assert from_text.digest == from_bytes.digest
    assert changed.digest != from_text.digest
    assert (from_text.version, changed.version) == ("tiny-1", "tiny-2")
    assert route(changed, "pothole", ["510104001001"]).topology_version == "tiny-2"


def test_integer_codes_are_read_as_text() -> None:
    text = (
        tiny_topology_path()
        .read_text(encoding="utf-8")
        .replace('{code: "510104", name: 锦江区', "{code: 510104, name: 锦江区")
    )
    assert load_topology_text(text).area("510104") is not None


def test_tree_lookups(tiny: Topology) -> None:
    assert tiny.ancestors("510104001001001") == (
        "510104001001001",
        "510104001001",
        "510104001",
        "510104",
        "510100",
    )
    assert tiny.ancestors("999") == ()
    assert tiny.ancestor_at("510104001001001", AreaLevel.DISTRICT) == "510104"
    assert tiny.ancestor_at("510104001", AreaLevel.STREET) == "510104001"
    assert tiny.ancestor_at("510104001", AreaLevel.COMMUNITY) is None
    assert tiny.ancestor_at("999", AreaLevel.CITY) is None
    assert tiny.lowest_common_ancestor(["510104001001", "510104002002"]) == "510104"
    assert tiny.lowest_common_ancestor(["510104001001", "999"]) is None
    assert tiny.children("510104") == ("510104001", "510104002")
    assert tiny.department_for("water", "510105002001001") == tiny.departments["510105.water"]
    assert tiny.department_at("water", "510105002") is None
    assert tiny.department_for("water", "999") is None
    centre = tiny.centre_for("510104001001")
    assert centre is not None and centre.id == "centre:510104001"
    area = tiny.area("510104001001")
    assert area is not None and area.polygon is not None and len(area.polygon) == 4
    assert tiny.category("nope") is None and tiny.sensor_type("nope") is None
    assert set(tiny.graph.successors("510104")) == {"510104001", "510104002"}


@pytest.mark.parametrize(
    ("lat", "lon", "within", "expected"),
    [
        (30.6601, 104.0801, None, ("510104001001", "polygon")),
        (30.6601, 104.0899, None, ("510104001002", "polygon")),
        (30.6401, 104.0990, None, ("510104002002", "nearest_centroid")),
        (30.6601, 104.0801, "510105", ("510105002002", "nearest_centroid")),
        (30.6401, 104.0990, "510104002001", ("510104002001", "nearest_centroid")),
        (30.6401, 104.0990, "510104001001002", ("510104001001", "nearest_centroid")),
    ],
)
def test_locate(
    tiny: Topology, lat: float, lon: float, within: str | None, expected: tuple[str, str]
) -> None:
    assert tiny.locate(GeoPoint(lat=lat, lon=lon), within=within) == expected


def test_locate_in_an_unknown_area_finds_nothing(tiny: Topology) -> None:
    assert tiny.locate(GeoPoint(lat=30.66, lon=104.08), within="510199") is None


def test_locate_in_chengdu_uses_polygons_downtown_and_centroids_outside(
    chengdu: Topology,
) -> None:
    downtown = chengdu.area("510104003002")
    rural = chengdu.area("510131003004")
    assert downtown is not None and downtown.centroid is not None
    assert rural is not None and rural.centroid is not None
    assert chengdu.locate(downtown.centroid) == ("510104003002", "polygon")
    assert chengdu.locate(rural.centroid, within="510131") == (
        "510131003004",
        "nearest_centroid",
    )


def test_sla_per_loop_and_emergency(tiny: Topology) -> None:
    waterlogging = tiny.categories["waterlogging"].sla
    assert waterlogging.for_loop(Loop.SMALL).resolve_minutes == 240
    emergency = waterlogging.for_loop(Loop.MEDIUM, Mode.EMERGENCY)
    assert (emergency.accept_minutes, emergency.resolve_minutes) == (5, 120)
    noise = tiny.categories["noise"].sla
    assert noise.for_loop(Loop.SMALL).accept_minutes == 60
    assert noise.for_loop(Loop.MICRO).accept_minutes == 30
    correlation = tiny.categories["waterlogging"].correlation
    assert (correlation.radius_m, correlation.window_minutes) == (500, 180)
