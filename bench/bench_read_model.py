"""The read model under load: case detail and filtered case lists over 100,000 cases, on SQLite
and on PostgreSQL, each beside `GET /healthz` measured in the same run.

    .venv/bin/python bench/bench_read_model.py [--cases 100000] [--concurrency 32]
        [--requests 3000] [--database sqlite|postgres|both] [--data DIR] [--profile DIR]
        [--only TEXT] [--write-rate 200] [--projector]

Seeding: a generated Chengdu stream (the project's generator, a fixed seed; everyday reports,
without its storm, faulty-device and gas-leak scenarios) goes through the worker's handlers
(intake, the case book's correlation and routing) until it has opened `--cases` cases; a share
of them is then accepted, resolved, verified and closed by commands through the same
`decide_command` the worker uses, so statuses vary as in service.
The case events are projected straight into the database with the projector's own
`project_or_skip`, 500 at a time as the API's projector takes them from the topic, with the
state cache it keeps (what `cityloop projection rebuild` does too, 2,000 at a time); pushing
100,000 cases through broker and worker would take hours on this machine and would not change
what the read side has to do.

Then an embedded broker and `cityloop api` start on that database, as a user runs them, and
`--concurrency` clients (aiohttp) read, each request as the city's duty officer unless said:
`GET /healthz` (baseline), `GET /v1/cases/{id}` of random cases, filtered lists of 50
(status and district; category and time range; overdue as of a moment; a district duty
officer's and a department's own cases), and the assessment figures of every case
(`GET /v1/stats` over the whole period, a few requests at once). p50/p99 latency and
requests/s per row, and each row's requests/s as a share of `/healthz`'s. The rows named
"while projecting" read while case events of new cases (the stream's first ones again, under
new ids) reach the API's projector on the case-event topic at `--write-rate` a second, so
that reads and the projector's writes share the database and the process, as they do in service.

`--projector` measures the projector alone and stops: the same case events projected, 500 at a
time and with the state cache the projector keeps, into a fresh database of each kind; the
process's CPU time (the driver's thread included, so SQLite's own work too; PostgreSQL's
server works in processes of its own, which this does not count) per case event, and wall time.

`--data DIR` keeps the generated events and the SQLite file there, and the PostgreSQL
database `bench_read_model` stays: a second run with the same `--cases` and `--seed` measures
the same read model again without seeding it (the API still migrates it to the newest
revision when it starts).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pickle
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import asyncpg
from aiokafka import AIOKafkaProducer
from bench_api import SECRET, measure, token, until_ready  # run as a script: bench/ is on the path
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from api.db import create_engine, migrate, remove_sqlite_file, session_factory
from api.projection import StateCache, project_or_skip
from cityloop.broker import EmbeddedBroker, free_port
from cityloop.contracts import (
    CASE_EVENT_ADAPTER,
    AcceptCase,
    AreaLevel,
    CaseDispatched,
    CaseEvent,
    CaseOpened,
    CloseCase,
    ResolveCase,
    VerifyCase,
)
from cityloop.loadtest.generate import ScenarioConfig, generate
from cityloop.loadtest.model import DecisionModel, correlated
from cityloop.settings import Settings
from handlers.access import Role
from handlers.case import CaseStatus
from handlers.lifecycle import decide_command
from streams.topics import ensure_topics, topics_for
from topology import Topology, load_topology

POSTGRES_SERVER = os.environ.get(
    "CITYLOOP_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
RATE = 0.1
"""Events per second of scenario: about 0.8 cases per event at this rate."""
PROJECT_BATCH = 500
PROJECTING = " while projecting"
"""A row whose name ends so is read while case events of new cases reach the API's projector
on the case-event topic (`--write-rate` a second), as in service."""


# --- seeding ------------------------------------------------------------------------------


def case_events(topology: Topology, cases: int, seed: int) -> list[CaseEvent]:
    """The case events of a generated stream, in the order the worker writes them, until
    `cases` cases are open; then commands move a share of them along their lifecycle."""
    minutes = cases / 0.5 / RATE / 60  # ample: the loop stops at `cases`
    # no storms, faulty devices or gas leaks: their cases of thousands of reports cost the
    # projector the square of their size (docs/benchmarks.md, "Soak"), which is the
    # projector's figure, not the read side's
    scenario = ScenarioConfig(
        minutes=minutes, rate=RATE, seed=seed, storm=False, faulty_device=False, gas_leak=False
    )
    stream = generate(topology, scenario)
    model = DecisionModel(topology)
    events: list[CaseEvent] = []
    for _, decision in correlated(model, stream.records):
        events.extend(decision.events)
        if len(model.book.cases) >= cases:
            break
    rng = random.Random(seed)
    book, modes = model.book, model.modes
    for case_id, state in list(book.cases.items()):
        if state.status is not CaseStatus.DISPATCHED or state.assignment is None:
            continue
        fate = rng.random()
        if fate < 0.35:
            continue  # still waiting to be accepted
        department = f"dept:{state.assignment.lead_department}"
        centre = state.assignment.coordinating_centre or f"centre:{topology.city}"
        now = state.opened_at + timedelta(minutes=rng.uniform(2, 30))
        steps: list[Any] = [AcceptCase]
        if fate > 0.6:
            steps.append(ResolveCase)
        if fate > 0.8:
            steps += [VerifyCase, CloseCase]
        for step in steps:
            common = {"command_id": uuid.uuid4().hex, "case_id": case_id, "issued_at": now}
            if step is AcceptCase:
                command: Any = AcceptCase(actor=department, **common)
            elif step is ResolveCase:
                command = ResolveCase(actor=department, resolution="done", **common)
            elif step is VerifyCase:
                command = VerifyCase(actor=centre, satisfied=True, **common)
            else:
                command = CloseCase(actor=centre, reason="archived", **common)
            outcome = decide_command(command, book.cases[case_id], topology, modes, now)
            if not outcome.outcome.applied:
                break
            book.fold(outcome.events)
            events.extend(outcome.events)
            now += timedelta(minutes=rng.uniform(10, 240))
    return events


async def seed_database(database_url: str, events: Sequence[CaseEvent]) -> tuple[float, float]:
    """Project the events through the projector's own batch function, with the state cache it
    keeps, as `cityloop projection rebuild` does; returns (wall, CPU) seconds of the projecting
    (the schema's migration not counted)."""
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        sessions = session_factory(engine)
        cache = StateCache()
        started, cpu = time.perf_counter(), time.process_time()
        for start in range(0, len(events), PROJECT_BATCH):
            applied, skipped = await project_or_skip(
                sessions, events[start : start + PROJECT_BATCH], cache
            )
            if skipped:
                raise RuntimeError(f"the database refused {skipped} events")
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        await engine.dispose()


async def measure_projector(
    args: argparse.Namespace, events: Sequence[CaseEvent], data: Path
) -> dict[str, dict[str, float]]:
    """Project the events into a fresh database of each kind asked for: µs of this process's
    CPU per case event, and events/s."""
    databases = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    figures: dict[str, dict[str, float]] = {}
    for database in databases:
        if database == "sqlite":
            path = data / f"projector-{args.cases}-{args.seed}.db"
            await asyncio.to_thread(remove_sqlite_file, path)
            url = f"sqlite+aiosqlite:///{path}"
        else:
            url = await postgres_database("bench_projector", fresh=True)
        wall, cpu = await seed_database(url, events)
        figures[database] = {
            "events": len(events),
            "cpu_us_per_event": cpu / len(events) * 1e6,
            "events_per_s": len(events) / wall,
        }
        print(
            f"| {database} | {len(events):,} | {cpu / len(events) * 1e6:.0f} | "
            f"{len(events) / wall:,.0f} |"
        )
    return figures


async def seeded_cases(database_url: str) -> int:
    """How many cases the database holds already (0 when it has no schema yet)."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(text("select count(*) from cases"))).scalar_one())
    except DBAPIError:
        return 0
    finally:
        await engine.dispose()


WRITTEN_TABLES = ("case_events", "reports", "case_departments", "cases")


async def forget_written(database_url: str) -> int:
    """Delete the cases the rows "while projecting" added (`new_cases`), so the next run
    reads the seeded cases alone; how many there were."""
    engine = create_engine(database_url)
    written = r"%-w%"
    try:
        async with engine.begin() as connection:
            count = await connection.scalar(
                text("select count(*) from cases where case_id like :written"),
                {"written": written},
            )
            for table in WRITTEN_TABLES:
                await connection.execute(
                    text(f"delete from {table} where case_id like :written"),  # noqa: S608
                    {"written": written},
                )
    finally:
        await engine.dispose()
    return int(count or 0)


def asyncpg_dsn(url: str, database: str | None = None) -> str:
    """The address asyncpg itself takes for a SQLAlchemy URL (of another database, if named)."""
    plain = make_url(url).set(drivername="postgresql")
    return (plain.set(database=database) if database else plain).render_as_string(
        hide_password=False
    )


async def postgres_database(name: str, fresh: bool) -> str:
    """The PostgreSQL database of this name; made afresh (dropped first) when asked."""
    connection = await asyncpg.connect(asyncpg_dsn(POSTGRES_SERVER, "postgres"))
    try:
        exists = await connection.fetchval("select 1 from pg_database where datname = $1", name)
        if fresh or not exists:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return make_url(POSTGRES_SERVER).set(database=name).render_as_string(hide_password=False)


async def migrate_to_head(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


async def vacuum_analyze(url: str) -> None:
    """What autovacuum does in service, and this machine's PostgreSQL has switched off: without
    it, the planner of a freshly seeded database knows no statistics (it guessed 779 dispatched
    cases of 31,387) and reads a page of one status in a district by a bitmap scan of every
    case of that status, 165 ms instead of a few."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()


def load_or_make_events(topology: Topology, cases: int, seed: int, data: Path) -> list[CaseEvent]:
    cached = data / f"case-events-{cases}-{seed}.pickle"
    if cached.exists():
        events: list[CaseEvent] = pickle.loads(cached.read_bytes())  # noqa: S301 - our own file
        return events
    events = case_events(topology, cases, seed)
    cached.write_bytes(pickle.dumps(events))
    return events


# --- load ---------------------------------------------------------------------------------


def calling(
    get: Callable[[str, dict[str, str]], Awaitable[None]], path: str, headers: dict[str, str]
) -> Callable[[], Awaitable[None]]:
    return lambda: get(path, headers)


def api_env(settings: Settings, database_url: str, data_dir: str, port: int) -> dict[str, str]:
    """What `cityloop api` is started with: this broker and prefix, this database."""
    return {
        **os.environ,
        "CITYLOOP_KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "CITYLOOP_TOPIC_PREFIX": settings.topic_prefix,
        "CITYLOOP_DATABASE_URL": database_url,
        "CITYLOOP_DATA_DIR": data_dir,
        "CITYLOOP_API_PORT": str(port),
        "CITYLOOP_JWT_SECRET": SECRET,
        "CITYLOOP_CLOCK": "external",
    }


def start_api(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cityloop", "api"],
        env=env,
        stdout=open(log, "ab"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )


def workload(
    topology: Topology, events: Sequence[CaseEvent], requests: int, seed: int
) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Per row: the request paths (random but fixed by the seed) and the caller's headers."""
    rng = random.Random(seed)
    opened = [event for event in events if isinstance(event, CaseOpened)]
    case_ids = [event.case_id for event in opened]
    officer = token(Role.DUTY_OFFICER, topology.city)
    districts = sorted(
        code for code, area in topology.areas.items() if area.level is AreaLevel.DISTRICT
    )
    dispatched = [e for e in events if isinstance(e, CaseDispatched)]
    departments = sorted({e.assignment.lead_department for e in dispatched})
    categories = sorted({event.category_code for event in opened})
    first, last = opened[0].occurred_at, opened[-1].occurred_at

    def moment() -> str:
        return (first + (last - first) * rng.random()).isoformat()

    def some(paths: Callable[[], str]) -> list[str]:
        return [paths() for _ in range(requests)]

    district = rng.choice(districts)
    department = rng.choice(departments)
    return {
        "GET /healthz (baseline)": (some(lambda: "/healthz"), {}),
        "GET /v1/cases/{id}": (some(lambda: f"/v1/cases/{rng.choice(case_ids)}"), officer),
        "GET /v1/cases?status=…&area=…": (
            some(
                lambda: (
                    f"/v1/cases?limit=50&status={rng.choice(['dispatched', 'accepted'])}"
                    f"&area={rng.choice(districts)}"
                )
            ),
            officer,
        ),
        "GET /v1/cases?category=…&opened_since=…": (
            some(
                lambda: (
                    "/v1/cases?limit=50&category="
                    f"{rng.choice(categories)}&opened_since={quote(moment())}"
                )
            ),
            officer,
        ),
        "GET /v1/cases?overdue=true&as_of=…": (
            some(lambda: f"/v1/cases?limit=50&overdue=true&as_of={quote(moment())}"),
            officer,
        ),
        f"GET /v1/cases?status=dispatched as duty officer {district}": (
            some(lambda: "/v1/cases?limit=50&status=dispatched"),
            token(Role.DUTY_OFFICER, district),
        ),
        f"GET /v1/cases as department {department}": (
            some(lambda: "/v1/cases?limit=50"),
            token(Role.DEPARTMENT, department),
        ),
        # a whole month's figures read every case: a few, all at once, to show what one costs
        "GET /v1/stats of every case": (
            [
                f"/v1/stats?since={quote(first.isoformat())}"
                f"&until={quote((last + timedelta(seconds=1)).isoformat())}"
                for _ in range(max(4, requests // 500))
            ],
            officer,
        ),
        f"GET /v1/cases/{{id}}{PROJECTING}": (
            some(lambda: f"/v1/cases/{rng.choice(case_ids)}"),
            officer,
        ),
        f"GET /v1/cases?status=…&area=…{PROJECTING}": (
            some(
                lambda: (
                    f"/v1/cases?limit=50&status={rng.choice(['dispatched', 'accepted'])}"
                    f"&area={rng.choice(districts)}"
                )
            ),
            officer,
        ),
    }


def new_cases(events: Sequence[CaseEvent], round_: int) -> list[CaseEvent]:
    """The events again, of cases no database has: the ids made new for this round."""
    return [
        event.model_copy(
            update={
                "case_id": f"{event.case_id}-w{round_}",
                "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"w{round_}/{event.event_id}")),
            }
        )
        for event in events
        if event.type != "CaseMerged"  # names a second case, which this round does not have
    ]


async def publish_meanwhile(
    bootstrap: str, topic: str, events: Sequence[CaseEvent], rate: float, stop: asyncio.Event
) -> float:
    """Publish the events at `rate` a second, keyed by case as the worker writes them, until
    stopped (or out of events); the rate reached."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    sent, started = 0, time.perf_counter()
    try:
        while not stop.is_set() and sent < len(events):
            due = min(len(events), int((time.perf_counter() - started) * rate))
            for event in events[sent:due]:
                await producer.send(
                    topic, CASE_EVENT_ADAPTER.dump_json(event), key=event.case_id.encode()
                )
            sent = max(sent, due)
            await asyncio.sleep(0.02)
        await producer.flush()
    finally:
        await producer.stop()
    return sent / (time.perf_counter() - started)


async def read_load(
    database_url: str,
    rows: dict[str, tuple[list[str], dict[str, str]]],
    concurrency: int,
    profile: Path | None,
    writes: Sequence[CaseEvent],
    write_rate: float,
) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(port=free_port()) as broker:
        port = free_port()
        settings = Settings(kafka_bootstrap_servers=broker.bootstrap, topic_prefix="bench-read")
        await asyncio.to_thread(ensure_topics, settings)  # before the projector subscribes
        env = api_env(settings, database_url, tmp, port)
        api = start_api(env, Path(tmp) / "api.log")
        try:
            connector = aiohttp.TCPConnector(limit=concurrency)
            timeout = aiohttp.ClientTimeout(total=120)
            async with aiohttp.ClientSession(
                f"http://127.0.0.1:{port}", connector=connector, timeout=timeout
            ) as http:
                if not await until_ready(http):
                    raise RuntimeError((Path(tmp) / "api.log").read_text()[-3000:])

                async def get(path: str, headers: dict[str, str]) -> None:
                    async with http.get(path, headers=headers) as response:
                        body = await response.read()
                        if response.status != 200:
                            raise RuntimeError(f"{path}: {response.status} {body[:300]!r}")

                figures: dict[str, dict[str, float]] = {}
                for name, (paths, headers) in rows.items():
                    # warm up: connections, code paths and the database's cache
                    warm = paths[: max(concurrency, len(paths) // 10)]
                    await measure([calling(get, p, headers) for p in warm], concurrency)
                    spy = None
                    if profile is not None and not name.startswith("GET /healthz"):
                        await asyncio.to_thread(profile.mkdir, parents=True, exist_ok=True)
                        out = profile / (
                            "".join(c if c.isalnum() else "_" for c in name)[:60] + ".txt"
                        )
                        spy = await asyncio.create_subprocess_exec(
                            str(Path(sys.executable).with_name("py-spy")),
                            *("record", "-p", str(api.pid), "-f", "raw", "-d", "4"),
                            *("-r", "200", "-o", str(out)),
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                        )
                    stop = asyncio.Event()
                    publishing = None
                    if name.endswith(PROJECTING):
                        round_ = len(figures)
                        publishing = asyncio.create_task(
                            publish_meanwhile(
                                broker.bootstrap,
                                topics_for(settings).case_events,
                                new_cases(writes, round_),
                                write_rate,
                                stop,
                            )
                        )
                        await asyncio.sleep(2)  # the projector at work before reads start
                    try:
                        figures[name] = await measure(
                            [calling(get, p, headers) for p in paths], concurrency
                        )
                    finally:
                        stop.set()
                    if publishing is not None:
                        figures[name]["written_per_s"] = await publishing
                    if spy is not None:
                        await spy.wait()
                return figures
        finally:
            api.terminate()
            api.wait(15)


def table(database: str, figures: dict[str, dict[str, float]]) -> list[str]:
    healthz = figures["GET /healthz (baseline)"]["per_s"]
    lines = []
    for name, f in figures.items():
        if "written_per_s" in f:
            name += f" ({f['written_per_s']:.0f} events/s)"
        lines.append(
            f"| {database} | {name} | {f['per_s']:,.{0 if f['per_s'] >= 10 else 2}f} | "
            f"{f['p50_ms']:.1f} | "
            f"{f['p99_ms']:.1f} | {f['per_s'] / healthz:.2f} |"
        )
    return lines


async def run(args: argparse.Namespace) -> None:
    topology = load_topology(None)
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        data = args.data or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        data.mkdir(parents=True, exist_ok=True)
        await measure_all(args, topology, data, started)


async def measure_all(
    args: argparse.Namespace, topology: Topology, data: Path, started: float
) -> None:
    events = load_or_make_events(topology, args.cases, args.seed, data)
    opened = sum(event.type == "CaseOpened" for event in events)
    print(
        f"generated {len(events):,} case events of {opened:,} cases "
        f"in {time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )
    if args.projector:
        print("| database | case events | µs CPU per case event | events/s |")
        print("| --- | ---: | ---: | ---: |")
        projected = await measure_projector(args, events, data)
        if args.json:
            print(json.dumps(projected, indent=2))
        return
    rows = workload(topology, events, args.requests, args.seed)
    if args.only:
        rows = {
            name: row
            for name, row in rows.items()
            if name.startswith("GET /healthz") or any(part in name for part in args.only)
        }
    databases = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    lines = [
        "| database | what | requests/s | p50 ms | p99 ms | / healthz |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    results: dict[str, Any] = {}
    for database in databases:
        if database == "sqlite":
            url = f"sqlite+aiosqlite:///{data}/cases-{args.cases}-{args.seed}.db"
        else:
            url = await postgres_database("bench_read_model", fresh=args.data is None)
        if await seeded_cases(url) != opened:
            if database == "sqlite":
                stale = data / f"cases-{args.cases}-{args.seed}.db"
                await asyncio.to_thread(remove_sqlite_file, stale)
            else:
                url = await postgres_database("bench_read_model", fresh=True)
            seconds, _ = await seed_database(url, events)
            print(
                f"{database}: projected {len(events):,} events in {seconds:.0f} s",
                file=sys.stderr,
            )
        await migrate_to_head(url)  # before the statistics: the API would migrate after them
        if database == "postgres":
            await vacuum_analyze(url)
        profile = args.profile / database if args.profile else None
        writes = events[: int(args.write_rate * 120)]  # enough for the longest row
        try:
            figures = await read_load(url, rows, args.concurrency, profile, writes, args.write_rate)
        finally:
            written = await forget_written(url)
        print(f"{database}: {written:,} cases projected while reading, deleted", file=sys.stderr)
        results[database] = figures
        lines += table(database, figures)
        print("\n".join(table(database, figures)), file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{opened:,} cases, {len(events):,} case events, {args.concurrency} clients")
        print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=3000, help="per row")
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data", type=Path, help="keep events and databases for the next run")
    parser.add_argument("--profile", type=Path, help="py-spy the API for 4 s of each row")
    parser.add_argument(
        "--only",
        action="append",
        help="measure only the rows whose name contains this (again for more; /healthz always)",
    )
    parser.add_argument(
        "--write-rate",
        type=float,
        default=200,
        help=f"case events a second for the rows{PROJECTING!r} (the whole system here: ~250)",
    )
    parser.add_argument(
        "--projector", action="store_true", help="measure the projector alone, then stop"
    )
    parser.add_argument("--json", action="store_true")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
