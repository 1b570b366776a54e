"""Assessment figures on a running system: after a replay and the departments' and centres'
actions through the API, `GET /v1/stats` says what the case-event topic says, counted here
from the events themselves (not through the handlers' fold or their assessment)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any

import httpx
import pytest

from cityloop.contracts import (
    CaseAccepted,
    CaseDispatched,
    CaseEscalated,
    CaseEvent,
    CaseOpened,
    CaseReopened,
    CaseResolved,
    CaseReturned,
    LeadConfirmed,
    SupervisionNoticeIssued,
)
from cityloop.loadtest.generate import ScenarioConfig, generate
from tests.api.test_actions import act, outcome
from tests.api.test_live import replay_whole, settled_events
from tests.conftest import (
    RunningSystem,
    bearer,
    every_case,
    start_system,
    stop_system,
    unique_prefix,
)
from tests.streams.test_pipeline import wait_for
from topology import load_topology, tiny_topology_path

pytestmark = pytest.mark.broker


@dataclass
class Counted:
    """One case as its events tell it."""

    opened_at: datetime
    unverified_lead: bool  # a lead (线索) is verified, not accepted
    lead: str | None = None
    loop: str | None = None
    accept_deadline: datetime | None = None
    accepted_at: datetime | None = None
    accepted_late: bool = False
    resolved: bool = False
    returns: int = 0
    escalations: int = 0
    versions: list[int] = field(default_factory=list)


def count_cases(events: list[CaseEvent]) -> dict[str, Counted]:
    cases: dict[str, Counted] = {}
    for event in events:
        if isinstance(event, CaseOpened):
            cases[event.case_id] = Counted(opened_at=event.occurred_at, unverified_lead=event.lead)
        case = cases[event.case_id]
        case.versions.append(event.version)
        if isinstance(event, CaseDispatched):
            case.lead = event.assignment.lead_department
            case.loop = event.assignment.loop.value
            case.accept_deadline = event.accept_deadline
        elif isinstance(event, CaseAccepted):
            case.accepted_at = event.occurred_at
            deadline = case.accept_deadline
            case.accepted_late |= deadline is not None and event.occurred_at > deadline
        elif isinstance(event, SupervisionNoticeIssued) and event.reason.startswith("accept"):
            case.accepted_late = True
        elif isinstance(event, LeadConfirmed):
            case.unverified_lead = False
        elif isinstance(event, CaseResolved):
            case.resolved = True
        elif isinstance(event, CaseReopened):
            case.resolved = False
        elif isinstance(event, CaseReturned):
            case.returns += 1
        elif isinstance(event, CaseEscalated):
            case.escalations += 1
    return cases


def expected_rows(cases: dict[str, Counted]) -> dict[str, dict[str, Any]]:
    """Per lead department: the figures the API must give, counted from the events."""
    groups: dict[str, list[Counted]] = defaultdict(list)
    for case in cases.values():
        if case.lead is not None:
            groups[case.lead].append(case)
    rows = {}
    for lead, members in groups.items():
        accepted = [c for c in members if c.accepted_at is not None]
        resolved = sum(c.resolved for c in members)
        rows[lead] = {
            "received": len(members),
            "accepted": len(accepted),
            "accepted_on_time": (
                sum(not c.accepted_late for c in accepted) / len(accepted) if accepted else None
            ),
            "median_minutes_to_accept": median(
                (c.accepted_at - c.opened_at).total_seconds() / 60
                for c in accepted
                if c.accepted_at
            )
            if accepted
            else None,
            "resolved": resolved,
            "resolution_rate": resolved / len(members),
            "returns": sum(c.returns for c in members),
            "escalations": sum(c.escalations for c in members),
        }
    return rows


def projected(system: RunningSystem, cases: dict[str, Counted]) -> bool:
    """Whether the read model holds every case at the version the topic has."""
    versions = {item["case_id"]: item["version"] for item in every_case(system)}
    return versions == {case_id: max(c.versions) for case_id, c in cases.items()}


def test_stats_say_what_the_case_event_topic_says(kafka_bootstrap: str, tmp_path: Path) -> None:
    topology = load_topology(tiny_topology_path())
    stream = generate(topology, ScenarioConfig(minutes=3, rate=1.0, seed=31))
    system = start_system(kafka_bootstrap, tmp_path, prefix=unique_prefix("statslive"))
    try:
        replay_whole(system, stream.records)
        dispatched = [
            (case_id, case)
            for case_id, case in count_cases(settled_events(system)).items()
            if case.lead is not None and not case.unverified_lead
        ]
        assert len(dispatched) >= 6, dispatched
        # departments act on some of their cases; a centre reopens one, escalates another
        plans = [
            ["accept", "resolve"],
            ["accept", "resolve"],
            ["accept"],
            ["return"],
            ["accept", "resolve", "reopen"],
        ]
        below_the_city = [pair for pair in dispatched[len(plans) :] if pair[1].loop != "city"]
        assert below_the_city, dispatched
        acted = [*zip(dispatched, plans, strict=False), (below_the_city[0], ["escalate"])]
        centre = bearer("duty_officer", topology.city)
        for (case_id, case), plan in acted:
            department = bearer("department", case.lead or "")
            for action in plan:
                body: dict[str, Any] = {"type": action}
                if action == "resolve":
                    body["resolution"] = "done"
                elif action != "accept":
                    body["reason"] = "not ours" if action == "return" else "needs the district"
                headers = centre if action in ("escalate", "reopen") else department
                answer = outcome(system, act(system, case_id, body, headers), headers)
                assert answer["state"] == "applied", (case_id, action, answer)

        cases = count_cases(settled_events(system))
        assert sum(c.returns for c in cases.values()) >= 1
        assert sum(c.escalations for c in cases.values()) >= 1
        assert wait_for(lambda: projected(system, cases), 30)
        opened = [case.opened_at for case in cases.values()]
        period = {
            "since": (min(opened) - timedelta(minutes=1)).isoformat(),
            "until": (max(opened) + timedelta(minutes=1)).isoformat(),
        }
        expected = expected_rows(cases)
        city = httpx.get(f"{system.api_url}/v1/stats", params=period, headers=bearer(), timeout=10)
        assert city.status_code == 200, city.text
        rows = {row["group"]: row for row in city.json()["rows"]}
        assert set(rows) == set(expected)
        for lead, figures in expected.items():
            got = {name: rows[lead][name] for name in figures}
            # the API counts minutes to the millisecond (api.db.minutes_between)
            assert got == pytest.approx(figures, abs=2 / 60_000), lead
        # by loop, the same cases are counted once each
        by_loop = httpx.get(
            f"{system.api_url}/v1/stats",
            params={**period, "by": "loop"},
            headers=bearer(),
            timeout=10,
        ).json()
        assert sum(row["received"] for row in by_loop["rows"]) == len(
            [c for c in cases.values() if c.lead is not None]
        )
        # a department's own figures are its row of the city's table; of the others, only
        # the cases it shares (co-handling)
        lead = dispatched[0][1].lead or ""
        own = httpx.get(
            f"{system.api_url}/v1/stats",
            params=period,
            headers=bearer("department", lead),
            timeout=10,
        ).json()
        own_rows = {row["group"]: row for row in own["rows"]}
        assert own_rows[lead] == rows[lead]
        assert set(own_rows) < set(rows)
    finally:
        stop_system(system)
