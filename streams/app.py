"""The Faust app: intake and case agents, thin around the handlers."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from datetime import UTC, datetime
from functools import partial
from typing import Any, cast

import faust
from aiokafka.errors import (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from kafka.partitioner.default import murmur2

from cityloop.clock import wall_clock
from cityloop.contracts import (
    CASE_EVENT_ADAPTER,
    CONTROL_ADAPTER,
    AbsorbReports,
    CaseEvent,
    CommandOutcome,
    DeadLetter,
    Incident,
    MergeCase,
    Mode,
    Origin,
    SwitchMode,
    Tick,
)
from cityloop.settings import get_settings
from handlers.book import CaseBook
from handlers.case import CaseChange
from handlers.cells import correlation_key
from handlers.classifier import ClassifierModelError, TextClassifier, default_model_path
from handlers.intake import Accepted, take_in
from handlers.lifecycle import (
    absorb_reports,
    check_deadlines,
    decide_command,
    decide_mode_switch,
    reevaluate_for_mode,
)
from handlers.triage import ClassifierGuesser
from streams.consumer_tuning import shorten_fetch_wait
from streams.deadletters import dead_letter_for_exception
from streams.decisions import decision_headers, whole_decisions
from streams.history import read_history, read_records
from streams.metrics import LAG_INTERVAL_S, WorkerMetrics, consumer_lag
from streams.restart import start_over
from streams.topics import topics_for
from topology import TopologyError, UnroutableError, load_topology, load_topology_text

log = logging.getLogger(__name__)

settings = get_settings()
names = topics_for(settings)
shorten_fetch_wait()

app = faust.App(
    f"{settings.topic_prefix}-worker",
    broker=f"kafka://{settings.bootstrap_servers}",
    store="memory://",
    datadir=str(settings.data_dir / "faust"),
    web_enabled=False,
    topic_partitions=settings.topic_partitions,
    topic_allow_declare=True,
    broker_session_timeout=settings.kafka_session_timeout_s,
    broker_heartbeat_interval=max(1.0, settings.kafka_session_timeout_s / 3),
    producer_acks=-1,
    producer_linger_ms=20,
)


def _bytes_topic(*topic_names: str) -> Any:
    """Values and keys stay bytes: the handlers parse them, once."""
    return app.topic(*topic_names, value_serializer="raw", key_serializer="raw")


# What the agents read. What they write goes through `send_record` by topic name.
source_topic = _bytes_topic(*names.sources)
case_work_topic = _bytes_topic(names.incidents, names.case_control)
topology_topic = _bytes_topic(names.topology)
classifier_topic = _bytes_topic(names.classifier)

# The cases agent's state: derived from the case-event topic, rebuilt whenever partitions move.
book = CaseBook()
modes: dict[str, Mode] = {}
needs_rebuild = True

# served on the worker's own port by `cityloop worker` (streams/metrics.py)
metrics = WorkerMetrics()
metrics.read_book_size(lambda: len(book.cases), lambda: book.open_count())

topology = load_topology(settings.topology_file)
topology_from_topic = False
guesser = ClassifierGuesser(
    TextClassifier.load(settings.classifier_model or default_model_path())
)
classifier_from_topic = False


def record_time(message: Any) -> datetime:
    """The clock of every decision: the record's own timestamp. Re-processing a record after a
    crash then decides exactly as before, and a replay runs on the events' own times."""
    timestamp = getattr(message, "timestamp", None)
    return datetime.fromtimestamp(timestamp, UTC) if timestamp else wall_clock()


async def send_record(
    topic: str,
    key: bytes | None,
    value: bytes,
    headers: list[tuple[str, bytes]] | None = None,
    partition: int | None = None,
) -> None:
    """Every record the worker writes goes out here: straight to the app's producer, without
    Faust's per-send channel machinery (about 30 µs a send in a profile of the worker; the sends
    were a sixth of its CPU). The producer is the one Faust flushes before it commits offsets,
    so a record is on the broker before the offset of what caused it is committed."""
    # aiokafka's future of the broker's acknowledgement (Faust types it as a bare Awaitable)
    delivery = cast(
        "asyncio.Future[Any]", await app.producer.send(topic, key, value, partition, None, headers)
    )
    delivery.add_done_callback(partial(_report_undelivered, topic))


