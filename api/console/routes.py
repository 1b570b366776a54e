"""The console's pages: sign-in, the board, the map, a case, and the assessment figures.

Thin: each page reads through the API's own functions (the board's query is built from the
case list's scoping and filters, a case is `GET /v1/cases/{id}` itself, the figures are
`GET /v1/stats` itself), so a page shows what the signed-in principal's token would get from
the API, masking included, and renders it."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse

from api.auth import InvalidToken, VerifiedTokens
from api.console import labels
from api.console.actions import action_forms, role_actions, suggested
from api.console.board import (
    BOARD_STATUSES,
    DESK_STATUS,
    Board,
    BoardFilters,
    home_area,
    read_board,
    roll_up,
    stream_position,
)
from api.console.geo import map_base, nudge, where
from api.console.session import (
    CONSOLE,
    ConsolePrincipal,
    end_session,
    may_use_console,
    safe_next,
    start_session,
    ticket_from,
)
from api.deps import NowDep, ReaderDep, TopologyDep, same_origin
from api.params import is_code
from api.routes.cases import get_case, no_case
from api.routes.stats import stats as read_stats
from cityloop.contracts import Loop, Source
from handlers.access import Principal
from handlers.assessment import Grouping
from topology import Topology

router = APIRouter(prefix=CONSOLE, include_in_schema=False)

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
"""Everything a page uses comes from this server: a policy the browser holds it to."""


def render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    templates = request.app.state.console_templates
    response: HTMLResponse = templates.TemplateResponse(
        request, template, {"labels": labels, **context}, status_code=status_code
    )
    response.headers.update(PAGE_HEADERS)
    return response


def common(request: Request, principal: Principal, topology: Topology, page: str) -> dict[str, Any]:
    """What every signed-in page shows: who is signed in, and where it is."""
    return {
        "principal": principal,
        "who": labels.who(topology, principal),
        "topology": topology,
        "page": page,
        "event_types": request.app.state.console_event_types,
    }


def template_for(request: Request, page: str) -> str:
    """A page's template, or its fragment's: the part of it a live page fetches again and
    swaps in (`/console/fragments/...`)."""
    return (
        f"_{page}.html" if request.url.path.startswith(f"{CONSOLE}/fragments/") else f"{page}.html"
    )


async def shown(
    request: Request,
    principal: Principal,
    topology: Topology,
    template: str,
    context: Awaitable[dict[str, Any]],
) -> Response:
    """A page, or the API's refusal of what it reads as a page that says why."""
    try:
        return render(request, template, await context)
    except HTTPException as exc:
        detail = exc.detail if isinstance(exc.detail, dict) else {"message": str(exc.detail)}
        return render(
            request,
            "refused.html",
            {
                **common(request, principal, topology, "refused"),
                "status": exc.status_code,
                "detail": detail,
            },
            status_code=exc.status_code,
        )


# --- signing in ----------------------------------------------------------------------------


