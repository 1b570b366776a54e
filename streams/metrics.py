"""The worker's Prometheus metrics, served on a port of its own (CITYLOOP_WORKER_METRICS_PORT):
decisions by kind and dead letters by reason (counters: rate() gives them per second), case
events written, the case book's size, each rebuild's time, and the consumer lag per partition.

The hot path only increments counters bound to their labels when the worker starts (no label
lookup, no allocation per record); the book's size is read when Prometheus scrapes, and the lag
is measured every few seconds in the worker's loop, where Faust's consumer lives."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from cityloop.contracts import DeadLetterReason

log = logging.getLogger(__name__)

DECISION_KINDS = ("incident", "command", "deadline", "mode", "absorb")
"""What a decision was made on: a new report, a command, a deadline passed on a tick, an area's
mode switching, a merge absorbing another case's reports."""

LAG_INTERVAL_S = 2.0

LOADED_FROM = ("snapshot", "history")


class WorkerMetrics:
    """One registry for the worker process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        decisions = Counter(
            "cityloop_worker_decisions",
            "Decisions the worker wrote, by what they were made on",
            ["kind"],
            registry=self.registry,
        )
        self.decisions = {kind: decisions.labels(kind=kind) for kind in DECISION_KINDS}
        self.case_events = Counter(
            "cityloop_worker_case_events",
            "Case events the worker wrote",
            registry=self.registry,
        )
        dead_letters = Counter(
            "cityloop_worker_dead_letters",
            "Records the worker dead-lettered, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.dead_letters = {
            reason.value: dead_letters.labels(reason=reason.value) for reason in DeadLetterReason
        }
        self.rebuild_seconds = Histogram(
            "cityloop_worker_rebuild_seconds",
            "Time to load a case partition's book: its snapshot and the case events after it, or "
            "its whole history",
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=self.registry,
        )
        self.snapshot_seconds = Histogram(
            "cityloop_worker_snapshot_seconds",
            "Time to write a case partition's snapshot",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.snapshot_hold_seconds = Histogram(
            "cityloop_worker_snapshot_hold_seconds",
            "Time decisions waited for a snapshot: the producer's flush and the due books' "
            "copies (the snapshot is then written beside the decisions)",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
            registry=self.registry,
        )
        self.full_collection_seconds = Histogram(
            "cityloop_worker_full_collection_seconds",
            "Time a full garbage collection held the worker (streams/garbage.py)",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        loads = Counter(
            "cityloop_worker_partition_loads",
            "Case partitions loaded, from a snapshot and the case events after it, or from "
            "their whole history",
            ["read_from"],
            registry=self.registry,
        )
        self.partition_loads = {where: loads.labels(read_from=where) for where in LOADED_FROM}
        self.rebuild_events = Gauge(
            "cityloop_worker_rebuild_events",
            "Case events the last load of a case partition folded",
            registry=self.registry,
        )
        self.cases = Gauge(
            "cityloop_worker_cases", "Cases in the case book", registry=self.registry
        )
        self.open_cases = Gauge(
            "cityloop_worker_open_cases", "Open cases in the case book", registry=self.registry
        )
        self.lag = Gauge(
            "cityloop_worker_consumer_lag",
            "Records of a partition the worker has not committed yet (high watermark - "
            "committed offset)",
            ["topic", "partition"],
            registry=self.registry,
        )

    def read_book_size(self, cases: Callable[[], int], open_cases: Callable[[], int]) -> None:
        """The book's size, read when scraped (from the server's thread: the callables must
        only read)."""
        self.cases.set_function(cases)
        self.open_cases.set_function(open_cases)

    def set_lag(self, lag: Iterable[tuple[str, int, int]]) -> None:
        """The lag of each partition the worker has now, (topic, partition, records)."""
        self.lag.clear()  # partitions that moved to another worker are not this one's lag
        for topic, partition, records in lag:
            self.lag.labels(topic=topic, partition=str(partition)).set(records)

    def serve(self, host: str, port: int) -> bool:
        """Serve /metrics on `port` (0: not at all) from a daemon thread. A port that is taken
        is said aloud and the worker goes on without metrics: counting must not stop work."""
        if port == 0:
            return False
        try:
            start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            log.error("no worker metrics: cannot serve them on %s:%s (%s)", host, port, exc)
            return False
        log.info("worker metrics at http://%s:%s/metrics", host, port)
        return True


def consumer_lag(consumer: Any, committed: Mapping[Any, int | None]) -> list[tuple[str, int, int]]:
    """(topic, partition, lag) of every partition assigned to a Faust consumer: its high
    watermark (as the fetches report it, which the embedded broker gets right) less the group's
    committed offset (none yet: the whole partition waits, as the worker reads from the start).
    A committed offset follows the records processed and flushed, never those only fetched, so
    a lag of 0 means the worker is done with what the partition holds. Partitions not fetched
    from yet are left out."""
    lag = []
    for tp in sorted(consumer.assignment()):
        high = consumer.highwater(tp)
        if high is None or high < 0:
            continue
        lag.append((tp.topic, tp.partition, max(high - (committed.get(tp) or 0), 0)))
    return lag