REFUSED_FOR_GOOD = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError)
"""Refusals that sending again cannot change: logged, the worker goes on."""


def _report_undelivered(topic: str, delivery: asyncio.Future[Any]) -> None:
    """A record the producer gave up on (after its own retries) is said aloud, and the worker
    starts over as after a crash, reading again what it had not committed (the case book and the
    idempotency keys make that exactly once). The producer resolves a batch's records before
    the flush that precedes an offset commit returns, so the offset of what caused the record is
    not committed yet. Seen when the embedded broker came back empty: a first send to a topic
    made again failed with UnknownError, and the events behind it had no case."""
    if delivery.cancelled() or delivery.exception() is None:
        return
    error = delivery.exception()
    log.error("a record for %s was not delivered: %r", topic, error)
    if not isinstance(error, REFUSED_FOR_GOOD):
        start_over(after_topic_loss=False)


async def send_dead_letter(dead_letter: DeadLetter) -> None:
    metrics.dead_letters[dead_letter.reason].inc()
    await send_record(
        names.dead_letters,
        (dead_letter.idempotency_key or "").encode(),
        dead_letter.model_dump_json().encode(),
        headers=[("reason", dead_letter.reason.value.encode())],
    )


async def adopt_topology(text: bytes, now: datetime) -> None:
    """Swap to a published topology version, or keep the current one if it does not load."""
    global topology
    try:
        candidate = load_topology_text(text, source=names.topology)
        applied, reason = True, "applied"
    except TopologyError as exc:
        candidate, applied, reason = topology, False, f"invalid: {exc}"[:2000]
    topology = candidate  # one rebinding: a decision sees the old version or the new, whole
    log.warning("topology %s: %s", candidate.version, reason)
    await publish_outcome(
        CommandOutcome(
            command_id=f"topology:{hashlib.sha256(text).hexdigest()[:16]}",
            command_type="publish_topology",
            actor="operator",
            applied=applied,
            reason=reason if not applied else f"applied {candidate.version}",
            decided_at=now,
        )
    )


async def ensure_topology() -> None:
    """Before the first decision: the newest version published on the topic, if any."""
    global topology_from_topic
    if topology_from_topic:
        return
    topology_from_topic = True
    versions = await asyncio.get_running_loop().run_in_executor(
        None, lambda: list(read_history(settings.bootstrap_servers, names.topology))
    )
    if versions:
        await adopt_topology(versions[-1], wall_clock())


@app.agent(topology_topic)
async def topology_versions(stream: Any) -> None:
    """Hot reload: each published topology version replaces the current one."""
    async for event in stream.events():
        await ensure_topology()
        await adopt_topology(event.value, record_time(event.message))


async def adopt_classifier(data: bytes, now: datetime) -> None:
    """Swap to a published classifier version, or keep the current one if it does not load."""
    global guesser
    try:
        candidate = ClassifierGuesser(TextClassifier.from_bytes(data))
        applied, reason = True, f"applied {candidate.version}"
    except ClassifierModelError as exc:
        candidate, applied, reason = guesser, False, f"invalid: {exc}"[:2000]
    guesser = candidate  # one rebinding: an order is triaged by the old model or the new
    log.warning("classifier %s: %s", candidate.version, reason)
    await publish_outcome(
        CommandOutcome(
            command_id=f"classifier:{hashlib.sha256(data).hexdigest()[:16]}",
            command_type="publish_classifier",
            actor="operator",
            applied=applied,
            reason=reason,
            decided_at=now,
        )
    )


async def ensure_classifier() -> None:
    """Before the first triage: the newest classifier published on the topic, if any."""
    global classifier_from_topic
    if classifier_from_topic:
        return
    classifier_from_topic = True
    versions = await asyncio.get_running_loop().run_in_executor(
        None, lambda: list(read_history(settings.bootstrap_servers, names.classifier))
    )
    if versions:
        await adopt_classifier(versions[-1], wall_clock())


