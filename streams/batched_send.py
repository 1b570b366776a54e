"""Records handed to the app's producer a partition's batch at a time.

Faust's `Producer.send` goes through aiokafka's per-message path: a metadata wait, a partitioner
call, a future and an accumulator append for every record, about a tenth of the worker's CPU at
full rate. aiokafka's own batch interface (`create_batch` / `send_batch`) takes a whole
partition's records in one append. It is reached through the producer Faust itself sends with
(Faust 0.15 has no batch call of its own), so Faust's flush before an offset commit waits for
these batches as for any record: a record is on the broker before the offset of what caused it
is committed.

Each batch is closed before it is handed over, so the producer sends it at once instead of
lingering for records that will not come; batches of one partition go out in the order given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from kafka.partitioner.default import murmur2

Tag = TypeVar("Tag")


@dataclass(slots=True)
class Outgoing(Generic[Tag]):
    """One record to write. `partition` None: Kafka's default partitioner places it by key."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] | None = None
    partition: int | None = None
    tag: Tag | None = None
    """Whatever the caller wants back with the record's offset (say, a case event's id)."""


@dataclass(slots=True)
class SentBatch(Generic[Tag]):
    """One partition's batch: `delivery` resolves to the metadata of its first record (its
    `offset` is the base offset; the i-th record is at base + i)."""

    topic: str
    partition: int
    records: list[Outgoing[Tag]] = field(default_factory=list)
    delivery: asyncio.Future[Any] | None = None


def key_partition(key: bytes | None, partitions: int, fallback: int) -> int:
    """Kafka's default partitioner for a keyed record (murmur2, as every client); an unkeyed
    one goes to `fallback`."""
    if key is None:
        return fallback % partitions
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def _fields(record: Outgoing[Any]) -> dict[str, Any]:
    return {
        "key": record.key,
        "value": record.value,
        "timestamp": None,
        "headers": record.headers or [],
    }


class BatchedSender(Generic[Tag]):
    """Sends lists of records through an aiokafka producer, one batch per partition."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer
        """The aiokafka producer (for a Faust app: `app.producer._ensure_producer()`)."""
        self._partitions: dict[str, int] = {}
        self._unkeyed = 0

    async def partitions_of(self, topic: str) -> int:
        count = self._partitions.get(topic)
        if count is None:
            count = self._partitions[topic] = len(await self.producer.partitions_for(topic))
        return count

    async def send(self, records: Iterable[Outgoing[Tag]]) -> list[SentBatch[Tag]]:
        """Hand every record to the producer, grouped by topic and partition (order kept within
        a partition); returns the batches, whose deliveries resolve as the broker acknowledges
        them. Does not wait for the acknowledgements."""
        grouped: dict[tuple[str, int], SentBatch[Tag]] = {}
        for record in records:
            partition = record.partition
            if partition is None:
                partitions = await self.partitions_of(record.topic)
                self._unkeyed += 1
                partition = key_partition(record.key, partitions, self._unkeyed)
            batch = grouped.get((record.topic, partition))
            if batch is None:
                batch = grouped[(record.topic, partition)] = SentBatch(record.topic, partition)
            batch.records.append(record)
        sent: list[SentBatch[Tag]] = []
        for batch in grouped.values():
            sent += await self._send_partition(batch)
        return sent

    async def _send_partition(self, whole: SentBatch[Tag]) -> list[SentBatch[Tag]]:
        """One partition's records, in as many batches as the producer's batch size needs."""
        producer = self.producer
        sent: list[SentBatch[Tag]] = []
        builder = producer.create_batch()
        batch: SentBatch[Tag] = SentBatch(whole.topic, whole.partition)
        for record in whole.records:
            if builder.append(**_fields(record)) is None:
                sent.append(await self._hand_over(builder, batch))
                builder = producer.create_batch()
                batch = SentBatch(whole.topic, whole.partition)
                # an empty batch always takes its first record, however large
                builder.append(**_fields(record))
            batch.records.append(record)
        sent.append(await self._hand_over(builder, batch))
        return sent

    async def _hand_over(self, builder: Any, batch: SentBatch[Tag]) -> SentBatch[Tag]:
        builder.close()  # complete: the producer sends it without lingering for more
        batch.delivery = await self.producer.send_batch(
            builder, batch.topic, partition=batch.partition
        )
        return batch
