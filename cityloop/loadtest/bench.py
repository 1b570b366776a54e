"""`cityloop bench`: in one run on one broker, the ceiling of a plain aiokafka loop doing the
pipeline's work, the worker's sustained throughput, latency at fixed rates beside the raw
broker's, and two workers against one (publishing beside them, and draining a backlog);
printed, and appended to docs/benchmarks.md."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from cityloop.contracts import Origin, wire_bytes
from cityloop.loadtest.generate import ScenarioConfig, generate
from cityloop.loadtest.model import DecisionModel, run_record
from cityloop.loadtest.pacing import Pacing, percentile
from cityloop.loadtest.replay import ReplayReport, idempotency_key, positioned_observer, replay
from cityloop.loadtest.streamfile import StreamRecord
from cityloop.settings import Settings, get_settings
from streams.clients import async_consumer, async_producer
from streams.decisions import DecisionAssembler
from streams.event_loop import use_the_fastest_loop
from streams.topics import Topics, ensure_topics
from topology import Topology, load_topology

console = Console(stderr=True)
RATES = (100, 1_000, 5_000)
RAW_VALUE_BYTES = 300


@dataclass
class BenchResult:
    events: int
    ceiling: float = 0.0
    one_worker: float = 0.0
    one_worker_backlog: float = 0.0
    """One worker draining a backlog already on the topics (as after an outage), the way the
    ceiling reads its stream: nothing is published beside it."""
    two_workers: float = 0.0
    one_worker_warm_backlog: float = 0.0
    """One worker, up and in its group, draining a backlog published while it was paused."""
    two_workers_warm_backlog: float = 0.0
    """Two workers the same way: their group settled before the backlog, so the timed drain
    holds no rebalance, and no publisher shares the cores with them."""
    latency: dict[int, dict[str, float]] = field(default_factory=dict)
    raw_latency: dict[int, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def pipeline_over_ceiling(self) -> float:
        return self.one_worker / self.ceiling if self.ceiling else 0.0

    @property
    def backlog_over_ceiling(self) -> float:
        return self.one_worker_backlog / self.ceiling if self.ceiling else 0.0

    @property
    def two_over_one(self) -> float:
        return self.two_workers / self.one_worker if self.one_worker else 0.0

    @property
    def two_over_one_warm_backlog(self) -> float:
        if not self.one_worker_warm_backlog:
            return 0.0
        return self.two_workers_warm_backlog / self.one_worker_warm_backlog

    def to_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "ceiling_events_per_s": round(self.ceiling, 1),
            "one_worker_events_per_s": round(self.one_worker, 1),
            "two_workers_events_per_s": round(self.two_workers, 1),
            "pipeline_over_ceiling": round(self.pipeline_over_ceiling, 3),
            "one_worker_backlog_events_per_s": round(self.one_worker_backlog, 1),
            "backlog_over_ceiling": round(self.backlog_over_ceiling, 3),
            "two_over_one": round(self.two_over_one, 3),
            "one_worker_warm_backlog_events_per_s": round(self.one_worker_warm_backlog, 1),
            "two_workers_warm_backlog_events_per_s": round(self.two_workers_warm_backlog, 1),
            "two_over_one_warm_backlog": round(self.two_over_one_warm_backlog, 3),
            "latency_ms": {str(k): v for k, v in self.latency.items()},
            "raw_broker_latency_ms": {str(k): v for k, v in self.raw_latency.items()},
            "notes": self.notes,
        }


def _settings_for(base: Settings, prefix: str) -> Settings:
    return base.model_copy(update={"topic_prefix": prefix})


def _stream(topology: Topology, events: int, seed: int) -> list[StreamRecord]:
    """`events` records of an hour of the scenario (storm, retries and all), in time order."""
    config = ScenarioConfig(minutes=60, rate=events / 3600, seed=seed)
    return generate(topology, config).records


async def _preload(settings: Settings, records: list[StreamRecord], names: Topics) -> None:
    producer = async_producer(settings, linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    try:
        for record in records:
            assert record.source is not None  # noqa: S101 - generated records have one
            await producer.send(names.source(record.source), value=record.value, key=record.key)
        await producer.flush()
    finally:
        await producer.stop()


async def ceiling(settings: Settings, topology: Topology, records: list[StreamRecord]) -> float:
    """A plain aiokafka loop: getmany → intake → dedup and routing over dicts → case events
    sent with one batching producer. Events per second from the first record to the flush."""
    names = Topics(settings.topic_prefix)
    await asyncio.to_thread(ensure_topics, settings)
    await _preload(settings, records, names)
    consumer = async_consumer(settings, *names.sources, group_id=None, auto_offset_reset="earliest")
    producer = async_producer(settings, linger_ms=5, max_batch_size=256 * 1024)
    await consumer.start()
    await producer.start()
    model = DecisionModel.like_the_worker(topology)
    sources = names.sources
    seen = 0
    started: float | None = None
    try:
        while seen < len(records):
            batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            if started is None and batches:
                started = time.perf_counter()
            now = datetime.now(UTC)
            for messages in batches.values():
                for message in messages:
                    origin = Origin(
                        topic=message.topic, partition=message.partition, offset=message.offset
                    )
                    outcome = run_record(
                        model, message.value, sources.get(message.topic), origin, now
                    )
                    for event in outcome.events:
                        await producer.send(
                            names.case_events,
                            key=event.case_id.encode(),
                            value=wire_bytes(event),
                        )
                    seen += 1
        await producer.flush()
    finally:
        await consumer.stop()
        await producer.stop()
    return len(records) / (time.perf_counter() - (started or time.perf_counter()))


@dataclass
class Drain:
    """A worker's run through a backlog, timed by what it wrote (perf_counter seconds)."""

    first_output_at: float
    """The worker's first output arrived (start-up, topology load and group join are over)."""
    done_at: float
    """Every record was accounted for, or nothing more came for 10 s."""
    accounted: int

    @property
    def seconds(self) -> float:
        return self.done_at - self.first_output_at