@app.agent(classifier_topic)
async def classifier_versions(stream: Any) -> None:
    """Hot reload: each published classifier version replaces the current one."""
    async for event in stream.events():
        await ensure_classifier()
        await adopt_classifier(event.value, record_time(event.message))


@app.agent(source_topic)
async def intake(stream: Any) -> None:
    """Raw CloudEvents → validated Incidents keyed by correlation key, or dead letters."""
    async for event in stream.events():
        await ensure_topology()
        await ensure_classifier()
        message = event.message
        origin = Origin(topic=message.topic, partition=message.partition, offset=message.offset)
        value: bytes = event.value if isinstance(event.value, bytes) else bytes(event.value or b"")
        try:
            received = record_time(message)
            result = take_in(
                value, topology, received, names.sources.get(message.topic), origin, guesser
            )
            if isinstance(result, Accepted):
                incident = result.incident
                await send_record(
                    names.incidents,
                    correlation_key(topology, incident).encode(),
                    incident.model_dump_json().encode(),
                )
            else:
                await send_dead_letter(result.dead_letter)
        except Exception as exc:  # a bug must not stop the stream: dead-letter and go on
            log.exception(
                "intake failed at %s[%s]@%s", origin.topic, origin.partition, origin.offset
            )
            await send_dead_letter(
                dead_letter_for_exception(exc, value, origin, record_time(message))
            )


# --- case partition state ------------------------------------------------------------------


@app.on_partitions_assigned.connect  # type: ignore[arg-type]
async def _partitions_moved(app: Any, *args: Any, **kwargs: Any) -> None:
    global needs_rebuild
    needs_rebuild = True


async def rebuild() -> None:
    """Fold the whole case-event topic (and the modes) into a fresh book."""
    global book, needs_rebuild
    started = time.perf_counter()
    loop = asyncio.get_running_loop()
    fresh = CaseBook()
    history = await loop.run_in_executor(
        None,
        lambda: [
            record.value
            for record in whole_decisions(
                read_records(settings.bootstrap_servers, names.case_events)
            )
            if record.value is not None
        ],
    )
    fresh.fold(CASE_EVENT_ADAPTER.validate_json(value) for value in history)
    switched = await loop.run_in_executor(
        None, lambda: list(read_history(settings.bootstrap_servers, names.modes))
    )
    modes.clear()
    for value in switched:
        record = SwitchMode.model_validate_json(value)
        modes[record.area_code] = record.mode
    book, needs_rebuild = fresh, False
    metrics.rebuild_seconds.observe(time.perf_counter() - started)
    metrics.rebuild_events.set(len(history))
    log.info("case book rebuilt: %d cases from %d events", len(book.cases), len(history))


def partition_of(key: str) -> int:
    """Kafka's default partitioner, so a case's partition is known from its correlation key."""
    return int(murmur2(key.encode()) & 0x7FFFFFFF) % settings.topic_partitions


async def send_decision(events: tuple[CaseEvent, ...]) -> None:
    """One decision's events, each marked with its place in the decision, so that readers take
    the decision whole or not at all (streams/decisions.py)."""
    size = len(events)
    metrics.case_events.inc(size)
    for index, case_event in enumerate(events, start=1):
        await send_record(
            names.case_events,
            case_event.case_id.encode(),
            case_event.model_dump_json().encode(),
            headers=decision_headers(index, size),
        )


async def publish(change: CaseChange) -> None:
    await send_decision(change.events)
    book.commit(change)


async def publish_outcome(outcome: CommandOutcome) -> None:
    await send_record(
        names.command_outcomes, outcome.command_id.encode(), outcome.model_dump_json().encode()
    )


async def take_incident(incident: Incident, key: str) -> None:
    decision = book.correlate(incident, key, topology, modes, incident.received_at)
    metrics.decisions["incident"].inc()
    await send_decision(decision.events)


