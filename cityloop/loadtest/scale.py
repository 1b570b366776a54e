"""`cityloop bench --scale`: the worker's restart-to-ready time and memory, and the read model's
rebuild rate, over histories of a city's size, each on a fresh embedded broker.

A history of N source events is written straight to the case-event topic, as the worker would
have written it: real cases of the topology (opened and dispatched by the worker's own handlers,
accepted, resolved and closed by its own commands) are the templates, stamped again with new
case ids, report keys and times, about 60,000 source events a day (a city: 1M is about 17
days), each case on the partition of its correlation key. All cases close but the newest few
percent, which a city has still in hand.

Then, for each size: a worker starts with no snapshot (`cold_ready_s`: it folds each partition's
whole history, retiring what is finished into its archive) and is stopped once it has written a
snapshot of every partition; a second worker starts (`ready_s`, `worker_rss_mb`: the snapshot and
the tail after it). Ready means every case partition loaded: a Tick on each partition of the
case-control topic makes the worker load it (it logs "case partition N: ... in X s"). Then
`projection rebuild` folds the whole topic into a fresh SQLite read model, and `cityloop audit`
checks that model against the topics (`audit_s`, `audit_peak_rss_mb`: the audit's memory must
not grow with history either).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from heapq import heappop, heappush
from pathlib import Path
from typing import Any

from rich.console import Console

from cityloop.broker import EmbeddedBroker, free_port
from cityloop.contracts import (
    AcceptCase,
    CaseDispatched,
    CaseEvent,
    CaseOpened,
    CloseCase,
    DuplicateReceived,
    Incident,
    Mode,
    ReportAttached,
    ResolveCase,
    Tick,
    VerifyCase,
    wire_bytes,
)
from cityloop.loadtest.audited import audit_in_child
from cityloop.loadtest.generate import ScenarioConfig, generate
from cityloop.loadtest.model import DecisionModel, correlated
from cityloop.settings import Settings
from handlers.case import case_event_id
from handlers.lifecycle import decide_command
from handlers.partition import decision_headers, partition_for
from streams.clients import async_producer
from streams.topics import ensure_topics, topics_for
from topology import Topology, load_topology

console = Console(stderr=True)

SIZES = (10_000, 100_000, 1_000_000)
EVENTS_PER_DAY = 60_000
"""Source events a day: a city of Chengdu's size (issue #15)."""
OPEN_SHARE = 0.03
"""The newest cases, by their share of the source events, that are still being worked on."""
HISTORY_START = datetime(2026, 11, 1, tzinfo=UTC)
READY_TIMEOUT_S = 1800.0
"""How long a worker may take to load every partition (a cold fold of 1M events takes minutes)."""
LOADED = re.compile(r"case partition (\d+): (\d+) cases in memory, (\d+) case events read")
SNAPSHOT = re.compile(r"case partition (\d+) snapshot: (\d+) bytes")


@dataclass
class Template:
    """One real case's events (opened and dispatched, then its lifecycle), and its incident."""

    incident: Incident
    events: list[CaseEvent]
    """CaseOpened, CaseDispatched, CaseAccepted, CaseResolved, CaseVerified, CaseClosed."""


@dataclass
class History:
    """What was written to the case-event topic."""

    source_events: int = 0
    cases: int = 0
    open_cases: int = 0
    case_events: int = 0
    ends_at: datetime = HISTORY_START
    case_ids: set[str] = field(default_factory=set)
    correlation_keys: dict[int, str] = field(default_factory=dict)
    """One correlation key of the history per partition: where the probes go."""
    probe: Incident | None = None
    """A real incident of the topology, which the probes copy."""


@dataclass
class ScaleRow:
    events: int
    ready_s: float
    worker_rss_mb: float
    rebuild_events_per_s: float
    cold_ready_s: float
    cold_rss_mb: float
    cold_peak_rss_mb: float
    cases: int
    open_cases: int
    case_events: int
    history_days: float
    cases_in_memory: int
    tail_events: int
    snapshot_bytes: int
    archived_cases: int
    rebuild_s: float
    read_model_cases: int
    cases_missing_from_read_model: int
    write_s: float
    audit_s: float
    audit_peak_rss_mb: float
    audit_holds: bool


# --- the history -----------------------------------------------------------------------------


