"""The actions the console offers on a case: which a role gives, which fit the case's status
(a hint to the eye only: the case handlers decide, and a refusal is shown as they named it),
and the fields of each, read from the command contracts themselves."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from api.routes.commands import SERVER_FILLED
from cityloop.contracts import CASE_COMMAND_ADAPTER

ROLE_ACTIONS: dict[str, tuple[str, ...]] = {
    "department": (
        "accept",
        "progress",
        "request_extension",
        "resolve",
        "return",
        "request_assistance",
        "escalate",
        "confirm_lead",
        "reject_lead",
    ),
    "duty_officer": (
        "verify",
        "close",
        "grant_extension",
        "escalate",
        "request_assistance",
        "merge",
        "reopen",
        "confirm_lead",
        "reject_lead",
    ),
    "dispatcher": ("dispatch", "reclassify", "close", "merge"),
}
"""What each role acts with; an auditor only reads. Who may act on which case is decided by
the case handlers when the command arrives."""

HANDLING = frozenset({"dispatched", "accepted", "in_progress", "returned"})
WORKING = frozenset({"accepted", "in_progress"})

FITS: dict[str, frozenset[str]] = {
    "accept": frozenset({"dispatched"}),
    "progress": WORKING,
    "request_extension": WORKING,
    "resolve": WORKING,
    "return": frozenset({"dispatched", "accepted", "in_progress"}),
    "request_assistance": HANDLING,
    "escalate": HANDLING,
    "confirm_lead": frozenset({"lead"}),
    "reject_lead": frozenset({"lead"}),
    "verify": frozenset({"resolved"}),
    "close": frozenset({"resolved", "verified"}),
    "grant_extension": frozenset(),  # when an extension was asked for: see `suggested`
    "merge": HANDLING | {"lead"},
    "reopen": frozenset({"resolved", "verified", "closed"}),
    "dispatch": frozenset({"awaiting_dispatch"}),
    "reclassify": HANDLING | {"awaiting_dispatch"},
}
"""The statuses in which an action is a likely next step: offered first, the others under
"more"."""

ROLE_FITS: dict[tuple[str, str], frozenset[str]] = {
    ("dispatcher", "close"): frozenset({"awaiting_dispatch"}),
    ("dispatcher", "merge"): frozenset({"awaiting_dispatch"}),
}
"""Where a role's use of an action differs: a dispatcher closes or merges what waits at the
desk (a prank call, a second call about one matter)."""

SUGGESTIONS: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("return", "reason"): (("not_ours", "非本单位职责（退回派单台）"),),
}
"""Values a field is often given, offered beside free text."""

FALLBACK_FIELDS: dict[str, dict[str, Any]] = {
    "dispatch": {
        "properties": {
            "category_code": {"type": "string", "maxLength": 200},
            "lead_department": {"type": "string", "maxLength": 200},
        },
        "required": ["category_code"],
    },
    "reclassify": {
        "properties": {
            "category_code": {"type": "string", "maxLength": 200},
            "lead_department": {"type": "string", "maxLength": 200},
            "reason": {"type": "string", "maxLength": 200},
        },
        "required": ["category_code", "reason"],
    },
}
"""The dispatch desk's commands as issue #13 describes them, for a contract that does not
have them yet (the API refuses them until it does, and the console shows that refusal)."""


@dataclass(frozen=True)
class ActionField:
    name: str
    kind: str
    """string, text (long), integer, boolean, choice, category or department"""
    required: bool
    choices: tuple[str, ...] = ()
    suggestions: tuple[tuple[str, str], ...] = ()
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class ActionForm:
    action: str
    fields: tuple[ActionField, ...]


LONG_TEXT = frozenset({"note", "resolution"})


def _field(action: str, name: str, spec: dict[str, Any], required: bool) -> ActionField:
    options = [spec, *spec.get("anyOf", [])]
    kinds = [option.get("type") for option in options]
    plain = next((kind for kind in kinds if kind and kind != "null"), "string")
    choices = tuple(str(value) for option in options for value in option.get("enum", []))
    if choices:
        kind = "choice"
    elif name == "category_code":
        kind = "category"
    elif name in ("department", "lead_department"):
        kind = "department"
    elif plain in ("integer", "boolean"):
        kind = plain
    else:
        kind = "text" if name in LONG_TEXT else "string"
    limits = [spec, *spec.get("anyOf", [])]
    return ActionField(
        name=name,
        kind=kind,
        required=required,
        choices=choices,
        suggestions=SUGGESTIONS.get((action, name), ()),
        max_length=next((s["maxLength"] for s in limits if "maxLength" in s), None),
        minimum=next(
            (
                s.get("minimum", s.get("exclusiveMinimum"))
                for s in limits
                if "minimum" in s or "exclusiveMinimum" in s
            ),
            None,
        ),
        maximum=next((s["maximum"] for s in limits if "maximum" in s), None),
    )


@functools.cache
def action_forms() -> dict[str, ActionForm]:
    """Every case command's form, without what the API fills in itself."""
    schema = CASE_COMMAND_ADAPTER.json_schema()
    commands: dict[str, dict[str, Any]] = dict(FALLBACK_FIELDS)
    for command in schema["$defs"].values():
        kind = command.get("properties", {}).get("type", {}).get("const")
        if kind:
            commands[kind] = command
    forms: dict[str, ActionForm] = {}
    for kind, command in commands.items():
        required = set(command.get("required", []))
        fields = tuple(
            _field(kind, name, spec, name in required)
            for name, spec in command.get("properties", {}).items()
            if name not in SERVER_FILLED and name != "type"
        )
        forms[kind] = ActionForm(kind, fields)
    return forms


def role_actions(role: str) -> tuple[str, ...]:
    return ROLE_ACTIONS.get(role, ())


def suggested(role: str, status: str, pending_extension: bool) -> tuple[list[str], list[str]]:
    """The role's actions that fit the status, and the rest of them."""
    fitting: list[str] = []
    others: list[str] = []
    for action in role_actions(role):
        statuses = ROLE_FITS.get((role, action), FITS.get(action, frozenset()))
        fits = status in statuses or (action == "grant_extension" and pending_extension)
        (fitting if fits else others).append(action)
    return fitting, others
