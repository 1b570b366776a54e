"""Effectively once: a worker killed with SIGKILL during a burst and restarted loses no event and
opens no extra case. Checked on the case-event topic itself, against known ground truth."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from cityloop.contracts import (
    CASE_EVENT_ADAPTER,
    CaseOpened,
    DuplicateReceived,
    ReportAttached,
)
from tests.conftest import RunningSystem, start_system, stop_system, unique_prefix
from tests.reliability.orders import work_order

pytestmark = [pytest.mark.broker, pytest.mark.long(50)]

# spots 250 m apart over the tiny topology; three families, so three clusters per spot
CATEGORIES = ("pothole", "garbage_exposed", "noise")
SPOTS = [(30.644 + 0.00225 * row, 104.050 + 0.0029 * col) for row in range(16) for col in range(16)]
METRE = 1 / 111_320
CALLERS = 6


def burst() -> tuple[list[tuple[str, bytes]], dict[str, str]]:
    """Events (key, value) and the ground truth: idempotency key → real incident."""
    events: list[tuple[str, bytes]] = []
    truth: dict[str, str] = {}
    for spot_number, (lat, lon) in enumerate(SPOTS):
        for category in CATEGORIES:
            incident = f"{category}@{spot_number}"
            # six callers at three points 8 m apart: a burst long enough that a worker at a
            # few thousand events a second is still in it at the second kill (with three
            # callers a faster worker had finished it). The points are the ones three callers
            # always had: spread wider, callers near a cell's edge fall in two cells
            for caller in range(CALLERS):
                order_id = f"{incident}#{caller}"
                event = work_order(
                    order_id,
                    "/crash-test",
                    "2026-11-22T08:00:00+08:00",
                    category,
                    f"report {caller} of {incident}",
                    lat + caller % 3 * 8 * METRE,
                    lon,
                )
                key = f"/crash-test|{order_id}"
                truth[key] = incident
                events.append((key, event))
    retries = events[::40]  # exact re-sends of some events
    return events + retries, truth


def case_history(system: RunningSystem) -> Iterator[Any]:
    consumer = KafkaConsumer(
        system.topic("case-events"),
        bootstrap_servers=system.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=3000,
        max_partition_fetch_bytes=4 << 20,  # the crash test at scale reads 66,000 of them
    )
    try:
        for record in consumer:
            yield CASE_EVENT_ADAPTER.validate_json(record.value)
    finally:
        consumer.close()


class CaseEventCount:
    """How many case events the system's topic holds, asked of one consumer kept open: a
    consumer made for each look costs ~9 ms of CPU, taken from the worker under test twenty
    times a second while a crash test waits on it."""

    def __init__(self, system: RunningSystem) -> None:
        self._consumer = KafkaConsumer(bootstrap_servers=system.bootstrap)
        self._topic = system.topic("case-events")
        self._partitions: list[TopicPartition] = []

    def __call__(self) -> int:
        if not self._partitions:  # the worker makes the topic when it starts
            found = self._consumer.partitions_for_topic(self._topic) or set()
            self._partitions = [TopicPartition(self._topic, number) for number in sorted(found)]
        if not self._partitions:
            return 0
        return sum(self._consumer.end_offsets(self._partitions).values())

    def __enter__(self) -> CaseEventCount:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._consumer.close()


def wait_for_progress(written: CaseEventCount, at_least: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while written() < at_least:
        assert time.monotonic() < deadline, f"the worker wrote fewer than {at_least} case events"
        time.sleep(0.05)


def account(
    system: RunningSystem,
) -> tuple[dict[str, set[str]], dict[str, int], dict[tuple[str, int], set[str]]]:
    """Per input key: the cases that took it as a report; per key: duplicates recorded;
    per (case, version): the distinct event ids written for it (must be exactly one)."""
    reported: dict[str, set[str]] = defaultdict(set)
    duplicates: dict[str, set[str]] = defaultdict(set)
    versions: dict[tuple[str, int], set[str]] = defaultdict(set)
    for event in case_history(system):
        versions[(event.case_id, event.version)].add(event.model_dump_json(exclude={"occurred_at"}))
        if isinstance(event, CaseOpened):
            reported[event.first_report.idempotency_key].add(event.case_id)
        elif isinstance(event, ReportAttached):
            reported[event.report.idempotency_key].add(event.case_id)
        elif isinstance(event, DuplicateReceived):
            duplicates[event.idempotency_key].add(event.event_id)
    return reported, {k: len(v) for k, v in duplicates.items()}, versions


def test_sigkill_during_a_burst_loses_nothing_and_opens_no_extra_case(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    system = start_system(kafka_bootstrap, tmp_path, prefix=unique_prefix("crash"))
    try:
        with CaseEventCount(system) as case_events_written:
            events, truth = burst()
            producer = KafkaProducer(bootstrap_servers=system.bootstrap, acks="all", linger_ms=5)
            for key, value in events:
                producer.send(system.topic("events.hotline"), key=key.encode(), value=value)
            producer.flush()
            producer.close()

            # kill the worker twice while it is working through the burst: once it has written
            # some case events, and again after it has made progress since the restart
            progress_at_kills = []
            threshold = 150
            for _ in range(2):
                wait_for_progress(case_events_written, threshold, timeout_s=90)
                system.kill("worker")
                progress_at_kills.append(case_events_written())
                system.start("worker")
                threshold = progress_at_kills[-1] + 600
            expected_keys = set(truth)
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline:
                reported, duplicates, versions = account(system)
                if set(reported) >= expected_keys:
                    break
                time.sleep(2)
            missing = expected_keys - set(reported)
            assert not missing, (
                f"{len(missing)} events never reached a case:\n{system.log('worker')[-3000:]}"
            )
            # both kills landed mid-burst: work had been done, and much was left to do
            written = case_events_written()
            print(f"case events at the kills: {progress_at_kills} of {written}")  # noqa: T201
            assert progress_at_kills[1] < written * 0.9, (progress_at_kills, written)

            # every event is a report of exactly one case
            split = {key: cases for key, cases in reported.items() if len(cases) > 1}
            assert not split, (
                f"{len(split)} events on several cases, e.g. {list(split.items())[:3]}"
            )
            # no extra cases: one per real incident, and no case mixes two incidents
            incidents_of_case: dict[str, set[str]] = defaultdict(set)
            for key, cases in reported.items():
                incidents_of_case[next(iter(cases))].add(truth[key])
            assert len(incidents_of_case) == len(set(truth.values()))
            assert all(len(incidents) == 1 for incidents in incidents_of_case.values())
            # one history per case: a version is never written with two different contents
            conflicts = {slot: bodies for slot, bodies in versions.items() if len(bodies) > 1}
            assert not conflicts, list(conflicts.items())[:3]
            # the exact re-sends were recorded as duplicates, each once
            # and the accounting invariant holds, read model included
            audited = system.audit()
            assert audited.returncode == 0, audited.stdout[-3000:] + audited.stderr[-2000:]
            assert json.loads(audited.stdout)["entered"] == len(events)
            resent = {key for key, _ in events[len(truth) :]}
            assert set(duplicates) == resent and set(duplicates.values()) == {1}
    finally:
        stop_system(system)
