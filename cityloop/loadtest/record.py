"""Record live topics to a stream file: every record with its topic, partition, offset, key,
headers and timestamp, the value byte-exact (readable JSON when that loses nothing)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from cityloop.loadtest.streamfile import StreamRecord, to_line, write_line
from cityloop.settings import Settings
from streams.clients import async_consumer
from streams.topics import Topics, topics_for

TOPIC_ALIASES = (
    "sources",
    "incidents",
    "case-events",
    "case-control",
    "command-outcomes",
    "dead-letters",
)


def resolve_topics(requested: Sequence[str], names: Topics) -> list[str]:
    """Full topic names from what was asked: `sources` (the four source topics), a short name
    under the prefix (`case-events`, `events.hotline`), or a full name as it is."""
    resolved: list[str] = []
    for name in requested:
        for part in (p.strip() for p in name.split(",")):
            if not part:
                continue
            if part == "sources":
                resolved.extend(names.sources)
            elif part in TOPIC_ALIASES or part.startswith("events."):
                resolved.append(f"{names.prefix}.{part}")
            else:
                resolved.append(part)
    return list(dict.fromkeys(resolved))


def record_of(message: object, names: Topics) -> StreamRecord:
    topic = str(getattr(message, "topic"))  # noqa: B009 - aiokafka's ConsumerRecord
    headers = tuple(
        (str(name), bytes(value or b""))
        for name, value in (getattr(message, "headers", None) or ())
    )
    return StreamRecord(
        value=getattr(message, "value"),  # noqa: B009
        key=getattr(message, "key"),  # noqa: B009
        timestamp_ms=int(getattr(message, "timestamp")),  # noqa: B009
        source=names.sources.get(topic),
        topic=topic,
        partition=int(getattr(message, "partition")),  # noqa: B009
        offset=int(getattr(message, "offset")),  # noqa: B009
        headers=headers,
    )


async def record(
    settings: Settings,
    topic_names: Sequence[str],
    out: Path,
    *,
    from_beginning: bool = True,
    idle_s: float | None = 5.0,
    duration_s: float | None = None,
    max_records: int | None = None,
    on_record: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Write records until `idle_s` passes without one, `duration_s` is up, `max_records` are
    written, or `stop` is set; return how many were written."""
    names = topics_for(settings)
    consumer = async_consumer(
        settings,
        *topic_names,
        group_id=None,
        auto_offset_reset="earliest" if from_beginning else "latest",
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    written = 0
    started = last_seen = time.monotonic()
    try:
        with out.open("w", encoding="utf-8") as lines:
            while stop is None or not stop.is_set():
                batches = await consumer.getmany(timeout_ms=200, max_records=5000)
                now = time.monotonic()
                # interleave partitions by timestamp, so a replay keeps the order of publishing
                batch = sorted(
                    (m for messages in batches.values() for m in messages),
                    key=lambda m: int(m.timestamp),
                )
                for message in batch:
                    write_line(lines, to_line(record_of(message, names)))
                    written += 1
                    last_seen = now
                    if max_records is not None and written >= max_records:
                        return written
                if on_record is not None:
                    on_record(written)
                if duration_s is not None and now - started >= duration_s:
                    break
                if idle_s is not None and now - last_seen >= idle_s:
                    break
    finally:
        await consumer.stop()
    return written
