"""Batched sends on the real broker: keyed records land where Kafka's default partitioner puts
them (the case partition of their key), each partition keeps the order given, a partition's
records split into several batches when they outgrow one, and every batch's delivery names
the offsets its records got."""

from __future__ import annotations

import asyncio

from cityloop.settings import Settings
from handlers.partition import partition_for
from streams.batched_send import BatchedSender, Outgoing
from streams.clients import async_consumer, async_producer
from streams.topics import Topics, ensure_topics
from tests.conftest import unique_prefix


async def test_records_land_on_their_key_partition_in_order_with_their_offsets(
    kafka_bootstrap: str,
) -> None:
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=unique_prefix("batched"),
        _env_file=None,
    )
    await asyncio.to_thread(ensure_topics, settings)
    topic = Topics(settings.topic_prefix).incidents
    keyed = [
        Outgoing(topic, f"key-{n % 17}".encode(), f"{n:04d}".encode() * 80, tag=n)
        for n in range(120)
    ]
    placed = [
        Outgoing(topic, None, f"placed-{n}".encode(), partition=1, tag=1000 + n) for n in range(5)
    ]
    producer = async_producer(settings, max_batch_size=4096)  # ~12 records a batch
    await producer.start()
    try:
        batches = await BatchedSender[int](producer).send([*keyed, *placed])
        deliveries = [batch.delivery for batch in batches]
        assert all(delivery is not None for delivery in deliveries)
        metadata = await asyncio.gather(*deliveries)  # type: ignore[arg-type]
    finally:
        await producer.stop()

    partitions = settings.topic_partitions
    where: dict[int, tuple[int, int]] = {}
    for batch, first in zip(batches, metadata, strict=True):
        assert first.partition == batch.partition
        for index, record in enumerate(batch.records):
            assert record.tag is not None
            where[record.tag] = (batch.partition, first.offset + index)
    assert len(where) == len(keyed) + len(placed)
    assert len(batches) > partitions, "a partition's records should have needed several batches"
    for record in keyed:
        assert record.key is not None and record.tag is not None
        assert where[record.tag][0] == partition_for(record.key.decode(), partitions)
    assert {where[record.tag][0] for record in placed if record.tag is not None} == {1}

    consumer = async_consumer(settings, topic, group_id=None)
    await consumer.start()
    read: dict[tuple[int, int], bytes] = {}
    try:
        for _ in range(60):  # a minute at most: what is missing then shows in the comparison
            if len(read) >= len(where):
                break
            for messages in (await consumer.getmany(timeout_ms=1000)).values():
                for message in messages:
                    read[(message.partition, message.offset)] = message.value
    finally:
        await consumer.stop()
    given = {record.tag: record.value for record in [*keyed, *placed] if record.tag is not None}
    assert {where[tag]: value for tag, value in given.items()} == read
    # within a partition, the order given is the order of the offsets
    for partition in range(partitions):
        tags = [tag for tag in given if where[tag][0] == partition]
        assert tags == sorted(tags, key=lambda tag: where[tag][1])