def templates(topology: Topology, seed: int, wanted: int = 300) -> list[Template]:
    """Real cases of `topology`: the generator's reports through the worker's own intake and
    correlation, then accepted, resolved, verified and closed by its own command decisions."""
    stream = generate(
        topology,
        ScenarioConfig(
            minutes=max(10.0, wanted / 30), rate=1.0, seed=seed, storm=False, gas_leak=False
        ),
    )
    model = DecisionModel(topology)
    found: list[Template] = []
    for incident, decision in correlated(model, stream.records):
        opened = [type(event) for event in decision.events]
        if opened != [CaseOpened, CaseDispatched] or decision.state is None:
            continue
        lifecycle = _lifecycle(decision.state, topology, model.modes, incident.received_at)
        if lifecycle:
            found.append(Template(incident, [*decision.events, *lifecycle]))
        if len(found) >= wanted:
            break
    if not found:
        raise RuntimeError("the generator gave no case that opens, dispatches and closes")
    return found


def _lifecycle(
    state: Any, topology: Topology, modes: Mapping[str, Mode], now: datetime
) -> list[Any]:
    """Accept, resolve, verify and close the case by commands, as a department and its centre do."""
    assignment = state.assignment
    if assignment is None:
        return []
    department = f"dept:{assignment.lead_department}"
    centre = assignment.coordinating_centre or f"centre:{topology.city}"
    events: list[Any] = []
    steps: list[Any] = [
        AcceptCase(command_id="t-accept", case_id=state.case_id, actor=department, issued_at=now),
        ResolveCase(
            command_id="t-resolve",
            case_id=state.case_id,
            actor=department,
            resolution="done",
            issued_at=now,
        ),
        VerifyCase(
            command_id="t-verify",
            case_id=state.case_id,
            actor=centre,
            satisfied=True,
            issued_at=now,
        ),
        CloseCase(
            command_id="t-close", case_id=state.case_id, actor=centre, reason="done", issued_at=now
        ),
    ]
    for command in steps:
        decision = decide_command(command, state, topology, modes, now)
        if not decision.outcome.applied:
            return []
        events += decision.events
        state = decision.state
    return events


def _case_id(moment: datetime, number: int, seed: int) -> str:
    """The worker's form of a case id (handlers.correlate.case_id_for), from a counter."""
    digest = hashlib.blake2b(f"scale:{seed}:{number}".encode(), digest_size=6).hexdigest()
    return f"CL-{moment.year}{moment.month:02d}{moment.day:02d}-{digest}"


def _case(
    template: Template,
    case_id: str,
    opened_at: datetime,
    reports: int,
    duplicates: int,
    open_at_stage: int | None,
    rng: random.Random,
) -> list[tuple[datetime, list[CaseEvent]]]:
    """One case's decisions, each with its time: the template stamped again."""
    opened, dispatched, *lifecycle = template.events
    assert isinstance(opened, CaseOpened)  # noqa: S101 - a template starts so
    assert isinstance(dispatched, CaseDispatched)  # noqa: S101
    shift = opened_at - opened.occurred_at
    first = opened.first_report
    version = 0
    decisions: list[tuple[datetime, list[CaseEvent]]] = []

    def stamp(event: Any, moment: datetime, caused_by: str | None = None, **changes: Any) -> Any:
        """The event as this case's next; a command's event gets a command id of its own."""
        nonlocal version
        version += 1
        return event.model_copy(
            update={
                "event_id": case_event_id(case_id, version),
                "case_id": case_id,
                "version": version,
                "occurred_at": moment,
                "caused_by": caused_by or f"scale-command:{case_id}:{version}",
                **changes,
            }
        )

    def report(moment: datetime, number: int) -> Any:
        key = f"scale:{case_id}:{number}"
        return first.model_copy(
            update={
                "incident_id": f"inc-{case_id}-{number}",
                "idempotency_key": key,
                "occurred_at": moment - timedelta(seconds=rng.uniform(5, 120)),
                "received_at": moment,
                "origin": None,
            }
        )

    first_report = report(opened_at, 0)
    decisions.append(
        (
            opened_at,
            [
                stamp(
                    opened,
                    opened_at,
                    first_report=first_report,
                    caused_by=first_report.idempotency_key,
                ),
                stamp(
                    dispatched,
                    opened_at,
                    caused_by=first_report.idempotency_key,
                    accept_deadline=dispatched.accept_deadline + shift
                    if dispatched.accept_deadline
                    else None,
                    resolve_deadline=dispatched.resolve_deadline + shift
                    if dispatched.resolve_deadline
                    else None,
                ),
            ],
        )
    )
    moment = opened_at
    keys = [first_report.idempotency_key]
    for number in range(1, reports):
        moment += timedelta(minutes=rng.uniform(0.5, 10))
        attached = report(moment, number)
        keys.append(attached.idempotency_key)
        decisions.append(
            (
                moment,
                [
                    stamp(
                        ReportAttached(
                            event_id="",
                            case_id=case_id,
                            version=1,
                            occurred_at=moment,
                            report=attached,
                        ),
                        moment,
                        caused_by=attached.idempotency_key,
                    )
                ],
            )
        )
    for _ in range(duplicates):
        moment += timedelta(minutes=rng.uniform(0.1, 5))
        key = rng.choice(keys)
        decisions.append(
            (
                moment,
                [
                    stamp(
                        DuplicateReceived(
                            event_id="",
                            case_id=case_id,
                            version=1,
                            occurred_at=moment,
                            idempotency_key=key,
                        ),
                        moment,
                        caused_by=key,
                    )
                ],
            )
        )
    gaps = (rng.uniform(2, 30), rng.uniform(10, 180), rng.uniform(5, 60), rng.uniform(1, 30))
    stages = lifecycle if open_at_stage is None else lifecycle[:open_at_stage]
    for index, event in enumerate(stages):
        moment += timedelta(minutes=gaps[min(index, len(gaps) - 1)])
        decisions.append((moment, [stamp(event, moment)]))
    return decisions


