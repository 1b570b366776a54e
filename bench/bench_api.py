"""The API's own figures, each beside a baseline measured in the same run.

Starts an embedded broker, a worker and `cityloop api` (as a user runs them), then measures
with `--concurrency` clients in flight:

- ingest: `POST /v1/events/{source}` one event per request, against two baselines —
  `GET /healthz` (the HTTP + framework floor) and a bare aiokafka producer awaiting each
  `acks=all` send with the same concurrency (the broker's floor for acknowledged sends);
- batch ingest: `POST /v1/events/{source}/batch` with `--batch` events per request;
- reads, once a worker started after the ingest figures has made the cases:
  `GET /v1/cases?limit=50` and `GET /v1/cases/{id}`.

Usage: .venv/bin/python bench/bench_api.py [--events 2000] [--concurrency 16] [--batch 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from functools import partial
from pathlib import Path
from statistics import quantiles

import aiohttp

from api.auth import mint_token
from cityloop.broker import EmbeddedBroker, free_port
from cityloop.contracts import Source
from cityloop.loadtest.generate import EVENT_SOURCES, ScenarioConfig, generate
from cityloop.settings import Settings
from handlers.access import Principal, Role
from streams.clients import async_producer
from topology import load_topology

SECRET = "bench-" + "s" * 40


def token(role: Role, scope: str, sources: tuple[str, ...] = ()) -> dict[str, str]:
    principal = Principal(subject="bench", role=role, scope=scope, sources=sources)
    return {"Authorization": f"Bearer {mint_token(SECRET, principal, timedelta(hours=2))}"}


async def until_ready(http: aiohttp.ClientSession, tries: int = 600) -> bool:
    """Poll `/readyz` every 0.1 s until it answers 200; False if it never did."""
    for _ in range(tries):
        try:
            async with http.get("/readyz") as ready:
                if ready.status == 200:
                    return True
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    return False


async def measure(
    calls: Sequence[Callable[[], Awaitable[None]]], concurrency: int
) -> dict[str, float]:
    """Run the calls with `concurrency` in flight; requests/s and latency percentiles (ms)."""
    latencies: list[float] = []
    queue = list(reversed(calls))

    async def client() -> None:
        while queue:
            call = queue.pop()
            started = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cuts = quantiles(latencies, n=100)
    return {"per_s": len(latencies) / elapsed, "p50_ms": cuts[49], "p99_ms": cuts[98]}


def start(role: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cityloop", role],
        env=env,
        stdout=open(log, "ab"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )


async def run(
    events: int, concurrency: int, batch: int, profile: Path | None = None
) -> dict[str, dict[str, float]]:
    topology = load_topology(None)
    stream = generate(topology, ScenarioConfig(minutes=60, rate=events * 2 / 3600, seed=11))
    by_source: dict[str, list[bytes]] = {}
    for record in stream.records:
        assert record.source is not None  # noqa: S101 - generated records name their source
        by_source.setdefault(record.source.value, []).append(record.value or b"")
    source, bodies = max(by_source.items(), key=lambda item: len(item[1]))
    single, batched = bodies[: events // 2], bodies[events // 2 : events]
    publisher = token(Role.PUBLISHER, source, (EVENT_SOURCES[Source(source)],))
    officer = token(Role.DUTY_OFFICER, topology.city)

    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(port=free_port()) as broker:
        port = free_port()
        env = {
            **os.environ,
            "CITYLOOP_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
            "CITYLOOP_TOPIC_PREFIX": "bench-api",
            "CITYLOOP_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/cases.db",
            "CITYLOOP_DATA_DIR": tmp,
            "CITYLOOP_API_PORT": str(port),
            "CITYLOOP_JWT_SECRET": SECRET,
            "CITYLOOP_CLOCK": "external",
        }
        await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "cityloop", "topics"], env=env, check=True
        )
        # the worker starts only for the reads: ingest is measured without it competing
        processes = [start("api", env, Path(tmp) / "api.log")]
        base = f"http://127.0.0.1:{port}"
        try:
            # aiohttp as the load client: httpx's pool capped these runs near 250 requests/s
            connector = aiohttp.TCPConnector(limit=concurrency)
            timeout = aiohttp.ClientTimeout(total=60)
            async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as http:
                await until_ready(http)
                figures: dict[str, dict[str, float]] = {}
                for _ in range(200):  # warm up connections and code paths
                    async with http.get("/healthz") as response:
                        await response.read()

                async def get(path: str, headers: dict[str, str] | None = None) -> None:
                    async with http.get(path, headers=headers) as response:
                        await response.read()
                        response.raise_for_status()

                async def post(path: str, body: bytes) -> None:
                    headers = {**publisher, "content-type": "application/json"}
                    async with http.post(path, data=body, headers=headers) as response:
                        answer = await response.text()
                        if response.status != 202:
                            raise RuntimeError(f"{path}: {response.status} {answer[:300]}")

                figures["GET /healthz (baseline)"] = await measure(
                    [lambda: get("/healthz")] * len(single), concurrency
                )
                settings = Settings(
                    kafka_bootstrap_servers=broker.bootstrap, topic_prefix="bench-raw"
                )
                producer = async_producer(settings)
                await producer.start()
                try:
                    topic = "bench-raw.events"

                    async def send(body: bytes) -> None:
                        await producer.send_and_wait(topic, body)

                    await send(b"{}")  # the topic exists before the clock starts
                    figures["aiokafka send_and_wait, acks=all (baseline)"] = await measure(
                        [partial(send, body) for body in single], concurrency
                    )
                finally:
                    await producer.stop()
                spy = (
                    await asyncio.create_subprocess_exec(
                        str(Path(sys.executable).with_name("py-spy")),
                        *("record", "-p", str(processes[0].pid), "-f", "raw"),
                        *("-d", "5", "-r", "200", "-o", str(profile)),
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    if profile
                    else None
                )
                figures[f"POST /v1/events/{source}"] = await measure(
                    [partial(post, f"/v1/events/{source}", body) for body in single],
                    concurrency,
                )
                if spy is not None:
                    await spy.wait()
                chunks = [
                    b"[" + b",".join(batched[i : i + batch]) + b"]"
                    for i in range(0, len(batched), batch)
                ]
                timing = await measure(
                    [partial(post, f"/v1/events/{source}/batch", body) for body in chunks],
                    min(concurrency, len(chunks)),
                )
                timing["events_per_s"] = timing["per_s"] * batch
                figures[f"POST /v1/events/{source}/batch ({batch} per request)"] = timing

                processes.append(start("worker", env, Path(tmp) / "worker.log"))
                for _ in range(600):  # the reads want the cases the worker makes
                    async with http.get(
                        "/v1/cases", params={"limit": 50}, headers=officer
                    ) as response:
                        page = await response.json()
                    if len(page["items"]) == 50:
                        break
                    await asyncio.sleep(0.5)
                case_ids = [item["case_id"] for item in page["items"]]
                reads = max(200, len(single) // 4)
                figures["GET /v1/cases?limit=50"] = await measure(
                    [partial(get, "/v1/cases?limit=50", officer)] * reads, concurrency
                )
                targets = [case_ids[n % len(case_ids)] for n in range(reads)]
                figures["GET /v1/cases/{id}"] = await measure(
                    [partial(get, f"/v1/cases/{case_id}", officer) for case_id in targets],
                    concurrency,
                )
                return figures
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--profile", type=Path, help="py-spy the API for 5 s of single-event ingest (raw format)"
    )
    args = parser.parse_args()
    figures = asyncio.run(run(args.events, args.concurrency, args.batch, args.profile))
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    healthz = figures["GET /healthz (baseline)"]["per_s"]
    raw = figures["aiokafka send_and_wait, acks=all (baseline)"]["per_s"]
    print("| what | requests/s | events/s | p50 ms | p99 ms | / healthz | / raw acked sends |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, f in figures.items():
        events = f.get("events_per_s", f["per_s"])
        print(
            f"| {name} | {f['per_s']:,.0f} | {events:,.0f} | {f['p50_ms']:.1f} | "
            f"{f['p99_ms']:.1f} | {f['per_s'] / healthz:.2f} | {events / raw:.2f} |"
        )


if __name__ == "__main__":
    main()
