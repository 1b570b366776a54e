"""The worker's own metrics, scraped from its port on a running system: decisions and dead
letters by reason count up, the book's size and the rebuild's time are there, and the consumer
lag of every partition it reads."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from faust.types import TP as TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from cityloop.contracts import Source
from streams.metrics import consumer_lag
from tests.conftest import RunningSystem, bearer
from tests.streams.test_pipeline import cloudevent, publish, wait_for

pytestmark = pytest.mark.broker


def scrape(system: RunningSystem) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample the worker serves, by name and labels."""
    body = httpx.get(system.worker_metrics_url, timeout=5).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_the_worker_serves_its_metrics(system: RunningSystem) -> None:
    before = scrape(system)
    posted = httpx.post(
        f"{system.api_url}/v1/events/hotline",
        json=cloudevent(Source.HOTLINE),
        headers=bearer("publisher", "hotline"),
        timeout=30,
    )
    assert posted.status_code == 202, posted.text
    publish(system, "iot", b"\x00 not json")  # straight onto Kafka: the worker dead-letters it

    def counted() -> dict[Any, float] | None:
        samples = scrape(system)
        grew = all(
            (value(samples, name, **labels) or 0) > (value(before, name, **labels) or 0)
            for name, labels in (
                ("cityloop_worker_decisions_total", {"kind": "incident"}),
                ("cityloop_worker_dead_letters_total", {"reason": "undecodable"}),
                ("cityloop_worker_case_events_total", {}),
            )
        )
        return samples if grew else None

    samples = wait_for(counted, 30, 0.25)
    assert samples, scrape(system)
    assert (value(samples, "cityloop_worker_cases") or 0) >= 1
    assert (value(samples, "cityloop_worker_open_cases") or 0) >= 1
    assert (value(samples, "cityloop_worker_rebuild_seconds_count") or 0) >= 1
    # every reason has its counter from the start, so a rate over it is never missing
    assert value(samples, "cityloop_worker_dead_letters_total", reason="unroutable") is not None

    def lag_of_every_partition() -> dict[Any, float] | None:
        samples = scrape(system)
        partitions = {
            dict(labels)["partition"]
            for (name, labels) in samples
            if name == "cityloop_worker_consumer_lag"
            and dict(labels)["topic"] == system.topic("incidents")
        }
        return samples if partitions == {"0", "1", "2", "3"} else None

    samples = wait_for(lag_of_every_partition, 15, 0.25)
    assert samples, scrape(system)
    assert all(
        value >= 0 for (name, _), value in samples.items() if name == "cityloop_worker_consumer_lag"
    )


class FakeConsumer:
    """What consumer_lag reads of Faust's consumer."""

    def __init__(self, highwaters: dict[TopicPartition, int | None]) -> None:
        self.highwaters = highwaters

    def assignment(self) -> set[TopicPartition]:
        return set(self.highwaters)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.highwaters[tp]


def test_lag_is_what_the_group_has_not_committed() -> None:
    done, behind, new, unfetched = (TopicPartition("t.incidents", p) for p in range(4))
    consumer = FakeConsumer({done: 120, behind: 50, new: 7, unfetched: None})
    lag = consumer_lag(consumer, {done: 120, behind: 20, new: None})
    assert lag == [("t.incidents", 0, 0), ("t.incidents", 1, 30), ("t.incidents", 2, 7)]
