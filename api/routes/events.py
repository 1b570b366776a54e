"""Ingest: departmental systems post CloudEvents; 202 only once the broker has them."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request, status

from api.deps import PrincipalDep, ProducerDep, SettingsDep, TopologyDep
from api.errors import forbidden
from api.schemas import EventAccepted, Problem
from cityloop.contracts import EVENT_TYPES, DeadLetterReason, Source
from handlers.access import Denied, check_may_publish
from handlers.intake import Accepted, take_in
from streams.topics import topics_for

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/events", tags=["ingest"])

CLOUDEVENT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/CloudEvent"},
                "example": {
                    "specversion": "1.0",
                    "id": "WO-20261122-000123",
                    "source": "/12345/chengdu",
                    "type": EVENT_TYPES[Source.HOTLINE],
                    "time": "2026-11-22T08:15:00+08:00",
                    "data": {
                        "order_id": "WO-20261122-000123",
                        "received_at": "2026-11-22T08:15:00+08:00",
                        "title": "下水道井盖丢失",
                        "text": "春熙路口井盖不见了，很危险",
                        "area_code": "510104001",
                        "caller_name": "张三",
                        "caller_phone": "13812345678",
                    },
                },
            }
        },
    }
}


def _source(name: str) -> Source:
    try:
        return Source(name)
    except ValueError:
        known = ", ".join(src.value for src in Source)
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            {"reason": "unknown_source", "message": f"no event source {name!r}; known: {known}"},
        ) from None


@router.post(
    "/{source}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=EventAccepted,
    responses={
        400: {"model": Problem},
        401: {"model": Problem},
        403: {"model": Problem},
        404: {"model": Problem},
        413: {"model": Problem},
        422: {"model": Problem},
        503: {"model": Problem},
    },
    openapi_extra=CLOUDEVENT_BODY,
)
async def post_event(
    source: str,
    request: Request,
    settings: SettingsDep,
    producer: ProducerDep,
    topology: TopologyDep,
    principal: PrincipalDep,
) -> EventAccepted:
    """Validate one CloudEvent of this source and publish it; answer once the broker acked."""
    expected = _source(source)
    try:
        check_may_publish(principal, expected)
    except Denied as denied:
        raise forbidden(denied) from None
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > settings.max_event_bytes:
        raise HTTPException(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            {"reason": "too_large", "message": f"body over {settings.max_event_bytes} bytes"},
        )
    raw = await request.body()
    if len(raw) > settings.max_event_bytes:
        raise HTTPException(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            {"reason": "too_large", "message": f"body over {settings.max_event_bytes} bytes"},
        )
    result = take_in(raw, topology, datetime.now(UTC), expected=expected)
    if not isinstance(result, Accepted):
        dead = result.dead_letter
        code = (
            status.HTTP_400_BAD_REQUEST
            if dead.reason is DeadLetterReason.UNDECODABLE
            else status.HTTP_422_UNPROCESSABLE_CONTENT
        )
        request.app.state.metrics.events_refused.labels(
            source=expected.value, reason=dead.reason.value
        ).inc()
        raise HTTPException(code, {"reason": dead.reason.value, "message": dead.detail})
    incident = result.incident
    topic = topics_for(settings).source(expected)
    try:
        metadata = await asyncio.wait_for(
            producer.send_and_wait(topic, value=raw, key=incident.idempotency_key.encode()),
            timeout=settings.publish_timeout_s,
        )
    except Exception as exc:  # nothing stored the event: the publisher must retry
        log.warning("publish to %s failed: %s", topic, exc)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            {"reason": "broker_unavailable", "message": "the event was not stored; retry"},
        ) from exc
    request.app.state.metrics.events_in.labels(source=expected.value).inc()
    return EventAccepted(
        event_id=incident.event_id,
        source=expected.value,
        topic=topic,
        partition=metadata.partition,
        offset=metadata.offset,
    )
