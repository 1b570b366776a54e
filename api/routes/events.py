"""Ingest: departmental systems post CloudEvents, one or a batch; 202 only once the broker has
them."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, HTTPException, Path, Request, status

from api.cloudevents_http import (
    BATCH,
    JSON,
    STRUCTURED,
    BindingRefused,
    Mode,
    check_batch_media_type,
    event_mode,
    structured_from_binary,
)
from api.deps import NowDep, PrincipalDep, ProducerDep, SettingsDep, TopologyDep
from api.errors import forbidden, problems, refuse, refuse_with
from api.metrics import Metrics
from api.schemas import (
    COMPONENTS,
    BatchAccepted,
    BatchItemProblem,
    BatchProblem,
    BatchProblemResponse,
    EventAccepted,
    example_of,
)
from cityloop.contracts import (
    EVENT_TYPES,
    CloudEvent,
    DeadLetter,
    DeadLetterReason,
    Incident,
    Source,
)
from cityloop.settings import Settings
from handlers.access import (
    SOURCE_NOT_ALLOWED,
    Denied,
    Principal,
    check_may_publish,
    check_may_publish_as,
)
from handlers.intake import Accepted, take_in
from streams.topics import topics_for
from topology import Topology

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/events", tags=["ingest"], responses=problems(401, 422))

HOTLINE_EVENT_EXAMPLE: dict[str, Any] = example_of(CloudEvent)
"""The example story's first step (the contract's own example): it opens the example case."""

CLOUDEVENT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            media_type: {
                "schema": {"$ref": COMPONENTS + "CloudEvent"},
                "example": HOTLINE_EVENT_EXAMPLE,
            }
            for media_type in (STRUCTURED, JSON)
        },
    }
}


SourcePath = Annotated[
    str,
    Path(
        description="the publishing system; another name is 404",
        examples=[Source.HOTLINE.value],
        json_schema_extra={"enum": [source.value for source in Source]},
    ),
]

MAX_BATCH_EVENTS = 500
"""More events than this in one batch get 413: split the batch."""

BATCH_BODY_FACTOR = 10
"""A batch body may be this many times `max_event_bytes` (each item at most `max_event_bytes`)."""


def _source(name: str) -> Source:
    try:
        return Source(name)
    except ValueError:
        known = ", ".join(src.value for src in Source)
        raise refuse(
            status.HTTP_404_NOT_FOUND,
            "unknown_source",
            f"no event source {name!r}; known: {known}",
        ) from None


def may_publish(principal: Principal, source: Source) -> None:
    """403 unless the token is a publisher of this kind of source that names the source URIs
    it publishes."""
    try:
        check_may_publish(principal, source)
    except Denied as denied:
        raise forbidden(denied) from None


def may_publish_as(principal: Principal, event_source: str) -> None:
    """403 `source_not_allowed` unless the token names this CloudEvent source."""
    try:
        check_may_publish_as(principal, event_source)
    except Denied as denied:
        raise forbidden(denied) from None


def declared_source(event: object) -> str | None:
    """The CloudEvent `source` an event (a parsed JSON value) names, if it names one as text:
    the token is checked against it before the event is validated, so a publisher learns
    nothing of events it may not send."""
    source = event.get("source") if isinstance(event, dict) else None
    return source if isinstance(source, str) else None


def source_of_body(raw: bytes) -> str | None:
    """`declared_source` of a body, if the body is a JSON object; None if it cannot be read
    (intake then says why)."""
    try:
        return declared_source(json.loads(raw))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None


def binding_refusal(refused: BindingRefused) -> HTTPException:
    code = (
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
        if refused.unsupported
        else status.HTTP_400_BAD_REQUEST
    )
    return refuse(code, refused.reason, refused.message)


def content_mode(request: Request) -> Mode:
    """Structured or binary mode, by the request's Content-Type as the CloudEvents HTTP binding
    chooses; 415 for a media type that carries no event of ours."""
    try:
        return event_mode(request.headers.get("content-type"), request.headers)
    except BindingRefused as refused:
        raise binding_refusal(refused) from None


def structured_event(request: Request, body: bytes) -> bytes:
    """A binary-mode request as the structured JSON event the topics carry; 400 if its headers
    or its body cannot make one."""
    try:
        return structured_from_binary(request.headers.items(), body)
    except BindingRefused as refused:
        raise binding_refusal(refused) from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise refuse(
            status.HTTP_400_BAD_REQUEST,
            DeadLetterReason.UNDECODABLE.value,
            f"binary mode: the body (the event's data) is not UTF-8 JSON: {exc}",
        ) from exc


def _too_large(limit: int) -> HTTPException:
    return refuse(status.HTTP_413_CONTENT_TOO_LARGE, "too_large", f"body over {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, or 413 if it is over `limit` bytes: refused on the declared length before
    anything is read, and on the real length (a client may not declare one)."""
    declared = request.headers.get("content-length", "")
    if (
        declared.isascii()
        and declared.isdigit()
        and (len(declared) > len(str(limit)) or int(declared) > limit)  # no int of 5000 digits
    ):
        raise _too_large(limit)
    raw = await request.body()
    if len(raw) > limit:
        raise _too_large(limit)
    return raw


