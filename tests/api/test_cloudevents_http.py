"""The CloudEvents HTTP binding (pure): the content mode by Content-Type, 415 for others, and a
binary-mode request made into the structured event the topics carry."""

from __future__ import annotations

import json

import pytest

from api.cloudevents_http import (
    BindingRefused,
    Mode,
    check_batch_media_type,
    event_mode,
    structured_from_binary,
)

BINARY_HEADERS = [
    ("content-type", "application/json"),
    ("ce-specversion", "1.0"),
    ("ce-id", "WO-1"),
    ("ce-source", "/12345/chengdu"),
    ("ce-type", "cn.cityloop.hotline.work_order.v1"),
    ("ce-time", "2026-11-22T08:15:00%2B08:00"),
]


@pytest.mark.parametrize(
    ("content_type", "headers", "mode"),
    [
        ("application/cloudevents+json", {}, Mode.STRUCTURED),
        ("application/cloudevents+json; charset=UTF-8", {"ce-specversion": "1.0"}, Mode.STRUCTURED),
        ("Application/CloudEvents+JSON", {}, Mode.STRUCTURED),
        ("application/json", {"ce-specversion": "1.0"}, Mode.BINARY),
        ("application/json; charset=utf-8", {"ce-specversion": "1.0"}, Mode.BINARY),
        ("application/json", {}, Mode.STRUCTURED),  # a whole event in JSON, as ever
    ],
)
def test_the_mode_is_chosen_by_content_type(
    content_type: str, headers: dict[str, str], mode: Mode
) -> None:
    assert event_mode(content_type, headers) is mode


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "text/plain",
        "application/x-www-form-urlencoded",  # curl -d without -H
        "application/cloudevents-batch+json",  # a batch, at the single event's door
        "application/cloudevents+xml",
        "application/json; charset=latin-1",
    ],
)
def test_any_other_media_type_is_415(content_type: str | None) -> None:
    with pytest.raises(BindingRefused) as refused:
        event_mode(content_type, {"ce-specversion": "1.0"})
    assert refused.value.unsupported and refused.value.reason == "unsupported_media_type"


def test_a_batch_is_json_or_the_batched_mode() -> None:
    check_batch_media_type("application/json")
    check_batch_media_type("application/cloudevents-batch+json; charset=utf-8")
    for wrong in (None, "text/plain", "application/cloudevents+json"):
        with pytest.raises(BindingRefused):
            check_batch_media_type(wrong)


def test_a_binary_request_becomes_the_structured_event() -> None:
    data = {"order_id": "WO-1", "title": "井盖丢失"}
    raw = structured_from_binary(
        [*BINARY_HEADERS, ("ce-subject", "%E7%BA%A2%E6%98%9F%E8%B7%AF"), ("x-other", "kept out")],
        json.dumps(data, ensure_ascii=False).encode(),
    )
    assert json.loads(raw) == {
        "specversion": "1.0",
        "id": "WO-1",
        "source": "/12345/chengdu",
        "type": "cn.cityloop.hotline.work_order.v1",
        "time": "2026-11-22T08:15:00+08:00",
        "subject": "红星路",  # percent-encoded UTF-8, as the binding has header values
        "datacontenttype": "application/json",
        "data": data,
    }


def test_a_percent_encoded_newline_arrives_as_a_newline_for_the_contract_to_refuse() -> None:
    headers = [(name, "WO%0A1" if name == "ce-id" else value) for name, value in BINARY_HEADERS]
    assert json.loads(structured_from_binary(headers, b"{}"))["id"] == "WO\n1"


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ([h for h in BINARY_HEADERS if h[0] != "ce-id"], "ce-id"),
        ([*BINARY_HEADERS, ("ce-id", "WO-2")], "twice"),
        ([*BINARY_HEADERS, ("ce-datacontenttype", "text/xml")], "Content-Type"),
        ([*BINARY_HEADERS, ("ce-data", "{}")], "body"),
        ([*BINARY_HEADERS, ("ce-subject", "%FF")], "UTF-8"),
    ],
)
def test_headers_that_make_no_event_are_refused(headers: list[tuple[str, str]], says: str) -> None:
    with pytest.raises(BindingRefused, match=says) as refused:
        structured_from_binary(headers, b"{}")
    assert not refused.value.unsupported


def test_a_body_that_is_not_json_is_left_to_intake_to_call_undecodable() -> None:
    with pytest.raises(ValueError):
        structured_from_binary(BINARY_HEADERS, b"\xff not json")