async def take_control(message: Any, partition: int, now: datetime) -> None:
    if isinstance(message, Tick):
        for due in book.due(
            message.now, lambda case: partition_of(case.correlation_key) == partition
        ):
            metrics.decisions["deadline"].inc()
            await publish(check_deadlines(due, topology, modes, message.now))
        return
    if isinstance(message, SwitchMode):
        outcome = decide_mode_switch(message, topology, now)
        if outcome.applied:
            modes[message.area_code] = message.mode
            for open_case in list(book.open_cases()):
                if partition_of(open_case.correlation_key) == partition:
                    metrics.decisions["mode"].inc()
                    await publish(reevaluate_for_mode(open_case, topology, modes, now))
        if partition == 0:  # every partition got the switch; one of them records it
            if outcome.applied:
                await send_record(
                    names.modes, message.area_code.encode(), message.model_dump_json().encode()
                )
            await publish_outcome(outcome)
        return
    if isinstance(message, AbsorbReports):
        metrics.decisions["absorb"].inc()
        decision = absorb_reports(message, book.case(message.case_id), now)
    else:
        if book.applied(message.command_id):
            return  # a redelivered command: its events and outcome are out already
        case = book.case(message.case_id)
        metrics.decisions["command"].inc()
        decision = decide_command(
            message, case, topology, modes, now, book.false_alarms(case.device_id if case else None)
        )
        if decision.absorb is not None:
            # the surviving case lives where its correlation key sends it; the API names it
            target = book.case(decision.absorb.case_id)
            into_key = target.correlation_key if target else None
            if into_key is None and isinstance(message, MergeCase):
                into_key = message.into_correlation_key
            await send_record(
                names.case_control,
                (into_key or "").encode(),
                decision.absorb.model_dump_json().encode(),
            )
    # The outcome first: a worker that dies after it and before the events re-decides the
    # redelivered command (its events are not in the book) and sends both again, while one that
    # died after the events would skip the command as applied and never send its outcome.
    await publish_outcome(decision.outcome)
    await publish(CaseChange(decision.events, decision.state))


@app.agent(case_work_topic)
async def cases(stream: Any) -> None:
    """Incidents and control messages → case events, decided against the case book."""
    async for event in stream.events():
        message = event.message
        value: bytes = event.value if isinstance(event.value, bytes) else bytes(event.value or b"")
        incident: Incident | None = None
        try:
            await ensure_topology()
            if needs_rebuild:
                await rebuild()
            if message.topic == names.incidents:
                incident = Incident.model_validate_json(value)
                await take_incident(incident, message.key.decode() if message.key else "")
            else:
                control = CONTROL_ADAPTER.validate_json(value)
                await take_control(control, message.partition, record_time(message))
        except Exception as exc:  # unroutable, or a bug: dead-letter and go on
            if not isinstance(exc, UnroutableError):
                log.exception("case decision failed at %s[%s]", message.topic, message.partition)
            origin = (
                incident.origin
                if incident
                else Origin(topic=message.topic, partition=message.partition, offset=message.offset)
            )
            await send_dead_letter(
                dead_letter_for_exception(exc, value, origin, record_time(message), incident)
            )


@app.timer(interval=settings.tick_interval_s, on_leader=True)
async def tick() -> None:
    """The wall clock, delivered to every case partition (unless replays drive time)."""
    if settings.clock != "wall":
        return
    value = Tick(now=wall_clock()).model_dump_json().encode()
    for partition in range(settings.topic_partitions):
        await send_record(names.case_control, None, value, partition=partition)


@app.timer(interval=LAG_INTERVAL_S)
async def measure_lag() -> None:
    """The consumer lag per partition, for the metrics (in the loop, where the consumer is)."""
    try:
        # Faust's own record of the group's committed offsets, read from the broker when
        # partitions are assigned and moved at each commit (faust-streaming is pinned)
        lag = consumer_lag(app.consumer, cast(Any, app.consumer)._committed_offset)
    except Exception as exc:  # not started, or partitions moving: the next turn measures
        log.debug("consumer lag not measured: %r", exc)
        return
    metrics.set_lag(lag)
