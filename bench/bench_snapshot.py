"""How long a case partition's decisions wait while its snapshot is written.

    .venv/bin/python bench/bench_snapshot.py [--open 20000,50000] [--rate 500] [--seconds 12]

One case partition's core (`handlers/partition.py`) first takes `--open` incidents, each at its
own spot, so its book holds that many open cases. Then a decider takes more incidents at a
fixed `--rate` (each time it runs, every incident due by then, as the cases agent takes a
batch), under the lock the worker holds while it decides a batch, while the
partition's store (`streams/store.py`) writes a snapshot every `--every-s` seconds, in two ways,
against a run that writes none (`none`, the floor):

- `under`: the whole save is made while the lock is held, so no decision is taken meanwhile
  (what the worker did until it wrote a copy);
- `beside`: what `CityWorker.snapshot_due` does: `CaseBook.copy` under the lock, then
  `PartitionStore.save` of the copy, which pickles it in short slices between the decisions
  and writes it from a thread.

Each is run twice: with Python's default garbage collection, and with the worker's
(`streams/garbage.py`: the oldest generation is not collected by count). For each way and size
it prints the decisions' delay past their scheduled time (p50, p99,
max, in ms), the snapshots written and their mean seconds, and the CPU per decision. Both ways
run in the same process on the same book, one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cityloop.contracts import GeoPoint, Incident, Origin, Source
from handlers.book import Retention
from handlers.partition import CasePartition, WorkRecord
from streams.garbage import leave_the_oldest_generation
from streams.store import PartitionStore
from topology import Topology, load_topology, tiny_topology_path

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
INCIDENTS = "bench.incidents"


def incident_record(number: int, at: datetime) -> WorkRecord:
    """An incident at its own spot (a grid of about 100 m), so each opens a case."""
    row, column = divmod(number, 1000)
    incident = Incident(
        incident_id=f"i{number}",
        idempotency_key=f"/bench|pothole-{number}",
        source=Source.HOTLINE,
        event_id=str(number),
        event_source="/bench",
        category_code="pothole",
        title="pothole",
        area_codes=["510104001001"],
        location=GeoPoint(lat=30.0 + row * 0.001, lon=104.0 + column * 0.001),
        occurred_at=at,
        received_at=at,
        origin=Origin(topic="bench.events.hotline", partition=0, offset=number),
    )
    millis = int(at.timestamp() * 1000)
    return WorkRecord(INCIDENTS, 0, number, b"k", incident.model_dump_json().encode(), millis)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def run(
    core: CasePartition,
    store: PartitionStore,
    topology: Topology,
    first: int,
    way: str,
    rate: float,
    seconds: float,
    every_s: float,
) -> dict[str, float | int | str]:
    deciding = asyncio.Lock()
    delays: list[float] = []
    saves: list[float] = []
    finished = asyncio.Event()

    async def decide() -> None:
        """Like the cases agent: each time it runs, it takes every record due by then."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        count = int(rate * seconds)
        taken = 0
        while taken < count:
            await asyncio.sleep(max(0.0, started + taken / rate - loop.time()))
            now = loop.time()
            batch = range(taken, min(count, int((now - started) * rate) + 1))
            async with deciding:
                for i in batch:
                    number = first + i
                    record = incident_record(number, T0 + timedelta(seconds=number))
                    core.take(record, topology, {}, INCIDENTS)
            done = loop.time()
            delays.extend((done - started - i / rate) * 1000 for i in batch)
            taken = batch.stop
        finished.set()

    async def snapshot() -> None:
        while not finished.is_set():
            try:
                await asyncio.wait_for(finished.wait(), every_s)
            except TimeoutError:
                pass
            else:
                return
            started = time.perf_counter()
            if way == "none":
                continue
            if way == "under":
                async with deciding:
                    await store.save(core.book.copy(), 0, "bench")
            else:
                async with deciding:
                    copy = core.book.copy()
                await store.save(copy, 0, "bench")
            saves.append(time.perf_counter() - started)

    cpu = time.process_time()
    await asyncio.gather(decide(), snapshot())
    cpu = time.process_time() - cpu
    return {
        "way": way,
        "open_cases": core.book.open_count(),
        "decisions": len(delays),
        "delay_p50_ms": round(percentile(delays, 0.5), 1),
        "delay_p99_ms": round(percentile(delays, 0.99), 1),
        "delay_max_ms": round(max(delays), 1),
        "snapshots": len(saves),
        "snapshot_mean_s": round(statistics.fmean(saves), 3) if saves else 0.0,
        "cpu_us_per_decision": round(cpu / len(delays) * 1e6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--open", default="20000,50000", help="open cases in the book, a list")
    parser.add_argument("--rate", type=float, default=500.0, help="decisions per second")
    parser.add_argument("--seconds", type=float, default=12.0, help="how long each way runs")
    parser.add_argument("--every-s", type=float, default=2.0, help="seconds between snapshots")
    args = parser.parse_args()
    topology = load_topology(tiny_topology_path())
    retention = Retention(finished_window=timedelta(hours=6), idempotency_window=timedelta(days=2))
    rows = []
    thresholds = gc.get_threshold()
    for size in (int(item) for item in args.open.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            store = PartitionStore(Path(tmp), 0)
            core = CasePartition(0, retention, store)
            for number in range(size):
                core.take(
                    incident_record(number, T0 + timedelta(seconds=number)), topology, {}, INCIDENTS
                )
            first = size
            for collector in ("default", "worker"):
                gc.set_threshold(*thresholds)
                if collector == "worker":
                    leave_the_oldest_generation()
                for way in ("none", "under", "beside"):
                    row = asyncio.run(
                        run(
                            core, store, topology, first, way, args.rate, args.seconds, args.every_s
                        )
                    )
                    first += int(row["decisions"])
                    row = {"collector": collector, **row}
                    rows.append(row)
                    print(json.dumps(row), flush=True)  # noqa: T201
            store.close()


if __name__ == "__main__":
    main()
