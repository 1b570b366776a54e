"""Effectively once at scale: a worker SIGKILLed several times while it works through a burst of
20,000 events (the suite's size; 50,000 and more with `CITYLOOP_CRASH_EVENTS`), and restarted
each time, loses no event and opens no extra case. Checked on the
case-event topic itself against known ground truth, and with `cityloop audit`.

It found a real bug, since fixed: a worker killed between two sends of one decision (CaseOpened,
then CaseDispatched) left the decision half written, and the restarted worker took the torn half
for the case's truth, so the rest was never written (3 of 7 small runs came up one or two case
events short). Case events now carry their place in their decision and every reader takes a
decision whole or not at all (streams/decisions.py); tests/reliability/test_half_written_decision.py
reproduces the tear deterministically. A run here often shows one case event more on the topic
than the crash-free run: that is a torn half, written again whole after the restart.

Knobs (environment variables), so another size or crash schedule can be run without an edit:

- `CITYLOOP_CRASH_EVENTS` (default 20,000): how many records the burst holds. Each real
  incident is reported by three callers; every 40th record is then sent again, byte for byte.
- `CITYLOOP_CRASH_KILLS` (default `0.25,0.5,0.75`): when to SIGKILL the worker, as a comma
  list in order. A number below 1 (`0.3`) is a fraction of the case events a crash-free run
  writes (known beforehand from the pure handlers); a whole number (`800`) is a count of case
  events on the topic. The worker is restarted after each kill; each kill waits until the
  restarted worker has written at least `MIN_PROGRESS` more case events, so every kill lands
  while it is working. Points near the end (above ~0.95) may never be reached, because the
  embedded broker reports end offsets a batch short; the test then says so.

The stream: hotline calls placed by a point only, at Chengdu community centroids at least
300 m apart, in seven categories of seven families (radius ≤ 150 m), kept away from the edges
of the correlation cells so that every pair of reports of one incident shares a correlation
key; more incidents than places × families come in waves eight days apart (beyond every
category's correlation window). So correlation is exact by construction: a crash-free run makes
exactly one case per real incident, which the test first checks with the pure handlers
(`cityloop.loadtest.model`), and then demands of the crashed run.

The worker snapshots its books every second, so kills land beside snapshots written while it
decides, and each restart comes back from its snapshots and their tails (the test checks the
worker's log says so).

Duration: the burst is preloaded, then the worker works through it at its own pace. At 50,000
records the test took 5 min 6–13 s on a shared 2-core machine (7 min 48 s with a second crash
test running beside it): ~20 s to generate the burst and run it through the pure handlers,
~10 s to publish, ~3 min for the worker to work through it with three restarts (15–40 s each,
growing with the case-event history a restart reads back), ~1 min to finish and account, ~40 s
for the audit. The time grows about linearly with `CITYLOOP_CRASH_EVENTS`; the pytest timeout
is 600 s + 1 s per 50 records. The suite runs 20,000, which still lands every kill mid-burst
with a history to read back: 2 min 38 s beside the rest of the suite on two workers, so that
the whole suite stays under ten minutes; run 50,000 or more before changing how the worker
restarts.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaProducer

from cityloop.contracts import (
    AreaLevel,
    CaseOpened,
    DuplicateReceived,
    GeoPoint,
    ReportAttached,
    Source,
)
from cityloop.loadtest.model import DecisionModel, run_record
from handlers.cells import cells_touched, family_of
from tests.conftest import RunningSystem, start_system, stop_system, unique_prefix
from tests.reliability.orders import work_order
from tests.reliability.test_worker_crash import CaseEventCount, case_history
from tests.streams.test_worker_metrics import scrape
from tests.streams.test_worker_metrics import value as sample_value
from topology import Topology, default_topology_path, load_topology
from topology.geo import distance_m

pytestmark = [pytest.mark.broker, pytest.mark.long(150)]

EVENTS = int(os.environ.get("CITYLOOP_CRASH_EVENTS", "20000"))
KILLS = os.environ.get("CITYLOOP_CRASH_KILLS", "0.25,0.5,0.75")
MIN_PROGRESS = 100
"""Case events the restarted worker writes before the next kill may land."""
TIMEOUT_S = 600 + EVENTS // 50

# one category per family, each with a correlation radius of at most 150 m
CATEGORIES = (
    "garbage_exposed",
    "pothole",
    "noise",
    "illegal_parking",
    "property_dispute",
    "price_complaint",
    "neighbour_dispute",
)
CALLERS = 3
CALLER_SPACING_M = 8.0
SPOT_SPACING_M = 300.0
RESEND_EVERY = 40
WAVE = timedelta(days=8)
"""Longer than any of the categories' correlation windows (a week at most)."""
FIRST_WAVE_AT = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
METRE = 1 / 111_320


