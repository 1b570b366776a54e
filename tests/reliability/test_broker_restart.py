"""The broker stops and starts again, losing every topic (the embedded broker keeps them in
memory); worker and API find it again by themselves, and events posted afterwards become cases
through the whole path: ingest, worker, case events, projector, read model."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from kafka import KafkaAdminClient

from cityloop.broker import EmbeddedBroker, free_port
from cityloop.contracts import Source
from tests.conftest import RunningSystem, bearer, start_system, stop_system
from tests.streams.test_pipeline import cases_with_report, cloudevent, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.long(30)]


def post_until_stored(system: RunningSystem, timeout_s: float) -> str:
    """Post one hotline event, again while ingest answers 503; its idempotency key."""
    event = cloudevent(Source.HOTLINE)
    deadline = time.monotonic() + timeout_s
    while True:
        response = httpx.post(
            f"{system.api_url}/v1/events/hotline",
            json=event,
            headers=bearer("publisher", "hotline"),
            timeout=30,
        )
        if response.status_code == 202:
            return f"{event['source']}|{event['id']}"
        assert response.status_code == 503, response.text
        assert time.monotonic() < deadline, "ingest never stored the event"
        time.sleep(1)


def all_have_cases(system: RunningSystem, keys: list[str]) -> bool:
    return all(cases_with_report(system, key) for key in keys)


def committed(system: RunningSystem, role: str, topic_suffix: str) -> int:
    """The offsets the worker's or projector's group has committed on one topic, summed over
    its partitions."""
    admin = KafkaAdminClient(bootstrap_servers=system.bootstrap)
    try:
        group = f"{system.prefix}-{role}"
        offsets = admin.list_group_offsets(group)[group]
    finally:
        admin.close()
    topic = system.topic(topic_suffix)
    return sum(max(meta.offset, 0) for tp, meta in offsets.items() if tp.topic == topic)


def test_worker_and_api_recover_after_the_broker_restarts(tmp_path: Path) -> None:
    port = free_port()
    broker = EmbeddedBroker(port=port).start()
    system = start_system(broker.bootstrap, tmp_path)
    try:
        # a few events each side, over several partitions: a consumer that resumed at its old
        # offsets on the emptied topics would wait past some of them
        before = [post_until_stored(system, timeout_s=10) for _ in range(4)]
        assert wait_for(lambda: all_have_cases(system, before), timeout_s=60)

        broker.stop()
        # readiness follows the broker: awaited, not slept on
        assert wait_for(
            lambda: httpx.get(f"{system.api_url}/readyz", timeout=10).status_code == 503,
            timeout_s=15,
            interval_s=0.2,
        )
        broker = EmbeddedBroker(port=port).start()  # memory storage: every topic is gone
        restarted = time.monotonic()

        after = [post_until_stored(system, timeout_s=60) for _ in range(4)]
        recovered = wait_for(lambda: all_have_cases(system, after), timeout_s=90)
        assert recovered, (
            f"{sum(not cases_with_report(system, key) for key in after)} of {len(after)} events "
            f"posted after the restart have no case\n--- worker\n{system.log('worker')[-4000:]}"
        )
        print(f"cases again {time.monotonic() - restarted:.1f} s after the broker restarted")  # noqa: T201
        # and both rejoined their groups on the new broker: their commits there go through
        assert wait_for(lambda: committed(system, "worker", "events.hotline") >= 4, 30)
        assert wait_for(lambda: committed(system, "projector", "case-events") > 0, 30)
        assert system.processes["worker"].poll() is None, "the worker process exited"
        assert system.processes["api"].poll() is None, "the API process exited"
    finally:
        stop_system(system)
        broker.stop()
