"""Handler path throughput: the CPU the worker's handlers spend per source record, no Kafka.

    .venv/bin/python bench/bench_handlers.py [--minutes 60] [--rate 3] [--seed 7] [--passes 3]
    .venv/bin/python bench/bench_handlers.py --storm 5000
    .venv/bin/python bench/bench_handlers.py --memory --minutes 30 --rate 30 --seed 11

One generated stream of the Chengdu scenario (the project's generator, a fixed seed) goes
through exactly what `streams/app.py` does per record, single-threaded:

- intake: `Origin` of the record, `take_in` on the raw bytes, the correlation key, and the
  incident serialised as it goes on the incidents topic (or the dead letter as it goes on
  the dead-letter topic);
- cases: the incident parsed back from those bytes as the cases agent parses it, the case
  book's correlation decision, and each case event serialised as it goes on the case-event
  topic (an unroutable incident becomes a dead letter, as in the agent).

The clock of every decision is the record's own timestamp, as in the worker, so the run is
deterministic: the digest of every byte the path emits is printed, and must not change when
the handlers get faster. The baseline, measured in the same run, is Python's floor for
touching each record at all: `json.loads` of its bytes and one dict lookup. The handler path is
then run again with the worker process's garbage collector (`streams/garbage.py`), which must
emit the same bytes. Best of N passes,
each over a fresh case book.

`--memory` measures what the case book holds once the stream is through instead: the bytes it
grew by (tracemalloc), per record, and the lines of code that allocated most of them.

`--storm N` measures one storm case instead: N reports of one flooded underpass, one a second,
through the cases agent's path (incident bytes parsed, decided, events serialised); it prints
the CPU per record over the first and the last tenth of the storm, and their ratio, which stays
near 1 when a case's per-event cost does not grow with its reports.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import platform
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import handlers.nearby
from cityloop.contracts import GeoPoint, Incident, Mode, Origin, Source, wire_bytes
from cityloop.loadtest.generate import ScenarioConfig, generate
from cityloop.settings import Settings
from handlers.book import CaseBook
from handlers.cells import correlation_key
from handlers.partition import CasePartition, Destination, WorkRecord, take_source_record
from streams.garbage import leave_the_oldest_generation
from streams.topics import topics_for
from topology import Topology, load_topology


@dataclass(frozen=True)
class Record:
    """A source record as the worker's consumer hands it over."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime
    value: bytes

    @property
    def ms(self) -> int:
        return int(self.timestamp.timestamp() * 1000)


def load_records(topology: Topology, minutes: float, rate: float, seed: int) -> list[Record]:
    names = topics_for(Settings())
    by_source = {source: topic for topic, source in names.sources.items()}
    stream = generate(topology, ScenarioConfig(minutes=minutes, rate=rate, seed=seed))
    offsets: dict[str, int] = {}
    records = []
    for generated in stream.records:
        if generated.source is None or generated.timestamp_ms is None or generated.value is None:
            raise ValueError("a generated record without source, timestamp or value")
        topic = by_source[generated.source]
        offsets[topic] = offsets.get(topic, -1) + 1
        records.append(
            Record(
                topic=topic,
                partition=0,
                offset=offsets[topic],
                timestamp=datetime.fromtimestamp(generated.timestamp_ms / 1000, UTC),
                value=generated.value,
            )
        )
    return records


def handler_path(
    records: list[Record],
    topology: Topology,
    sources: dict[str, Source],
    book: CaseBook | None = None,
) -> tuple[int, str]:
    """The worker's per-record path (handlers/partition.py, as the agents call it); returns
    how many records went out and a digest of them. One case partition takes every incident
    (`book`, if given, is its book)."""
    core = CasePartition(0)
    if book is not None:
        core.book = book
    modes: dict[str, Mode] = {}
    incidents = "cityloop.incidents"
    digest = hashlib.sha256()
    emitted = 0
    for record in records:
        # intake agent
        work = WorkRecord(
            record.topic, record.partition, record.offset, None, record.value, record.ms
        )
        out = take_source_record(work, topology, sources.get(record.topic), None)
        if out.to is not Destination.INCIDENTS:
            digest.update(out.value)
            emitted += 1
            continue
        # cases agent, on the other side of the incidents topic
        work = WorkRecord(incidents, 0, record.offset, out.key, out.value, record.ms)
        for send in core.take(work, topology, modes, incidents):
            if send.to is Destination.CASE_EVENTS:
                digest.update(send.key or b"")
            digest.update(send.value)
            emitted += 1
    return emitted, digest.hexdigest()[:16]


def floor(records: list[Record], sources: dict[str, Source]) -> tuple[int, str]:
    """Touching each record at all: parse its JSON and look its source up."""
    import json

    found = 0
    for record in records:
        document = json.loads(record.value)
        if sources.get(record.topic) is not None and document:
            found += 1
    return found, ""


STORM_AREA = "510104001001"
STORM_POINT = GeoPoint(lat=30.648966, lon=104.074966)