def refusal_status(reason: DeadLetterReason) -> int:
    """400 for bytes that are not JSON at all; 422 for JSON that is not a valid event."""
    if reason is DeadLetterReason.UNDECODABLE:
        return status.HTTP_400_BAD_REQUEST
    return status.HTTP_422_UNPROCESSABLE_CONTENT


def admit(
    raw: bytes, source: Source, topology: Topology, metrics: Metrics, now: datetime
) -> Incident | DeadLetter:
    """The intake decision for one event posted over HTTP, the same the worker makes; refusals
    are counted by source and reason."""
    result = take_in(raw, topology, now, expected=source)
    if isinstance(result, Accepted):
        return result.incident
    dead = result.dead_letter
    metrics.events_refused.labels(source=source.value, reason=dead.reason.value).inc()
    return dead


def refusal(dead: DeadLetter) -> HTTPException:
    return refuse(refusal_status(dead.reason), dead.reason.value, dead.detail)


async def publish(
    producer: Any,
    settings: Settings,
    source: Source,
    events: Sequence[tuple[Incident, bytes]],
    metrics: Metrics,
) -> list[EventAccepted]:
    """Send every event to its source's topic, then wait for all the acks (acks=all); 503 when
    the broker does not acknowledge them all within the publish timeout."""
    topic = topics_for(settings).source(source)

    async def send_all() -> list[Any]:
        acks = [
            await producer.send(topic, value=raw, key=incident.idempotency_key.encode())
            for incident, raw in events
        ]
        return list(await asyncio.gather(*acks))

    try:
        metadata = await asyncio.wait_for(send_all(), timeout=settings.publish_timeout_s)
    except Exception as exc:
        log.warning("publish of %d event(s) to %s failed: %s", len(events), topic, exc)
        message = (
            "the event was not stored; retry"
            if len(events) == 1
            else "none or only some of the events may be stored; retry the whole batch "
            "(events are idempotent by source and id, so those stored are not doubled)"
        )
        raise refuse(status.HTTP_503_SERVICE_UNAVAILABLE, "broker_unavailable", message) from exc
    metrics.events_in.labels(source=source.value).inc(len(events))
    return [
        EventAccepted(
            event_id=incident.event_id,
            source=source.value,
            topic=topic,
            partition=record.partition,
            offset=record.offset,
        )
        for (incident, _), record in zip(events, metadata, strict=True)
    ]


@router.post(
    "/{source}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=EventAccepted,
    responses=problems(400, 403, 404, 413, 415, 503),
    openapi_extra=CLOUDEVENT_BODY,
)
async def post_event(
    source: SourcePath,
    request: Request,
    settings: SettingsDep,
    producer: ProducerDep,
    topology: TopologyDep,
    now: NowDep,
    principal: PrincipalDep,
) -> EventAccepted:
    """Validate one CloudEvent of this source and publish it; answer once the broker acked.

    Both content modes of the CloudEvents HTTP binding, chosen by Content-Type: structured,
    `application/cloudevents+json` with the whole event in the body (so is `application/json`
    without a `ce-specversion` header); binary, `application/json` with the attributes in
    `ce-*` headers (`ce-specversion`, `ce-id`, `ce-source`, `ce-type`, and `ce-time` or
    `ce-subject` if wanted; values percent-encoded) and the event's data as the body. Any other
    Content-Type is 415. The token must name the event's `source` (403 `source_not_allowed`)."""
    expected = _source(source)
    may_publish(principal, expected)
    mode = content_mode(request)
    if mode is Mode.BINARY:
        header_source = request.headers.get("ce-source")
        if header_source is not None:
            may_publish_as(principal, unquote(header_source))
    raw = await read_body(request, settings.max_event_bytes)
    if mode is Mode.BINARY:
        raw = structured_event(request, raw)
    named = source_of_body(raw)
    if named is not None:
        may_publish_as(principal, named)
    metrics: Metrics = request.app.state.metrics
    admitted = admit(raw, expected, topology, metrics, now)
    if isinstance(admitted, DeadLetter):
        raise refusal(admitted)
    may_publish_as(principal, admitted.event_source)
    (accepted,) = await publish(producer, settings, expected, [(admitted, raw)], metrics)
    return accepted


BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            media_type: {
                "schema": {
                    "type": "array",
                    "items": {"$ref": COMPONENTS + "CloudEvent"},
                    "maxItems": MAX_BATCH_EVENTS,
                },
                "example": [
                    HOTLINE_EVENT_EXAMPLE,
                    {
                        "specversion": "1.0",
                        "id": "WO-20261122-000124",
                        "source": "/12345/chengdu",
                        "type": EVENT_TYPES[Source.HOTLINE],
                        "data": {
                            "order_id": "WO-20261122-000124",
                            "received_at": "2026-11-22T08:17:00+08:00",
                            "category_code": "garbage_exposed",
                            "title": "垃圾堆放",
                            "text": "望江路边垃圾两天没人收",
                            "area_code": "510104002001",
                        },
                    },
                ],
            }
            for media_type in (BATCH, JSON)
        },
    }
}


