"""Replay a stream file onto the source topics at a chosen pace, watch the case-event and
dead-letter topics, and report what became of every record and how fast."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cityloop.contracts import Source, idempotency_key_for
from cityloop.loadtest.pacing import Pacing, due_offsets
from cityloop.loadtest.streamfile import StreamRecord
from cityloop.loadtest.tracker import ReplayTracker
from cityloop.settings import Settings
from streams.clients import async_consumer, async_producer
from streams.topics import Topics, ensure_topics, topics_for

Clock = Callable[[], float]
Progress = Callable[[int, int, int], None]
"""Called with (sent, accounted, total) while a replay runs."""

SAMPLE_INTERVAL_S = 0.5


@dataclass
class ReplayReport:
    records: int
    pacing: str
    sent: int
    acknowledged: int
    send_failed: int
    accounted: int
    unaccounted: int
    dead_letters: dict[str, int]
    cases_opened: int
    reports_attached: int
    duplicates_received: int
    send_seconds: float
    seconds: float
    send_rate: float
    """Records acknowledged per second of sending."""
    throughput: float
    """Records accounted for per second, from the first send to the last outcome."""
    latency: dict[str, float]
    lag: list[dict[str, float]] = field(default_factory=list)
    assignment: dict[str, str] = field(default_factory=dict, repr=False)

    def to_json(self, with_lag: bool = True) -> dict[str, Any]:
        document = {
            name: value
            for name, value in self.__dict__.items()
            if name != "assignment" and (with_lag or name != "lag")
        }
        return document


def target_topic(record: StreamRecord, names: Topics, keep_topics: bool) -> str:
    """Where a record goes: its source's topic under this prefix, unless told to keep the
    recorded topic name as it is."""
    if keep_topics and record.topic:
        return record.topic
    if record.source is not None:
        return names.source(record.source)
    if record.topic:
        return record.topic
    raise ValueError("a record with neither source nor topic")


def idempotency_key(record: StreamRecord) -> str | None:
    """`source|id` of the CloudEvent in the record, if it is one: what case events name."""
    event = record.event
    if event is None and record.value is not None:
        try:
            event = json.loads(record.value)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None
    if isinstance(event, dict) and isinstance(event.get("source"), str) and "id" in event:
        return idempotency_key_for(event["source"], str(event["id"]))
    return None


async def positioned_observer(settings: Settings, topic_names: Sequence[str]) -> Any:
    """A group-less consumer at the end of each topic (no group join to wait for)."""
    consumer = async_consumer(
        settings, *topic_names, group_id=None, auto_offset_reset="latest", fetch_max_wait_ms=50
    )
    await consumer.start()
    deadline = time.monotonic() + 15
    # no group: the client assigns itself every partition once metadata arrives
    while not consumer.assignment() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    await consumer.seek_to_end()
    for partition in consumer.assignment():
        await consumer.position(partition)  # resolve the end now, before anything is sent
    return consumer


async def _group_lag(probe: Any, ends: dict[tuple[str, int], int]) -> float | None:
    """How far the worker's group is behind what this replay has written to the sources: the
    probe is a consumer in the worker's group that never subscribes, so it only reads the
    group's committed offsets (OffsetFetch) and never joins or disturbs it."""
    from aiokafka.structs import TopicPartition

    behind = 0
    try:
        for (topic, partition), end in ends.items():
            committed = await probe.committed(TopicPartition(topic, partition))
            behind += max(0, end - max(committed or 0, 0))
    except Exception:  # a broker that cannot answer: no figure this time
        return None
    return float(behind)


