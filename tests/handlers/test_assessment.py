"""Assessment: late steps are remembered on the case, and the table adds up what it should."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from handlers.assessment import CaseFigures, assess
from handlers.lifecycle import decide_command
from tests.handlers.test_lifecycle import command, lead_dept, open_case
from topology import load_topology, tiny_topology_path

TINY = load_topology(tiny_topology_path())
T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def test_a_late_acceptance_is_remembered_after_the_deadline_is_gone() -> None:
    case = open_case()
    assert case.accept_deadline is not None and not case.accept_missed
    late = case.accept_deadline + timedelta(minutes=1)
    accepted = decide_command(command("accept", lead_dept(case), case), case, TINY, {}, late).state
    assert accepted is not None
    assert accepted.accept_missed and accepted.accept_deadline is None
    assert accepted.resolve_deadline is not None
    on_time = accepted.resolve_deadline - timedelta(minutes=1)
    resolved = decide_command(
        command("resolve", lead_dept(case), accepted, resolution="done"),
        accepted,
        TINY,
        {},
        on_time,
    ).state
    assert resolved is not None and not resolved.resolve_missed and resolved.accept_missed


def figures(group: str, **fields: Any) -> CaseFigures:
    defaults: dict[str, Any] = {
        "minutes_to_accept": None,
        "minutes_to_resolve": None,
        "accept_missed": False,
        "resolve_missed": False,
        "returns": 0,
        "escalations": 0,
        "reopens": 0,
    }
    return CaseFigures(group=group, **{**defaults, **fields})


def test_the_table_adds_up_per_group() -> None:
    table = assess(
        [
            figures("b", minutes_to_accept=10),
            figures(
                "a",
                minutes_to_accept=10,
                minutes_to_resolve=100,
                returns=1,
            ),
            figures(
                "a",
                minutes_to_accept=30,
                accept_missed=True,
                minutes_to_resolve=300,
                resolve_missed=True,
                escalations=2,
            ),
            figures("a", minutes_to_accept=20, reopens=1),  # reopened, open
            figures("a"),
        ]
    )
    assert [row.group for row in table] == ["a", "b"]
    a, b = table
    assert (a.received, a.accepted, a.resolved) == (4, 3, 2)
    assert a.accepted_on_time == 2 / 3 and a.resolved_on_time == 1 / 2
    assert a.median_minutes_to_accept == 20 and a.median_minutes_to_resolve == 200
    assert (a.returns, a.escalations) == (1, 2)
    assert a.reopen_rate == 1 / 3  # of the three ever resolved, one was reopened
    assert a.resolution_rate == 2 / 4
    assert (b.received, b.resolved, b.resolved_on_time, b.median_minutes_to_resolve) == (
        1,
        0,
        None,
        None,
    )
    assert assess([]) == []
