"""The worker: a Faust app whose agents move bytes between the topics and the decisions of
handlers/partition.py.

`build_worker(settings)` makes one; nothing happens at import. Two agents do the work, each
taking records in batches (`take_events`), decoding each record once, and sending what the
decisions return through the app's producer without waiting for each acknowledgement (Faust
flushes that producer before it commits the offsets of what caused the records):

- `intake`: source records → incidents keyed by correlation key (or dead letters);
- `cases`: incidents and control records → case events, outcomes, dead letters, decided by the
  `CasePartition` of the record's partition. A partition's book is loaded the first time a
  record of it arrives: its snapshot and the case events after it (streams/store.py), or its
  whole history when there is no snapshot. After a batch, a partition whose book changed and
  whose snapshot is older than `snapshot_interval_s` is snapshot, once the producer has
  delivered every record of the decisions in it.

Its case events go to the partition of the case-event topic with the same number as the work
partition (the partition of the case's correlation key), so each partition's book is folded from
its own partition of history.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, cast

import faust
from aiokafka.errors import (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from cityloop.clock import wall_clock
from cityloop.contracts import (
    CASE_EVENT_ADAPTER,
    CommandOutcome,
    Mode,
    SwitchMode,
    Tick,
    wire_bytes,
)
from cityloop.settings import Settings
from handlers.book import CaseBook, Retention
from handlers.classifier import ClassifierModelError, TextClassifier, default_model_path
from handlers.partition import (
    CasePartition,
    Destination,
    Send,
    WorkRecord,
    outcome_send,
    take_source_record,
)
from handlers.triage import ClassifierGuesser
from streams.consumer_tuning import (
    FETCH_MAX_WAIT_MS,
    QUIET_AFTER_S,
    QUIET_FETCH_WAIT_MS,
    set_fetch_wait,
    shorten_fetch_wait,
)
from streams.decisions import whole_decisions
from streams.garbage import collect_everything
from streams.history import read_history, read_records
from streams.metrics import LAG_INTERVAL_S, WorkerMetrics, consumer_lag
from streams.restart import start_over
from streams.store import PartitionStore
from streams.topics import Topics, topics_for
from topology import Topology, TopologyError, load_topology, load_topology_text

log = logging.getLogger(__name__)

BATCH = 500
"""Records an agent takes at most at once."""
BATCH_WAIT_S = 0.005
"""How long an agent waits to fill a batch: short, so a quiet minute's single event goes on
without waiting (the latency at low rates is the broker's)."""

REFUSED_FOR_GOOD = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError)
"""Refusals that sending again cannot change: logged, the worker goes on."""


def report_undelivered(topic: str, delivery: asyncio.Future[Any]) -> None:
    """A record the producer gave up on (after its own retries) is said aloud, and the worker
    starts over as after a crash, reading again what it had not committed (the case book and the
    idempotency keys make that exactly once). The producer resolves a batch's records before the
    flush that precedes an offset commit returns, so the offset of what caused the record is not
    committed yet. Seen when the embedded broker came back empty: a first send to a topic made
    again failed with UnknownError, and the events behind it had no case."""
    if delivery.cancelled() or delivery.exception() is None:
        return
    error = delivery.exception()
    log.error("a record for %s was not delivered: %r", topic, error)
    if not isinstance(error, REFUSED_FOR_GOOD):
        start_over(after_topic_loss=False)


def work_record(message: Any) -> WorkRecord:
    """A Faust message (raw bytes: the agents' topics do not deserialise) as the core takes it."""
    return WorkRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value if isinstance(message.value, bytes) else bytes(message.value or b""),
        timestamp_ms=round(message.timestamp * 1000),
    )


def worker_app(settings: Settings, app_id: str) -> faust.App:
    """The Faust app a worker's agents run in, as configured for them (bench/bench_faust_floor.py
    runs trivial agents in the same one)."""
    datadir = settings.data_dir / "faust" / app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)
    return faust.App(
        app_id,
        broker=f"kafka://{settings.bootstrap_servers}",
        store="memory://",
        datadir=str(datadir),
        web_enabled=False,
        topic_partitions=settings.topic_partitions,
        topic_allow_declare=True,
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=max(1.0, settings.kafka_session_timeout_s / 3),
        producer_acks=-1,
        producer_linger_ms=20,
        # aiokafka keeps one open batch per partition and makes a send wait once it is full
        # until the sender has taken it; at Faust's 16 KiB that is every 16 one-kilobyte
        # records, and the worker spent about 8% more CPU per event
        producer_max_batch_size=256 * 1024,
        autodiscover=False,
    )


