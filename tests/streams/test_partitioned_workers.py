"""Two workers in one process, on the session's broker: each holds the cases of its own
partitions only, and snapshots them. (A worker process coming back from its snapshots is
measured by `cityloop bench --scale` and tests/loadtest/test_scale.py.)"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from cityloop.contracts import GeoPoint, Source
from cityloop.settings import Settings
from handlers.classifier import TextClassifier, default_model_path
from handlers.partition import partition_for
from streams.consumer_tuning import FETCH_MAX_WAIT_MS, QUIET_FETCH_WAIT_MS, fetch_wait
from streams.history import read_records
from streams.topics import ensure_topics, topics_for
from streams.worker import CityWorker, build_worker
from tests.conftest import unique_prefix
from tests.streams.test_pipeline import cloudevent
from topology import load_topology, tiny_topology_path

pytestmark = pytest.mark.broker

TINY = load_topology(tiny_topology_path())
CLASSIFIER = TextClassifier.load(default_model_path())
SPOTS = 24


def settings_for(bootstrap: str, prefix: str, data_dir: Path) -> Settings:
    return Settings(
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        data_dir=data_dir,
        topology_file=tiny_topology_path(),
        clock="external",
        snapshot_interval_s=0.5,
    )


def worker(settings: Settings) -> CityWorker:
    return build_worker(settings, topology=TINY, classifier=CLASSIFIER)


CATEGORIES = ("pothole", "garbage_exposed", "waterlogging", "noise")


def orders(count: int) -> tuple[list[bytes], set[str]]:
    """Hotline orders of several kinds at spots over the district (many correlation keys), and
    their idempotency keys."""
    events, keys = [], set()
    for number in range(count):
        spot = GeoPoint(lat=30.635 + 0.009 * (number % 6), lon=104.045 + 0.014 * (number // 6))
        event = cloudevent(
            Source.HOTLINE,
            category_code=CATEGORIES[number % len(CATEGORIES)],
            location=spot.model_dump(),
        )
        events.append(json.dumps(event, ensure_ascii=False).encode())
        keys.add(f"{event['source']}|{event['id']}")
    return events, keys


async def publish(settings: Settings, topic: str, values: list[bytes], **kwargs: Any) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, **kwargs)
    finally:
        await producer.stop()


def cases_by_partition(settings: Settings) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for record in read_records(settings.bootstrap_servers, topics_for(settings).case_events):
        found.setdefault(record.partition, set()).add(record.key.decode())
    return found


def decided(settings: Settings) -> set[str]:
    """What caused the case events so far (an incident's idempotency key, a command's id)."""
    return {
        json.loads(record.value)["caused_by"]
        for record in read_records(settings.bootstrap_servers, topics_for(settings).case_events)
    }


async def until(predicate: Any, timeout_s: float) -> Any:
    """Ask `predicate` (from a thread: a blocking read must not hold the workers' loop) until it
    answers or `timeout_s` passes."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = await asyncio.to_thread(predicate)
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.2)


def test_two_workers_split_the_cases_and_a_restart_comes_back_from_snapshots(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = settings_for(kafka_bootstrap, unique_prefix("parts"), tmp_path)
    ensure_topics(settings)
    names = topics_for(settings)

    async def scenario() -> None:
        first, second = worker(settings), worker(settings)
        await first.app.start()
        await second.app.start()
        try:
            values, keys = orders(SPOTS)
            await publish(settings, names.source(Source.HOTLINE), values)
            assert await until(lambda: keys <= decided(settings), 90), keys - decided(settings)
            by_partition = await asyncio.to_thread(cases_by_partition, settings)
            assert len(by_partition) >= 2, by_partition  # the work is spread
            held = [set(first.partitions), set(second.partitions)]
            # each worker loaded only partitions it was given, and not the same ones
            assert held[0] and held[1], held
            assert not held[0] & held[1], held
            # each case's events are on the partition of its correlation key, and the worker
            # that holds that partition holds the case
            for number, case_ids in (await asyncio.to_thread(cases_by_partition, settings)).items():
                owner = first if number in first.partitions else second
                book = owner.partitions[number].core.book
                assert case_ids <= set(book.cases), (number, case_ids - set(book.cases))
                for case_id in case_ids:
                    assert partition_for(book.cases[case_id].correlation_key, 4) == number
            cases = sum(len(case_ids) for case_ids in by_partition.values())
            assert first.cases_held() + second.cases_held() == cases
            assert await until(lambda: list((tmp_path / "worker").rglob("partition-*.sqlite")), 10)

            # with nothing to take, each worker fetches with the long wait; a record brings the
            # short wait back (streams/consumer_tuning.py)
            assert await until(lambda: first.quiet and second.quiet, 20)
            assert {fetch_wait(first.app.consumer), fetch_wait(second.app.consumer)} == {
                QUIET_FETCH_WAIT_MS
            }
            more, more_keys = orders(1)
            await publish(settings, names.source(Source.HOTLINE), more)
            assert await until(lambda: more_keys <= decided(settings), 30)
            waits = {fetch_wait(first.app.consumer), fetch_wait(second.app.consumer)}
            assert FETCH_MAX_WAIT_MS in waits, waits
        finally:
            await second.app.stop()
            await first.app.stop()

    asyncio.run(scenario())
