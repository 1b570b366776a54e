"""Places from words (topology.names): which area an address or a text names, table-driven over
the tiny topology and the bundled one."""

from __future__ import annotations

import pytest

from topology import Topology, load_topology, tiny_topology_path
from topology.names import PlaceFinding, area_names


@pytest.fixture(scope="module")
def tiny() -> Topology:
    return load_topology(tiny_topology_path())


@pytest.mark.parametrize(
    ("text", "finding", "area"),
    [
        ("锦江区春熙街道红星社区3栋", PlaceFinding.FOUND, "510104001001"),
        ("红星社区门口", PlaceFinding.FOUND, "510104001001"),
        ("锦江区", PlaceFinding.FOUND, "510104"),
        ("锦江那边", PlaceFinding.FOUND, "510104"),  # a district's short form
        ("春熙街办旁边", PlaceFinding.FOUND, "510104001"),  # 街办 for 街道
        ("青羊区宽巷子社区", PlaceFinding.FOUND, "510105002001"),
        ("春熙街道还是草堂街道", PlaceFinding.AMBIGUOUS, "510100"),
        ("我们小区门口", PlaceFinding.NONE, None),
        ("福州市鼓楼区", PlaceFinding.NONE, None),
        ("", PlaceFinding.NONE, None),
    ],
)
def test_the_place_a_text_names(
    tiny: Topology, text: str, finding: PlaceFinding, area: str | None
) -> None:
    place = area_names(tiny).find(text)
    assert place.finding is finding
    assert place.area == area


def test_the_address_is_read_before_the_words(tiny: Topology) -> None:
    place = area_names(tiny).find("青羊区", "我在锦江区上班")
    assert place.area == "510105"
    assert area_names(tiny).find("", "我在锦江区上班").area == "510104"


def test_a_community_name_shared_by_streets_is_ambiguous_until_the_street_is_named() -> None:
    chengdu = load_topology()
    names = area_names(chengdu)
    shared = [
        code
        for code, area in chengdu.areas.items()
        if area.name == "梅林社区" and area.level.value == "community"
    ]
    assert len(shared) > 1
    ambiguous = names.find("梅林社区门口")
    assert ambiguous.finding is PlaceFinding.AMBIGUOUS
    assert set(ambiguous.candidates) <= set(shared)
    street = chengdu.areas[shared[0][:9]].name
    district = chengdu.areas[shared[0][:6]].name
    found = names.find(f"{district}{street}梅林社区")
    assert found.finding is PlaceFinding.FOUND and found.area == shared[0]