@router.get("/login")
async def login_page(
    request: Request,
    now: NowDep,
    ticket: Annotated[str | None, Query(max_length=4000)] = None,
    next_path: Annotated[str | None, Query(alias="next", max_length=2000)] = None,
    reason: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """The sign-in page; with a login link's ticket, the ticket is exchanged for a session and
    the browser moves on to a clean address (the ticket is spent: history keeps nothing)."""
    if ticket is None:
        return render(request, "login.html", {"next": safe_next(next_path), "reason": reason})
    try:
        principal = ticket_from(request, ticket, now)
    except InvalidToken as exc:
        return render(
            request,
            "login.html",
            {"next": CONSOLE, "reason": "ticket", "problem": str(exc)},
            status_code=status.HTTP_400_BAD_REQUEST,
        )
    refusal = may_use_console(principal)
    if refusal:
        return render(
            request,
            "login.html",
            {"next": CONSOLE, "reason": "refused", "problem": refusal},
            status_code=status.HTTP_403_FORBIDDEN,
        )
    # a page of our own, not a redirect: the next request is then one this site makes, and a
    # SameSite=Strict cookie goes with it even when the link was opened from another site
    response = render(request, "entering.html", {"next": safe_next(next_path)})
    response.headers["Referrer-Policy"] = "no-referrer"
    start_session(request, response, principal, now)
    return response


@router.post("/login")
async def sign_in(
    request: Request,
    now: NowDep,
    token: Annotated[str, Form(max_length=8000)],
    next_path: Annotated[str, Form(alias="next", max_length=2000)] = CONSOLE,
) -> Response:
    """A bearer token pasted on the sign-in page becomes a session."""
    if not same_origin(request):
        return render(request, "login.html", {"next": CONSOLE, "reason": "cross_site"}, 403)
    tokens: VerifiedTokens = request.app.state.tokens
    try:
        principal, expires = tokens.verified(token.strip())
    except InvalidToken as exc:
        return render(
            request,
            "login.html",
            {"next": safe_next(next_path), "reason": "token", "problem": str(exc)},
            status_code=status.HTTP_401_UNAUTHORIZED,
        )
    refusal = may_use_console(principal)
    if refusal:
        return render(
            request,
            "login.html",
            {"next": CONSOLE, "reason": "refused", "problem": refusal},
            status_code=status.HTTP_403_FORBIDDEN,
        )
    response = RedirectResponse(safe_next(next_path), status_code=status.HTTP_303_SEE_OTHER)
    start_session(request, response, principal, now, expires)
    return response


@router.post("/logout")
async def sign_out(request: Request) -> Response:
    response = RedirectResponse(
        f"{CONSOLE}/login?reason=bye", status_code=status.HTTP_303_SEE_OTHER
    )
    end_session(request, response)
    return response


# --- the board -----------------------------------------------------------------------------


def category_groups(topology: Topology) -> list[tuple[str, list[tuple[str, str]]]]:
    """The catalogue for a choice, read from the topology in service: each category under its
    class (or its family, in a catalogue without classes)."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for code, category in topology.categories.items():
        group = topology.classes.get(topology.class_of(code) or "")
        heading = group.name if group is not None else category.family
        groups.setdefault(heading, []).append((code, category.name))
    return list(groups.items())


def area_choices(topology: Topology, home: str) -> list[tuple[str, str]]:
    """The principal's own area and two levels below it, indented."""
    choices = [(home, labels.area_name(topology, home))]
    for child in topology.children(home):
        choices.append((child, "　" + labels.area_name(topology, child)))
        for grandchild in topology.children(child):
            choices.append((grandchild, "　　" + labels.area_name(topology, grandchild)))
    return choices


def filter_options(topology: Topology, principal: Principal, board: Board) -> dict[str, Any]:
    return {
        "statuses": [(s, labels.status_label(s)) for s in BOARD_STATUSES],
        "loops": [(loop.value, labels.loop_label(loop.value)) for loop in Loop],
        "sources": [
            (source.value, labels.SOURCE.get(source.value, source.value)) for source in Source
        ],
        "categories": category_groups(topology),
        "areas": area_choices(topology, home_area(principal, topology)),
        "departments": sorted(
            {
                case.summary["lead_department"]
                for case in board.cases
                if case.summary["lead_department"]
            }
        ),
    }


def in_view(filters: BoardFilters, principal: Principal, topology: Topology) -> str:
    """The area a board or map is of: the one filtered on, or the principal's own."""
    if filters.area and topology.area(filters.area) is not None:
        return filters.area
    return home_area(principal, topology)


async def board_context(
    request: Request, principal: Principal, read: ReaderDep, topology: Topology, now: datetime
) -> dict[str, Any]:
    filters = BoardFilters.of(request.query_params)
    board = await read_board(read, principal, topology, filters, now)
    focus = in_view(filters, principal, topology)
    desk = [case for case in board.cases if case.summary["status"] == DESK_STATUS]
    lanes = board.by_loop(leaving_out=DESK_STATUS)
    return {
        **common(request, principal, topology, "board"),
        "filters": filters,
        "board": board,
        "now": now,
        "focus": focus,
        "lanes": [(loop, lanes.get(loop, [])) for loop in (None, *labels.LOOP_ORDER)],
        "matrix": board.by_loop_and_status(),
        "areas": roll_up(board.counts, topology, focus),
        "desk": sorted(desk, key=lambda case: case.urgency),
        "desk_total": board.count_status(DESK_STATUS),
        "is_dispatcher": principal.role.value == "dispatcher",
        "options": filter_options(topology, principal, board),
        "desk_status": DESK_STATUS,
    }


@router.get("")
@router.get("/fragments/board")
async def board(
    request: Request,
    principal: ConsolePrincipal,
    read: ReaderDep,
    topology: TopologyDep,
    now: NowDep,
) -> Response:
    context = board_context(request, principal, read, topology, now)
    return await shown(request, principal, topology, template_for(request, "board"), context)


# --- the map -------------------------------------------------------------------------------


async def map_context(
    request: Request, principal: Principal, read: ReaderDep, topology: Topology, now: datetime
) -> dict[str, Any]:
    filters = BoardFilters.of(request.query_params)
    focus = in_view(filters, principal, topology)
    board = await read_board(read, principal, topology, filters, now)
    base = map_base(topology, focus)
    counts: dict[str, int] = {}
    for (area, _, _), number in board.counts.items():
        for above in topology.ancestors(area) if area else ():
            counts[above] = counts.get(above, 0) + number
    placed = [
        (case, point)
        for case in sorted(board.cases, key=lambda case: case.urgency, reverse=True)
        if (point := where(topology, case.lat, case.lon, case.summary["area_codes"])) is not None
    ]
    whole = request.query_params.get("fit") == "all"
    frame = base.frame(
        () if whole else [region.code for region in base.regions if counts.get(region.code)],
        () if whole else [point for _, point in placed],
    )
    markers = []
    for case, point in placed:
        x, y = frame.xy(point)
        dx, dy = nudge(case.case_id, 9)
        markers.append({"case": case, "x": x + dx, "y": y + dy})
    chain = list(reversed(topology.ancestors(focus)))
    home = home_area(principal, topology)
    return {
        **common(request, principal, topology, "map"),
        "filters": filters,
        "board": board,
        "base": base,
        "frame": frame,
        "whole": whole,
        "markers": markers,
        "region_counts": counts,
        "breadcrumb": chain[chain.index(home) :] if home in chain else [focus],
        "now": now,
    }


@router.get("/map")
@router.get("/fragments/map")
async def city_map(
    request: Request,
    principal: ConsolePrincipal,
    read: ReaderDep,
    topology: TopologyDep,
    now: NowDep,
) -> Response:
    context = map_context(request, principal, read, topology, now)
    return await shown(request, principal, topology, template_for(request, "map"), context)


# --- a case --------------------------------------------------------------------------------


def pending_extension(timeline: list[dict[str, Any]]) -> bool:
    """Whether the last extension asked for is still waiting for the centre."""
    waiting = False
    for entry in timeline:
        if entry["type"] == "ExtensionRequested":
            waiting = True
        elif entry["type"] == "ExtensionGranted":
            waiting = False
    return waiting


def desk_candidates(case: dict[str, Any]) -> list[dict[str, Any]]:
    """The categories the classifier offered the dispatch desk, best first: the case's `desk`
    where the API gives one, else the timeline's last CaseSentToDesk."""
    desk = case.get("desk")
    if isinstance(desk, dict) and desk.get("candidates"):
        return list(desk["candidates"])
    for entry in reversed(case["timeline"]):
        if entry["type"] == "CaseSentToDesk":
            return list(entry["details"].get("candidates", []))
    return []


async def case_context(
    request: Request,
    principal: Principal,
    case_id: str,
    read: ReaderDep,
    topology: Topology,
    now: datetime,
) -> dict[str, Any]:
    if not is_code(case_id):
        raise no_case(case_id)
    position = await stream_position(read)
    answer = await get_case(case_id=case_id, read=read, principal=principal, topology=topology)
    case: dict[str, Any] = json.loads(bytes(answer.body))
    for moment in ("opened_at", "updated_at", "accept_deadline", "resolve_deadline"):
        if case.get(moment):
            case[moment] = datetime.fromisoformat(case[moment])
    for entry in case["timeline"]:
        entry["occurred_at"] = datetime.fromisoformat(entry["occurred_at"])
    for report in case["reports"]:
        report["occurred_at"] = datetime.fromisoformat(report["occurred_at"])
        report["received_at"] = datetime.fromisoformat(report["received_at"])
    desk = case.get("desk") if isinstance(case.get("desk"), dict) else None
    if desk and desk.get("dispatch_deadline"):
        desk["dispatch_deadline"] = datetime.fromisoformat(desk["dispatch_deadline"])
    waiting = pending_extension(case["timeline"])
    fitting, others = suggested(principal.role.value, case["status"], waiting)
    assignment = case.get("assignment") or {}
    near = set(topology.ancestors(assignment.get("handling_area", ""))) if assignment else set()
    return {
        **common(request, principal, topology, "case"),
        "case": case,
        "now": now,
        "position": position,
        "fitting": fitting,
        "others": others,
        "forms": [
            action_forms()[action]
            for action in role_actions(principal.role.value)
            if action in action_forms()
        ],
        "pending_extension": waiting,
        "candidates": desk_candidates(case),
        "desk": desk,
        "categories": category_groups(topology),
        "nearby_departments": sorted(
            (department.id, department.name)
            for department in topology.departments.values()
            if department.area in near
        ),
        "overdue": any(
            deadline is not None and deadline < now
            for deadline in (case.get("accept_deadline"), case.get("resolve_deadline"))
        ),
    }


@router.get("/cases/{case_id}")
@router.get("/fragments/cases/{case_id}")
async def one_case(
    request: Request,
    case_id: str,
    principal: ConsolePrincipal,
    read: ReaderDep,
    topology: TopologyDep,
    now: NowDep,
) -> Response:
    context = case_context(request, principal, case_id, read, topology, now)
    return await shown(request, principal, topology, template_for(request, "case"), context)


# --- assessment ----------------------------------------------------------------------------

PERIODS = {
    "1d": ("近24小时", 1),
    "7d": ("近7天", 7),
    "30d": ("近30天", 30),
    "90d": ("近90天", 90),
    "365d": ("近一年", 365),
}


def day_start(day: str) -> datetime | None:
    """Midnight in China of a date typed as YYYY-MM-DD; None if there is none."""
    if not day:
        return None
    try:
        return datetime.fromisoformat(day).replace(tzinfo=labels.CHINA)
    except ValueError:
        return None


@router.get("/stats")
async def stats_page(
    request: Request,
    principal: ConsolePrincipal,
    read: ReaderDep,
    topology: TopologyDep,
    now: NowDep,
    by: Grouping = Grouping.DEPARTMENT,
    period: Annotated[str, Query(max_length=10)] = "30d",
    since: Annotated[str, Query(max_length=20)] = "",
    until: Annotated[str, Query(max_length=20)] = "",
    area: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    """The figures of `GET /v1/stats` for a period: the last few days, or dates typed (the
    last one included)."""

    async def context() -> dict[str, Any]:
        start = day_start(since)
        end = day_start(until)
        if end is not None:
            end += timedelta(days=1)
        if start is None:
            start = (end or now) - timedelta(days=PERIODS.get(period, PERIODS["30d"])[1])
        table = await read_stats(
            read=read,
            principal=principal,
            topology=topology,
            now=now,
            by=by,
            since=start,
            until=end or now,
            area=area if area and is_code(area) else None,
        )
        rows = sorted(table.rows, key=lambda row: -row.received)
        names: dict[Grouping, Callable[[str], str]] = {
            Grouping.DEPARTMENT: lambda group: labels.department_name(topology, group),
            Grouping.AREA: lambda group: labels.area_name(topology, group),
            Grouping.LOOP: labels.loop_label,
        }
        name = names.get(by, str)
        return {
            **common(request, principal, topology, "stats"),
            "table": table,
            "rows": [(name(row.group), row) for row in rows],
            "most": max((row.received for row in rows), default=0),
            "by": by.value,
            "period": "" if since else period,
            "periods": PERIODS,
            "since": since,
            "until": until,
            "area": area,
            "areas": area_choices(topology, home_area(principal, topology)),
            "groupings": [(g.value, labels.GROUPING.get(g.value, g.value)) for g in Grouping],
        }

    return await shown(request, principal, topology, "stats.html", context())
