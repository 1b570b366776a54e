"""Dead letters read back from their topic, for inspection and replay (they are made by the
worker's decisions: handlers/partition.py)."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cityloop.contracts import DeadLetter
from streams.history import read_records


@dataclass(frozen=True)
class StoredDeadLetter:
    """A dead letter as it sits on the topic: where, and what."""

    partition: int
    offset: int
    letter: DeadLetter

    @property
    def id(self) -> str:
        return f"{self.partition}:{self.offset}"


def read_dead_letters(bootstrap_servers: str, topic: str) -> list[StoredDeadLetter]:
    """Every dead letter on the topic now, oldest first per partition (blocking; raises
    `StalledRead` if the broker stops answering, as every read of a topic's history does)."""
    found: list[StoredDeadLetter] = []
    for record in read_records(bootstrap_servers, topic):
        try:
            letter = DeadLetter.model_validate_json(record.value or b"")
        except ValueError:
            continue  # not ours: nothing to list or replay
        found.append(StoredDeadLetter(record.partition, record.offset, letter))
    return found


def original_bytes(letter: DeadLetter, bootstrap_servers: str) -> bytes:
    """The record as it entered: the payload itself, or (when the case stage failed on the
    normalised incident) the record at the letter's origin."""
    if letter.payload_is_original or letter.origin is None:
        return base64.b64decode(letter.payload_b64)
    from kafka import KafkaConsumer, TopicPartition

    origin = letter.origin
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    try:
        partition = TopicPartition(origin.topic, origin.partition)
        consumer.assign([partition])
        consumer.seek(partition, origin.offset)
        for _ in range(20):
            for records in consumer.poll(timeout_ms=500, max_records=1).values():
                for record in records:
                    if record.offset == origin.offset and record.value is not None:
                        return bytes(record.value)
        raise LookupError(
            f"the record at {origin.topic}[{origin.partition}]@{origin.offset} is gone"
        )
    finally:
        consumer.close()
