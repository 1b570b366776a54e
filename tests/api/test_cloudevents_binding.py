"""CloudEvents over HTTP on a live system: structured and binary mode by Content-Type, 415 for
any other, and ids with control characters refused 422 however they come."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from cityloop.contracts import Source
from tests.conftest import RunningSystem, bearer
from tests.streams.test_pipeline import cases_with_report, cloudevent, wait_for

pytestmark = pytest.mark.broker


def post(
    system: RunningSystem, body: bytes, headers: dict[str, str], path: str = "/v1/events/grid"
) -> httpx.Response:
    return httpx.post(
        f"{system.api_url}{path}",
        content=body,
        headers={**bearer("publisher", "grid"), **headers},
        timeout=15,
    )


def binary(event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The event in binary mode: attributes as percent-encoded ce-* headers, data as the body."""
    headers = {
        f"ce-{name}": quote(str(value), safe="/:+")
        for name, value in event.items()
        if name != "data"
    }
    body = json.dumps(event["data"], ensure_ascii=False).encode()
    return body, {**headers, "Content-Type": "application/json; charset=utf-8"}


def test_structured_and_binary_mode_both_become_cases(system: RunningSystem) -> None:
    structured = cloudevent(Source.GRID)
    answer = post(
        system,
        json.dumps(structured, ensure_ascii=False).encode(),
        {"Content-Type": "application/cloudevents+json"},
    )
    assert answer.status_code == 202, answer.text

    sent = cloudevent(Source.GRID, text="井盖旁垃圾暴露")
    sent["subject"] = "红星路"
    body, headers = binary(sent)
    answer = post(system, body, headers)
    assert answer.status_code == 202, answer.text
    assert answer.json()["event_id"] == sent["id"]

    for event in (structured, sent):
        key = f"{event['source']}|{event['id']}"
        cases = wait_for(lambda key=key: cases_with_report(system, key), 30)
        assert len(cases) == 1, system.log("worker")[-3000:]
    (report,) = [
        r for r in cases[0]["reports"] if r["idempotency_key"] == f"{sent['source']}|{sent['id']}"
    ]
    assert report["text"] == "井盖旁垃圾暴露"


def test_a_content_type_that_carries_no_event_is_415(system: RunningSystem) -> None:
    event = json.dumps(cloudevent(Source.GRID)).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        answer = post(system, event, {"Content-Type": content_type})
        assert answer.status_code == 415, (content_type, answer.text)
        assert answer.json()["detail"]["reason"] == "unsupported_media_type"
        assert "application/cloudevents+json" in answer.json()["detail"]["message"]
    batch = post(
        system, b"[" + event + b"]", {"Content-Type": "text/plain"}, "/v1/events/grid/batch"
    )
    assert batch.status_code == 415
    batched_mode = post(
        system,
        b"[" + event + b"]",
        {"Content-Type": "application/cloudevents-batch+json"},
        "/v1/events/grid/batch",
    )
    assert batched_mode.status_code == 202, batched_mode.text


def test_binary_mode_needs_its_headers_and_a_json_body(system: RunningSystem) -> None:
    body, headers = binary(cloudevent(Source.GRID))
    del headers["ce-type"]
    missing = post(system, body, headers)
    assert missing.status_code == 400 and "ce-type" in missing.json()["detail"]["message"]
    body, headers = binary(cloudevent(Source.GRID))
    not_json = post(system, b"<grid/>", headers)
    assert not_json.status_code == 400 and not_json.json()["detail"]["reason"] == "undecodable"


@pytest.mark.parametrize("mode", ["structured", "binary"])
@pytest.mark.parametrize(
    ("where", "value"),
    [("id", "GR-1\nforged"), ("source", "/test/grid\n"), ("report_id", "GR\t1")],
)
def test_ids_with_control_characters_are_422(
    system: RunningSystem, mode: str, where: str, value: str
) -> None:
    event = cloudevent(Source.GRID)
    if where == "report_id":
        event["data"]["report_id"] = value
    else:
        event[where] = value
    publisher = bearer("publisher", "grid", ["/test/grid", "/test/grid\n"])
    if mode == "structured":
        body = json.dumps(event).encode()
        headers = {**publisher, "Content-Type": "application/cloudevents+json"}
    else:
        body, headers = binary(event)
        headers = {**publisher, **headers}
    answer = httpx.post(
        f"{system.api_url}/v1/events/grid", content=body, headers=headers, timeout=15
    )
    assert answer.status_code == 422, answer.text
    assert "control characters" in answer.json()["detail"]["message"]


def test_binary_mode_checks_the_token_against_ce_source(system: RunningSystem) -> None:
    event = cloudevent(Source.GRID)
    event["source"] = "/cim/iot"
    body, headers = binary(event)
    answer = post(system, body, headers)
    assert answer.status_code == 403 and answer.json()["detail"]["reason"] == "source_not_allowed"
