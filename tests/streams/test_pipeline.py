"""The walking skeleton on a real broker: bare Kafka publishers in, cases out through the API."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from kafka import KafkaConsumer, KafkaProducer

from cityloop.contracts import EVENT_TYPES, DeadLetter, Source
from streams.history import read_history
from tests.conftest import RunningSystem, bearer, every_case
from tests.contracts.test_contracts import VALID

pytestmark = pytest.mark.broker


def cloudevent(source: Source, **data_overrides: Any) -> dict[str, Any]:
    event_id = f"{source.value}-{uuid.uuid4().hex[:12]}"
    data = {**VALID[source], **data_overrides}
    id_field = {"hotline": "order_id", "iot": "alarm_id", "grid": "report_id", "duty": "report_id"}
    data[id_field[source.value]] = event_id
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": f"/test/{source.value}",
        "type": EVENT_TYPES[source],
        "time": "2026-11-22T08:00:00+08:00",
        "data": data,
    }


def publish(system: RunningSystem, source: str, value: bytes, key: bytes | None = None) -> None:
    """Publish as a departmental system would: a bare kafka-python producer, plain JSON."""
    producer = KafkaProducer(bootstrap_servers=system.bootstrap, acks="all")
    try:
        producer.send(system.topic(f"events.{source}"), key=key, value=value).get(timeout=10)
    finally:
        producer.close()


_DETAILS: dict[tuple[str, str, str], dict[str, Any]] = {}
"""Case details read already, by (API, topic prefix, case id: a port may serve another system
later in the session). A case's detail is read again only when its version moved, so that
looking for a report on a system that many tests share does not read every case again each time
(hundreds of requests a look, many looks a test); what is returned is the detail at the version
the listing shows."""


def cases_with_report(system: RunningSystem, idempotency_key: str) -> list[dict[str, Any]]:
    found = []
    for item in every_case(system):
        slot = (system.api_url, system.prefix, item["case_id"])
        detail = _DETAILS.get(slot)
        if detail is None or detail["version"] != item["version"]:
            detail = httpx.get(
                f"{system.api_url}/v1/cases/{item['case_id']}", headers=bearer(), timeout=5
            ).json()
            _DETAILS[slot] = detail
        if any(r["idempotency_key"] == idempotency_key for r in detail["reports"]):
            found.append(detail)
    return found


def wait_for(predicate: Any, timeout_s: float = 30.0, interval_s: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval_s)


def dead_letters(system: RunningSystem) -> list[DeadLetter]:
    """Every dead letter so far: the topic read to its end, not until it has been quiet for a
    while (which cost every look 5 s)."""
    return [
        DeadLetter.model_validate_json(value)
        for value in read_history(system.bootstrap, system.topic("dead-letters"))
    ]


@pytest.mark.parametrize("source", list(Source))
def test_an_event_of_each_source_becomes_a_case(system: RunningSystem, source: Source) -> None:
    # the alarm and the work order each get a place no other test reports at, so that each
    # opens a case of its own (on the shared system, tests run in any order): the alarm must
    # open a lead; the work order names its category (one of the tiny topology's), as a call
    # taker would: an order the classifier must place waits at the desk instead
    # (tests/api/test_desk_live.py)
    special: dict[Source, dict[str, Any]] = {
        Source.IOT: {"location": {"lat": 30.6752, "lon": 104.0527}},
        Source.HOTLINE: {"category_code": "pothole", "area_code": "510105002002"},
    }
    overrides = special.get(source, {})
    event = cloudevent(source, **overrides)
    publish(system, source.value, json.dumps(event, ensure_ascii=False).encode())
    key = f"{event['source']}|{event['id']}"
    cases = wait_for(lambda: cases_with_report(system, key), timeout_s=30)
    assert len(cases) == 1, system.log("worker")[-2000:]
    case = cases[0]
    # a water-level alarm is a lead (线索) for its community to verify; the others are cases
    assert case["status"] == ("lead" if source is Source.IOT else "dispatched")
    assert case["lead_department"]
    assert case["loop"] in {"micro", "small", "medium", "big"}
    assert [entry["type"] for entry in case["timeline"]][:2] == ["CaseOpened", "CaseDispatched"]


def test_the_same_event_twice_gives_one_case(system: RunningSystem) -> None:
    # a place and category no other test reports, so that nothing correlates with it
    event = cloudevent(Source.HOTLINE, area_code="510105002001", category_code="noise")
    raw = json.dumps(event, ensure_ascii=False).encode()
    publish(system, "hotline", raw)
    publish(system, "hotline", raw)
    key = f"{event['source']}|{event['id']}"

    def duplicate_recorded() -> list[dict[str, Any]]:
        cases = cases_with_report(system, key)
        return cases if cases and cases[0]["duplicate_count"] == 1 else []

    cases = wait_for(duplicate_recorded, timeout_s=30)
    assert len(cases) == 1
    assert cases[0]["report_count"] == 1
    assert cases[0]["timeline"][-1]["type"] == "DuplicateReceived"
    # the caller's personal data: whole for the duty officer who calls back, masked for others
    assert cases[0]["reports"][0]["caller"] == {"name": "王芳", "phone": "13800001003"}
    department = f"dept:{cases[0]['lead_department']}".removeprefix("dept:")
    seen_by_department = httpx.get(
        f"{system.api_url}/v1/cases/{cases[0]['case_id']}",
        headers=bearer("department", department),
        timeout=5,
    ).json()
    assert seen_by_department["reports"][0]["caller"] == {"name": "王*", "phone": "138****1003"}


def test_bad_records_land_in_the_dead_letter_topic_with_distinct_reasons(
    system: RunningSystem,
) -> None:
    garbage = b"\xff\xfe not json at all \x00"
    wrong_shape = json.dumps({**cloudevent(Source.IOT), "data": {"alarm_id": "x"}}).encode()
    unknown = json.dumps({**cloudevent(Source.GRID), "type": "cn.cityloop.drone.sighting.v1"})
    publish(system, "hotline", garbage, key=b"garbage")
    publish(system, "iot", wrong_shape)
    publish(system, "grid", unknown.encode())

    def all_dead() -> dict[bytes, str]:
        found = {
            base64.b64decode(letter.payload_b64): letter.reason.value
            for letter in dead_letters(system)
        }
        found = {
            raw: reason
            for raw, reason in found.items()
            if raw in (garbage, wrong_shape, unknown.encode())
        }
        return found if len(found) == 3 else {}

    found = wait_for(all_dead, timeout_s=30)
    assert found == {
        garbage: "undecodable",
        wrong_shape: "invalid_payload",
        unknown.encode(): "unknown_event_type",
    }
    # the worker keeps running: a good event after the bad ones still becomes a case
    assert system.processes["worker"].poll() is None
    event = cloudevent(Source.GRID)
    publish(system, "grid", json.dumps(event).encode())
    assert wait_for(lambda: cases_with_report(system, f"{event['source']}|{event['id']}"))


def test_http_ingest_rejects_with_the_field_named_and_publishes_valid_events(
    system: RunningSystem,
) -> None:
    publisher = bearer("publisher", "hotline")
    bad = cloudevent(Source.HOTLINE, caller_phone="not a phone")
    response = httpx.post(
        f"{system.api_url}/v1/events/hotline", json=bad, headers=publisher, timeout=10
    )
    assert response.status_code == 422
    assert "data.caller_phone" in response.json()["detail"]["message"]

    good = cloudevent(Source.HOTLINE)
    assert httpx.post(f"{system.api_url}/v1/events/hotline", json=good).status_code == 401
    as_officer = httpx.post(f"{system.api_url}/v1/events/hotline", json=good, headers=bearer())
    assert as_officer.status_code == 403
    iot_publisher = bearer("publisher", "iot")
    other_source = httpx.post(
        f"{system.api_url}/v1/events/hotline", json=good, headers=iot_publisher
    )
    assert other_source.status_code == 403 and "iot" in other_source.json()["detail"]["message"]
    response = httpx.post(
        f"{system.api_url}/v1/events/hotline", json=good, headers=publisher, timeout=10
    )
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["event_id"] == good["id"]

    consumer = KafkaConsumer(
        bootstrap_servers=system.bootstrap, enable_auto_commit=False, consumer_timeout_ms=5000
    )
    try:
        from kafka import TopicPartition

        partition = TopicPartition(accepted["topic"], accepted["partition"])
        consumer.assign([partition])
        consumer.seek(partition, accepted["offset"])
        record = next(iter(consumer))
        assert json.loads(record.value)["id"] == good["id"]
    finally:
        consumer.close()

    drone = httpx.post(f"{system.api_url}/v1/events/drone", json=good, headers=publisher)
    assert drone.status_code == 404
    # an iot publisher allowed the event's source URI, posting a hotline event: its type is wrong
    allowed = bearer("publisher", "iot", [good["source"]])
    wrong_source = httpx.post(f"{system.api_url}/v1/events/iot", json=good, headers=allowed)
    assert wrong_source.status_code == 422
    assert wrong_source.json()["detail"]["reason"] == "source_mismatch"