async def replay(
    records: Sequence[StreamRecord],
    settings: Settings,
    pacing: Pacing,
    *,
    keep_topics: bool = False,
    keep_timestamps: bool = False,
    settle_s: float = 10.0,
    timeout_s: float | None = None,
    group: str | None = None,
    progress: Progress | None = None,
    clock: Clock = time.time,
    create_topics: bool = True,
) -> ReplayReport:
    names = topics_for(settings)
    if create_topics:
        await asyncio.to_thread(ensure_topics, settings)
    group = group or f"{settings.topic_prefix}-worker"
    targets = [target_topic(record, names, keep_topics) for record in records]
    keys = [idempotency_key(record) for record in records]
    offsets = due_offsets([record.timestamp_ms for record in records], pacing)
    started = clock()
    tracker = ReplayTracker(not_before_ms=int(started * 1000) - 1000)
    observer = await positioned_observer(settings, [names.case_events, names.dead_letters])
    producer = async_producer(settings)
    await producer.start()
    probe = async_consumer(settings, group_id=group, enable_auto_commit=False)
    await probe.start()
    ends: dict[tuple[str, int], int] = {}
    lag: list[dict[str, float]] = []
    sending_done = asyncio.Event()
    finished = asyncio.Event()

    def acknowledged(index: int, future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            tracker.on_send_failed(index)
            return
        meta = future.result()
        tracker.on_ack(index, meta.topic, meta.partition, meta.offset)
        position = (meta.topic, meta.partition)
        ends[position] = max(ends.get(position, 0), meta.offset + 1)

    async def observe() -> None:
        while not finished.is_set():
            batches = await observer.getmany(timeout_ms=100, max_records=5000)
            observed_at = clock()
            for partition, messages in batches.items():
                for message in messages:
                    try:
                        document = json.loads(message.value)
                    except (ValueError, TypeError):
                        continue
                    if not isinstance(document, dict):
                        continue
                    if partition.topic == names.dead_letters:
                        tracker.on_dead_letter(document, observed_at)
                    else:
                        tracker.on_case_event(document, observed_at, message.timestamp)

    async def sample() -> None:
        tick = 0
        while not finished.is_set():
            await asyncio.sleep(SAMPLE_INTERVAL_S)
            tick += 1
            row = {
                "t_s": round(clock() - started, 2),
                "sent": float(len(tracker.sent)),
                "acknowledged": float(tracker.acknowledged),
                "accounted": float(tracker.accounted),
                "in_flight": float(tracker.in_flight),
            }
            if tick % 2 == 0:
                group_lag = await _group_lag(probe, dict(ends))
                if group_lag is not None:
                    row["group_lag"] = group_lag
            lag.append(row)
            if progress is not None:
                progress(len(tracker.sent), tracker.accounted, len(records))

    tasks = [asyncio.create_task(observe()), asyncio.create_task(sample())]
    send_started = clock()
    try:
        for index, record in enumerate(records):
            wait = started + offsets[index] - clock()
            if wait > 0.001:
                await asyncio.sleep(wait)
            published_at = clock()
            position = tracker.on_send(keys[index], published_at)
            future = await producer.send(
                targets[index],
                value=record.value,
                key=record.key,
                headers=list(record.headers) or None,
                timestamp_ms=record.timestamp_ms if keep_timestamps else None,
            )
            future.add_done_callback(lambda f, i=position: acknowledged(i, f))
        await producer.flush()
        send_seconds = clock() - send_started
        sending_done.set()
        last_progress, last_accounted = clock(), -1
        while True:
            if tracker.accounted >= len(records):
                break
            now = clock()
            if tracker.accounted != last_accounted:
                last_accounted, last_progress = tracker.accounted, now
            if now - last_progress > settle_s:
                break
            if timeout_s is not None and now - started > timeout_s:
                break
            await asyncio.sleep(0.05)
    finally:
        finished.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await producer.stop()
        await observer.stop()
        await probe.stop()
    if progress is not None:
        progress(len(tracker.sent), tracker.accounted, len(records))
    ended = tracker.last_done_at or clock()
    seconds = max(ended - send_started, 1e-9)
    return ReplayReport(
        records=len(records),
        pacing=pacing.describe(),
        sent=len(tracker.sent),
        acknowledged=tracker.acknowledged,
        send_failed=tracker.failed,
        accounted=tracker.accounted,
        unaccounted=len(records) - tracker.accounted,
        dead_letters=dict(tracker.dead_letters),
        cases_opened=tracker.outcomes["cases_opened"],
        reports_attached=tracker.outcomes["reports_attached"],
        duplicates_received=tracker.outcomes["duplicates_received"],
        send_seconds=round(send_seconds, 3),
        seconds=round(seconds, 3),
        send_rate=round(tracker.acknowledged / max(send_seconds, 1e-9), 1),
        throughput=round(tracker.accounted / seconds, 1),
        latency=tracker.latency_summary(),
        lag=lag,
        assignment=tracker.assignment(),
    )


def source_topics(names: Topics) -> list[str]:
    return [names.source(source) for source in Source]