async def drain(
    settings: Settings,
    expected: int,
    timeout_s: float,
    on_first: Callable[[], None] = lambda: None,
    consumer: Any | None = None,
    only: Collection[str] | None = None,
) -> Drain:
    """Watch the worker's outputs until `expected` source records are accounted for (a report
    on a case, an exact duplicate, or a dead letter) on the case-event and dead-letter topics;
    `on_first` is called when its first output (an incident, too) arrives. The outputs are read
    from the earliest offset, or from where `consumer` (started, `positioned_observer`) stands;
    either way the consumer is stopped when the drain ends.

    With `only` (idempotency keys), a report or duplicate of another record is not counted: a
    case opened before the drain names its first report in the events of reports joining it.
    A dead letter is always of a record read in the drain, so always counted."""
    names = Topics(settings.topic_prefix)

    def counted(report: dict[str, Any]) -> bool:
        return only is None or report.get("idempotency_key") in only

    if consumer is None:
        consumer = async_consumer(
            settings,
            names.incidents,
            names.case_events,
            names.dead_letters,
            group_id=None,
            auto_offset_reset="earliest",
        )
        await consumer.start()
    keys: set[str] = set()
    decisions = DecisionAssembler()  # one for the run: a decision may span two fetches
    first: float | None = None
    last = time.perf_counter()
    deadline = last + timeout_s
    try:
        while len(keys) < expected and time.perf_counter() < deadline:
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            if first is not None and not batches and time.perf_counter() - last > 10:
                break  # nothing for 10 s: what is not accounted now will not be
            for batch in batches.values():
                last = time.perf_counter()
                if first is None and batch:
                    first = last
                    on_first()
                for record in decisions.take_all(r for r in batch if r.topic != names.incidents):
                    body = json.loads(record.value)
                    if record.topic == names.dead_letters:
                        keys.add(f"dl:{body.get('origin')}")
                    for name in ("first_report", "report"):
                        if isinstance(body.get(name), dict) and counted(body[name]):
                            keys.add(body[name]["idempotency_key"] + str(body[name]["origin"]))
                    if body.get("type") == "DuplicateReceived" and counted(body):
                        keys.add(body["idempotency_key"] + str(body.get("origin")))
        return Drain(first or last, last, len(keys))
    finally:
        await consumer.stop()


