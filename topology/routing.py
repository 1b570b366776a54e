"""The routing decision: which loop, area, departments and centre take a case, and why."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

from cityloop.contracts import Assignment, Mode, RoutingReason, Severity
from topology.errors import UnroutableError
from topology.graph import CategoryRouting, Topology
from topology.model import LOOP_ORDER, DepartmentSpec

# Ranks of the levels that own a loop: 0 community (micro) ... 3 city (big).
_STREET_RANK = 1
_LEVEL_NAMES = ("community", "street", "district", "city")
# Reasons are frozen and most repeat (one per category, department, level pair), so they
# are built once and shared: building them dominated the cost of a decision. The memo is
# bounded; clearing it only costs rebuilding.
_REASON_MEMO_LIMIT = 100_000


# The validator itself, not Assignment(...): same checks, a third less overhead per call.
_VALIDATE_ASSIGNMENT = Assignment.__pydantic_validator__.validate_python


def _remember(topology: Topology, key: Hashable, reason: RoutingReason) -> RoutingReason:
    memo = topology._reason_memo
    if len(memo) >= _REASON_MEMO_LIMIT:
        memo.clear()
    memo[key] = reason
    return reason


def _reason(topology: Topology, rule: str, detail: str) -> RoutingReason:
    """The shared reason saying `detail` under `rule`."""
    key = (rule, detail)
    reason = topology._reason_memo.get(key)
    if reason is None:
        reason = _remember(topology, key, RoutingReason(rule=rule, detail=detail))
    return reason


def _where(topology: Topology, code: str) -> str:
    return f"{_LEVEL_NAMES[topology._rank[code]]} {code}"


def _category(topology: Topology, category_code: str) -> CategoryRouting:
    routing = topology._routing.get(category_code)
    if routing is None:
        raise UnroutableError("unknown_category", f"unknown category {category_code!r}")
    return routing


def _origin(topology: Topology, area_codes: Sequence[str], reasons: list[RoutingReason]) -> str:
    """The one area the reports fall in: their common home, or the lowest common ancestor."""
    if isinstance(area_codes, str):  # a lone code is a Sequence too; take it as one area
        area_codes = (area_codes,)
    if not area_codes:
        raise UnroutableError("no_area", "a case needs at least one area code")
    home_of = topology._home
    if len(area_codes) == 1:
        home = home_of.get(area_codes[0])
        if home is None:
            raise UnroutableError("unknown_area", f"unknown area {area_codes[0]!r}")
        return home
    homes: dict[str, None] = {}
    for code in area_codes:
        home = home_of.get(code)
        if home is None:
            raise UnroutableError("unknown_area", f"unknown area {code!r}")
        homes[home] = None
    if len(homes) == 1:
        return next(iter(homes))
    common = topology.lowest_common_ancestor(homes)
    if common is None:  # unreachable for a compiled topology: every chain ends at the city
        raise UnroutableError("unknown_area", f"areas {sorted(homes)} share no ancestor")
    reasons.append(
        RoutingReason(
            rule="cross_area_common_ancestor",
            detail=f"reports in {', '.join(homes)}; their lowest common ancestor is "
            f"{_where(topology, common)}",
        )
    )
    return common


def _assign(
    topology: Topology,
    routing: CategoryRouting,
    start: str,
    local: Mapping[str, DepartmentSpec],
    reasons: list[RoutingReason],
) -> Assignment:
    """Pick departments from `start` upwards and the centre that coordinates them.

    `local` holds, by kind, the departments nearest to where the case happened; a
    co-handler no level from `start` up has is taken from there.
    """
    spec = routing.spec
    rank = topology._rank
    reachable = topology._reachable
    lead = reachable[start].get(spec.lead_kind)
    if lead is None:  # compile() rejects such files; kept for a clear error regardless
        raise UnroutableError(
            "no_department", f"no {spec.lead_kind} department at or above {start}"
        )
    handling = lead.area
    if handling != start:
        reasons.append(
            _reason(
                topology,
                "no_department_at_level",
                (
                    f"no {spec.lead_kind} department at {_where(topology, start)}; "
                    f"the one at {_where(topology, handling)} takes the lead"
                ),
            )
        )
    memo = topology._reason_memo
    lead_reason = memo.get(lead.id)
    if lead_reason is None:
        lead_reason = _remember(
            topology,
            lead.id,
            RoutingReason(rule="lead_department", detail=f"{lead.kind}: {lead.id}"),
        )
    reasons.append(lead_reason)

    co_departments: list[str] = []
    top = rank[handling]
    for kind in spec.co_handler_kinds:
        helper = reachable[handling].get(kind)
        if helper is None:
            # Some kinds only exist low down (a property manager, a residents' committee):
            # the one where the case happened still helps, whoever coordinates.
            helper = local.get(kind)
            if helper is None:
                reasons.append(
                    _reason(
                        topology,
                        "no_department_for_kind",
                        (
                            f"no {kind} department at or above "
                            f"{_where(topology, handling)} nor where the case happened; "
                            "handled without one"
                        ),
                    )
                )
                continue
            reasons.append(
                _reason(
                    topology,
                    "local_department",
                    (
                        f"no {kind} department at or above {_where(topology, handling)}; "
                        f"{helper.id} where the case happened co-handles"
                    ),
                )
            )
        elif helper.area != handling:
            reasons.append(
                _reason(
                    topology,
                    "no_department_at_level",
                    (
                        f"no {kind} department at {_where(topology, handling)}; "
                        f"{helper.id} at {_where(topology, helper.area)} co-handles"
                    ),
                )
            )
            if rank[helper.area] > top:
                top = rank[helper.area]
        co_departments.append(helper.id)

    if co_departments:
        # The lowest level every department reaches coordinates: within one community its
        # committee does (micro loop, no centre); otherwise that level's operations centre.
        coordinating = topology._chain[handling][top - rank[handling]]
        key = (coordinating, lead.id, *co_departments)
        cross_reason = memo.get(key)
        if cross_reason is None:
            cross_reason = _remember(
                topology,
                key,
                RoutingReason(
                    rule="cross_department",
                    detail=f"{1 + len(co_departments)} departments "
                    f"({', '.join(key[1:])}); the {_where(topology, coordinating)} coordinates",
                ),
            )
        reasons.append(cross_reason)
        handling = coordinating

    centre_id: str | None = None
    if rank[handling] >= _STREET_RANK:
        centre = topology._centre_above[handling]
        if centre is not None:
            centre_id = centre.id
            if centre.area != handling:
                reasons.append(
                    _reason(
                        topology,
                        "no_centre_at_level",
                        (
                            f"no operations centre at {_where(topology, handling)}; "
                            f"{centre.id} coordinates"
                        ),
                    )
                )
    decision: Assignment = _VALIDATE_ASSIGNMENT(
        {
            "loop": LOOP_ORDER[rank[handling]],
            "handling_area": handling,
            "lead_department": lead.id,
            "co_departments": co_departments,
            "coordinating_centre": centre_id,
            "escalation_chain": list(topology._chain[handling]),
            "reasons": reasons,
            "topology_version": topology.version,
        }
    )
    return decision


def route(
    topology: Topology,
    category_code: str,
    area_codes: Sequence[str],
    severity: Severity | None = None,
    mode: Mode = Mode.NORMAL,
) -> Assignment:
    """Route a case to the lowest loop that may and can handle it.

    The floor is the highest of: the category's lowest capable level, the level where the
    reported areas meet, the category's floor for this severity, its floor in emergency
    mode. From the area at that floor, each needed kind of department is taken from the
    nearest level that has one. Raises UnroutableError for an unknown category or area.
    """
    routing = topology._routing.get(category_code)
    if routing is None:
        raise UnroutableError("unknown_category", f"unknown category {category_code!r}")
    reasons = [routing.reason]
    # One report in a known area is the common case: skip the general path for it.
    origin = (
        topology._home.get(area_codes[0])
        if len(area_codes) == 1 and not isinstance(area_codes, str)
        else None
    )
    if origin is None:
        origin = _origin(topology, area_codes, reasons)
    floor = routing.lowest_rank
    severity_rank = routing.severity_rank[severity]
    if severity_rank > floor:
        reasons.append(
            _reason(
                topology,
                "severity_floor",
                f"severity {severity} needs at least the {LOOP_ORDER[severity_rank]} loop",
            )
        )
        floor = severity_rank
    if mode is Mode.EMERGENCY and routing.emergency_rank > routing.lowest_rank:
        reasons.append(
            _reason(
                topology,
                "emergency_floor",
                f"emergency mode needs at least the {LOOP_ORDER[routing.emergency_rank]} loop",
            )
        )
        if routing.emergency_rank > floor:
            floor = routing.emergency_rank
    origin_rank = topology._rank[origin]
    start = topology._chain[origin][floor - origin_rank] if floor > origin_rank else origin
    return _assign(topology, routing, start, topology._reachable[origin], reasons)


def escalation_target(
    topology: Topology, assignment: Assignment, category_code: str
) -> Assignment | None:
    """The same case one loop up, departments picked afresh there; None at the city."""
    routing = _category(topology, category_code)
    chain = topology._chain.get(assignment.handling_area)
    if chain is None:
        raise UnroutableError("unknown_area", f"unknown area {assignment.handling_area!r}")
    if len(chain) == 1:
        return None
    parent = chain[1]
    reasons = [
        RoutingReason(
            rule="escalated",
            detail=f"from the {assignment.loop} loop at "
            f"{_where(topology, assignment.handling_area)} to {_where(topology, parent)}",
        )
    ]
    # The departments that handled it so far are the local ones a higher level may lack.
    local: dict[str, DepartmentSpec] = {}
    for department_id in (assignment.lead_department, *assignment.co_departments):
        department = topology.department(department_id)
        if department is not None:
            local[department.kind] = department
    return _assign(topology, routing, parent, local, reasons)


__all__ = ["escalation_target", "route"]