def storm(topology: Topology, reports: int) -> tuple[float, float, str]:
    """CPU µs per record over the first and the last tenth of one storm case's reports, and a
    digest of what the path emitted."""
    start = datetime(2026, 7, 15, 14, 0, tzinfo=UTC)
    wires = []
    for number in range(reports):
        moment = start + timedelta(seconds=number)
        incident = Incident(
            incident_id=f"storm-{number}",
            idempotency_key=f"/hotline|storm-{number}",
            source=Source.HOTLINE,
            event_id=f"storm-{number}",
            event_source="/hotline",
            category_code="waterlogging",
            title="下穿隧道积水",
            text="隧道积水很深，车辆无法通行",
            area_codes=[STORM_AREA],
            location=STORM_POINT,
            occurred_at=moment,
            received_at=moment,
            origin=Origin(topic="cityloop.events.hotline", partition=0, offset=number),
        )
        wires.append((correlation_key(topology, incident), wire_bytes(incident)))
    book = CaseBook()
    digest = hashlib.sha256()
    tenth = max(reports // 10, 1)
    spent: list[float] = []
    started = time.process_time()
    for number, (key, wire) in enumerate(wires):
        if number in (tenth, reports - tenth):
            spent.append(time.process_time() - started)
            started = time.process_time()
        incident = Incident.model_validate_json(wire)
        decision = book.correlate(incident, key, topology, {}, incident.received_at)
        for case_event in decision.events:
            digest.update(wire_bytes(case_event))
    spent.append(time.process_time() - started)
    if len(book.cases) != 1:
        raise AssertionError(f"the storm made {len(book.cases)} cases, not one")
    return 1e6 * spent[0] / tenth, 1e6 * spent[-1] / tenth, digest.hexdigest()[:16]


def memory(
    records: list[Record], topology: Topology, sources: dict[str, Source], top: int
) -> tuple[int, int, list[tuple[str, int]]]:
    """What a case book holds after the records: (cases, bytes it grew by, the lines of code
    that allocated most of what stays, with their bytes), measured by tracemalloc."""
    book = CaseBook()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    handler_path(records, topology, sources, book)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = after.compare_to(before, "lineno")
    here = f"{Path.cwd()}/"
    lines = [
        (str(stat.traceback).split("site-packages/")[-1].removeprefix(here), stat.size_diff)
        for stat in grown[:top]
    ]
    return len(book.cases), sum(stat.size_diff for stat in grown), lines


def best_of(passes: int, run: Callable[[], tuple[int, str]]) -> tuple[float, int, str]:
    best = float("inf")
    emitted, digest = 0, ""
    for _ in range(passes):
        started = time.process_time()
        emitted, digest = run()
        best = min(best, time.process_time() - started)
    return best, emitted, digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=3.0, help="events per second of scenario")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--storm", type=int, default=0, help="reports on one storm case instead")
    parser.add_argument(
        "--memory", action="store_true", help="what the case book holds after the stream instead"
    )
    parser.add_argument(
        "--index-from",
        type=int,
        default=None,
        help="open cases a correlation key holds before it is indexed (handlers/nearby.py); "
        "a huge number measures every open case against every incident, as before the index",
    )
    args = parser.parse_args()
    if args.index_from is not None:
        handlers.nearby.INDEX_FROM = args.index_from

    topology = load_topology()
    if args.storm:
        first, last, digest = storm(topology, args.storm)
        print(
            f"one storm case of {args.storm:,} reports, output digest {digest}; "
            f"Python {platform.python_version()}"
        )
        print()
        print("| reports | first tenth (µs/record) | last tenth (µs/record) | last ÷ first |")
        print("| --- | --- | --- | --- |")
        print(f"| {args.storm:,} | {first:.1f} | {last:.1f} | {last / first:.2f}× |")
        return
    records = load_records(topology, args.minutes, args.rate, args.seed)
    sources = topics_for(Settings()).sources
    count = len(records)
    if args.memory:
        cases, grown, lines = memory(records, topology, sources, top=8)
        print(
            f"{count:,} records ({args.minutes:g} min at {args.rate:g}/s, seed {args.seed}): "
            f"{cases:,} cases, the book grew {grown / 1e6:.1f} MB, {grown / count:,.0f} B/record"
        )
        print()
        print("| allocated at | B/record |")
        print("| --- | ---: |")
        for where, size in lines:
            print(f"| `{where}` | {size / count:,.0f} |")
        return

    path_s, emitted, digest = best_of(args.passes, lambda: handler_path(records, topology, sources))
    floor_s, _, _ = best_of(args.passes, lambda: floor(records, sources))
    thresholds = gc.get_threshold()
    leave_the_oldest_generation()
    worker_path_s, _, worker_digest = best_of(
        args.passes, lambda: handler_path(records, topology, sources)
    )
    gc.set_threshold(*thresholds)
    if worker_digest != digest:
        raise AssertionError("the handler path emitted other bytes under the worker's collector")

    path_rate, floor_rate = count / path_s, count / floor_s
    print(
        f"{count:,} records ({args.minutes:g} min at {args.rate:g}/s, seed {args.seed}), "
        f"{emitted:,} records out, output digest {digest}; best of {args.passes}; "
        f"Python {platform.python_version()}"
    )
    print()
    print(
        "| records | handler path (rec/s) | µs/record | baseline (rec/s) | µs/record "
        "| path cost ÷ baseline |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    print(
        f"| {count:,} | {path_rate:,.0f} | {1e6 * path_s / count:.1f} | {floor_rate:,.0f} "
        f"| {1e6 * floor_s / count:.1f} | {floor_rate / path_rate:.1f}× |"
    )
    print()
    print(
        f"The handler path with the worker's garbage collector (streams/garbage.py): "
        f"{count / worker_path_s:,.0f} rec/s, {1e6 * worker_path_s / count:.1f} µs/record, "
        f"{worker_path_s / path_s:.2f}× the default collector's CPU"
    )


if __name__ == "__main__":
    main()