async def raw_latency(settings: Settings, rate: float, seconds: float) -> dict[str, float]:
    """The broker alone at a fixed rate: produce (linger 5 ms, acks=all) → a consumer sees it."""
    topic = f"{settings.topic_prefix}.bench-raw"
    await asyncio.to_thread(_create_topic, settings, topic)
    consumer = async_consumer(
        settings, topic, group_id=None, auto_offset_reset="latest", fetch_max_wait_ms=50
    )
    await consumer.start()
    while not consumer.assignment():  # noqa: ASYNC110 - no group: assigned once metadata arrives
        await asyncio.sleep(0.05)
    await consumer.seek_to_end()
    for partition in consumer.assignment():
        await consumer.position(partition)
    producer = async_producer(settings)
    await producer.start()
    count = max(1, int(rate * seconds))
    latencies: list[float] = []
    done = asyncio.Event()

    async def receive() -> None:
        while len(latencies) < count:
            batches = await consumer.getmany(timeout_ms=200)
            now = time.time()
            for messages in batches.values():
                for message in messages:
                    sent_at = float(message.value[:20])
                    if sent_at >= start:  # not an older run's tail re-read from the end offset
                        latencies.append((now - sent_at) * 1000)
        done.set()

    padding = b" " * RAW_VALUE_BYTES
    start = time.time()
    receiver = asyncio.create_task(receive())
    for index in range(count):
        wait = start + index / rate - time.time()
        if wait > 0.001:
            await asyncio.sleep(wait)
        await producer.send(topic, value=f"{time.time():<20.6f}".encode() + padding)
    await producer.flush()
    try:
        await asyncio.wait_for(done.wait(), timeout=30)
    except TimeoutError:
        pass
    receiver.cancel()
    await asyncio.gather(receiver, return_exceptions=True)
    await producer.stop()
    await consumer.stop()
    values = sorted(latencies)
    return {
        "count": float(len(values)),
        "p50_ms": round(percentile(values, 0.5), 1),
        "p99_ms": round(percentile(values, 0.99), 1),
        "max_ms": round(values[-1], 1) if values else 0.0,
    }


