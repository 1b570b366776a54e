"""How long the API stops answering while a long read runs: `GET /healthz` polled every 5 ms
while the city's duty officer reads the assessment figures of every case, three times.

    .venv/bin/python bench/bench_stall.py --data /tmp/bench100k [--database sqlite|postgres|both]

The databases are the ones `bench/bench_read_model.py --data DIR` seeded and kept (100,000
cases by default); this script does not seed them. Prints the figures' mean time and the
polls' count, p50 and maximum latency: a loop held by the read answers few polls, late.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import aiohttp
from bench_api import token, until_ready  # run as a script: bench/ is on the path
from bench_read_model import api_env, postgres_database, seeded_cases, start_api

from cityloop.broker import EmbeddedBroker, free_port
from cityloop.settings import Settings
from handlers.access import Role

POLL_S = 0.005
FIGURES = "/v1/stats?since={since}&until={until}"


async def stall(database_url: str, since: str, until: str, rounds: int) -> str:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(port=free_port()) as broker:
        port = free_port()
        settings = Settings(kafka_bootstrap_servers=broker.bootstrap, topic_prefix="bench-stall")
        api = start_api(api_env(settings, database_url, tmp, port), Path(tmp) / "api.log")
        try:
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
                if not await until_ready(http):
                    raise RuntimeError((Path(tmp) / "api.log").read_text()[-3000:])
                officer = token(Role.DUTY_OFFICER, "510100")
                figures = FIGURES.format(since=quote(since), until=quote(until))

                async def read_figures() -> None:
                    async with http.get(figures, headers=officer) as response:
                        body = await response.read()
                        if response.status != 200:
                            raise RuntimeError(f"{response.status} {body[:300]!r}")

                await read_figures()  # warm: code paths and the database's cache
                latencies: list[float] = []
                done = asyncio.Event()

                async def poll() -> None:
                    while not done.is_set():
                        started = time.perf_counter()
                        async with http.get("/healthz") as response:
                            await response.read()
                        latencies.append((time.perf_counter() - started) * 1000)
                        await asyncio.sleep(POLL_S)

                polling = asyncio.create_task(poll())
                started = time.perf_counter()
                for _ in range(rounds):
                    await read_figures()
                each = (time.perf_counter() - started) / rounds
                done.set()
                await polling
        finally:
            api.terminate()
            api.wait(15)
    latencies.sort()
    return (
        f"figures of every case {each:.2f} s each; /healthz meanwhile: {len(latencies)} polls, "
        f"p50 {latencies[len(latencies) // 2]:.1f} ms, max {latencies[-1]:.1f} ms"
    )


async def run(args: argparse.Namespace) -> None:
    databases = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    for database in databases:
        if database == "sqlite":
            url = f"sqlite+aiosqlite:///{args.data}/cases-{args.cases}-{args.seed}.db"
        else:
            url = await postgres_database("bench_read_model", fresh=False)
        if not await seeded_cases(url):
            raise SystemExit(f"{database}: not seeded; run bench/bench_read_model.py --data first")
        print(f"{database}: {await stall(url, args.since, args.until, args.rounds)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--since", default="2026-07-01T00:00:00+00:00")
    parser.add_argument("--until", default="2026-08-02T00:00:00+00:00")
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
