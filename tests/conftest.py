"""Shared fixtures: a real broker (chosen as the README says), a real database, a running system."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from cityloop.broker import EmbeddedBroker, free_port
from topology import tiny_topology_path

POSTGRES_URL = os.environ.get(
    "CITYLOOP_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files marked `long(seconds)` first, the longest first: the suite runs a file to each
    of two workers (pyproject.toml), and a long file started last would run on alone."""

    def seconds(item: pytest.Item) -> float:
        marker = item.get_closest_marker("long")
        return float(marker.args[0]) if marker is not None else 0.0

    items.sort(key=lambda item: -seconds(item))  # stable: the rest keep their order


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """KAFKA_BOOTSTRAP_SERVERS if set; else testcontainers' Kafka if a Docker engine answers;
    else the embedded broker on a free port."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
        return
    with EmbeddedBroker(port=free_port()) as broker:
        yield broker.bootstrap


@contextlib.contextmanager
def postgres_database(server_url: str = POSTGRES_URL, prefix: str = "test") -> Iterator[str]:
    """A database of its own (`<prefix>_<random>`) on the PostgreSQL server `server_url` names,
    created for the caller and dropped afterwards: suites running side by side on one server, and
    tests that need an empty database, do not meet."""
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    server = url.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )

    async def run(statement: str) -> None:
        connection = await asyncpg.connect(server)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The PostgreSQL the suite must test against (never skipped: a missing server fails): a
    database created for this run on the server CITYLOOP_TEST_POSTGRES_URL names, dropped at
    the end."""
    with postgres_database(POSTGRES_URL) as url:
        yield url


TEST_SECRET = "test-secret-" + uuid.uuid4().hex


TEST_EVENT_SOURCES: dict[str, tuple[str, ...]] = {
    "hotline": ("/test/hotline", "/12345/chengdu", "/corpus", "/cityloop/open311"),
    "iot": ("/test/iot", "/cim/iot", "/corpus"),
    "grid": ("/test/grid", "/grid/app", "/corpus"),
    "duty": ("/test/duty", "/duty/chengdu", "/corpus"),
}
"""The CloudEvent sources a test publisher of each kind names in its token, unless a test
names others: those the suite's events carry (`cloudevent`'s, the load generator's, the bad
inputs' and the Open311 facade's)."""


def bearer(
    role: str = "duty_officer", scope: str = "510100", sources: Sequence[str] | None = None
) -> dict[str, str]:
    """Authorization headers for a token of this role and scope (the city's duty officer by
    default: sees every case of the tiny topology); a publisher's names `sources`, by default
    the suite's sources of its kind (TEST_EVENT_SOURCES)."""
    from datetime import timedelta

    from api.auth import mint_token
    from handlers.access import Principal, Role

    if sources is None:
        sources = TEST_EVENT_SOURCES.get(scope, ()) if role == "publisher" else ()
    principal = Principal(
        subject=f"test-{role}", role=Role(role), scope=scope, sources=tuple(sources)
    )
    return {"Authorization": f"Bearer {mint_token(TEST_SECRET, principal, timedelta(hours=1))}"}


def unique_prefix(name: str) -> str:
    return f"t{name}-{uuid.uuid4().hex[:8]}"


@dataclass
class RunningSystem:
    api_url: str
    bootstrap: str
    prefix: str
    database_url: str
    data_dir: Path
    processes: dict[str, subprocess.Popen[bytes]]
    env: dict[str, str]

    def start(self, role: str) -> None:
        self.processes[role] = subprocess.Popen(
            [sys.executable, "-m", "cityloop", role],
            env=self.env,
            stdout=open(self.data_dir / f"{role}.log", "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )

    def kill(self, role: str) -> None:
        """SIGKILL: no shutdown, no commit, no flush — a crash."""
        process = self.processes[role]
        process.kill()
        process.wait()

    def topic(self, suffix: str) -> str:
        return f"{self.prefix}.{suffix}"

    @property
    def worker_metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.env['CITYLOOP_WORKER_METRICS_PORT']}/metrics"

    def log(self, role: str) -> str:
        return (self.data_dir / f"{role}.log").read_text(errors="replace")

    def audit(self, wait_s: float = 60) -> subprocess.CompletedProcess[str]:
        """`cityloop audit` against this system, waiting up to `wait_s` for it to hold."""
        return subprocess.run(
            [sys.executable, "-m", "cityloop", "audit", "--wait-s", f"{wait_s:.0f}"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=wait_s + 300,
        )


def every_case(system: RunningSystem) -> list[dict[str, Any]]:
    """Every case's summary the city's duty officer sees, page by page, newest first."""
    cases: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(
            f"{system.api_url}/v1/cases", params=params, headers=bearer(), timeout=10
        ).json()
        cases += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return cases


def start_system(
    bootstrap: str,
    tmp: Path,
    database_url: str | None = None,
    prefix: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> RunningSystem:
    prefix = prefix or unique_prefix("sys")
    port = free_port()
    database_url = database_url or f"sqlite+aiosqlite:///{tmp}/cases.db"
    env = {
        **os.environ,
        "CITYLOOP_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "CITYLOOP_TOPIC_PREFIX": prefix,
        "CITYLOOP_DATABASE_URL": database_url,
        "CITYLOOP_DATA_DIR": str(tmp),
        "CITYLOOP_API_PORT": str(port),
        "CITYLOOP_WORKER_METRICS_PORT": str(free_port()),
        "CITYLOOP_TOPOLOGY_FILE": str(tiny_topology_path()),
        "CITYLOOP_CLOCK": "external",
        "CITYLOOP_JWT_SECRET": TEST_SECRET,
        **(extra_env or {}),
    }
    system = RunningSystem(
        f"http://127.0.0.1:{port}", bootstrap, prefix, database_url, tmp, {}, env
    )
    for role in ("worker", "api"):
        system.start(role)
    processes = system.processes
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for role, process in processes.items():
            if process.poll() is not None:
                stop_system(system)
                raise RuntimeError(f"{role} exited early:\n{system.log(role)[-3000:]}")
        try:
            if httpx.get(f"{system.api_url}/healthz", timeout=1).status_code == 200:
                return system
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_system(system)
    raise RuntimeError("the API did not come up within 60 s")


def stop_system(system: RunningSystem) -> None:
    for process in system.processes.values():
        if process.poll() is None:
            process.terminate()
    for process in system.processes.values():
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def system(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningSystem]:
    """Worker and API as separate processes, as a user runs them, sharing the session broker."""
    running = start_system(kafka_bootstrap, tmp_path_factory.mktemp("system"))
    yield running
    stop_system(running)