def publish_as_denials(principal: Principal, items: Sequence[Any]) -> list[Denied | None]:
    """For each item of a batch, why the token may not publish the source it names (None if it
    may, or if it names none: intake refuses those)."""
    denials: list[Denied | None] = []
    for item in items:
        named = declared_source(item)
        try:
            if named is not None:
                check_may_publish_as(principal, named)
            denials.append(None)
        except Denied as denied:
            denials.append(denied)
    return denials


def _batch_items(raw: bytes) -> list[Any]:
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise refuse(
            status.HTTP_400_BAD_REQUEST,
            DeadLetterReason.UNDECODABLE.value,
            f"not UTF-8 JSON: {exc}",
        ) from exc
    if not isinstance(document, list):
        raise refuse(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "not_a_batch",
            "a batch is a JSON array of CloudEvents; post a single event to /v1/events/{source}",
        )
    if not document:
        raise refuse(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "empty_batch", "the array holds no events"
        )
    if len(document) > MAX_BATCH_EVENTS:
        raise refuse(
            status.HTTP_413_CONTENT_TOO_LARGE,
            "too_many_events",
            f"{len(document)} events; a batch holds at most {MAX_BATCH_EVENTS}",
        )
    return document


@router.post(
    "/{source}/batch",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BatchAccepted,
    summary="Post a batch of CloudEvents of one source (all or nothing)",
    responses={
        **problems(400, 404, 413, 415, 503),
        **problems(403, 422, model=BatchProblemResponse),
    },
    openapi_extra=BATCH_BODY,
)
async def post_batch(
    source: SourcePath,
    request: Request,
    settings: SettingsDep,
    producer: ProducerDep,
    topology: TopologyDep,
    now: NowDep,
    principal: PrincipalDep,
) -> BatchAccepted:
    """Validate every event of the array as `POST /v1/events/{source}` validates one; publish
    them all only if every one is valid, and answer once the broker acked them all.

    All or nothing: if any item is refused, the answer is 422 naming each bad item by its index
    with its reason and message, and nothing is published, so a publisher fixes the batch and
    posts it again whole. At most 500 events, a body of at most 10 × `CITYLOOP_MAX_EVENT_BYTES`,
    each event at most `CITYLOOP_MAX_EVENT_BYTES` once re-encoded. A 503 means none or only
    some of the events may be stored: retry the whole batch; events are idempotent by
    `source` + `id`, so the ones already stored are not doubled. The body is JSON: Content-Type
    `application/json`, or the binding's batched mode, `application/cloudevents-batch+json`;
    any other is 415."""
    expected = _source(source)
    may_publish(principal, expected)
    try:
        check_batch_media_type(request.headers.get("content-type"))
    except BindingRefused as not_a_batch:
        raise binding_refusal(not_a_batch) from None
    raw = await read_body(request, settings.max_event_bytes * BATCH_BODY_FACTOR)
    metrics: Metrics = request.app.state.metrics
    admitted: list[tuple[Incident, bytes]] = []
    problems: list[BatchItemProblem] = []
    items = _batch_items(raw)
    not_allowed = [
        BatchItemProblem(index=index, reason=SOURCE_NOT_ALLOWED, message=denied.reason)
        for index, denied in enumerate(publish_as_denials(principal, items))
        if denied is not None
    ]
    if not_allowed:
        raise refuse_with(
            status.HTTP_403_FORBIDDEN,
            BatchProblem(
                reason=SOURCE_NOT_ALLOWED,
                message=f"{len(not_allowed)} of {len(items)} events name a source this "
                "token may not publish; none was published",
                items=not_allowed,
            ),
        )
    for index, item in enumerate(items):
        # re-encoded compactly: the bytes published are those validated
        item_raw = json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode()
        if len(item_raw) > settings.max_event_bytes:
            problems.append(
                BatchItemProblem(
                    index=index,
                    reason="too_large",
                    message=f"event over {settings.max_event_bytes} bytes",
                )
            )
            continue
        result = admit(item_raw, expected, topology, metrics, now)
        if isinstance(result, DeadLetter):
            problems.append(
                BatchItemProblem(index=index, reason=result.reason.value, message=result.detail)
            )
        else:
            admitted.append((result, item_raw))
    if problems:
        total = len(problems) + len(admitted)
        refused = BatchProblem(
            reason="invalid_items",
            message=f"{len(problems)} of {total} events refused; none was published",
            items=problems,
        )
        raise refuse_with(status.HTTP_422_UNPROCESSABLE_CONTENT, refused)
    accepted = await publish(producer, settings, expected, admitted, metrics)
    return BatchAccepted(source=expected.value, count=len(accepted), items=accepted)
