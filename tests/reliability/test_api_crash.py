"""A 202 is a promise: kill the API with SIGKILL in the middle of HTTP ingest, and every event
that was answered 202 is on its topic."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition

from cityloop.contracts import Source
from tests.conftest import bearer, start_system, stop_system
from tests.streams.test_pipeline import cloudevent

pytestmark = pytest.mark.broker


def test_every_202_is_on_the_topic_after_the_api_is_killed(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    system = start_system(kafka_bootstrap, tmp_path)
    acknowledged: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def publisher(number: int) -> None:
        headers = bearer("publisher", "hotline")
        with httpx.Client(timeout=5) as client:
            while not stop.is_set():
                event = cloudevent(Source.HOTLINE, text=f"caller {number}")
                try:
                    response = client.post(
                        f"{system.api_url}/v1/events/hotline", json=event, headers=headers
                    )
                except httpx.HTTPError as exc:  # the API died under us: no promise was made
                    failures.append(type(exc).__name__)
                    continue
                if response.status_code == 202:
                    acknowledged.append(response.json()["event_id"])

    threads = [threading.Thread(target=publisher, args=(n,)) for n in range(4)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while len(acknowledged) < 100:
            assert time.monotonic() < deadline, "ingest too slow to test"
            time.sleep(0.05)
        system.kill("api")  # mid-ingest
        time.sleep(1)
        stop.set()
        for thread in threads:
            thread.join()
        assert failures, "the kill should have cut requests off"

        consumer = KafkaConsumer(bootstrap_servers=system.bootstrap, enable_auto_commit=False)
        topic = system.topic("events.hotline")
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        on_topic: set[str] = set()
        idle_polls = 0
        while idle_polls < 3:
            batches = consumer.poll(timeout_ms=1000)
            idle_polls = 0 if batches else idle_polls + 1
            for records in batches.values():
                on_topic.update(json.loads(record.value)["id"] for record in records)
        consumer.close()
        missing = set(acknowledged) - on_topic
        assert not missing, (
            f"{len(missing)} of {len(acknowledged)} acknowledged events are not stored"
        )
    finally:
        stop.set()
        stop_system(system)
