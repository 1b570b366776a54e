"""Acting on cases: an action becomes a command on the control topic; its outcome is read back."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, status
from pydantic import ValidationError

from api.db import CommandRow
from api.deps import PrincipalDep, ProducerDep, SessionDep, SettingsDep, TopologyDep
from api.errors import forbidden
from api.routes.cases import case_in_scope
from api.schemas import CommandAccepted, CommandStatus, Problem
from cityloop.contracts import CASE_COMMAND_ADAPTER, MergeCase
from handlers.access import Denied, Role, check_may_act
from handlers.intake import describe_validation_error
from streams.topics import topics_for

router = APIRouter(tags=["actions"])

ACTION_EXAMPLES = {
    "accept": {"summary": "签收: the assigned department accepts", "value": {"type": "accept"}},
    "return": {
        "summary": "退单: return with a reason",
        "value": {"type": "return", "reason": "not in our remit"},
    },
    "resolve": {
        "summary": "办结: resolve",
        "value": {"type": "resolve", "resolution": "cover replaced"},
    },
    "request_extension": {
        "summary": "延期: ask for more time",
        "value": {"type": "request_extension", "minutes": 240, "reason": "parts on order"},
    },
    "verify": {
        "summary": "核实/回访: the centre checks and calls back",
        "value": {"type": "verify", "satisfied": True, "note": "caller confirmed"},
    },
    "escalate": {
        "summary": "上报: escalate",
        "value": {"type": "escalate", "reason": "spans streets"},
    },
    "merge": {
        "summary": "merge into another case",
        "value": {"type": "merge", "into_case_id": "CL-20261122-0f195eadfd80", "reason": "same"},
    },
}


@router.post(
    "/v1/cases/{case_id}/actions",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CommandAccepted,
    responses={
        403: {"model": Problem},
        404: {"model": Problem},
        422: {"model": Problem},
        503: {"model": Problem},
    },
)
async def act_on_case(
    case_id: str,
    action: Annotated[dict[str, Any], Body(openapi_examples=ACTION_EXAMPLES)],
    session: SessionDep,
    principal: PrincipalDep,
    producer: ProducerDep,
    settings: SettingsDep,
    topology: TopologyDep,
) -> CommandAccepted:
    """Publish the action as a command and answer at once; whether it was applied (and if not,
    why) is at the status URL. Who may do what is decided by the case handlers."""
    try:
        check_may_act(principal)
    except Denied as denied:
        raise forbidden(denied) from None
    row = await case_in_scope(session, case_id, principal, topology.city)
    command_id = f"cmd-{uuid.uuid4().hex}"
    issued_at = datetime.now(UTC)
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
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            {"reason": "invalid_action", "message": describe_validation_error(exc)},
        ) from exc
    if isinstance(command, MergeCase):
        target = await case_in_scope(session, command.into_case_id, principal, topology.city)
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
                value=command.model_dump_json().encode(),
            ),
            timeout=settings.publish_timeout_s,
        )
    except Exception as exc:  # nothing stored the command: say so, never pretend
        await session.delete(await session.get(CommandRow, command_id))
        await session.commit()
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            {"reason": "broker_unavailable", "message": "the command was not stored; retry"},
        ) from exc
    return CommandAccepted(command_id=command_id, status_url=f"/v1/commands/{command_id}")


@router.get(
    "/v1/commands/{command_id}",
    response_model=CommandStatus,
    responses={404: {"model": Problem}},
)
async def command_status(
    command_id: str,
    session: SessionDep,
    principal: PrincipalDep,
    wait: Annotated[float, Query(ge=0, le=10, description="seconds to wait for the outcome")] = 0,
) -> CommandStatus:
    """Pending, applied, or rejected with the reason; `?wait=2` waits up to 2 s for it."""
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        row = await session.get(CommandRow, command_id, populate_existing=True)
        visible = row is not None and (
            principal.role is Role.AUDITOR or row.actor == principal.actor
        )
        if row is None or not visible:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                {"reason": "not_found", "message": f"no command {command_id} of yours"},
            )
        if row.applied is not None or asyncio.get_running_loop().time() >= deadline:
            break
        await session.commit()  # end the read so the next one sees the projector's write
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