def _create_topic(settings: Settings, topic: str) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    try:
        admin.create_topics([NewTopic(topic, settings.topic_partitions, 1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def _exit(signum: int, frame: object) -> None:
    sys.exit(128 + signum)


@contextmanager
def workers(
    settings: Settings, count: int, data_dir: Path, code: Path | None = None
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` worker processes in one consumer group, as `cityloop worker` runs them; with
    `code`, from that source tree (they start in it: `python -m` puts the working directory
    first on the path, before PYTHONPATH).

    They are stopped when the block ends, also when the bench is stopped with SIGTERM (as
    `timeout` does): Python's default for SIGTERM ends the process without running this
    block's cleanup, and a worker left behind spins against its vanished broker, taking CPU
    from every measurement after it."""
    processes = []
    for number in range(count):
        own_dir = data_dir / f"{settings.topic_prefix}-{number}"
        own_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "CITYLOOP_KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
            "CITYLOOP_TOPIC_PREFIX": settings.topic_prefix,
            "CITYLOOP_DATA_DIR": str(own_dir),
            "CITYLOOP_WORKER_METRICS_PORT": "0",  # several workers: no one port for all
        }
        if settings.topology_file is not None:
            env["CITYLOOP_TOPOLOGY_FILE"] = str(settings.topology_file)
        if code is not None:
            env["PYTHONPATH"] = str(code)
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "cityloop", "worker"],
                env=env,
                cwd=code,
                stdout=open(own_dir / "worker.log", "ab"),  # noqa: SIM115
                stderr=subprocess.STDOUT,
            )
        )
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield processes
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


async def _warm_up(settings: Settings, topology: Topology, seed: int) -> None:
    """Until the worker answers: its group join and topology load are not what we measure."""
    records = _stream(topology, 30, seed)[:30]
    report = await replay(records, settings, Pacing(), settle_s=90, timeout_s=120)
    if report.accounted < len(records):
        raise RuntimeError(f"the worker did not come up: {report.accounted}/{len(records)}")


def _worker_group(settings: Settings) -> str:
    """The consumer group of `cityloop worker`: its Faust app id."""
    return f"{settings.topic_prefix}-worker"


async def _stable_members(settings: Settings) -> frozenset[str] | None:
    """The member ids of the workers' group while it is stable (every member has its partitions:
    the coordinator is not between a join and the assignment), None while it is not.

    Asked with aiokafka's admin client: kafka-python's `describe_groups` always asks for the
    authorized operations, and cannot decode the embedded broker's answer to that."""
    from aiokafka.admin import AIOKafkaAdminClient

    group = _worker_group(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    for response in responses:
        # (error_code, group_id, state, protocol_type, protocol, members, ...) in every version;
        # a member's id comes first in its tuple
        for error_code, group_id, state, _type, _protocol, members, *_ in response.groups:
            if group_id == group and error_code == 0 and state == "Stable":
                return frozenset(member[0] for member in members)
    return None


async def _settled_group(settings: Settings, count: int, timeout_s: float = 120) -> frozenset[str]:
    """Wait until all `count` workers are in their group, stable; their member ids."""
    from aiokafka.errors import KafkaError

    deadline = time.monotonic() + timeout_s
    members: frozenset[str] | None = None
    while time.monotonic() < deadline:
        try:
            members = await _stable_members(settings)
        except KafkaError:  # no coordinator for a group not formed yet
            members = None
        if members is not None and len(members) == count:
            return members
        await asyncio.sleep(0.5)
    raise RuntimeError(f"{count} workers did not settle in their group: {members}")


@contextmanager
def _paused(processes: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    """The workers stopped (SIGSTOP) for the block: what is published meanwhile waits for them
    as a backlog does, and the publisher does not share the cores with them. Kept short (a
    backlog of 10,000 records is on the topics in well under a second) against the group's
    session timeout: a member that misses its heartbeats for that long is put out of it."""
    for process in processes:
        process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        for process in processes:
            process.send_signal(signal.SIGCONT)


async def _backlog_throughput(
    settings: Settings,
    topology: Topology,
    records: list[StreamRecord],
    count: int,
    data_dir: Path,
    warm_up_seed: int,
) -> tuple[float, list[str]]:
    """`count` warm workers draining `records` published as a backlog: events per second from
    their first output to the last record accounted for, and what went wrong (for the notes).

    The timed drain must hold no group rebalance (one in a drain of seconds would be most of
    it), so the workers first settle in their group (stable, all `count` members) and then
    answer a warm-up, which shows each has started on its partitions. They are paused while
    the backlog is published and let go together; the drain reads only what is written after
    the pause began, and counts only the backlog's records (not the warm-up's first reports of
    cases the backlog joins). The group's members are compared after the drain: a member that
    joined, left or was put out of the group in between has a new id or none."""
    await asyncio.to_thread(ensure_topics, settings)
    backlog = {key for record in records if (key := idempotency_key(record)) is not None}
    problems: list[str] = []
    names = Topics(settings.topic_prefix)
    with workers(settings, count, data_dir) as processes:
        await _settled_group(settings, count)
        await _warm_up(settings, topology, warm_up_seed)
        members = await _settled_group(settings, count)
        with _paused(processes):
            # the drain sees only what is written from here (not the warm-up's outputs)
            outputs = await positioned_observer(
                settings, [names.incidents, names.case_events, names.dead_letters]
            )
            try:
                await _preload(settings, records, names)
            except BaseException:
                await outputs.stop()
                raise
        drained = await drain(settings, len(records), 300, consumer=outputs, only=backlog)
        if await _stable_members(settings) != members:
            problems.append(f"the group of {count} changed during the backlog's drain")
    if drained.accounted < len(records):
        problems.append(f"{len(records) - drained.accounted} of the backlog unaccounted")
    return (len(records) / drained.seconds if drained.seconds else 0.0), problems


async def _pipeline_throughput(
    settings: Settings, topology: Topology, events: int, seed: int, timeout_s: float
) -> ReplayReport:
    await _warm_up(settings, topology, seed + 500)
    records = _stream(topology, events, seed)
    return await replay(records, settings, Pacing(), settle_s=15, timeout_s=timeout_s)


async def run_bench(
    base: Settings, events: int, rate_seconds: float, seed: int, data_dir: Path
) -> BenchResult:
    topology = load_topology(base.topology_file)
    run = uuid.uuid4().hex[:6]
    result = BenchResult(events=events)

    console.print(f"[bold]ceiling[/]: plain aiokafka loop over {events} events")
    ceiling_settings = _settings_for(base, f"bench-{run}-ceiling")
    result.ceiling = await ceiling(ceiling_settings, topology, _stream(topology, events, seed))
    console.print(f"  {result.ceiling:,.0f} events/s")

    one = _settings_for(base, f"bench-{run}-one")
    await asyncio.to_thread(ensure_topics, one)
    with workers(one, 1, data_dir):
        console.print(f"[bold]one worker[/]: {events} events as fast as possible")
        report = await _pipeline_throughput(one, topology, events, seed + 1, 300)
        result.one_worker = report.throughput
        if report.unaccounted:
            result.notes.append(f"one worker left {report.unaccounted} unaccounted")
        console.print(f"  {report.throughput:,.0f} events/s; latency {report.latency}")
        for index, rate in enumerate(RATES):
            console.print(
                f"[bold]latency at {rate}/s[/] for {rate_seconds:g} s: raw broker, then pipeline"
            )
            result.raw_latency[rate] = await raw_latency(one, rate, rate_seconds)
            records = _stream(topology, int(rate * rate_seconds), seed + 10 + index)
            at_rate = await replay(
                records, one, Pacing(rate=rate), settle_s=10, timeout_s=rate_seconds + 60
            )
            result.latency[rate] = {
                **at_rate.latency,
                "accounted": float(at_rate.accounted),
                "sent": float(at_rate.sent),
            }
            console.print(f"  raw {result.raw_latency[rate]}; pipeline {at_rate.latency}")

    backlog = _settings_for(base, f"bench-{run}-backlog")
    await asyncio.to_thread(ensure_topics, backlog)
    records = _stream(topology, events, seed + 3)
    await _preload(backlog, records, Topics(backlog.topic_prefix))
    with workers(backlog, 1, data_dir):
        console.print(f"[bold]one worker, a backlog[/]: {events} events already on the topics")
        drained = await drain(backlog, len(records), 300)
        result.one_worker_backlog = len(records) / drained.seconds if drained.seconds else 0.0
        if drained.accounted < len(records):
            result.notes.append(f"the backlog left {len(records) - drained.accounted} unaccounted")
        console.print(f"  {result.one_worker_backlog:,.0f} events/s")

    two = _settings_for(base, f"bench-{run}-two")
    await asyncio.to_thread(ensure_topics, two)
    with workers(two, 2, data_dir):
        console.print(f"[bold]two workers[/]: {events} events as fast as possible")
        report = await _pipeline_throughput(two, topology, events, seed + 2, 300)
        result.two_workers = report.throughput
        if report.unaccounted:
            result.notes.append(f"two workers left {report.unaccounted} unaccounted")
        console.print(f"  {report.throughput:,.0f} events/s")

    # one and two workers on the same backlog by the same procedure: scale-out like for like
    records = _stream(topology, events, seed + 4)
    console.print(f"[bold]one warm worker, a backlog[/]: {events} events published while paused")
    one_warm = _settings_for(base, f"bench-{run}-one-warm-backlog")
    result.one_worker_warm_backlog, problems = await _backlog_throughput(
        one_warm, topology, records, 1, data_dir, seed + 504
    )
    result.notes += [f"one warm worker: {problem}" for problem in problems]
    console.print(f"  {result.one_worker_warm_backlog:,.0f} events/s")

    console.print(f"[bold]two warm workers, a backlog[/]: {events} events published while paused")
    two_warm = _settings_for(base, f"bench-{run}-two-warm-backlog")
    result.two_workers_warm_backlog, problems = await _backlog_throughput(
        two_warm, topology, records, 2, data_dir, seed + 504
    )
    result.notes += [f"two warm workers: {problem}" for problem in problems]
    console.print(
        f"  {result.two_workers_warm_backlog:,.0f} events/s "
        f"(two / one {result.two_over_one_warm_backlog:.2f})"
    )
    return result


def markdown_row(result: BenchResult, when: datetime, mode: str) -> str:
    def p99(table: dict[int, dict[str, float]], rate: int) -> str:
        return f"{table[rate]['p99_ms']:,.0f}" if rate in table else "–"

    latencies = " | ".join(
        f"{p99(result.latency, rate)} / {p99(result.raw_latency, rate)}" for rate in RATES
    )
    return (
        f"| {when:%Y-%m-%d %H:%M} | {mode} | {result.events:,} | {result.ceiling:,.0f} | "
        f"{result.one_worker:,.0f} | {result.pipeline_over_ceiling:.3f} | "
        f"{result.two_workers:,.0f} | {result.two_over_one:.2f} | {latencies} | "
        f"{result.one_worker_backlog:,.0f} ({result.backlog_over_ceiling:.3f}) | "
        f"{result.one_worker_warm_backlog:,.0f} | "
        f"{result.two_workers_warm_backlog:,.0f} ({result.two_over_one_warm_backlog:.2f}) |"
    )


TABLE_HEADER = (
    "| run | mode | events | ceiling (ev/s) | 1 worker (ev/s) | pipeline / ceiling | "
    "2 workers (ev/s) | 2 / 1 | p99 ms at 100/s: pipeline / raw | at 1,000/s | at 5,000/s | "
    "1 worker, a backlog (ev/s, / ceiling) | 1 warm worker, a backlog (ev/s) | "
    "2 warm workers, a backlog (ev/s, 2 / 1) |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
)
SECTION_TITLE = "## Load testing: `cityloop bench`"


def append_row(docs: Path, row: str) -> None:
    """Append to the bench table of the Load testing section (creating both if missing)."""
    text = docs.read_text(encoding="utf-8") if docs.exists() else "# Benchmarks\n"
    marker = "<!-- cityloop bench rows: appended by `cityloop bench` -->"
    if marker not in text:
        if SECTION_TITLE not in text:
            text = text.rstrip("\n") + f"\n\n{SECTION_TITLE}\n"
        text = text.rstrip("\n") + f"\n\n{TABLE_HEADER}{marker}\n"
    text = text.replace(marker, f"{row}\n{marker}")
    docs.write_text(text, encoding="utf-8")


def bench(
    quick: Annotated[bool, typer.Option(help="fewer events and shorter rate runs")] = False,
    events: Annotated[int | None, typer.Option(help="events per throughput run")] = None,
    rate_seconds: Annotated[float | None, typer.Option(help="seconds per fixed-rate run")] = None,
    seed: Annotated[int, typer.Option()] = 1,
    docs: Annotated[Path, typer.Option(help="where to append the row")] = Path(
        "docs/benchmarks.md"
    ),
    no_docs: Annotated[bool, typer.Option("--no-docs", help="do not append a row")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    scale: Annotated[
        bool,
        typer.Option(help="instead: restart-to-ready, worker RSS and rebuild over histories"),
    ] = False,
    sizes: Annotated[
        str, typer.Option(help="with --scale: source events of each history")
    ] = "10000,100000,1000000",
) -> None:
    """Measure ceiling, pipeline throughput, latency at fixed rates and two workers (or, with
    --scale, the worker's restart and the read model's rebuild over histories of a city)."""
    from cityloop.broker import EmbeddedBroker, free_port
    from cityloop.logs import configure_logging_for

    configure_logging_for()
    if scale:
        from cityloop.loadtest.scale import parse_sizes, run_scale

        try:
            wanted = parse_sizes(sizes)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--sizes") from exc
        with tempfile.TemporaryDirectory(prefix="cityloop-scale-") as scratch:
            figures = run_scale(get_settings(), wanted, seed, Path(scratch))
        sys.stdout.write(json.dumps(figures, indent=2 if as_json else None) + "\n")
        return
    events = events or (4_000 if quick else 15_000)
    rate_seconds = rate_seconds or (4.0 if quick else 10.0)
    base = get_settings()
    with tempfile.TemporaryDirectory(prefix="cityloop-bench-") as scratch:
        broker: EmbeddedBroker | None = None
        if base.embedded_broker:
            broker = EmbeddedBroker(port=free_port()).start()
            base = base.model_copy(update={"kafka_bootstrap_servers": broker.bootstrap})
        try:
            use_the_fastest_loop()  # the ceiling on the loop the worker runs on
            result = asyncio.run(run_bench(base, events, rate_seconds, seed, Path(scratch)))
        finally:
            if broker is not None:
                broker.stop()
    mode = "quick" if quick else "default"
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
    console.print(
        f"[bold]ceiling[/] {result.ceiling:,.0f} ev/s · [bold]one worker[/] "
        f"{result.one_worker:,.0f} ev/s (pipeline / ceiling {result.pipeline_over_ceiling:.3f})"
        f" · [bold]a backlog[/] {result.one_worker_backlog:,.0f} ev/s "
        f"({result.backlog_over_ceiling:.3f} of the ceiling)"
        f" · [bold]two workers[/] {result.two_workers:,.0f} ev/s (two / one "
        f"{result.two_over_one:.2f})"
        f" · [bold]warm workers, a backlog[/] one {result.one_worker_warm_backlog:,.0f} ev/s, two "
        f"{result.two_workers_warm_backlog:,.0f} ev/s (two / one "
        f"{result.two_over_one_warm_backlog:.2f})"
    )
    for rate in RATES:
        if rate in result.latency:
            console.print(
                f"  at {rate:,}/s p99 publish→dispatched {result.latency[rate]['p99_ms']:,.0f} ms"
                f" (raw broker p99 {result.raw_latency[rate]['p99_ms']:,.0f} ms)"
            )
    if not no_docs:
        append_row(docs, markdown_row(result, datetime.now(UTC), mode))
        console.print(f"appended a row to {docs}")