@dataclass(frozen=True)
class Burst:
    events: list[tuple[str, bytes]]
    """(key, value), the re-sends at the end."""
    truth: dict[str, str]
    """Idempotency key → the real incident it reports."""
    originals: int
    """How many of `events` are not re-sends."""


def caller_points(lat: float, lon: float) -> list[tuple[float, float]]:
    return [(lat + caller * CALLER_SPACING_M * METRE, lon) for caller in range(CALLERS)]


def spots(topology: Topology) -> list[tuple[float, float, tuple[str, ...]]]:
    """Community centroids at least SPOT_SPACING_M apart, each with the categories whose every
    caller's report owns the same single correlation cell there (no cell border nearby)."""
    taken: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
    chosen = []
    communities = sorted(
        (area for area in topology.areas.values() if area.level is AreaLevel.COMMUNITY),
        key=lambda area: area.code,
    )
    for area in communities:
        if area.centroid is None:
            continue
        lat, lon = area.centroid.lat, area.centroid.lon
        bucket = (math.floor(lat / 0.005), math.floor(lon / 0.005))
        near = [
            point
            for row in (-1, 0, 1)
            for col in (-1, 0, 1)
            for point in taken[(bucket[0] + row, bucket[1] + col)]
        ]
        if any(distance_m(lat, lon, *point) < SPOT_SPACING_M for point in near):
            continue
        categories = tuple(
            category
            for category in CATEGORIES
            if all(
                len(
                    cells_touched(GeoPoint(lat=p_lat, lon=p_lon), family_radius(topology, category))
                )
                == 1
                for p_lat, p_lon in caller_points(lat, lon)
            )
        )
        if categories:
            taken[bucket].append((lat, lon))
            chosen.append((lat, lon, categories))
    return chosen


def family_radius(topology: Topology, category: str) -> float:
    family = family_of(topology, category)
    return max(
        spec.correlation.radius_m for spec in topology.categories.values() if spec.family == family
    )


def burst(topology: Topology, size: int) -> Burst:
    """About `size` records: incidents of three calls each, then every 40th record again."""
    incidents = max(1, round(size / (CALLERS * (1 + 1 / RESEND_EVERY))))
    places = spots(topology)
    events: list[tuple[str, bytes]] = []
    truth: dict[str, str] = {}
    wave = 0
    while len(truth) < incidents * CALLERS:
        # older waves further back: a received time may not be in the future
        received_at = (FIRST_WAVE_AT - wave * WAVE).isoformat()
        for spot_number, (lat, lon, categories) in enumerate(places):
            for category in categories:
                if len(truth) >= incidents * CALLERS:
                    break
                incident = f"{category}@{spot_number}~{wave}"
                for caller, (caller_lat, caller_lon) in enumerate(caller_points(lat, lon)):
                    order_id = f"{incident}#{caller}"
                    event = work_order(
                        order_id,
                        "/crash-test",
                        received_at,
                        category,
                        f"report {caller} of {incident}",
                        caller_lat,
                        caller_lon,
                    )
                    key = f"/crash-test|{order_id}"
                    truth[key] = incident
                    events.append((key, event))
        wave += 1
    originals = len(events)
    return Burst(events + events[::RESEND_EVERY], truth, originals)


def crash_free(
    topology: Topology, events: list[tuple[str, bytes]]
) -> tuple[dict[str, str], list[tuple[str, str | None]]]:
    """What the pure handlers make of the burst in one process: key → case, and the case events
    written (type, caused by which key)."""
    model = DecisionModel.like_the_worker(topology)
    case_of: dict[str, str] = {}
    written: list[tuple[str, str | None]] = []
    now = datetime.now(UTC)
    for _, value in events:
        outcome = run_record(model, value, Source.HOTLINE, None, now)
        assert outcome.dead_letter is None, outcome
        for event in outcome.events:
            written.append((event.type, event.caused_by))
            if isinstance(event, CaseOpened):
                case_of[event.first_report.idempotency_key] = event.case_id
            elif isinstance(event, ReportAttached):
                case_of[event.report.idempotency_key] = event.case_id
    return case_of, written


def by_incident(
    written: Iterable[tuple[str, str | None]], truth: dict[str, str]
) -> Counter[tuple[str, str]]:
    """How many case events of each type each real incident caused."""
    return Counter((truth.get(key or "", str(key)), kind) for kind, key in written)