def history_decisions(
    topology: Topology, events: int, seed: int, partitions: int, history: History
) -> Iterator[tuple[int, list[CaseEvent]]]:
    """The decisions of a history of about `events` source events, in the order of their times,
    each with the partition of its case. Fills `history` as it goes."""
    rng = random.Random(seed)  # noqa: S311 - a repeatable history, not a secret
    pool = templates(topology, seed)
    history.probe = pool[0].incident
    pending: list[tuple[datetime, int, int, list[CaseEvent]]] = []
    order = 0
    moment = HISTORY_START
    spacing = 86_400 / EVENTS_PER_DAY
    while history.source_events < events:
        template = rng.choice(pool)
        fate = rng.random()
        reports = 1 if fate < 0.6 else 2 if fate < 0.8 else 3 if fate < 0.9 else rng.randint(4, 6)
        duplicates = 1 if rng.random() < 0.05 else 0
        history.source_events += reports + duplicates
        still_open = history.source_events >= events * (1 - OPEN_SHARE)
        moment += timedelta(seconds=rng.expovariate(1 / (spacing * (reports + duplicates))))
        case_id = _case_id(moment, history.cases, seed)
        opened = template.events[0]
        assert isinstance(opened, CaseOpened)  # noqa: S101 - a template starts so
        partition = partition_for(opened.correlation_key, partitions)
        history.correlation_keys.setdefault(partition, opened.correlation_key)
        stage = rng.randint(0, 2) if still_open else None
        for at, decision in _case(template, case_id, moment, reports, duplicates, stage, rng):
            heappush(pending, (at, order, partition, decision))
            order += 1
        history.cases += 1
        history.open_cases += still_open
        history.case_ids.add(case_id)
        while pending and pending[0][0] <= moment:
            at, _, number, decision = heappop(pending)
            history.ends_at = max(history.ends_at, at)
            yield number, decision
    while pending:
        at, _, number, decision = heappop(pending)
        history.ends_at = max(history.ends_at, at)
        yield number, decision


async def write_history(settings: Settings, topology: Topology, events: int, seed: int) -> History:
    """Write the history's case events to the case-event topic, as the worker writes them."""
    history = History()
    producer = async_producer(settings, linger_ms=20, max_batch_size=512 * 1024, acks=1)
    await producer.start()
    topic = topics_for(settings).case_events
    try:
        decisions = history_decisions(topology, events, seed, settings.topic_partitions, history)
        for number, decision in decisions:
            size = len(decision)
            for index, event in enumerate(decision, start=1):
                await producer.send(
                    topic,
                    key=event.case_id.encode(),
                    value=wire_bytes(event),
                    partition=number,
                    headers=decision_headers(index, size),
                )
            history.case_events += size
        await producer.flush()
    finally:
        await producer.stop()
    return history


# --- the worker --------------------------------------------------------------------------------


@dataclass
class WorkerRun:
    ready_s: float
    rss_mb: float
    peak_rss_mb: float
    cases_in_memory: int
    events_read: int
    snapshot_bytes: int


