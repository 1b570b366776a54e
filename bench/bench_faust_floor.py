"""Faust's own cost per event: the worker's two agents with nothing to decide.

    .venv/bin/python bench/bench_faust_floor.py --events 10000 [--runs 3]

The worker's app (`streams.worker.worker_app`, the same settings) runs two agents shaped as the
worker's: `intake` takes source records in batches (`take_events(BATCH, BATCH_WAIT_S)`) and
hands each, unchanged, to the app's producer for the incident topic; `cases` takes those and
hands each to the producer for the case-event topic, without awaiting acknowledgements, as the
worker does. Nothing is parsed or decided, so the CPU this process spends per source event is
what Faust's consume path, the two hops and the producer cost by themselves: the floor under
the worker's CPU per event, whatever the handlers cost. One core's worth of it is the most
events per second one worker could reach with free handlers. Each run also measures a one-hop
app (`intake` sends straight to the case-event topic), to show what a hop costs.

The stream is the bench's generated hour, preloaded onto the source topics before the app
starts; the rate runs from the first case-event record to the last of `--events`. With
`--worker` the real worker is measured in the same run on the same stream (`bench_worker.py`'s
measure), so the two figures share the host's speed of the moment.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench_worker import _cpu_seconds

from cityloop.broker import EmbeddedBroker, free_port
from cityloop.loadtest.bench import _preload, _stream, drain, workers
from cityloop.settings import Settings
from streams.clients import async_consumer
from streams.event_loop import use_the_fastest_loop
from streams.topics import Topics, ensure_topics
from topology import load_topology


def serve(bootstrap: str, prefix: str, data_dir: Path, hops: int) -> None:
    """The floor app, in this process until it is stopped; with one hop, `intake` sends
    straight to the case-event topic and there is no `cases` agent."""
    from faust.worker import Worker

    from streams.worker import BATCH, BATCH_WAIT_S, worker_app

    settings = Settings(
        kafka_bootstrap_servers=bootstrap, topic_prefix=prefix, data_dir=data_dir, _env_file=None
    )
    names = Topics(prefix)
    app = worker_app(settings, f"{prefix}-floor")

    def raw(*topic_names: str) -> Any:
        return app.topic(*topic_names, value_serializer="raw", key_serializer="raw")

    async def forward(events: list[Any], topic: str) -> None:
        producer = app.producer
        for event in events:
            await producer.send(topic, event.message.key, event.message.value, None, None, None)

    async def intake(stream: Any) -> None:
        onward = names.incidents if hops == 2 else names.case_events
        async for events in stream.take_events(BATCH, BATCH_WAIT_S):
            await forward(events, onward)

    async def cases(stream: Any) -> None:
        async for events in stream.take_events(BATCH, BATCH_WAIT_S):
            await forward(events, names.case_events)

    app.agent(raw(*names.sources), name="intake")(intake)
    if hops == 2:
        app.agent(raw(names.incidents), name="cases")(cases)
    Worker(app, loglevel="WARNING").execute_from_commandline()


async def _counted(
    settings: Settings, expected: int, timeout_s: float, on_first: Callable[[], None]
) -> tuple[float, float]:
    """(first case-event record's arrival, the `expected`-th's), perf_counter; `on_first` is
    called when the first arrives."""
    names = Topics(settings.topic_prefix)
    consumer = async_consumer(
        settings, names.case_events, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    seen = 0
    first: float | None = None
    last = time.perf_counter()
    deadline = last + timeout_s
    try:
        while seen < expected and time.perf_counter() < deadline:
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            for batch in batches.values():
                last = time.perf_counter()
                if first is None and batch:
                    first = last
                    on_first()
                seen += len(batch)
        if seen < expected:
            raise RuntimeError(f"only {seen} of {expected} records came through")
        return first or last, last
    finally:
        await consumer.stop()


async def _measure(
    base: Settings, records: list[Any], tmp: Path, *, hops: int = 2, worker: bool = False
) -> tuple[float, float, float]:
    """(events/s, CPU µs per event, share of a core) of the floor app with `hops` agents, or of
    the worker."""
    run = uuid.uuid4().hex[:6]
    settings = base.model_copy(update={"topic_prefix": f"ff-{run}", "data_dir": tmp / run})
    await asyncio.to_thread(ensure_topics, settings)
    await _preload(settings, records, Topics(settings.topic_prefix))
    if worker:
        with workers(settings, 1, tmp) as processes:
            return await _rate_and_cpu(settings, len(records), processes[0].pid, worker=True)
    with floor_app(settings, hops, tmp / f"{run}.log") as process:
        return await _rate_and_cpu(settings, len(records), process.pid, worker=False)


@contextmanager
def floor_app(settings: Settings, hops: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The floor app in a process of its own, as the worker runs."""
    command = [sys.executable, __file__, "--serve", settings.bootstrap_servers]
    command += [settings.topic_prefix, str(settings.data_dir), str(hops)]
    with open(log, "wb") as errors:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)  # noqa: S603
        try:
            yield process
        finally:
            process.terminate()
            process.wait(30)


async def _rate_and_cpu(
    settings: Settings, expected: int, pid: int, *, worker: bool
) -> tuple[float, float, float]:
    """Start-up (imports, the topology, the group join) is not measured: rate and CPU run
    from the first output record."""
    cpu_at_first: list[float] = []

    def on_first() -> None:
        cpu_at_first.append(_cpu_seconds(pid))

    if worker:
        drained = await drain(settings, expected, 600, on_first)
        first, done = drained.first_output_at, drained.done_at
    else:
        first, done = await _counted(settings, expected, 600, on_first)
    cpu = _cpu_seconds(pid) - cpu_at_first[0]
    return expected / (done - first), cpu * 1e6 / expected, cpu / (done - first)


async def main(events: int, runs: int, seed: int, with_worker: bool) -> None:
    port = free_port()
    with EmbeddedBroker(port=port), tempfile.TemporaryDirectory() as tmp:
        base = Settings(kafka_bootstrap_servers=f"127.0.0.1:{port}", _env_file=None)
        records = _stream(load_topology(base.topology_file), events, seed)
        for run in range(1, runs + 1):
            line = [f"run {run}:"]
            cpu_of: dict[int, float] = {}
            for hops in (2, 1):
                rate, cpu_of[hops], share = await _measure(base, records, Path(tmp), hops=hops)
                line.append(
                    f"Faust floor, {hops} hop(s): {rate:,.0f} events/s, "
                    f"{cpu_of[hops]:,.0f} µs CPU/event ({share:.0%} of a core);"
                )
            if with_worker:
                worker_rate, worker_cpu, worker_share = await _measure(
                    base, records, Path(tmp), worker=True
                )
                line.append(
                    f"worker {worker_rate:,.0f} events/s, {worker_cpu:,.0f} µs CPU/event "
                    f"({worker_share:.0%} of a core); "
                    f"two-hop floor / worker CPU {cpu_of[2] / worker_cpu:.2f}"
                )
            print(" ".join(line), flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        bootstrap, prefix, data_dir, hops = sys.argv[2:6]
        sys.argv = sys.argv[:1]
        serve(bootstrap, prefix, Path(data_dir), int(hops))
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--events", type=int, default=10_000)
        parser.add_argument("--runs", type=int, default=3)
        parser.add_argument("--seed", type=int, default=3)
        parser.add_argument("--worker", action="store_true", help="the real worker beside it")
        arguments = parser.parse_args()
        use_the_fastest_loop()  # the floor on the loop the worker runs on
        asyncio.run(main(arguments.events, arguments.runs, arguments.seed, arguments.worker))