def kill_points(spec: str, crash_free_total: int) -> list[int]:
    """`0.25,0.5,800` → case-event counts (fractions of the crash-free total, or counts)."""
    points = []
    for item in spec.split(","):
        value = float(item)
        if value <= 0:
            raise ValueError(f"CITYLOOP_CRASH_KILLS: {item!r} is not a positive point")
        points.append(round(value * crash_free_total) if value < 1 else int(value))
    return points


def incidents_per_case(case_of: dict[str, str], truth: dict[str, str]) -> dict[str, set[str]]:
    incidents: dict[str, set[str]] = defaultdict(set)
    for key, case_id in case_of.items():
        incidents[case_id].add(truth[key])
    return incidents


def wait_for_progress(
    system: RunningSystem,
    written_now: CaseEventCount,
    at_least: int,
    timeout_s: float,
    stall_s: float = 60.0,
) -> int:
    """Until the case-event topic holds `at_least` events; fails when the worker writes
    nothing for `stall_s` before that."""
    deadline = time.monotonic() + timeout_s
    last, last_change = -1, time.monotonic()
    while (written := written_now()) < at_least:
        now = time.monotonic()
        if written != last:
            last, last_change = written, now
        assert now - last_change < stall_s, (
            f"the worker stopped at {written} case events, short of {at_least} "
            f"(a kill point beyond the work, or a stuck worker):\n{system.log('worker')[-3000:]}"
        )
        assert now < deadline, f"the worker wrote fewer than {at_least} case events"
        time.sleep(0.05)
    return written


@dataclass
class Accounting:
    """What the case-event topic holds, read from its beginning."""

    reported: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    """Input key → the cases that took it as a report (must be exactly one)."""
    duplicates: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    """Input key → the DuplicateReceived events recorded for it."""
    versions: dict[tuple[str, int], set[str]] = field(default_factory=lambda: defaultdict(set))
    """(case, version) → the distinct event bodies written for it (must be exactly one)."""
    kinds: dict[tuple[str, int], tuple[str, str | None]] = field(default_factory=dict)
    """(case, version) → (event type, the key that caused it)."""
    records: int = 0


def account(system: RunningSystem) -> Accounting:
    accounting = Accounting()
    for event in case_history(system):
        accounting.records += 1
        slot = (event.case_id, event.version)
        accounting.versions[slot].add(event.model_dump_json(exclude={"occurred_at"}))
        accounting.kinds[slot] = (event.type, event.caused_by)
        if isinstance(event, CaseOpened):
            accounting.reported[event.first_report.idempotency_key].add(event.case_id)
        elif isinstance(event, ReportAttached):
            accounting.reported[event.report.idempotency_key].add(event.case_id)
        elif isinstance(event, DuplicateReceived):
            accounting.duplicates[event.idempotency_key].add(event.event_id)
    return accounting


def publish(system: RunningSystem, events: list[tuple[str, bytes]]) -> None:
    producer = KafkaProducer(
        bootstrap_servers=system.bootstrap, acks="all", linger_ms=5, batch_size=256 * 1024
    )
    for key, value in events:
        producer.send(system.topic("events.hotline"), key=key.encode(), value=value)
    producer.flush()
    producer.close()


