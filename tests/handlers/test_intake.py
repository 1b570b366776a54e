"""Intake decisions, table-driven: what becomes an incident, and every named dead-letter reason."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from cityloop.contracts import EVENT_TYPES, UNCLASSIFIED, Origin, Source
from handlers.intake import Accepted, DeadLettered, take_in
from tests.contracts.test_contracts import VALID
from tests.handlers.guessers import KeywordGuesser
from topology import Topology, load_topology, tiny_topology_path

NOW = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
ORIGIN = Origin(topic="cityloop.events.hotline", partition=0, offset=7)


@pytest.fixture(scope="module")
def tiny() -> Topology:
    return load_topology(tiny_topology_path())


def envelope(source: Source, **data: Any) -> dict[str, Any]:
    valid = VALID[source]  # the contract tests' table: one dict per source
    return {
        "specversion": "1.0",
        "id": "E-1",
        "source": f"/test/{source.value}",
        "type": EVENT_TYPES[source],
        "data": {**valid, **data},
    }


def raw(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode()


@pytest.mark.parametrize(
    ("source", "data", "category", "areas", "method"),
    [
        (
            Source.HOTLINE,
            {},
            "pothole",
            ["510104002001"],
            "reported_area",
        ),  # 井盖 keyword? no: see below
        (Source.HOTLINE, {"category_code": "noise"}, "noise", ["510104002001"], "reported_area"),
        (
            Source.HOTLINE,
            {"area_code": None, "location": {"lat": 30.66, "lon": 104.08}, "title": "路上有个大坑"},
            "pothole",
            ["510104001001"],
            "polygon",
        ),
        (
            Source.HOTLINE,
            {"title": "咨询", "text": "想问问办事流程", "category_code": None},
            UNCLASSIFIED,
            ["510104002001"],
            "reported_area",
        ),
        (Source.GRID, {"category_code": "ufo"}, UNCLASSIFIED, ["510104001001"], "reported_area"),
        (Source.IOT, {"area_code": None}, "waterlogging", ["510104001001"], "polygon"),
        (Source.GRID, {}, "garbage_exposed", ["510104001001"], "reported_area"),
        (
            Source.DUTY,
            {"affected_areas": ["510104001", "510104001"]},
            "gas_leak",
            ["510104001"],
            "reported_area",
        ),
    ],
)
def test_accepted_incidents(
    tiny: Topology,
    source: Source,
    data: dict[str, Any],
    category: str,
    areas: list[str],
    method: str,
) -> None:
    if source is Source.HOTLINE and not data:
        data = {"title": "路面坑洼", "text": "人行道有个坑"}
    result = take_in(
        raw(envelope(source, **data)),
        tiny,
        NOW,
        expected=source,
        origin=ORIGIN,
        guesser=KeywordGuesser(tiny),
    )
    assert isinstance(result, Accepted), result
    incident = result.incident
    assert incident.category_code == category
    assert incident.area_codes == areas
    assert incident.location_method == method
    assert incident.idempotency_key == f"/test/{source.value}|E-1"
    assert incident.received_at == NOW and incident.origin == ORIGIN


def test_hotline_caller_is_kept_for_the_case_and_grid_names_the_inspector(tiny: Topology) -> None:
    hotline = take_in(raw(envelope(Source.HOTLINE)), tiny, NOW, Source.HOTLINE)
    assert isinstance(hotline, Accepted)
    assert hotline.incident.caller is not None and hotline.incident.caller.phone == "13800001003"
    grid = take_in(raw(envelope(Source.GRID)), tiny, NOW, Source.GRID)
    assert isinstance(grid, Accepted) and grid.incident.reporter == "GI-1"


def test_duty_report_carries_severity_and_casualties(tiny: Topology) -> None:
    result = take_in(raw(envelope(Source.DUTY, casualties=3, severity="I")), tiny, NOW, Source.DUTY)
    assert isinstance(result, Accepted)
    assert result.incident.severity == "I" and result.incident.casualties == 3


@pytest.mark.parametrize(
    ("record", "expected", "reason", "detail"),
    [
        (b"\xff\xfe\x00", Source.HOTLINE, "undecodable", "UTF-8"),
        (b'{"specversion": "1.0", "id": ', Source.HOTLINE, "undecodable", "JSON"),
        (b"[1, 2, 3]", Source.HOTLINE, "not_a_cloudevent", "not an object"),
        (raw({"hello": "world"}), Source.HOTLINE, "not_a_cloudevent", "specversion"),
        (
            raw({**envelope(Source.GRID), "type": "x.y.z"}),
            Source.GRID,
            "unknown_event_type",
            "x.y.z",
        ),
        (raw(envelope(Source.IOT)), Source.GRID, "source_mismatch", "iot"),
        (raw(envelope(Source.IOT, reading="high")), Source.IOT, "invalid_payload", "data.reading"),
        (
            raw(envelope(Source.HOTLINE, area_code="510199001001")),
            Source.HOTLINE,
            "unknown_area",
            "510199001001",
        ),
        (
            raw(envelope(Source.IOT, sensor_type="radiation")),
            Source.IOT,
            "unknown_category",
            "radiation",
        ),
        (
            raw(envelope(Source.IOT, area_code=None, location={"lat": 39.9, "lon": 116.4})),
            Source.IOT,
            "unlocatable",
            "39.9",
        ),
        (
            raw(envelope(Source.DUTY, affected_areas=["510104001", "999999"])),
            Source.DUTY,
            "unknown_area",
            "affected_areas[1]",
        ),
        (b"[" * 100_000 + b"]" * 100_000, Source.HOTLINE, "undecodable", ""),
    ],
)
def test_dead_letters_name_the_reason_and_keep_the_bytes(
    tiny: Topology, record: bytes, expected: Source, reason: str, detail: str
) -> None:
    result = take_in(record, tiny, NOW, expected=expected, origin=ORIGIN)
    assert isinstance(result, DeadLettered)
    letter = result.dead_letter
    assert letter.reason.value == reason
    assert detail in letter.detail
    assert base64.b64decode(letter.payload_b64) == record
    assert letter.origin == ORIGIN and letter.recorded_at == NOW
