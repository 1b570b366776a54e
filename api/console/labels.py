"""What the console calls things, in Chinese first: statuses, loops, roles, events, sources,
actions and their fields; and names read from the topology at run time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from handlers.access import Principal
from topology import Topology

CHINA = timezone(timedelta(hours=8), "北京时间")
"""The time the console shows: China keeps one zone and no summer time."""

STATUS = {
    "awaiting_dispatch": "待派单",
    "lead": "线索待核",
    "dispatched": "待签收",
    "accepted": "已签收",
    "in_progress": "处置中",
    "returned": "已退单",
    "resolved": "已办结",
    "verified": "已核实",
    "closed": "已结案",
    "merged": "已合并",
}

LOOP = {
    "micro": "微循环 · 社区",
    "small": "小循环 · 街道",
    "medium": "中循环 · 区县",
    "big": "大循环 · 市级",
}
LOOP_SHORT = {"micro": "微", "small": "小", "medium": "中", "big": "大"}
LOOP_ORDER = ("micro", "small", "medium", "big")

ROLE = {
    "duty_officer": "值班长",
    "department": "职能部门",
    "dispatcher": "12345 派单员",
    "auditor": "考核监督",
    "publisher": "接入系统",
}

SOURCE = {"hotline": "12345 热线", "iot": "物联感知", "grid": "网格巡查", "duty": "值班报告"}

SEVERITY = {"I": "Ⅰ级 特别重大", "II": "Ⅱ级 重大", "III": "Ⅲ级 较大", "IV": "Ⅳ级 一般"}

EVENT = {
    "CaseOpened": "立案",
    "CaseDispatched": "派单",
    "CaseSentToDesk": "转人工派单",
    "CaseReclassified": "改派 / 重新分类",
    "ReportAttached": "追加报告",
    "DuplicateReceived": "重复上报",
    "LeadConfirmed": "线索属实",
    "LeadRejected": "线索不实",
    "CaseAccepted": "签收",
    "ProgressReported": "处置进展",
    "CaseReturned": "退单",
    "AssistanceAdded": "协办加入",
    "ExtensionRequested": "申请延期",
    "ExtensionGranted": "批准延期",
    "CaseEscalated": "上报升级",
    "SupervisionNoticeIssued": "督办",
    "CaseResolved": "办结",
    "CaseVerified": "核实回访",
    "CaseReopened": "重新打开",
    "CaseMerged": "合并",
    "CaseClosed": "结案",
}

ACTION = {
    "accept": "签收",
    "progress": "报告进展",
    "return": "退单",
    "request_assistance": "申请协办",
    "request_extension": "申请延期",
    "grant_extension": "批准延期",
    "resolve": "办结",
    "verify": "核实回访",
    "close": "结案",
    "reopen": "重新打开",
    "escalate": "上报",
    "merge": "合并到…",
    "confirm_lead": "线索属实",
    "reject_lead": "线索不实",
    "dispatch": "派单",
    "reclassify": "改派",
}

FIELD = {
    "reason": "理由",
    "note": "备注",
    "resolution": "办结说明",
    "minutes": "延期（分钟）",
    "department": "协办部门编号",
    "satisfied": "群众满意",
    "into_case_id": "并入案件编号",
    "category_code": "事项类别",
    "lead_department": "主办部门编号（可选）",
    "area_code": "所在区域编码（可选）",
}

OUTCOME = {"applied": "已执行", "rejected": "被拒绝", "pending": "处理中"}

REJECTION = {
    "not_permitted": "无权执行此操作",
    "invalid_state": "案件当前状态不允许",
    "unknown_case": "案件不存在",
    "at_top_loop": "已在市级大循环，无法再上报",
    "extension_pending": "已有延期申请待批",
    "no_extension_requested": "没有待批的延期申请",
    "already_involved": "该部门已参与",
    "unknown_department": "没有这个部门",
    "merge_into_itself": "不能并入自身",
    "unknown_category": "没有这个事项类别",
}

DESK_REASON = {
    "low_confidence": "自动分类把握不足",
    "unknown_category_code": "来件类别代码未知",
    "unplaced": "无法定位",
    "ambiguous_place": "地点有歧义",
    "returned_not_ours": "部门退回：非本单位职责",
}

GROUPING = {"department": "部门", "loop": "循环层级", "area": "区域"}


def status_label(status: str | None) -> str:
    return STATUS.get(status or "", status or "—")


def loop_label(loop: str | None) -> str:
    return LOOP.get(loop or "", "未派单")


def area_name(topology: Topology, code: str | None) -> str:
    area = topology.area(code) if code else None
    return area.name if area is not None else (code or "—")


def department_name(topology: Topology, department_id: str | None) -> str:
    department = topology.department(department_id) if department_id else None
    return department.name if department is not None else (department_id or "—")


UNCLASSIFIED = "unclassified"
"""The category of a case waiting at the dispatch desk with none decided yet."""


def category_name(topology: Topology, code: str | None) -> str:
    if code == UNCLASSIFIED:
        return "未分类（待派单）"
    category = topology.category(code) if code else None
    return category.name if category is not None else (code or "—")


def actor_name(topology: Topology, actor: str) -> str:
    """Who a timeline entry or a command names: `dept:…`, `centre:…`, `desk:…` or a system."""
    kind, _, ref = actor.partition(":")
    if kind == "dept":
        return department_name(topology, ref)
    if kind == "centre":
        return f"{area_name(topology, ref)}运行中心"
    if kind == "desk":
        return f"{area_name(topology, ref)} 12345 派单台"
    return {"system": "系统"}.get(actor, actor)


def who(topology: Topology, principal: Principal) -> str:
    """The signed-in principal as the header shows it: role and the place or department."""
    role = ROLE.get(principal.role.value, principal.role.value)
    if principal.role.value == "department":
        return f"{role} · {department_name(topology, principal.scope)}"
    if principal.scope and topology.area(principal.scope) is not None:
        return f"{role} · {area_name(topology, principal.scope)}"
    return f"{role} · {principal.subject}"


def local_time(moment: datetime | None) -> str:
    return moment.astimezone(CHINA).strftime("%m-%d %H:%M") if moment else "—"


def full_time(moment: datetime | None) -> str:
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S") if moment else "—"


def until(deadline: datetime | None, now: datetime) -> str:
    """How long is left before a deadline, or how long it is overdue, in words."""
    if deadline is None:
        return "—"
    minutes = int((deadline - now).total_seconds() // 60)
    span = abs(minutes)
    text = (
        f"{span // 1440}天{span % 1440 // 60}小时"
        if span >= 1440
        else (f"{span // 60}小时{span % 60}分" if span >= 60 else f"{span}分钟")
    )
    return f"超时 {text}" if minutes < 0 else f"剩 {text}"


REASON = {
    "new_case": "新案件",
    "new_lead": "新线索",
    "lead": "线索，待社区核实",
    "corroborated_by_hotline": "热线报告印证",
    "routed": "按责任清单派单",
    "returned": "退单后上报",
    "reopened": "重新打开后再派",
    "lead_confirmed": "线索核实后派单",
    "accept_deadline_missed": "超过签收时限",
    "resolve_deadline_missed": "超过办结时限",
    "dispatch_deadline_missed": "超过派单时限",
    "citizen_not_satisfied": "群众不满意",
    "attached_to_open_case": "并入在办案件",
    "exact_duplicate": "完全重复",
    "emergency_mode": "应急模式",
}


def describe(topology: Topology, entry: dict[str, object]) -> list[str]:
    """What a timeline entry's details say, in a few lines (the details as the API gives
    them: never a report's personal data, which the timeline leaves out)."""
    details = entry.get("details")
    if not isinstance(details, dict):
        return []
    lines: list[str] = []
    assignment = details.get("assignment")
    if isinstance(assignment, dict):
        where = area_name(topology, assignment.get("handling_area"))
        lead = department_name(topology, assignment.get("lead_department"))
        lines.append(f"{loop_label(assignment.get('loop'))}：{where} · 主办 {lead}")
        co = assignment.get("co_departments") or []
        if co:
            lines.append("协办 " + "、".join(department_name(topology, d) for d in co))
    if "from_loop" in details and "to_loop" in details:
        lines.append(
            f"{loop_label(str(details['from_loop']))} → {loop_label(str(details['to_loop']))}"
        )
    for key, label in (
        ("category_code", "类别"),
        ("to_category", "改为"),
        ("department", "部门"),
        ("minutes", "分钟"),
        ("resolution", "办结说明"),
        ("note", "备注"),
        ("into_case_id", "并入"),
    ):
        value = details.get(key)
        if value in (None, "", []):
            continue
        if key in ("category_code", "to_category"):
            value = category_name(topology, str(value))
        elif key == "department":
            value = department_name(topology, str(value))
        lines.append(f"{label}：{value}")
    if "satisfied" in details:
        lines.append("群众满意" if details["satisfied"] else "群众不满意")
    for key, label in (
        ("accept_deadline", "签收时限"),
        ("resolve_deadline", "办结时限"),
        ("deadline", "时限"),
    ):
        value = details.get(key)
        if isinstance(value, str):
            lines.append(f"{label} {full_time(datetime.fromisoformat(value))}")
    reason = details.get("reason")
    if isinstance(reason, str) and reason:
        asked, _, why = reason.partition("requested: ")
        text = f"依申请：{why}" if not asked and why else REASON.get(reason, reason)
        lines.append(f"理由：{text}")
    reasons = details.get("reasons")
    if isinstance(reasons, list) and reasons and all(isinstance(r, str) for r in reasons):
        lines.append("转人工原因：" + "、".join(DESK_REASON.get(str(r), str(r)) for r in reasons))
    return lines
