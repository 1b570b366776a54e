"""The board's reads: the open cases a principal may see, with the filters of `GET /v1/cases`,
and their counts by area and loop. Scoping is the API's own (`seen_by`, `seen_cases`) and so
are the filters (`CONDITIONS`): the board adds only "open" and the columns it shows."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, func, select

from api.db import CaseEventRow, CaseRow
from api.params import is_code
from api.reading import Reader
from api.routes.cases import (
    SUMMARY_COLUMNS,
    Conditions,
    Seen,
    handled_in,
    narrowed,
    seen_by,
    seen_cases,
    summary_fields,
    values_of,
)
from cityloop.contracts import Loop, Source
from handlers.access import Principal, sees_personal_data
from handlers.case import OPEN_STATUSES
from topology import Topology

DESK_STATUS = "awaiting_dispatch"
"""Cases waiting at a 12345 dispatch desk for a person to decide (the desk's queue)."""

WORKFLOW = (DESK_STATUS, "lead", "dispatched", "accepted", "in_progress", "returned")

BOARD_STATUSES: tuple[str, ...] = (
    *WORKFLOW,
    *sorted({status.value for status in OPEN_STATUSES} - set(WORKFLOW)),
)
"""The statuses the board shows, a case still being handled, in the order a case meets them
(the desk's before the case handlers' own)."""

BOARD_LIMIT = 500
"""The newest open cases a board lists (the counts are of all of them)."""

BOARD_COLUMNS = (
    *SUMMARY_COLUMNS,
    CaseRow.accept_deadline,
    CaseRow.resolve_deadline,
    CaseRow.lat,
    CaseRow.lon,
    CaseRow.state["supervision_notices"].label("supervision_notices"),
)

OPEN = CaseRow.status.in_(bindparam("open_statuses", expanding=True))


@dataclass(frozen=True)
class BoardFilters:
    """What a board (or map) is narrowed to; the same filters as `GET /v1/cases`."""

    status: str | None = None
    category: str | None = None
    loop: str | None = None
    department: str | None = None
    area: str | None = None
    source: str | None = None
    overdue: bool | None = None

    @classmethod
    def of(cls, query: Mapping[str, str]) -> BoardFilters:
        """From a page's query string; a value no case can have is dropped, not refused."""

        def code(name: str) -> str | None:
            value = query.get(name, "").strip()
            return value if value and is_code(value) else None

        loops = {loop.value for loop in Loop}
        sources = {source.value for source in Source}
        overdue = query.get("overdue", "")
        return cls(
            status=code("status") if query.get("status") in BOARD_STATUSES else None,
            category=code("category"),
            loop=code("loop") if query.get("loop") in loops else None,
            department=code("department"),
            area=code("area"),
            source=code("source") if query.get("source") in sources else None,
            overdue={"true": True, "false": False}.get(overdue),
        )

    def query(self, **changes: str | None) -> dict[str, str]:
        """The filters as a query string's parameters, with some changed."""
        values: dict[str, str | None] = {
            "status": self.status,
            "category": self.category,
            "loop": self.loop,
            "department": self.department,
            "area": self.area,
            "source": self.source,
            "overdue": None if self.overdue is None else str(self.overdue).lower(),
            **changes,
        }
        return {name: value for name, value in values.items() if value}

    @property
    def active(self) -> bool:
        return bool(self.query())


def conditions_of(filters: BoardFilters, now: datetime) -> Conditions:
    """The filters as conditions of `GET /v1/cases` (api.routes.cases.CONDITIONS)."""
    wanted: Conditions = {}
    if filters.status:
        wanted["status"] = {"status": filters.status}
    if filters.category:
        wanted["category"] = {"category": filters.category}
    if filters.loop:
        wanted["loop"] = {"loop": filters.loop}
    if filters.department:
        wanted["department"] = {"department": filters.department}
    if filters.area:
        wanted |= handled_in(filters.area)
    if filters.source:
        wanted["source"] = {"source": filters.source}
    if filters.overdue is not None:
        wanted["overdue" if filters.overdue else "not_overdue"] = {"now": now}
    return wanted


@functools.lru_cache(maxsize=128)
def board_query(seen: Seen, conditions: tuple[str, ...]) -> Select[*tuple[Any, ...]]:
    return (
        narrowed(seen_cases(select(*BOARD_COLUMNS).where(OPEN), seen), conditions)
        .order_by(CaseRow.opened_at.desc(), CaseRow.case_id.desc())
        .limit(bindparam("limit"))
    )


@functools.lru_cache(maxsize=128)
def counts_query(seen: Seen, conditions: tuple[str, ...]) -> Select[*tuple[Any, ...]]:
    return narrowed(
        seen_cases(
            select(CaseRow.handling_area, CaseRow.loop, CaseRow.status, func.count()).where(OPEN),
            seen,
        ),
        conditions,
    ).group_by(CaseRow.handling_area, CaseRow.loop, CaseRow.status)


NEWEST_POSITION = select(func.max(CaseEventRow.seq))


async def stream_position(read: Reader) -> int:
    """The live stream's newest position: a page read after it follows the stream from there."""
    position = await read(lambda connection: connection.scalar(NEWEST_POSITION))
    return int(position or 0)


@dataclass(frozen=True)
class BoardCase:
    """An open case as the board shows it: its summary (`CaseSummary`'s fields), deadlines,
    where it is, and whether it is overdue or supervised (督办)."""

    summary: dict[str, Any]
    accept_deadline: datetime | None
    resolve_deadline: datetime | None
    lat: float | None
    lon: float | None
    supervision_notices: int
    overdue: bool

    @property
    def case_id(self) -> str:
        return str(self.summary["case_id"])

    @property
    def next_deadline(self) -> datetime | None:
        pending = [d for d in (self.accept_deadline, self.resolve_deadline) if d is not None]
        return min(pending) if pending else None

    @property
    def urgency(self) -> tuple[int, int, float]:
        """Overdue first, then supervised, then the newest."""
        return (
            0 if self.overdue else 1,
            0 if self.supervision_notices else 1,
            -self.summary["opened_at"].timestamp(),
        )


@dataclass
class Board:
    cases: list[BoardCase]
    truncated: bool
    counts: Counter[tuple[str | None, str | None, str]] = field(default_factory=Counter)
    """Open cases by (handling area, loop, status), of all that match, not only those listed."""
    position: int = 0
    """The live stream's position when the board was read: it follows from there."""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def by_loop(self, leaving_out: str = "") -> dict[str | None, list[BoardCase]]:
        """The listed cases by loop, the most urgent first; those of one status left out."""
        lanes: dict[str | None, list[BoardCase]] = {}
        for case in sorted(self.cases, key=lambda case: case.urgency):
            if case.summary["status"] != leaving_out:
                lanes.setdefault(case.summary["loop"], []).append(case)
        return lanes

    def count_status(self, status: str) -> int:
        return sum(number for (_, _, counted), number in self.counts.items() if counted == status)

    def by_loop_and_status(self) -> Counter[tuple[str | None, str]]:
        counted: Counter[tuple[str | None, str]] = Counter()
        for (_, loop, case_status), number in self.counts.items():
            counted[(loop, case_status)] += number
        return counted


def is_overdue(
    accept_deadline: datetime | None, resolve_deadline: datetime | None, now: datetime
) -> bool:
    """As `GET /v1/cases?overdue=true` has it: a deadline passed unmet."""
    return any(d is not None and d < now for d in (accept_deadline, resolve_deadline))


async def read_board(
    read: Reader, principal: Principal, topology: Topology, filters: BoardFilters, now: datetime
) -> Board:
    """The open cases the principal may see that meet the filters, newest first (at most
    BOARD_LIMIT), and the counts of all of them."""
    seen, seen_values = seen_by(principal, topology.city)  # a publisher is refused here
    wanted = conditions_of(filters, now)
    statuses = [filters.status] if filters.status else list(BOARD_STATUSES)
    values = values_of(wanted, seen_values, {"open_statuses": statuses})
    listing = board_query(seen, tuple(wanted))
    counting = counts_query(seen, tuple(wanted))

    def board(connection: Any) -> tuple[Sequence[Any], Sequence[Any], int | None]:
        position = connection.scalar(NEWEST_POSITION)
        rows = connection.execute(listing, {**values, "limit": BOARD_LIMIT + 1}).all()
        return rows, connection.execute(counting, values).all(), position

    rows, counted, position = await read(board)
    unmasked = sees_personal_data(principal)
    cases = [
        BoardCase(
            summary=summary_fields(row, sees_personal_data=unmasked),
            accept_deadline=row.accept_deadline,
            resolve_deadline=row.resolve_deadline,
            lat=row.lat,
            lon=row.lon,
            supervision_notices=int(row.supervision_notices or 0),
            overdue=is_overdue(row.accept_deadline, row.resolve_deadline, now),
        )
        for row in rows[:BOARD_LIMIT]
    ]
    counts: Counter[tuple[str | None, str | None, str]] = Counter()
    for area, loop, case_status, number in counted:
        counts[(area, loop, case_status)] += number
    return Board(cases, len(rows) > BOARD_LIMIT, counts, position or 0)


def home_area(principal: Principal, topology: Topology) -> str:
    """Where a principal's view of the city starts: its centre's area, its department's area,
    or the whole city."""
    if principal.role.value == "department":
        department = topology.department(principal.scope)
        return department.area if department is not None else topology.city
    if principal.scope and topology.area(principal.scope) is not None:
        return principal.scope
    return topology.city


def roll_up(
    counts: Mapping[tuple[str | None, str | None, str], int], topology: Topology, focus: str
) -> list[tuple[str | None, dict[str | None, int]]]:
    """Counts by loop for each area just below `focus`, `focus` itself (handled there), and
    None (outside it, or not yet dispatched anywhere); the busiest first."""
    rows: dict[str | None, Counter[str | None]] = {}
    for (area, loop, _), number in counts.items():
        chain = topology.ancestors(area) if area else ()
        if area == focus:
            below: str | None = focus
        elif focus in chain[1:]:
            below = chain[chain.index(focus) - 1]
        else:
            below = None
        rows.setdefault(below, Counter())[loop] += number
    ordered = sorted(rows.items(), key=lambda item: (item[0] is None, -sum(item[1].values())))
    return [(area, dict(loops)) for area, loops in ordered]
