"""One worker's sustained throughput on a preloaded stream, beside the plain-loop ceiling of the
same run, with an optional py-spy profile of the worker: the loop to iterate on streams/app.py.

    .venv/bin/python bench/bench_worker.py --events 10000 [--profile prof.txt]

The stream (a generated hour of the Chengdu scenario) is preloaded onto the source topics before
the worker starts, so publishing does not share the two cores with the worker while it works;
events/s run from the worker's first case event to the moment every record is accounted for (a
report on a case, a duplicate, or a dead letter) on the case-event and dead-letter topics.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from cityloop.broker import EmbeddedBroker, free_port
from cityloop.loadtest.bench import _preload, _stream, ceiling, workers
from cityloop.settings import Settings
from streams.clients import async_consumer
from streams.decisions import DecisionAssembler
from streams.topics import Topics, ensure_topics
from topology import load_topology


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _accounted(
    settings: Settings, expected: int, timeout_s: float, on_first: Callable[[], None]
) -> tuple[float, float]:
    """(the worker's first output's arrival — an incident, a case event or a dead letter —, and
    the time every record was accounted for), perf_counter; `on_first` is called when the first
    arrives (the profiler starts then: start-up, the topology load and the group join are not
    what is measured)."""
    import json

    names = Topics(settings.topic_prefix)
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
                    for field in ("first_report", "report"):
                        if isinstance(body.get(field), dict):
                            keys.add(body[field]["idempotency_key"] + str(body[field]["origin"]))
                    if body.get("type") == "DuplicateReceived":
                        keys.add(body["idempotency_key"] + str(body.get("origin")))
        print(f"accounted for {len(keys)} of {expected} records")
        return first or last, last
    finally:
        await consumer.stop()


async def main(events: int, profile: Path | None, seed: int, worker_code: Path | None) -> None:
    port = free_port()
    with EmbeddedBroker(port=port), tempfile.TemporaryDirectory() as tmp:
        base = Settings(kafka_bootstrap_servers=f"127.0.0.1:{port}", _env_file=None)
        topology = load_topology(base.topology_file)
        records = _stream(topology, events, seed)
        run = uuid.uuid4().hex[:6]
        ceiling_rate = await ceiling(
            base.model_copy(update={"topic_prefix": f"bw-{run}-ceiling"}), topology, records
        )
        settings = base.model_copy(update={"topic_prefix": f"bw-{run}-worker"})
        await asyncio.to_thread(ensure_topics, settings)
        await _preload(settings, records, Topics(settings.topic_prefix))
        with workers(settings, 1, Path(tmp), worker_code) as processes:
            spies: list[subprocess.Popen[bytes]] = []

            cpu_at_first: list[float] = []

            def start_profile() -> None:
                cpu_at_first.append(_cpu_seconds(processes[0].pid))
                if profile is None:
                    return
                py_spy = str(Path(sys.executable).parent / "py-spy")
                command = [py_spy, "record", "-p", str(processes[0].pid), "-r", "200"]
                command += ["-f", "raw", "-o", str(profile), "-d", "600", "--gil"]
                spies.append(
                    subprocess.Popen(  # noqa: S603 - a profiler beside the run
                        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                    )
                )

            first, done = await _accounted(settings, len(records), 600, start_profile)
            cpu = _cpu_seconds(processes[0].pid) - cpu_at_first[0]
            for spy in spies:
                spy.send_signal(2)
                spy.wait(30)
        rate = len(records) / (done - first) if done > first else 0.0
        per_event_us = cpu * 1e6 / len(records)
        print(
            f"events {len(records)}; ceiling {ceiling_rate:,.0f}/s; one worker {rate:,.0f}/s; "
            f"worker / ceiling {rate / ceiling_rate:.3f}; worker CPU {per_event_us:,.0f} "
            f"µs/event, {cpu / (done - first):.0%} of a core"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--profile", type=Path)
    parser.add_argument(
        "--worker-code",
        type=Path,
        help="run the worker from this source tree (e.g. a `git worktree` of an older commit), "
        "to compare versions under the same bench",
    )
    arguments = parser.parse_args()
    asyncio.run(main(arguments.events, arguments.profile, arguments.seed, arguments.worker_code))
