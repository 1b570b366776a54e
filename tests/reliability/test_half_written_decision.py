"""A worker that died between two sends of one decision left half of it on the case-event topic;
the restarted worker writes the decision whole, and no reader takes the torn half as the case's
truth. (The scenario of tests/reliability/test_crash_at_scale.py, made deterministic: the torn half
is written by hand, exactly as the dead worker had written it.)"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer

from cityloop.contracts import CaseDispatched, CaseOpened, Origin, Source
from cityloop.settings import Settings
from handlers.book import CaseBook
from handlers.cells import correlation_key
from handlers.intake import Accepted, take_in
from handlers.partition import decision_headers, partition_for
from streams.topics import ensure_topics
from tests.conftest import bearer, start_system, stop_system, unique_prefix
from tests.reliability.orders import work_order
from tests.reliability.test_worker_crash import case_history
from topology import load_topology, tiny_topology_path

pytestmark = pytest.mark.broker

RECEIVED = datetime(2026, 11, 22, 0, 5, tzinfo=UTC)


WORK_ORDER = work_order(
    "torn-1",
    "/half-written",
    "2026-11-22T08:05:00+08:00",
    "pothole",
    "a deep pothole at the crossing",
    30.6445,
    104.0505,
)


def test_a_decision_torn_by_a_crash_is_written_whole_after_the_restart(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = unique_prefix("torn")
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=prefix)
    ensure_topics(settings)
    source_topic = f"{prefix}.events.hotline"

    # what the worker decides for the record, made by the same handlers, on the same clock
    topology = load_topology(tiny_topology_path())
    origin = Origin(topic=source_topic, partition=0, offset=0)
    accepted = take_in(WORK_ORDER, topology, RECEIVED, Source.HOTLINE, origin)
    assert isinstance(accepted, Accepted)
    incident = accepted.incident
    decision = CaseBook().correlate(
        incident, correlation_key(topology, incident), topology, {}, incident.received_at
    )
    opened, dispatched = decision.events
    assert isinstance(opened, CaseOpened) and isinstance(dispatched, CaseDispatched)

    # the crash: the record is on its topic, never committed, and the first of its decision's
    # two events went out (to the case's partition) before the worker died
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    producer.send(
        f"{prefix}.case-events",
        partition=partition_for(opened.correlation_key, settings.topic_partitions),
        key=opened.case_id.encode(),
        value=opened.model_dump_json().encode(),
        headers=decision_headers(1, 2),
    )
    producer.send(
        source_topic, value=WORK_ORDER, partition=0, timestamp_ms=int(RECEIVED.timestamp() * 1000)
    )
    producer.flush()
    producer.close()

    system = start_system(kafka_bootstrap, tmp_path, prefix=prefix)
    try:
        deadline = time.monotonic() + 90
        written: list[str] = []
        while time.monotonic() < deadline:
            written = [e.type for e in case_history(system) if e.case_id == opened.case_id]
            if "CaseDispatched" in written:
                break
            time.sleep(1)
        # the torn CaseOpened, then the whole decision again: the same two events
        assert written == ["CaseOpened", "CaseOpened", "CaseDispatched"], (
            f"{written}\n{system.log('worker')[-3000:]}"
        )
        ids = [e.event_id for e in case_history(system) if e.case_id == opened.case_id]
        assert ids == [opened.event_id, opened.event_id, dispatched.event_id]

        # the read model took the decision once, whole: the case is dispatched, at version 2
        case: dict[str, Any] = {}
        while time.monotonic() < deadline:
            answer = httpx.get(
                f"{system.api_url}/v1/cases/{opened.case_id}", headers=bearer(), timeout=5
            )
            case = answer.json() if answer.status_code == 200 else {}
            if case.get("version") == 2:
                break
            time.sleep(0.5)
        assert case.get("status") == "dispatched", case
        assert [step["type"] for step in case["timeline"]] == ["CaseOpened", "CaseDispatched"]

        audited = system.audit(30)
        report = json.loads(audited.stdout)
        assert audited.returncode == 0, audited.stdout[-3000:]
        assert report["entered"] == 1 and report["as_report"] == 1
        assert report["unfinished_decision_events"] == 0
    finally:
        stop_system(system)
