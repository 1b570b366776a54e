"""Reading a topic's history to its true end (the fetch high watermark, which the embedded broker
reports right where ListOffsets does not).

A read has no deadline on its whole: history grows with the city, and a read of a year must
finish as a read of a day does. It fails only when it stops making progress: no record and no
movement of any position for `stall_s` seconds while it is short of the end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

from kafka import KafkaConsumer, TopicPartition

STALL_S = 60.0
"""How long a read may go without a record before it gives up (a broker that stopped answering)."""


HISTORY_FETCH_WAIT_MS = 20
"""How long the broker may hold a fetch that finds nothing new. A history read stops at the end
of what is there, so a long wait buys nothing, and the embedded broker holds a fetch at the end
of a partition for the whole wait. With the client's 500 ms and a 500 ms poll, an empty partition
took a second to read, and a worker reads seven at its first start (topology, classifier, modes,
four case partitions) and one per partition it is given at a rebalance."""

POLL_MS = 50
"""A poll returns as soon as records come; with none (an empty partition, the end of one) it
waits this long before the read looks at the positions again."""


class StalledRead(TimeoutError):
    """A history read that made no progress for `STALL_S` seconds."""


def read_history(bootstrap_servers: str, topic: str, stall_s: float = STALL_S) -> Iterator[bytes]:
    """Every record value of `topic`, up to the end as it is now (blocking: from an executor)."""
    for record in read_records(bootstrap_servers, topic, stall_s=stall_s):
        if record.value is not None:
            yield record.value


def read_records(
    bootstrap_servers: str,
    topic: str,
    *,
    partitions: list[int] | None = None,
    start: Mapping[int, int] | None = None,
    stall_s: float = STALL_S,
    batch: int = 5000,
) -> Iterator[Any]:
    """Every record of `topic` (kafka-python ConsumerRecords: topic, partition, offset, key,
    value, headers, timestamp), up to the end as it is when each partition's reading starts.

    `partitions`: only these (default: all); `start`: the offset to start each at (default: the
    beginning). Records come in each partition's order. Blocking: from an executor in a loop."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 << 20,
        fetch_max_wait_ms=HISTORY_FETCH_WAIT_MS,
    )
    try:
        known = sorted(consumer.partitions_for_topic(topic) or [])
        wanted = [TopicPartition(topic, p) for p in known if partitions is None or p in partitions]
        if not wanted:
            return
        consumer.assign(wanted)
        for tp in wanted:
            if start is not None and tp.partition in start:
                consumer.seek(tp, start[tp.partition])
            else:
                consumer.seek_to_beginning(tp)
        done: set[TopicPartition] = set()
        progress_at = time.monotonic()
        positions = {tp: -1 for tp in wanted}
        while len(done) < len(wanted):
            polled = consumer.poll(timeout_ms=POLL_MS, max_records=batch)
            for records in polled.values():
                if records:
                    progress_at = time.monotonic()
                yield from records
            for tp in wanted:
                position = consumer.position(tp)
                if position != positions[tp]:
                    positions[tp], progress_at = position, time.monotonic()
                high = consumer.highwater(tp)
                if high is not None and position >= high:
                    done.add(tp)
            if time.monotonic() - progress_at > stall_s:
                raise StalledRead(f"reading {topic} made no progress for {stall_s:.0f}s")
    finally:
        consumer.close()


def approximate_sizes(bootstrap_servers: str, topic: str) -> dict[int, int]:
    """About how many records each partition of `topic` holds, by partition: the listed end
    offset less the beginning. The embedded broker lists the last batch's base offset + 1 as
    the end, so this is short by up to one batch: good for sizing work, never for knowing where
    a read ends (`read_records` reads on to the fetch high watermark)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        if not partitions:
            return {}
        ends = consumer.end_offsets(partitions)
        starts = consumer.beginning_offsets(partitions)
        return {tp.partition: max(ends[tp] - starts[tp], 0) for tp in partitions}
    finally:
        consumer.close()
