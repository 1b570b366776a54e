"""Reading a topic's history from the beginning to its true end (the fetch high watermark, which
the embedded broker reports right where ListOffsets does not)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from kafka import KafkaConsumer, TopicPartition


def read_history(bootstrap_servers: str, topic: str, timeout_s: float = 120.0) -> Iterator[bytes]:
    """Every record value of `topic`, up to the end as it is now (blocking: from an executor)."""
    for record in read_records(bootstrap_servers, topic, timeout_s):
        if record.value is not None:
            yield record.value


def read_records(bootstrap_servers: str, topic: str, timeout_s: float = 120.0) -> Iterator[Any]:
    """Every record of `topic` (kafka-python ConsumerRecords: topic, partition, offset, key,
    value, timestamp), up to the end as it is now. Blocking: from an executor in a loop."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 << 20,
    )
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])
        ]
        if not partitions:
            return
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        done: set[TopicPartition] = set()
        deadline = time.monotonic() + timeout_s
        while len(done) < len(partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} took over {timeout_s:.0f}s")
            batches = consumer.poll(timeout_ms=500, max_records=5000)
            for records in batches.values():
                yield from records
            for tp in partitions:
                high = consumer.highwater(tp)
                if high is not None and consumer.position(tp) >= high:
                    done.add(tp)
    finally:
        consumer.close()
