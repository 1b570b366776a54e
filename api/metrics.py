"""Prometheus metrics of the API process: ingest counters, and read-model gauges at scrape time."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from sqlalchemy import Connection, Row, func, select

from api.db import CaseEventRow, CaseRow
from api.reading import Reader


class Metrics:
    """One registry per app, so tests and several apps in one process do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events_in = Counter(
            "cityloop_events_in",
            "Events accepted by HTTP ingest",
            ["source"],
            registry=self.registry,
        )
        self.events_refused = Counter(
            "cityloop_events_refused",
            "Events refused by HTTP ingest",
            ["source", "reason"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "cityloop_dead_letters",
            "Dead letters seen by the projector",
            ["reason"],
            registry=self.registry,
        )
        self.cases = Gauge(
            "cityloop_cases", "Cases in the read model", ["status", "loop"], registry=self.registry
        )
        self.escalations = Gauge(
            "cityloop_escalations", "CaseEscalated events in the read model", registry=self.registry
        )
        self.projected = Gauge(
            "cityloop_projected_events",
            "Case events this API has projected",
            registry=self.registry,
        )
        self.unstorable_events = Counter(
            "cityloop_unstorable_case_events",
            "Case events the read model's database refused (skipped, logged): should stay 0",
            registry=self.registry,
        )
        self.projection_lag = Gauge(
            "cityloop_projection_lag_seconds",
            "Age of the newest projected case event when it was projected",
            registry=self.registry,
        )

    async def scrape(self, read: Reader, projected: int) -> bytes:
        counts, escalations = await read(case_counts)
        self.cases.clear()
        for status, loop, count in counts:
            self.cases.labels(status=status, loop=loop or "none").set(count)
        self.escalations.set(escalations)
        self.projected.set(projected)
        return generate_latest(self.registry)


CASE_COUNTS = select(CaseRow.status, CaseRow.loop, func.count()).group_by(
    CaseRow.status, CaseRow.loop
)
ESCALATIONS = (
    select(func.count()).select_from(CaseEventRow).where(CaseEventRow.type == "CaseEscalated")
)


def case_counts(connection: Connection) -> tuple[list[Row[str, str | None, int]], int]:
    """Cases by status and loop, and the escalations ever made."""
    return list(connection.execute(CASE_COUNTS).all()), connection.scalar(ESCALATIONS) or 0