@dataclass
class Versioned:
    """A thing the operators publish new versions of on a topic (topology, classifier): the one
    in use, swapped whole when a version loads, kept when it does not."""

    name: str
    command_type: str
    current: Any
    parse: Callable[[bytes], Any]
    describe: Callable[[Any], str]
    refused: tuple[type[Exception], ...]

    async def adopt(self, data: bytes, now: datetime) -> CommandOutcome:
        """Build the version from a thread (a city's topology takes seconds to build), so the
        decisions go on with the current one meanwhile, then swap it in."""
        try:
            candidate = await asyncio.to_thread(self.parse, data)
            applied, reason = True, f"applied {self.describe(candidate)}"
        except self.refused as exc:
            candidate, applied, reason = self.current, False, f"invalid: {exc}"[:2000]
        self.current = candidate  # one rebinding: a decision sees the old version or the new
        log.warning("%s %s: %s", self.name, self.describe(candidate), reason)
        return CommandOutcome(
            command_id=f"{self.name}:{hashlib.sha256(data).hexdigest()[:16]}",
            command_type=self.command_type,
            actor="operator",
            applied=applied,
            reason=reason,
            decided_at=now,
        )


def _log_snapshot_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a snapshot failed", exc_info=task.exception())


@dataclass
class Delivered:
    """The newest case event the broker acknowledged on one partition."""

    offset: int = -1
    event_id: str = ""


@dataclass
class OwnedPartition:
    core: CasePartition
    store: PartitionStore
    from_snapshot: bool
    folded: int
    """Case events read when it was loaded (the snapshot's tail, or the whole history)."""
    snapshot_at: float = field(default_factory=time.monotonic)
    changed: bool = False


