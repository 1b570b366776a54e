"""The worker's agents in Faust's own test context: records put on an in-memory channel, in
batches as `take_events` hands them over, and what the agents give the producer captured. No
broker: this is the glue between the topics and handlers/partition.py, which moves bytes in and
out and decides nothing itself. (The same agents on a real broker: test_partitioned_workers.py
and the system tests.)"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from faust.types import Message

from cityloop.contracts import CASE_EVENT_ADAPTER, CommandOutcome, DeadLetter, Incident, Source
from cityloop.settings import Settings
from handlers.classifier import TextClassifier, default_model_path
from handlers.partition import CasePartition, Destination, Send
from streams.store import PartitionStore
from streams.worker import CityWorker, OwnedPartition, build_worker
from tests.streams.test_pipeline import cloudevent
from topology import load_topology, tiny_topology_path

TINY = load_topology(tiny_topology_path())


@pytest.fixture(scope="module")
def classifier() -> TextClassifier:
    return TextClassifier.load(default_model_path())


def ready_worker(data_dir: Path, classifier: TextClassifier) -> tuple[CityWorker, list[Send]]:
    """A worker whose topology, classifier and modes count as read (there is no broker to read
    them from), owning case partition 0 with an empty book; what it sends is collected."""
    settings = Settings(
        kafka_bootstrap_servers="127.0.0.1:9",  # never dialled: nothing here starts the app
        topic_prefix="agents",
        data_dir=data_dir,
        topology_file=tiny_topology_path(),
        clock="external",
        snapshot_interval_s=3600,
    )
    worker = build_worker(settings, topology=TINY, classifier=classifier)
    worker.is_ready = True
    store = PartitionStore(worker.state_dir, 0)
    worker.partitions[0] = OwnedPartition(
        CasePartition(0, worker.retention, store), store, False, 0
    )
    sent: list[Send] = []

    async def collect(sends: list[Send]) -> None:
        sent.extend(sends)

    worker.send = collect  # type: ignore[method-assign]
    return worker, sent


def hotline_topic(worker: CityWorker) -> str:
    return next(topic for topic, source in worker.names.sources.items() if source is Source.HOTLINE)


async def put(agent: Any, topic: str, value: bytes, key: bytes | None, offset: int) -> None:
    """A record of `topic` on the agent's test channel, as the consumer would hand it over
    (the wrapper's own `put` cannot name one topic of an agent reading several)."""
    channel = agent.stream().channel
    message = Message(
        topic=topic,
        partition=0,
        offset=offset,
        timestamp=time.time(),
        timestamp_type=0,
        headers=[],
        key=key,
        value=value,
        checksum=b"",
        serialized_key_size=len(key or b""),
        serialized_value_size=len(value),
        generation_id=agent.app.consumer_generation_id,  # a stream drops other generations'
    )
    await channel.put(await channel.decode(message))


async def until(condition: Callable[[], bool]) -> None:
    """Until the agents under test have done what `condition` looks for."""

    async def done() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(done(), timeout=20)


async def through_intake(worker: CityWorker, sent: list[Send], values: list[bytes]) -> None:
    """The values as records of the hotline topic, at offsets 0, 1, …, through the intake
    agent, until it has sent one record for each."""
    async with worker.app.agents["intake"].test_context() as agent:
        for offset, value in enumerate(values):
            await put(agent, hotline_topic(worker), value, None, offset)
        await until(lambda: len(sent) >= len(values))


async def test_intake_turns_each_record_of_a_batch_into_an_incident_or_a_dead_letter(
    tmp_path: Path, classifier: TextClassifier
) -> None:
    worker, sent = ready_worker(tmp_path, classifier)
    hotline = hotline_topic(worker)
    good = [json.dumps(cloudevent(Source.HOTLINE)).encode() for _ in range(3)]
    broken = b'{"specversion": "1.0", "id": "x"'
    await through_intake(worker, sent, [good[0], broken, good[1], good[2]])
    assert [send.to for send in sent] == [
        Destination.INCIDENTS,
        Destination.DEAD_LETTERS,
        Destination.INCIDENTS,
        Destination.INCIDENTS,
    ]
    for offset, send in ((0, sent[0]), (2, sent[2])):
        incident = Incident.model_validate_json(send.value)
        assert incident.origin is not None
        assert (incident.origin.topic, incident.origin.offset) == (hotline, offset)
        assert send.key  # the correlation key: the partition of the case
    dead = DeadLetter.model_validate_json(sent[1].value)
    assert dead.reason.value == "undecodable"
    assert dead.origin is not None and dead.origin.offset == 1


async def test_cases_decides_incidents_on_their_partition_and_its_book(
    tmp_path: Path, classifier: TextClassifier
) -> None:
    worker, sent = ready_worker(tmp_path, classifier)
    orders = [json.dumps(cloudevent(Source.HOTLINE)).encode() for _ in range(2)]
    await through_intake(worker, sent, orders)
    first, second = sent
    sent.clear()

    def opened() -> list[str]:
        return [send.value.decode() for send in sent if b'"type":"CaseOpened"' in send.value]

    async with worker.app.agents["cases"].test_context() as agent:
        # the first incident twice, as a redelivery after a crash hands it over again, then
        # the second: once the second's case is out, the redelivery was decided (in order)
        await put(agent, worker.names.incidents, first.value, first.key, 0)
        await put(agent, worker.names.incidents, first.value, first.key, 0)
        await put(agent, worker.names.incidents, second.value, second.key, 1)
        await until(lambda: len(opened()) >= 2)
    assert {send.to for send in sent} == {Destination.CASE_EVENTS}
    assert all(send.partition == 0 for send in sent)
    events = [CASE_EVENT_ADAPTER.validate_json(send.value) for send in sent]
    per_case: dict[str, list[int]] = {}
    for event in events:
        per_case.setdefault(event.case_id, []).append(event.version)
    # one history per incident, each version once: the redelivery wrote nothing, not even a
    # duplicate's note
    assert len(per_case) == 2
    assert not {event.type for event in events} & {"DuplicateReceived", "ReportAttached"}
    assert all(versions == list(range(1, len(versions) + 1)) for versions in per_case.values())
    book = worker.partitions[0].core.book
    assert set(book.cases) == set(per_case)
    assert worker.partitions[0].changed


async def test_an_agent_that_asks_second_waits_for_the_published_topology(
    tmp_path: Path, classifier: TextClassifier
) -> None:
    """Two agents start together: the second must not decide with the bundled topology while
    the first is still reading (and building) the version published on the topic."""
    worker, sent = ready_worker(tmp_path, classifier)
    worker.is_ready = False
    published = tiny_topology_path().read_text().replace("version: tiny-1", "version: tiny-2")
    reading = asyncio.Event()

    def history(topic: str) -> list[bytes]:
        if topic == worker.names.topology:
            asyncio.run_coroutine_threadsafe(_set(reading), loop)
            time.sleep(0.3)  # a broker's read, while the other agent asks
            return [published.encode()]
        return []

    loop = asyncio.get_running_loop()
    worker._history = history  # type: ignore[method-assign]
    first = asyncio.create_task(worker.ready())
    await reading.wait()
    await worker.ready()  # the second agent
    assert str(worker.topology.current.version) == "tiny-2"
    await first
    assert worker.is_ready
    outcomes = [send for send in sent if send.to is Destination.COMMAND_OUTCOMES]
    assert len(outcomes) == 1  # read and adopted once


async def _set(event: asyncio.Event) -> None:
    event.set()


async def test_published_versions_replace_the_current_ones_and_broken_ones_are_refused(
    tmp_path: Path, classifier: TextClassifier
) -> None:
    """The topology and classifier agents: each version published on its topic is adopted, a
    version that does not load is refused with its reason and the current one is kept; either
    way the operators get an outcome."""
    worker, sent = ready_worker(tmp_path, classifier)
    published = tiny_topology_path().read_text().replace("version: tiny-1", "version: tiny-2")
    model_version = worker.classifier.current.version

    def outcomes() -> list[CommandOutcome]:
        return [
            CommandOutcome.model_validate_json(send.value)
            for send in sent
            if send.to is Destination.COMMAND_OUTCOMES
        ]

    async with worker.app.agents["topology-versions"].test_context() as agent:
        await put(agent, worker.names.topology, published.encode(), None, 0)
        await until(lambda: len(outcomes()) >= 1)
        await put(agent, worker.names.topology, b"areas: [not, a, topology", None, 1)
        await until(lambda: len(outcomes()) >= 2)
    async with worker.app.agents["classifier-versions"].test_context() as agent:
        await put(agent, worker.names.classifier, b"not a model", None, 0)
        await until(lambda: len(outcomes()) >= 3)

    adopted, broken_topology, broken_model = outcomes()
    assert adopted.applied and adopted.command_type == "publish_topology"
    assert not broken_topology.applied and broken_topology.reason.startswith("invalid:")
    assert str(worker.topology.current.version) == "tiny-2"  # the good one stayed
    assert not broken_model.applied and broken_model.command_type == "publish_classifier"
    assert worker.classifier.current.version == model_version
