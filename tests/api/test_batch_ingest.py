"""Batch ingest on a live system: all valid events are published and become cases; one bad item
refuses the batch, naming it, and publishes nothing."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition

from api.routes.events import MAX_BATCH_EVENTS
from cityloop.contracts import Source
from tests.conftest import RunningSystem, bearer
from tests.streams.test_pipeline import cases_with_report, cloudevent, wait_for

pytestmark = pytest.mark.broker


def post_batch(
    system: RunningSystem, body: Any, headers: dict[str, str], source: str = "hotline"
) -> httpx.Response:
    return httpx.post(
        f"{system.api_url}/v1/events/{source}/batch", json=body, headers=headers, timeout=15
    )


def published_ids(system: RunningSystem, topic: str) -> set[str]:
    """The CloudEvent ids of every record now on the topic."""
    consumer = KafkaConsumer(bootstrap_servers=system.bootstrap, enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        ids: set[str] = set()
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            for records in consumer.poll(timeout_ms=1000).values():
                ids.update(json.loads(record.value)["id"] for record in records)
        return ids
    finally:
        consumer.close()


def test_a_batch_is_published_in_order_and_each_event_reaches_a_case(
    system: RunningSystem,
) -> None:
    events = [
        cloudevent(
            Source.HOTLINE,
            area_code=None,
            location={"lat": lat, "lon": 104.0912},
            title="路面坑洼",
            text="路中间有坑",
            category_code="pothole",
        )
        for lat in (30.6451, 30.6468, 30.6485)
    ]
    response = post_batch(system, events, bearer("publisher", "hotline"))
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["source"] == "hotline" and accepted["count"] == 3
    assert [item["event_id"] for item in accepted["items"]] == [e["id"] for e in events]
    assert {item["topic"] for item in accepted["items"]} == {system.topic("events.hotline")}

    for event in events:
        key = f"{event['source']}|{event['id']}"
        cases = wait_for(lambda key=key: cases_with_report(system, key), 30)
        assert len(cases) == 1, system.log("worker")[-3000:]
        assert cases[0]["category_code"] == "pothole"


def test_one_bad_item_refuses_the_batch_naming_it_and_publishes_nothing(
    system: RunningSystem,
) -> None:
    good = [cloudevent(Source.HOTLINE), cloudevent(Source.HOTLINE)]
    bad = cloudevent(Source.HOTLINE, caller_phone="call me maybe")
    wrong_type = {**cloudevent(Source.IOT), "source": "/test/hotline"}  # a source it may send
    batch = [good[0], bad, good[1], wrong_type]
    response = post_batch(system, batch, bearer("publisher", "hotline"))

    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail["reason"] == "invalid_items"
    assert [(item["index"], item["reason"]) for item in detail["items"]] == [
        (1, "invalid_payload"),
        (3, "source_mismatch"),
    ]
    assert "data.caller_phone" in detail["items"][0]["message"]
    # a sentinel published after the refusal shows the topic is read up to now
    sentinel = cloudevent(Source.HOTLINE)
    posted = httpx.post(
        f"{system.api_url}/v1/events/hotline",
        json=sentinel,
        headers=bearer("publisher", "hotline"),
        timeout=10,
    )
    assert posted.status_code == 202, posted.text
    on_topic = published_ids(system, system.topic("events.hotline"))
    assert sentinel["id"] in on_topic
    assert not on_topic & {event["id"] for event in batch}


def test_the_body_must_be_a_non_empty_array_within_the_limits(system: RunningSystem) -> None:
    publisher = bearer("publisher", "hotline")
    single = post_batch(system, cloudevent(Source.HOTLINE), publisher)
    assert single.status_code == 422 and single.json()["detail"]["reason"] == "not_a_batch"
    empty = post_batch(system, [], publisher)
    assert empty.status_code == 422 and empty.json()["detail"]["reason"] == "empty_batch"
    not_json = httpx.post(
        f"{system.api_url}/v1/events/hotline/batch",
        content=b"[{",
        headers={**publisher, "Content-Type": "application/json"},
        timeout=10,
    )
    assert not_json.status_code == 400 and not_json.json()["detail"]["reason"] == "undecodable"
    too_many = post_batch(system, [{}] * (MAX_BATCH_EVENTS + 1), publisher)
    assert too_many.status_code == 413
    assert too_many.json()["detail"]["reason"] == "too_many_events"
    not_objects = post_batch(system, [1, "two"], publisher)
    assert not_objects.status_code == 422
    assert [item["reason"] for item in not_objects.json()["detail"]["items"]] == [
        "not_a_cloudevent",
        "not_a_cloudevent",
    ]


def test_only_a_publisher_of_that_source_may_post_a_batch(system: RunningSystem) -> None:
    batch = [cloudevent(Source.HOTLINE)]
    assert post_batch(system, batch, {}).status_code == 401
    other_source = post_batch(system, batch, bearer("publisher", "iot"))
    assert other_source.status_code == 403 and "iot" in other_source.json()["detail"]["message"]
    assert post_batch(system, batch, bearer()).status_code == 403
    assert post_batch(system, batch, bearer("publisher", "drone"), "drone").status_code == 404
    assert batch[0]["id"] not in published_ids(system, system.topic("events.hotline"))