class CityWorker:
    """One worker process's app, agents and state. `build_worker` makes one."""

    def __init__(
        self,
        settings: Settings,
        topology: Topology,
        classifier: TextClassifier,
        app_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.names: Topics = topics_for(settings)
        self.metrics = WorkerMetrics()
        self.retention = Retention(
            finished_window=timedelta(hours=settings.finished_case_hours),
            idempotency_window=timedelta(hours=settings.idempotency_window_hours),
        )
        self.topology = Versioned(
            "topology",
            "publish_topology",
            topology,
            partial(load_topology_text, source=self.names.topology),
            lambda t: str(t.version),
            (TopologyError,),
        )
        self.classifier = Versioned(
            "classifier",
            "publish_classifier",
            ClassifierGuesser(classifier),
            lambda data: ClassifierGuesser(TextClassifier.from_bytes(data)),
            lambda g: str(g.version),
            (ClassifierModelError,),
        )
        self.modes: dict[str, Mode] = {}
        self.is_ready = False
        """Whether the newest topology, classifier and modes on their topics have been read."""
        self._readying: asyncio.Lock | None = None
        self.partitions: dict[int, OwnedPartition] = {}
        self.delivered: dict[int, Delivered] = {}
        self.undelivered = False
        self._deciding: asyncio.Lock | None = None
        self._snapshotting: asyncio.Lock | None = None
        self._snapshot_task: asyncio.Future[None] | None = None
        self.last_record_at = time.monotonic()
        self.quiet = False
        """Whether the consumer fetches with the long wait of a quiet spell."""
        self.state_dir: Path = settings.data_dir / "worker" / settings.topic_prefix
        self.app = self._app(app_id or f"{settings.topic_prefix}-worker")
        self.metrics.read_book_size(self.cases_held, self.open_cases_held)
        self._destinations = {
            Destination.INCIDENTS: self.names.incidents,
            Destination.CASE_EVENTS: self.names.case_events,
            Destination.CASE_CONTROL: self.names.case_control,
            Destination.COMMAND_OUTCOMES: self.names.command_outcomes,
            Destination.DEAD_LETTERS: self.names.dead_letters,
            Destination.MODES: self.names.modes,
        }

    # --- the app -------------------------------------------------------------------------

    def _app(self, app_id: str) -> faust.App:
        settings = self.settings
        app = worker_app(settings, app_id)

        def raw(*topic_names: str) -> Any:
            """Keys and values stay bytes: the decisions parse them, once."""
            return app.topic(*topic_names, value_serializer="raw", key_serializer="raw")

        app.agent(raw(*self.names.sources), name="intake")(self.intake)
        app.agent(raw(self.names.incidents, self.names.case_control), name="cases")(self.cases)
        app.agent(raw(self.names.topology), name="topology-versions")(self.topology_versions)
        app.agent(raw(self.names.classifier), name="classifier-versions")(self.classifier_versions)
        app.timer(interval=settings.tick_interval_s, on_leader=True)(self.tick)
        app.timer(interval=LAG_INTERVAL_S)(self.measure_lag)
        app.timer(interval=1.0)(self.slow_down_when_quiet)
        # a partition that went quiet after a decision is snapshot all the same
        app.timer(interval=settings.snapshot_interval_s)(self.snapshot_due)
        app.timer(interval=settings.full_collection_interval_s)(self.collect_garbage)
        app.on_partitions_revoked.connect(self._partitions_revoked)  # type: ignore[arg-type]
        return app

    # --- sending -------------------------------------------------------------------------

    async def send(self, sends: list[Send]) -> None:
        """Hand every record to the producer; acknowledgements are checked as they come."""
        producer = self.app.producer
        for send in sends:
            topic = self._destinations[send.to]
            delivery = cast(
                "asyncio.Future[Any]",
                await producer.send(
                    topic, send.key, send.value, send.partition, None, send.headers
                ),
            )
            if send.to is Destination.CASE_EVENTS:
                self.metrics.case_events.inc()
                delivery.add_done_callback(partial(self._case_event_delivered, send.event_id))
            elif send.to is Destination.DEAD_LETTERS and send.headers:
                self.metrics.dead_letters[send.headers[0][1].decode()].inc()
            delivery.add_done_callback(partial(self._check_delivery, topic))

    def _check_delivery(self, topic: str, delivery: asyncio.Future[Any]) -> None:
        if not delivery.cancelled() and delivery.exception() is not None:
            self.undelivered = True  # no snapshot may be taken of decisions not on the topic
        report_undelivered(topic, delivery)

    def _case_event_delivered(self, event_id: str | None, delivery: asyncio.Future[Any]) -> None:
        if delivery.cancelled() or delivery.exception() is not None:
            return
        metadata = delivery.result()
        newest = self.delivered.setdefault(metadata.partition, Delivered())
        if metadata.offset > newest.offset:
            newest.offset, newest.event_id = metadata.offset, event_id or ""

    # --- what every decision needs first --------------------------------------------------

    async def ready(self) -> None:
        """Before the first decision: the newest topology and classifier published on their
        topics, and the modes switched so far. Read once, by the first agent to ask; the
        others wait for that read rather than decide with the bundled topology meanwhile. A
        read that fails is tried again by the next agent to ask."""
        if self.is_ready:
            return
        if self._readying is None:
            self._readying = asyncio.Lock()
        async with self._readying:
            if self.is_ready:
                return
            for versioned, topic in (
                (self.topology, self.names.topology),
                (self.classifier, self.names.classifier),
            ):
                versions = await asyncio.to_thread(self._history, topic)
                if versions:
                    outcome = await versioned.adopt(versions[-1], wall_clock())
                    await self.send([outcome_send(outcome)])
            switched = await asyncio.to_thread(self._history, self.names.modes)
            for value in switched:
                record = SwitchMode.model_validate_json(value)
                self.modes[record.area_code] = record.mode
            self.is_ready = True

    def _history(self, topic: str) -> list[bytes]:
        return list(read_history(self.settings.bootstrap_servers, topic))

    async def topology_versions(self, stream: Any) -> None:
        """Hot reload: each published topology version replaces the current one."""
        async for event in stream.events():
            await self.ready()
            record = work_record(event.message)
            outcome = await self.topology.adopt(record.value, record.time)
            await self.send([outcome_send(outcome)])

    async def classifier_versions(self, stream: Any) -> None:
        """Hot reload: each published classifier version replaces the current one."""
        async for event in stream.events():
            await self.ready()
            record = work_record(event.message)
            outcome = await self.classifier.adopt(record.value, record.time)
            await self.send([outcome_send(outcome)])

    # --- the two stages ------------------------------------------------------------------

    async def intake(self, stream: Any) -> None:
        """Raw CloudEvents → validated incidents keyed by correlation key, or dead letters."""
        sources = self.names.sources
        async for events in stream.take_events(BATCH, BATCH_WAIT_S):
            self.busy()
            await self.ready()
            topology, guesser = self.topology.current, self.classifier.current
            sends = []
            for event in events:
                record = work_record(event.message)
                sends.append(
                    take_source_record(record, topology, sources.get(record.topic), guesser)
                )
            await self.send(sends)

    @property
    def deciding(self) -> asyncio.Lock:
        """Held while a batch is decided and handed to the producer, so that a snapshot never
        holds a decision whose records are not yet on their way."""
        if self._deciding is None:
            self._deciding = asyncio.Lock()
        return self._deciding

    async def cases(self, stream: Any) -> None:
        """Incidents and control records → case events, decided by their partition's core."""
        incidents = self.names.incidents
        async for events in stream.take_events(BATCH, BATCH_WAIT_S):
            self.busy()
            await self.ready()
            records = [work_record(event.message) for event in events]
            async with self.deciding:
                for number in sorted({record.partition for record in records}):
                    if number not in self.partitions:
                        await self.load(number)
                topology = self.topology.current
                sends: list[Send] = []
                for record in records:
                    owned = self.partitions[record.partition]
                    sends += owned.core.take(record, topology, self.modes, incidents)
                    owned.changed = True
                await self.send(sends)
            self._account()
            self.start_snapshot_when_due()

    def _account(self) -> None:
        for owned in self.partitions.values():
            core = owned.core
            for kind, count in core.decided.items():
                self.metrics.decisions[kind].inc(count)
            core.decided.clear()
            for record, exc in core.failures:
                log.error(
                    "case decision failed at %s[%s]@%s",
                    record.topic,
                    record.partition,
                    record.offset,
                    exc_info=exc,
                )
            core.failures.clear()

    # --- each partition's state ----------------------------------------------------------

    async def load(self, number: int) -> None:
        """The partition's book: its snapshot and the case events after it, or its history."""
        started = time.perf_counter()
        owned = await asyncio.to_thread(self._load, number)
        self.partitions[number] = owned
        self.metrics.rebuild_seconds.observe(time.perf_counter() - started)
        self.metrics.rebuild_events.set(owned.folded)
        self.metrics.partition_loads["snapshot" if owned.from_snapshot else "history"].inc()
        log.info(
            "case partition %d: %d cases in memory, %d case events read%s, in %.2fs",
            number,
            len(owned.core.book.cases),
            owned.folded,
            " after its snapshot" if owned.from_snapshot else "",
            time.perf_counter() - started,
        )

    def _load(self, number: int) -> OwnedPartition:
        store = PartitionStore(self.state_dir, number)
        core = CasePartition(number, self.retention, store)
        snapshot = store.load()
        tail = None
        from_snapshot = False
        if snapshot is not None:
            tail = self._tail_after(number, snapshot.offset, snapshot.event_id)
            if tail is None:
                log.warning(
                    "case partition %d: the snapshot is of another topic; folding its history",
                    number,
                )
                store.discard()
            else:
                snapshot.book.archive = store
                core.book, from_snapshot = snapshot.book, True
        if tail is None:
            tail = read_records(
                self.settings.bootstrap_servers, self.names.case_events, partitions=[number]
            )
        folded = core.restore(
            CASE_EVENT_ADAPTER.validate_json(record.value)
            for record in whole_decisions(tail)
            if record.value is not None
        )
        return OwnedPartition(core, store, from_snapshot, folded)

    def _tail_after(self, number: int, offset: int, event_id: str) -> Iterator[Any] | None:
        """The case events after `offset`, if the topic holds the snapshot's last event there."""
        records = read_records(
            self.settings.bootstrap_servers,
            self.names.case_events,
            partitions=[number],
            start={number: offset},
        )
        first = next(records, None)
        if first is None or first.offset != offset or first.value is None:
            return None
        if CASE_EVENT_ADAPTER.validate_json(first.value).event_id != event_id:
            return None
        return records

    def _due_for_snapshot(self) -> list[int]:
        return [
            number
            for number, owned in self.partitions.items()
            if owned.changed
            and time.monotonic() - owned.snapshot_at >= self.settings.snapshot_interval_s
        ]

    def start_snapshot_when_due(self) -> None:
        """After a batch: if a snapshot is due, write it in a task of its own, so that the
        cases agent goes straight on to its next batch. The task is kept: the loop holds
        only a weak reference to it."""
        writing = self._snapshot_task
        if (writing is not None and not writing.done()) or not self._due_for_snapshot():
            return
        self._snapshot_task = asyncio.ensure_future(self.snapshot_due())
        self._snapshot_task.add_done_callback(_log_snapshot_failure)

    async def snapshot_due(self) -> None:
        """Snapshot each changed partition whose snapshot is older than the interval, once every
        record sent so far is on the broker (a snapshot must never hold a decision that is
        not on the topic: the record that caused it would then be skipped as seen).

        Decisions wait only while the books are copied; they go on while the copies are
        written. One snapshot is written at a time: a due one that finds another being
        written is taken at the next batch or tick."""
        due = self._due_for_snapshot()
        if not due or self.snapshotting.locked():
            return
        async with self.snapshotting:
            async with self.deciding:
                held = time.perf_counter()
                copies = await self._copies(due)
                self.metrics.snapshot_hold_seconds.observe(time.perf_counter() - held)
            for owned, book, delivered in copies:
                started = time.perf_counter()
                size = await owned.store.save(book, delivered.offset, delivered.event_id)
                self.metrics.snapshot_seconds.observe(time.perf_counter() - started)
                log.info(
                    "case partition %d snapshot: %d bytes at offset %d",
                    owned.core.number,
                    size,
                    delivered.offset,
                )

    @property
    def snapshotting(self) -> asyncio.Lock:
        if self._snapshotting is None:
            self._snapshotting = asyncio.Lock()
        return self._snapshotting

    async def _copies(self, due: list[int]) -> list[tuple[OwnedPartition, CaseBook, Delivered]]:
        """Each due partition's book as of the last case event on the broker."""
        await self.app.producer.flush()
        if self.undelivered:
            return []  # the worker is starting over
        copies = []
        for number in due:
            if number not in self.partitions:
                continue  # moved away meanwhile
            owned, delivered = self.partitions[number], self.delivered.get(number)
            if delivered is None or delivered.offset < 0:
                continue  # nothing of this partition on the topic yet
            # `delivered` moves on with the next acknowledgement: keep where it is now
            copies.append((owned, owned.core.book.copy(), replace(delivered)))
            owned.snapshot_at, owned.changed = time.monotonic(), False
        return copies

    async def collect_garbage(self) -> None:
        """The full collection the worker process runs on a clock (streams/garbage.py)."""
        seconds = collect_everything()
        self.metrics.full_collection_seconds.observe(seconds)
        log.info("full garbage collection: %.3fs", seconds)

    async def _partitions_revoked(self, app: Any, revoked: Any, **kwargs: Any) -> None:
        """A partition that moves away is loaded afresh if it comes back: meanwhile another
        worker decided on it."""
        for tp in revoked:
            if tp.topic in (self.names.incidents, self.names.case_control):
                owned = self.partitions.pop(tp.partition, None)
                self.delivered.pop(tp.partition, None)
                if owned is not None:
                    owned.store.close()

    def cases_held(self) -> int:
        return sum(len(owned.core.book.cases) for owned in list(self.partitions.values()))

    def open_cases_held(self) -> int:
        return sum(owned.core.book.open_count() for owned in list(self.partitions.values()))

    # --- how often to fetch ---------------------------------------------------------------

    def busy(self) -> None:
        """Records came: fetch with the short wait again (streams/consumer_tuning.py)."""
        self.last_record_at = time.monotonic()
        if self.quiet:
            set_fetch_wait(self.app.consumer, FETCH_MAX_WAIT_MS)
            self.quiet = False

    async def slow_down_when_quiet(self) -> None:
        """No record for a while: fetch with the long wait, fewer fetches on idle topics."""
        if not self.quiet and time.monotonic() - self.last_record_at >= QUIET_AFTER_S:
            self.quiet = set_fetch_wait(self.app.consumer, QUIET_FETCH_WAIT_MS)

    # --- timers --------------------------------------------------------------------------

    async def tick(self) -> None:
        """The wall clock, delivered to every case partition (unless replays drive time)."""
        if self.settings.clock != "wall":
            return
        value = wire_bytes(Tick(now=wall_clock()))
        await self.send(
            [
                Send(Destination.CASE_CONTROL, None, value, partition=partition)
                for partition in range(self.settings.topic_partitions)
            ]
        )

    async def measure_lag(self) -> None:
        """The consumer lag per partition, for the metrics (in the loop, where the consumer is)."""
        try:
            # Faust's own record of the group's committed offsets, read from the broker when
            # partitions are assigned and moved at each commit (faust-streaming is pinned)
            lag = consumer_lag(self.app.consumer, cast(Any, self.app.consumer)._committed_offset)
        except Exception as exc:  # not started, or partitions moving: the next turn measures
            log.debug("consumer lag not measured: %r", exc)
            return
        self.metrics.set_lag(lag)


def build_worker(
    settings: Settings,
    *,
    topology: Topology | None = None,
    classifier: TextClassifier | None = None,
    app_id: str | None = None,
) -> CityWorker:
    """A worker for `settings`: its app, agents and timers, its topology and classifier loaded
    (given ones are used as they are, so tests can share them)."""
    shorten_fetch_wait()
    return CityWorker(
        settings,
        topology if topology is not None else load_topology(settings.topology_file),
        classifier
        if classifier is not None
        else TextClassifier.load(settings.classifier_model or default_model_path()),
        app_id,
    )
