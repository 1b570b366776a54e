"""Acting on cases: an action becomes a command on the control topic; its outcome is read back."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, status
from pydantic import ValidationError, WithJsonSchema
from sqlalchemy import select

from api.db import CommandRow
from api.deps import (
    NowDep,
    PrincipalDep,
    ProducerDep,
    ReaderDep,
    SessionDep,
    SettingsDep,
    TopologyDep,
)
from api.errors import forbidden, problems, refuse
from api.params import MAX_CODE_LENGTH, PRINTABLE
from api.reading import entities
from api.routes.cases import CaseIdPath, case_in_scope
from api.schemas import COMMAND_ID_EXAMPLE, COMPONENTS, CommandAccepted, CommandStatus
from cityloop.contracts import CASE_COMMAND_ADAPTER, MergeCase, wire_bytes
from handlers.access import Denied, Role, check_may_act
from handlers.intake import describe_validation_error
from streams.topics import topics_for

router = APIRouter(tags=["actions"], responses=problems(401, 422))

ACTION_EXAMPLES: dict[str, dict[str, Any]] = {
    "accept": {"summary": "签收: the assigned department accepts", "value": {"type": "accept"}},
    "progress": {
        "summary": "进展: report progress",
        "value": {"type": "progress", "note": "crew on site"},
    },
    "return": {
        "summary": "退单: return with a reason; `not_ours` sends it back to the dispatch desk",
        "value": {"type": "return", "reason": "not_ours: 属人社部门职责"},
    },
    "request_assistance": {
        "summary": "协办: ask another department to help",
        "value": {
            "type": "request_assistance",
            "department": "510104001.water",
            "reason": "the pipe under the cover leaks",
        },
    },
    "request_extension": {
        "summary": "延期: ask for more time",
        "value": {"type": "request_extension", "minutes": 240, "reason": "parts on order"},
    },
    "grant_extension": {
        "summary": "批准延期: the centre grants the extension asked for",
        "value": {"type": "grant_extension"},
    },
    "resolve": {
        "summary": "办结: resolve",
        "value": {"type": "resolve", "resolution": "cover replaced"},
    },
    "verify": {
        "summary": "核实/回访: the centre checks and calls back",
        "value": {"type": "verify", "satisfied": True, "note": "caller confirmed"},
    },
    "close": {
        "summary": "结案: close",
        "value": {"type": "close", "reason": "verified and closed"},
    },
    "reopen": {
        "summary": "重新打开: reopen",
        "value": {"type": "reopen", "reason": "the caller says it is back"},
    },
    "escalate": {
        "summary": "上报: escalate",
        "value": {"type": "escalate", "reason": "spans streets"},
    },
    "merge": {
        "summary": "merge into another case",
        "value": {"type": "merge", "into_case_id": "CL-20261122-0f195eadfd80", "reason": "same"},
    },
    "confirm_lead": {
        "summary": "线索属实: the community confirms a lead on site",
        "value": {"type": "confirm_lead", "reason": "verified on site"},
    },
    "reject_lead": {
        "summary": "线索不实: the community rejects a lead",
        "value": {"type": "reject_lead", "reason": "false alarm"},
    },
    "dispatch": {
        "summary": "派单: a dispatcher decides the category (and department, area) at the desk",
        "value": {
            "type": "dispatch",
            "category_code": "wage_arrears",
            "lead_department": "510104.human_resources",
            "note": "欠薪，转区人社局劳动监察",
        },
    },
    "reclassify": {
        "summary": "改派: a dispatcher changes an open case's category; it is re-routed",
        "value": {
            "type": "reclassify",
            "category_code": "black_smelly_river",
            "reason": "主要诉求是河水黑臭，不是噪音",
        },
    },
}

SERVER_FILLED = frozenset({"command_id", "case_id", "actor", "issued_at", "into_correlation_key"})
"""What the API fills in of a case command (from the path, the token, its clock, the case
merged into); an action is the rest."""


def action_schemas() -> dict[str, Any]:
    """OpenAPI components for the action body: each case command without what the API fills
    in (`MergeCaseAction`...), and `CaseAction`, the union of them by `type`."""
    union = CASE_COMMAND_ADAPTER.json_schema(ref_template=COMPONENTS + "{model}Action")
    schemas: dict[str, Any] = {"CaseAction": union}
    for name, command in union.pop("$defs").items():
        kind = command["properties"]["type"]["const"]
        for field in SERVER_FILLED:
            command["properties"].pop(field, None)
        command["required"] = [
            "type",
            *(field for field in command.get("required", []) if field not in SERVER_FILLED),
        ]
        command["title"] = f"{name}Action"
        command["examples"] = [ACTION_EXAMPLES[kind]["value"]]
        schemas[command["title"]] = command
    return schemas


@router.post(
    "/v1/cases/{case_id}/actions",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CommandAccepted,
    responses=problems(400, 403, 404, 503),
)
async def act_on_case(
    case_id: CaseIdPath,
    action: Annotated[
        dict[str, Any],
        Body(openapi_examples=ACTION_EXAMPLES),
        WithJsonSchema({"$ref": COMPONENTS + "CaseAction"}),
    ],
    read: ReaderDep,
    session: SessionDep,
    principal: PrincipalDep,
    producer: ProducerDep,
    settings: SettingsDep,
    topology: TopologyDep,
    now: NowDep,
) -> CommandAccepted:
    """Publish the action as a command and answer at once; whether it was applied (and if not,
    why) is at the status URL. Who may do what is decided by the case handlers."""
    try:
        check_may_act(principal)
    except Denied as denied:
        raise forbidden(denied) from None
    row = await case_in_scope(read, case_id, principal, topology.city)
    command_id = f"cmd-{uuid.uuid4().hex}"
    issued_at = now
    try:
        command = CASE_COMMAND_ADAPTER.validate_python(
            {
                **action,
                "command_id": command_id,
                "case_id": case_id,
                "actor": principal.actor,
                "issued_at": issued_at,
            }
        )
    except ValidationError as exc:
        raise refuse(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid_action", describe_validation_error(exc)
        ) from exc
    if isinstance(command, MergeCase):
        target = await case_in_scope(read, command.into_case_id, principal, topology.city)
        command = command.model_copy(update={"into_correlation_key": target.correlation_key})
    session.add(
        CommandRow(
            command_id=command_id,
            case_id=case_id,
            command_type=command.type,
            actor=principal.actor,
            issued_at=issued_at,
            event_types=[],
        )
    )
    await session.commit()
    try:
        await asyncio.wait_for(
            producer.send_and_wait(
                topics_for(settings).case_control,
                key=row.correlation_key.encode(),
                value=wire_bytes(command),
            ),
            timeout=settings.publish_timeout_s,
        )
    except Exception as exc:  # nothing stored the command: say so, never pretend
        await session.delete(await session.get(CommandRow, command_id))
        await session.commit()
        raise refuse(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "broker_unavailable",
            "the command was not stored; retry",
        ) from exc
    return CommandAccepted(command_id=command_id, status_url=f"/v1/commands/{command_id}")


@router.get(
    "/v1/commands/{command_id}",
    response_model=CommandStatus,
    responses=problems(404),
)
async def command_status(
    command_id: Annotated[
        str,
        Path(
            description="from the action's answer",
            examples=[COMMAND_ID_EXAMPLE],
            pattern=PRINTABLE,
            max_length=MAX_CODE_LENGTH,
        ),
    ],
    read: ReaderDep,
    principal: PrincipalDep,
    wait: Annotated[float, Query(ge=0, le=10, description="seconds to wait for the outcome")] = 0,
) -> CommandStatus:
    """Pending, applied, or rejected with the reason; `?wait=2` waits up to 2 s for it."""
    deadline = asyncio.get_running_loop().time() + wait
    query = select(CommandRow).where(CommandRow.command_id == command_id)
    while True:
        found = await read(entities(query))  # each read sees what the projector committed
        row = found[0][0] if found else None
        visible = row is not None and (
            principal.role is Role.AUDITOR or row.actor == principal.actor
        )
        if row is None or not visible:
            raise refuse(
                status.HTTP_404_NOT_FOUND, "not_found", f"no command {command_id} of yours"
            )
        if row.applied is not None or asyncio.get_running_loop().time() >= deadline:
            break
        await asyncio.sleep(0.1)
    state = "pending" if row.applied is None else "applied" if row.applied else "rejected"
    return CommandStatus(
        command_id=row.command_id,
        case_id=row.case_id,
        command_type=row.command_type,
        actor=row.actor,
        state=state,
        reason=row.reason,
        event_types=row.event_types,
        issued_at=row.issued_at,
        decided_at=row.decided_at,
    )
