"""Operations endpoints on a live system: readiness follows the broker; metrics count."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from cityloop.broker import EmbeddedBroker, free_port
from cityloop.contracts import Source
from tests.conftest import RunningSystem, bearer, start_system, stop_system
from tests.streams.test_pipeline import cloudevent, publish, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.long(30)]


def counter(body: str, sample: str) -> float:
    """A counter's value in a Prometheus scrape (0 before it was first counted)."""
    for line in body.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


def test_metrics_count_ingest_cases_and_dead_letters(system: RunningSystem) -> None:
    # the system is shared with other tests: what this one does is counted on top of theirs
    grid_in = 'cityloop_events_in_total{source="grid"}'
    grid_refused = 'cityloop_events_refused_total{reason="unknown_area",source="grid"}'
    before = httpx.get(f"{system.api_url}/metrics").text
    publisher = bearer("publisher", "grid")
    accepted = httpx.post(
        f"{system.api_url}/v1/events/grid", json=cloudevent(Source.GRID), headers=publisher
    )
    assert accepted.status_code == 202
    refused = httpx.post(
        f"{system.api_url}/v1/events/grid",
        json=cloudevent(Source.GRID, grid_id="510199001001001"),
        headers=publisher,
    )
    assert refused.status_code == 422
    publish(system, "iot", b"\x00 not json")  # straight onto Kafka: the worker dead-letters it

    def scraped() -> str | None:
        body = httpx.get(f"{system.api_url}/metrics").text
        done = (
            "cityloop_cases{" in body
            and 'cityloop_dead_letters_total{reason="undecodable"}' in body
        )
        return body if done else None

    body = wait_for(scraped, timeout_s=30)
    assert body, httpx.get(f"{system.api_url}/metrics").text
    assert counter(body, grid_in) == counter(before, grid_in) + 1
    assert counter(body, grid_refused) == counter(before, grid_refused) + 1


def test_readiness_follows_the_broker_and_ingest_never_pretends(tmp_path: Path) -> None:
    port = free_port()
    broker = EmbeddedBroker(port=port).start()
    # ingest gives the broker 3 s, not 10, before it answers 503: the answer is the same
    system = start_system(broker.bootstrap, tmp_path, extra_env={"CITYLOOP_PUBLISH_TIMEOUT_S": "3"})
    try:
        ready = httpx.get(f"{system.api_url}/readyz", timeout=10)
        assert ready.status_code == 200 and ready.json() == {"broker": "ok", "database": "ok"}

        broker.stop()
        down = httpx.get(f"{system.api_url}/readyz", timeout=10)
        assert down.status_code == 503 and down.json()["broker"].startswith("unreachable")
        assert down.json()["database"] == "ok"
        publisher = bearer("publisher", "hotline")
        posted = httpx.post(
            f"{system.api_url}/v1/events/hotline",
            json=cloudevent(Source.HOTLINE),
            headers=publisher,
            timeout=30,
        )
        assert posted.status_code == 503  # nothing stored it: never a 202

        broker = EmbeddedBroker(port=port).start()  # memory storage: the topics are new
        deadline = time.monotonic() + 60
        while httpx.get(f"{system.api_url}/readyz", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "the API did not reconnect by itself"
            time.sleep(0.2)
        assert system.processes["api"].poll() is None and system.processes["worker"].poll() is None
    finally:
        stop_system(system)
        broker.stop()