@pytest.mark.timeout(TIMEOUT_S)
def test_sigkills_during_a_burst_lose_nothing_and_open_no_extra_case(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    timings: dict[str, float] = {}
    started = time.monotonic()
    topology = load_topology()
    generated = burst(topology, EVENTS)
    events, truth = generated.events, generated.truth
    incidents = set(truth.values())
    # the crash-free expectation: the pure handlers make exactly one case per real incident
    expected_case_of, expected_written = crash_free(topology, events)
    assert set(expected_case_of) == set(truth)
    expected = incidents_per_case(expected_case_of, truth)
    assert len(expected) == len(incidents)
    assert all(len(of_case) == 1 for of_case in expected.values())
    points = kill_points(KILLS, len(expected_written))
    timings["generate and run crash-free"] = time.monotonic() - started

    system = start_system(
        kafka_bootstrap,
        tmp_path,
        prefix=unique_prefix("crash"),
        extra_env={
            "CITYLOOP_TOPOLOGY_FILE": str(default_topology_path()),
            # a snapshot every second, written while the worker goes on deciding: kills land
            # beside snapshots, and every restart comes back from one and reads its tail
            "CITYLOOP_SNAPSHOT_INTERVAL_S": "1",
        },
    )
    case_events_written = CaseEventCount(system)
    try:
        mark = time.monotonic()
        publish(system, events)
        timings["publish"] = time.monotonic() - mark

        mark = time.monotonic()
        progress_at_kills: list[int] = []
        back_after: list[float] = []
        for point in points:
            floor = progress_at_kills[-1] + MIN_PROGRESS if progress_at_kills else 0
            wait_for_progress(system, case_events_written, max(point, floor), timeout_s=TIMEOUT_S)
            system.kill("worker")
            killed_at = time.monotonic()
            progress_at_kills.append(case_events_written())
            system.start("worker")
            # how long a restart takes: process start, group join, case book rebuilt
            wait_for_progress(
                system, case_events_written, progress_at_kills[-1] + 1, timeout_s=TIMEOUT_S
            )
            back_after.append(time.monotonic() - killed_at)
        timings["until the worker is back after the last kill"] = time.monotonic() - mark

        mark = time.monotonic()
        resent = {key for key, _ in events[generated.originals :]}
        try:  # cheaply, until the topic holds about what a crash-free run writes
            wait_for_progress(
                system, case_events_written, len(expected_written), TIMEOUT_S, stall_s=20
            )
        except AssertionError:
            pass  # the end offsets fall a batch short; the accounting below tells
        deadline = time.monotonic() + 120 + EVENTS / 100
        before = -1
        while True:
            found = account(system)
            every_record_in = set(found.reported) >= set(truth) and set(found.duplicates) >= resent
            if every_record_in and len(found.versions) >= len(expected_written):
                break
            if every_record_in and found.records == before:
                break  # every record is in, and nothing more came for a while: judge now
            if time.monotonic() > deadline:
                break
            before = found.records
            time.sleep(5)
        timings["until the work is done"] = time.monotonic() - mark
        missing = set(truth) - set(found.reported)
        assert not missing, (
            f"{len(missing)} events never reached a case:\n{system.log('worker')[-3000:]}"
        )
        print(  # noqa: T201
            f"{len(events)} events, {len(incidents)} incidents; case events at the kills: "
            f"{progress_at_kills} of {found.records} (crash-free: {len(expected_written)}); "
            f"the worker wrote again {', '.join(f'{s:.1f}' for s in back_after)} s after each kill"
        )
        # the last restart came back from snapshots, not from the whole history
        samples = scrape(system)
        loads = {
            where: sample_value(samples, "cityloop_worker_partition_loads_total", read_from=where)
            for where in ("snapshot", "history")
        }
        assert (loads["snapshot"] or 0) >= 1, loads
        # every kill landed mid-burst: work had been done, and some was left to do
        assert all(0 < progress < found.records for progress in progress_at_kills), (
            progress_at_kills
        )

        # every event is a report of exactly one case
        split = {key: cases for key, cases in found.reported.items() if len(cases) > 1}
        assert not split, f"{len(split)} events on several cases, e.g. {list(split.items())[:3]}"
        # no extra cases: as without crashes, one per real incident, none mixing two incidents
        case_of = {key: next(iter(cases)) for key, cases in found.reported.items()}
        actual = incidents_per_case(case_of, truth)
        assert len(actual) == len(expected) == len(incidents)
        assert all(len(of_case) == 1 for of_case in actual.values())
        # one history per case: a version is never written with two different contents
        conflicts = {slot: bodies for slot, bodies in found.versions.items() if len(bodies) > 1}
        assert not conflicts, list(conflicts.items())[:3]
        # and the crashes made every incident write exactly the case events it writes without
        # them (redeliveries of one event aside)
        want = by_incident(expected_written, truth)
        got = by_incident(found.kinds.values(), truth)
        differing = {
            what: (want[what], got[what])
            for what in want.keys() | got.keys()
            if want[what] != got[what]
        }
        # (a CaseOpened without its CaseDispatched is a decision half written when the worker
        # died, and never completed: the case then never reaches a department)
        assert not differing, (
            f"{len(differing)} (incident, case event type) counts differ from a crash-free run, "
            f"as (crash-free, crashed): {dict(list(differing.items())[:10])}"
        )
        # the exact re-sends were recorded as duplicates, each once
        assert set(found.duplicates) == resent
        assert all(len(recorded) == 1 for recorded in found.duplicates.values())

        # and the accounting invariant holds, read model included
        mark = time.monotonic()
        wait_s = 60 + EVENTS / 500
        audited = system.audit(wait_s)
        timings["audit"] = time.monotonic() - mark
        assert audited.returncode == 0, audited.stdout[-3000:] + audited.stderr[-2000:]
        report = json.loads(audited.stdout)
        assert report["entered"] == len(events)
        assert report["as_report"] == len(truth)
        assert report["as_duplicate"] == len(events) - generated.originals
    finally:
        case_events_written.close()
        stop_system(system)
        timings["total"] = time.monotonic() - started
        print(  # noqa: T201
            "timings (s): " + ", ".join(f"{name} {value:.1f}" for name, value in timings.items())
        )
