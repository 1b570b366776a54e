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
import uuid
from pathlib import Path

from cityloop.broker import EmbeddedBroker, free_port
from cityloop.loadtest.bench import _preload, _stream, ceiling, drain, workers
from cityloop.settings import Settings
from streams.event_loop import use_the_fastest_loop
from streams.topics import Topics, ensure_topics
from topology import load_topology


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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

            drained = await drain(settings, len(records), 600, start_profile)
            print(f"accounted for {drained.accounted} of {len(records)} records")
            first, done = drained.first_output_at, drained.done_at
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
    use_the_fastest_loop()  # the ceiling on the loop the worker runs on
    asyncio.run(main(arguments.events, arguments.profile, arguments.seed, arguments.worker_code))