def _status_mb(pid: int, field_name: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _worker_env(settings: Settings, data_dir: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "CITYLOOP_KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "CITYLOOP_TOPIC_PREFIX": settings.topic_prefix,
        "CITYLOOP_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "CITYLOOP_DATA_DIR": str(data_dir),
        "CITYLOOP_CLOCK": "external",
        "CITYLOOP_WORKER_METRICS_PORT": "0",
        "CITYLOOP_SNAPSHOT_INTERVAL_S": "0.5",
        "CITYLOOP_FINISHED_CASE_HOURS": str(settings.finished_case_hours),
    }
    if settings.topology_file is not None:
        env["CITYLOOP_TOPOLOGY_FILE"] = str(settings.topology_file)
    return env


async def _publish_ticks(settings: Settings, now: datetime) -> None:
    producer = async_producer(settings)
    await producer.start()
    try:
        value = wire_bytes(Tick(now=now))
        for number in range(settings.topic_partitions):
            await producer.send(topics_for(settings).case_control, value=value, partition=number)
        await producer.flush()
    finally:
        await producer.stop()


async def _publish_probes(
    settings: Settings, probe: Incident, history: History, now: datetime, run: str
) -> None:
    """One new report per partition, under a correlation key of that partition: each partition
    decides something, so that a snapshot of it is due."""
    producer = async_producer(settings)
    await producer.start()
    try:
        for number, key in sorted(history.correlation_keys.items()):
            incident = probe.model_copy(
                update={
                    "incident_id": f"probe-{run}-{number}",
                    "idempotency_key": f"probe:{run}:{number}",
                    "occurred_at": now,
                    "received_at": now,
                    "origin": None,
                }
            )
            await producer.send(
                topics_for(settings).incidents,
                key=key.encode(),
                value=wire_bytes(incident),
                partition=number,
            )
        await producer.flush()
    finally:
        await producer.stop()


def _found(log: Path, pattern: re.Pattern[str], since: int) -> dict[int, tuple[int, ...]]:
    text = log.read_text(errors="replace")[since:] if log.exists() else ""
    return {
        int(match.group(1)): tuple(int(group) for group in match.groups()[1:])
        for match in pattern.finditer(text)
    }


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def run_worker(
    settings: Settings,
    data_dir: Path,
    history: History,
    probe: Incident,
    run: str,
    timeout_s: float = READY_TIMEOUT_S,
) -> WorkerRun:
    """Start a worker, time it until every partition is loaded, then have it snapshot every
    partition and stop it."""
    log = data_dir / "worker.log"
    since = log.stat().st_size if log.exists() else 0
    now = history.ends_at + timedelta(minutes=1)
    await _publish_ticks(settings, now)  # waiting for the worker: it loads on the first record
    started = time.perf_counter()
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, then polled
        [sys.executable, "-m", "cityloop", "worker", "--log-level", "INFO"],
        env=_worker_env(settings, data_dir),
        stdout=open(log, "ab"),  # noqa: SIM115, ASYNC230 - the child's, closed with it
        stderr=subprocess.STDOUT,
    )
    partitions = settings.topic_partitions
    try:
        loaded: dict[int, tuple[int, ...]] = {}
        while len(loaded) < partitions:
            if process.poll() is not None:
                raise RuntimeError(f"the worker exited: {_tail(log)}")
            if time.perf_counter() - started > timeout_s:
                raise RuntimeError(f"the worker did not load every partition: {_tail(log)}")
            await asyncio.sleep(0.05)
            loaded = _found(log, LOADED, since)
        ready_s = time.perf_counter() - started
        rss = _status_mb(process.pid, "VmRSS")
        # a decision on each partition after the snapshot interval: a snapshot is due
        snapshots: dict[int, tuple[int, ...]] = {}
        await asyncio.sleep(1.0)
        await _publish_probes(settings, probe, history, now, run)
        deadline = time.perf_counter() + 120
        while len(snapshots) < partitions and time.perf_counter() < deadline:
            await asyncio.sleep(1.0)
            snapshots = _found(log, SNAPSHOT, since)
            if len(snapshots) < partitions:
                await _publish_ticks(settings, now)
        if len(snapshots) < partitions:
            raise RuntimeError(f"the worker snapshot {sorted(snapshots)} only: {_tail(log)}")
        peak = _status_mb(process.pid, "VmHWM")
    finally:
        _stop(process)
    return WorkerRun(
        ready_s=ready_s,
        rss_mb=rss,
        peak_rss_mb=peak,
        cases_in_memory=sum(found[0] for found in loaded.values()),
        events_read=sum(found[1] for found in loaded.values()),
        snapshot_bytes=sum(found[0] for found in snapshots.values()),
    )


def _tail(log: Path, size: int = 3000) -> str:
    return log.read_text(errors="replace")[-size:] if log.exists() else "(no log)"


def _archived(data_dir: Path, settings: Settings) -> int:
    total = 0
    for path in (data_dir / "worker" / settings.topic_prefix).glob("partition-*.sqlite"):
        with sqlite3.connect(path) as db:
            total += int(db.execute("SELECT count(*) FROM archive").fetchone()[0])
    return total


