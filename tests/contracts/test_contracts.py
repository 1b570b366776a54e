"""Every contract: its documented example validates; broken ones are refused naming the field."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import AwareDatetime, TypeAdapter, ValidationError

from cityloop.contracts import (
    CASE_EVENT_ADAPTER,
    EVENT_TYPES,
    PAYLOADS,
    CloudEvent,
    DutyReport,
    GridReport,
    HotlineWorkOrder,
    IoTAlarm,
    Source,
    idempotency_key_for,
)
from cityloop.demo import demo_lines
from handlers.intake import describe_validation_error

HOTLINE = {
    "order_id": "WO-1",
    "received_at": "2026-11-22T08:00:00+08:00",
    "title": "井盖丢失",
    "text": "红星路口井盖不见了",
    "area_code": "510104002001",
    "caller_name": "王芳",
    "caller_phone": "13800001003",
}
IOT = {
    "alarm_id": "AL-1",
    "device_id": "WL-1",
    "sensor_type": "water_level",
    "reading": 0.62,
    "threshold": 0.3,
    "unit": "m",
    "location": {"lat": 30.6571, "lon": 104.0832},
    "raised_at": "2026-11-22T08:00:00+08:00",
}
GRID = {
    "report_id": "GR-1",
    "inspector_id": "GI-1",
    "grid_id": "510104001001001",
    "category_code": "garbage_exposed",
    "text": "垃圾暴露",
    "reported_at": "2026-11-22T08:00:00+08:00",
}
DUTY = {
    "report_id": "DR-1",
    "duty_office": "510104",
    "severity": "II",
    "category_code": "gas_leak",
    "affected_areas": ["510104001"],
    "summary": "燃气泄漏",
    "reported_at": "2026-11-22T08:00:00+08:00",
}
VALID: dict[Source, dict[str, Any]] = {
    Source.HOTLINE: HOTLINE,
    Source.IOT: IOT,
    Source.GRID: GRID,
    Source.DUTY: DUTY,
}


@pytest.mark.parametrize("source", list(Source))
def test_valid_payload_validates(source: Source) -> None:
    payload = PAYLOADS[source].model_validate(VALID[source])
    assert payload.model_dump(mode="json", exclude_defaults=True)


@pytest.mark.parametrize(
    ("model", "document", "field"),
    [
        (HotlineWorkOrder, {**HOTLINE, "received_at": "yesterday"}, "received_at"),
        (HotlineWorkOrder, {**HOTLINE, "received_at": "2026-11-22T08:00:00"}, "received_at"),
        (HotlineWorkOrder, {**HOTLINE, "received_at": "1999-12-31T23:00:00+00:00"}, "received_at"),
        # pydantic alone reads a number, or digits, as seconds since 1970
        (HotlineWorkOrder, {**HOTLINE, "received_at": 1764000000}, "received_at"),
        (HotlineWorkOrder, {**HOTLINE, "received_at": "1764000000"}, "received_at"),
        (IoTAlarm, {**IOT, "raised_at": 1764000000.5}, "raised_at"),
        (GridReport, {**GRID, "reported_at": True}, "reported_at"),
        (HotlineWorkOrder, {**HOTLINE, "caller_phone": "call me maybe"}, "caller_phone"),
        (HotlineWorkOrder, {**HOTLINE, "area_code": "ABC"}, "area_code"),
        (HotlineWorkOrder, {**HOTLINE, "title": ""}, "title"),
        (HotlineWorkOrder, {**HOTLINE, "surprise": 1}, "surprise"),
        (HotlineWorkOrder, {k: v for k, v in HOTLINE.items() if k != "title"}, "title"),
        (IoTAlarm, {**IOT, "location": {"lat": 91, "lon": 104}}, "location.lat"),
        (IoTAlarm, {**IOT, "location": {"lat": "NaN", "lon": 104}}, "location.lat"),
        (IoTAlarm, {**IOT, "reading": "high"}, "reading"),
        (IoTAlarm, {**IOT, "sensor_type": "Water Level!"}, "sensor_type"),
        (GridReport, {**GRID, "photo_refs": "one.jpg"}, "photo_refs"),
        (GridReport, {**GRID, "grid_id": None}, "grid_id"),
        (DutyReport, {**DUTY, "severity": "V"}, "severity"),
        (DutyReport, {**DUTY, "casualties": -1}, "casualties"),
        (DutyReport, {**DUTY, "affected_areas": []}, "affected_areas"),
    ],
)
def test_invalid_payload_names_the_field(model: Any, document: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(document)
    assert field in describe_validation_error(caught.value)


def test_hotline_needs_a_place() -> None:
    unplaced = {k: v for k, v in HOTLINE.items() if k not in ("area_code", "address")}
    with pytest.raises(ValidationError, match="an area_code, a location or an address"):
        HotlineWorkOrder.model_validate(unplaced)
    # an address alone will do: the worker reads the place from its words
    assert (
        HotlineWorkOrder.model_validate({**unplaced, "address": "锦江区红星路"}).area_code is None
    )


def test_a_long_complaint_is_taken_whole() -> None:
    long_text = "河水又黑又臭，" * 2000  # 14,000 characters: a real letter can run this long
    order = HotlineWorkOrder.model_validate({**HOTLINE, "text": long_text})
    assert order.text == long_text


def test_cloudevent_envelope_and_idempotency_key() -> None:
    event = CloudEvent.model_validate(
        {
            "specversion": "1.0",
            "id": "A",
            "source": "/x",
            "type": EVENT_TYPES[Source.IOT],
            "data": IOT,
        }
    )
    assert event.idempotency_key == "/x|A" == idempotency_key_for("/x", "A")
    with pytest.raises(ValidationError, match="specversion"):
        CloudEvent.model_validate({**event.model_dump(), "specversion": "0.3"})
    with pytest.raises(ValidationError, match="data"):
        CloudEvent.model_validate({k: v for k, v in event.model_dump().items() if k != "data"})


@pytest.mark.parametrize("time", [1764000000, 1764000000.25, "1764000000"])
def test_a_number_is_not_an_event_time(time: Any) -> None:
    document = {"specversion": "1.0", "id": "A", "source": "/x", "type": "t", "data": {}}
    parsers: list[Callable[[], CloudEvent]] = [
        lambda: CloudEvent.model_validate({**document, "time": time}),
        lambda: CloudEvent.model_validate_json(json.dumps({**document, "time": time})),
    ]
    for parse in parsers:
        with pytest.raises(ValidationError, match="numbers are not taken as times") as caught:
            parse()
        assert describe_validation_error(caught.value).startswith("time: ")


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-22T08:15:00+08:00",
        "2026-11-22T00:15:03Z",
        "2026-11-22 08:15:00.123456-05:30",
        "2026-11-22T08:15+08:00",
    ],
)
def test_written_times_read_as_pydantic_reads_them(text: str) -> None:
    """The refusal of numbers changes nothing for text: the same instant, the same offset."""
    plain = TypeAdapter(AwareDatetime).validate_python(text)
    document = {"specversion": "1.0", "id": "A", "source": "/x", "type": "t", "data": {}}
    for event in (
        CloudEvent.model_validate({**document, "time": text}),
        CloudEvent.model_validate_json(json.dumps({**document, "time": text})),
    ):
        assert event.time == plain and event.time.utcoffset() == plain.utcoffset()
        assert (
            event.model_dump_json()
            == CloudEvent.model_validate({**document, "time": plain}).model_dump_json()
        )


def test_case_event_union_round_trips_by_type() -> None:
    document = {
        "type": "CaseAccepted",
        "event_id": "e1",
        "case_id": "CL-1",
        "version": 3,
        "occurred_at": "2026-11-22T00:00:00Z",
        "actor": "dept:510104.water",
        "department": "510104.water",
    }
    event = CASE_EVENT_ADAPTER.validate_json(json.dumps(document))
    assert type(event).__name__ == "CaseAccepted"
    with pytest.raises(ValidationError):
        CASE_EVENT_ADAPTER.validate_python({**document, "type": "CaseVanished"})


def test_every_demo_event_is_a_valid_contract() -> None:
    lines = demo_lines()
    assert {line["source"] for line in lines} == {src.value for src in Source}
    for line in lines:
        event = CloudEvent.model_validate(line["event"])
        source = Source(str(line["source"]))
        assert event.type == EVENT_TYPES[source]
        PAYLOADS[source].model_validate(event.data)


def test_documented_examples_validate_and_use_the_default_topology() -> None:
    from topology import load_topology

    topology = load_topology()
    documented = (Path(__file__).parents[2] / "docs" / "events.md").read_text(encoding="utf-8")
    for source, model in PAYLOADS.items():
        extra = model.model_config.get("json_schema_extra")
        examples = cast(
            list[dict[str, Any]], extra.get("examples", []) if isinstance(extra, dict) else []
        )
        assert examples, f"{model.__name__} has no documented example"
        for example in examples:
            payload = model.model_validate(example)
            assert f"`{model.__name__}` ({source.value})" in documented
            code = getattr(payload, "category_code", None)
            assert code is None or topology.category(code) is not None, code


ENVELOPE = {
    "specversion": "1.0",
    "id": "WO-1",
    "source": "/12345/chengdu",
    "type": EVENT_TYPES[Source.HOTLINE],
    "data": HOTLINE,
}
ID_FIELDS: list[tuple[Any, dict[str, Any], str]] = [
    (CloudEvent, ENVELOPE, "id"),
    (CloudEvent, ENVELOPE, "source"),
    (CloudEvent, ENVELOPE, "type"),
    (HotlineWorkOrder, HOTLINE, "order_id"),
    (HotlineWorkOrder, HOTLINE, "category_code"),
    (IoTAlarm, IOT, "alarm_id"),
    (IoTAlarm, IOT, "device_id"),
    (GridReport, GRID, "report_id"),
    (GridReport, GRID, "inspector_id"),
    (GridReport, GRID, "category_code"),
    (DutyReport, DUTY, "report_id"),
    (DutyReport, DUTY, "category_code"),
]


@pytest.mark.parametrize(("model", "document", "field"), ID_FIELDS)
@pytest.mark.parametrize("control", ["\n", "\r", "\t", "\x00", "\x1b", "\x85", "\u2028"])
def test_ids_and_codes_have_no_control_characters(
    model: Any, document: dict[str, Any], field: str, control: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        model.model_validate({**document, field: f"WO{control}1"})
    assert refused.value.errors()[0]["loc"] == (field,)
    assert "control characters" in str(refused.value)


def test_free_text_keeps_its_tabs_and_line_breaks() -> None:
    order = HotlineWorkOrder.model_validate(
        {**HOTLINE, "title": "井盖\t丢失", "text": "第一行\n第二行\r\n第三行"}
    )
    assert order.text == "第一行\n第二行\r\n第三行"