# --- the read model ----------------------------------------------------------------------------


async def rebuild_read_model(settings: Settings, database: Path) -> float:
    """`projection rebuild` into a fresh SQLite file; its wall seconds."""
    from api.projection import rebuild

    own = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{database}"})
    started = time.perf_counter()
    await rebuild(own)
    return time.perf_counter() - started


def read_model_cases(database: Path, written: set[str]) -> tuple[int, int]:
    """How many cases the read model holds, and how many of those written it lacks."""
    with sqlite3.connect(database) as db:
        held = {row[0] for row in db.execute("SELECT case_id FROM cases")}
    return len(held), len(written - held)


# --- one size, and all -------------------------------------------------------------------------


async def measure(
    base: Settings, topology: Topology, events: int, seed: int, scratch: Path, row: int = 0
) -> ScaleRow:
    """One size on a fresh embedded broker (a data directory and topics of its own)."""
    run = f"scale{row}-{events}"
    data_dir = scratch / run
    data_dir.mkdir(parents=True, exist_ok=True)
    with EmbeddedBroker(port=free_port()) as broker:
        settings = base.model_copy(
            update={"kafka_bootstrap_servers": broker.bootstrap, "topic_prefix": run}
        )
        await asyncio.to_thread(ensure_topics, settings)
        console.print(f"[bold]{events:,} source events[/]: writing the history")
        started = time.perf_counter()
        history = await write_history(settings, topology, events, seed)
        write_s = time.perf_counter() - started
        days = (history.ends_at - HISTORY_START) / timedelta(days=1)
        console.print(
            f"  {history.cases:,} cases ({history.open_cases:,} open), "
            f"{history.case_events:,} case events over {days:.1f} days, in {write_s:.0f}s"
        )
        probe = history.probe
        assert probe is not None  # noqa: S101 - the history names one
        cold = await run_worker(settings, data_dir, history, probe, f"{run}-cold")
        console.print(f"  cold start: ready in {cold.ready_s:.1f}s, {cold.rss_mb:.0f} MB")
        warm = await run_worker(settings, data_dir, history, probe, f"{run}-warm")
        console.print(f"  restart: ready in {warm.ready_s:.1f}s, {warm.rss_mb:.0f} MB")
        database = data_dir / "rebuilt.db"
        rebuild_s = await rebuild_read_model(settings, database)
        held, missing = read_model_cases(database, history.case_ids)
        console.print(
            f"  rebuild: {rebuild_s:.1f}s, {held:,} cases in the read model ({missing} missing)"
        )
        audit = await asyncio.to_thread(
            audit_in_child,
            {
                **_worker_env(settings, data_dir),
                "CITYLOOP_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
            },
            0,
            data_dir,
        )
        verdict = audit.get("report", {})
        console.print(
            f"  audit: {audit['seconds']:.1f}s, peak {audit['peak_rss_mb']:.0f} MB, "
            f"holds {verdict.get('holds')} ({verdict.get('cases', 0):,} cases)"
        )
    return ScaleRow(
        events=history.source_events,
        ready_s=round(warm.ready_s, 2),
        worker_rss_mb=round(warm.rss_mb, 1),
        rebuild_events_per_s=round(history.case_events / rebuild_s, 1),
        cold_ready_s=round(cold.ready_s, 2),
        cold_rss_mb=round(cold.rss_mb, 1),
        cold_peak_rss_mb=round(cold.peak_rss_mb, 1),
        cases=history.cases,
        open_cases=history.open_cases,
        case_events=history.case_events,
        history_days=round(days, 2),
        cases_in_memory=warm.cases_in_memory,
        tail_events=warm.events_read,
        snapshot_bytes=warm.snapshot_bytes,
        archived_cases=_archived(data_dir, settings),
        rebuild_s=round(rebuild_s, 1),
        read_model_cases=held,
        cases_missing_from_read_model=missing,
        write_s=round(write_s, 1),
        audit_s=audit["seconds"],
        audit_peak_rss_mb=audit["peak_rss_mb"],
        audit_holds=bool(verdict.get("holds")),
    )


def run_scale(base: Settings, sizes: list[int], seed: int, scratch: Path) -> dict[str, Any]:
    """Every size, one after another; the JSON `cityloop bench --scale --json` prints."""
    topology = load_topology(base.topology_file)
    rows = [
        asyncio.run(measure(base, topology, size, seed, scratch, row))
        for row, size in enumerate(sizes)
    ]
    return {"scale": [asdict(row) for row in rows]}


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if not sizes or any(size <= 0 for size in sizes):
        raise ValueError(f"sizes must be positive numbers of events, not {text!r}")
    return sizes
