"""Intake: decode a raw record, validate it against its source's contract, normalise it to an
Incident, or say precisely why it becomes a dead letter."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ValidationError

from cityloop.contracts import (
    EVENT_TYPES,
    PAYLOADS,
    SOURCE_OF_TYPE,
    AreaLevel,
    CallerContact,
    CloudEvent,
    DeadLetter,
    DeadLetterReason,
    DutyReport,
    GeoPoint,
    GridReport,
    HotlineWorkOrder,
    Incident,
    IoTAlarm,
    Origin,
    Source,
    SourcePayload,
    Triage,
    TriageDecision,
)
from handlers.triage import (
    CategoryDecision,
    Guesser,
    categorise,
    disagreement,
    is_urgent,
    place_from_words,
    triage_record,
)
from topology import Topology
from topology.geo import distance_m

MAX_CENTROID_DISTANCE_M = 10_000.0
"""A point farther than this from every community's centroid lies outside the topology."""


class Rejected(Exception):
    """An input that cannot become an incident; carries the dead-letter reason."""

    def __init__(self, reason: DeadLetterReason, detail: str):
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Accepted:
    incident: Incident


@dataclass(frozen=True)
class DeadLettered:
    dead_letter: DeadLetter


IntakeResult = Accepted | DeadLettered


def incident_id_for(idempotency_key: str) -> str:
    return hashlib.blake2b(idempotency_key.encode(), digest_size=10).hexdigest()


def describe_validation_error(error: ValidationError, prefix: str = "") -> str:
    """One line per problem, naming the field: 'data.location.lat: Input should be ...'."""
    parts = []
    for problem in error.errors(include_url=False):
        where = ".".join(str(step) for step in problem["loc"])
        parts.append(f"{prefix}{where}: {problem['msg']}" if where else f"{prefix}{problem['msg']}")
    return "; ".join(parts)


def parse_envelope(raw: bytes) -> CloudEvent:
    try:
        # nearly every record is a good one: parse and validate it in one pass
        return CloudEvent.model_validate_json(raw)
    except ValidationError:
        pass  # say why as always, from the standard library's reading of the bytes
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise Rejected(DeadLetterReason.UNDECODABLE, f"not UTF-8 JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise Rejected(DeadLetterReason.NOT_A_CLOUDEVENT, "the record is JSON but not an object")
    try:
        return CloudEvent.model_validate(document)
    except ValidationError as exc:
        raise Rejected(DeadLetterReason.NOT_A_CLOUDEVENT, describe_validation_error(exc)) from exc


def validate_payload(envelope: CloudEvent, expected: Source | None) -> tuple[Source, SourcePayload]:
    source = SOURCE_OF_TYPE.get(envelope.type)
    if source is None:
        known = ", ".join(sorted(SOURCE_OF_TYPE))
        raise Rejected(
            DeadLetterReason.UNKNOWN_EVENT_TYPE, f"type {envelope.type!r} is not one of: {known}"
        )
    if expected is not None and source is not expected:
        raise Rejected(
            DeadLetterReason.SOURCE_MISMATCH,
            f"a {source.value} event ({envelope.type}) on the {expected.value} topic; "
            f"{expected.value} events have type {EVENT_TYPES[expected]}",
        )
    try:
        return source, PAYLOADS[source].model_validate(envelope.data)
    except ValidationError as exc:
        raise Rejected(
            DeadLetterReason.INVALID_PAYLOAD, describe_validation_error(exc, prefix="data.")
        ) from exc


def _known_area(topology: Topology, code: str, field: str) -> str:
    area = topology.area(code)
    if area is None:
        raise Rejected(DeadLetterReason.UNKNOWN_AREA, f"{field}: no area {code!r} in the topology")
    if area.level is AreaLevel.GRID:
        # cases are handled by communities; a grid only says which patch it was seen in
        community = topology.ancestor_at(code, AreaLevel.COMMUNITY)
        if community is not None:
            return community
    return code


def _place(
    topology: Topology, area_code: str | None, location: GeoPoint | None, field: str
) -> tuple[str, str]:
    """The area an incident falls in, and how it was found."""
    if area_code is not None:
        code = _known_area(topology, area_code, field)
        level = topology.area(code)
        if (
            location is not None
            and level is not None
            and level.level
            not in (
                AreaLevel.COMMUNITY,
                AreaLevel.GRID,
            )
        ):
            located = topology.locate(location, within=code)
            if located is not None:
                return located
        return code, "reported_area"
    if location is None:
        raise Rejected(DeadLetterReason.UNLOCATABLE, f"{field}: no area code and no location")
    located = topology.locate(location)
    if located is not None and located[1] == "nearest_centroid":
        community = topology.area(located[0])
        centroid = community.centroid if community else None
        if centroid is not None and (
            distance_m(location.lat, location.lon, centroid.lat, centroid.lon)
            > MAX_CENTROID_DISTANCE_M
        ):
            located = None  # the nearest community is too far away: the point is not in this city
    if located is None:
        raise Rejected(
            DeadLetterReason.UNLOCATABLE,
            f"location ({location.lat}, {location.lon}) is in no community of the topology",
        )
    return located


MAX_CLOCK_SKEW = timedelta(hours=24)
"""An event stamped later than this after it arrived is refused: clocks drift, not by days."""

EVENT_TIME_FIELD = {
    HotlineWorkOrder: "received_at",
    IoTAlarm: "raised_at",
    GridReport: "reported_at",
    DutyReport: "reported_at",
}


def _not_in_future(payload: SourcePayload, now: datetime) -> None:
    field = EVENT_TIME_FIELD[type(payload)]
    stamped: datetime = getattr(payload, field)
    if stamped > now + MAX_CLOCK_SKEW:
        raise Rejected(
            DeadLetterReason.INVALID_PAYLOAD,
            f"data.{field}: {stamped.isoformat()} is more than 24 h after it arrived",
        )


_CANONICAL_JSON = json.JSONEncoder(
    sort_keys=True, ensure_ascii=False, separators=(",", ":"), check_circular=False
)
"""One encoder for every digest: `json.dumps` with options builds a new one per call. Parsed
JSON cannot hold a cycle, so it is not looked for."""


def content_digest(envelope: CloudEvent) -> str:
    canonical = _CANONICAL_JSON.encode(envelope.data)
    return hashlib.blake2b(f"{envelope.type}|{canonical}".encode(), digest_size=12).hexdigest()


_VALIDATE_INCIDENT = Incident.__pydantic_validator__.validate_python


def _incident(common: dict[str, object], **fields: object) -> Incident:
    """`Incident(**common, **fields)` through the validator itself: the same checks, less
    overhead per call."""
    incident: Incident = _VALIDATE_INCIDENT({**common, **fields})
    return incident


def _structured_category(topology: Topology, code: str) -> tuple[str, Triage | None]:
    """A grid or duty report's category: its own code when the topology knows it; else the
    report waits at the dispatch desk with the code kept verbatim (the same policy as a
    hotline order's unknown code, so no report is lost for a code the topology lacks)."""
    decision = categorise(topology, code, "", "", None)
    if decision.decision is TriageDecision.GIVEN:
        return code, None
    return decision.category_code, triage_record(decision)


def _hotline(
    payload: HotlineWorkOrder, topology: Topology, guesser: Guesser | None
) -> tuple[CategoryDecision, list[str], str, Triage]:
    """A work order's category, areas, how it was placed, and its triage."""
    category = categorise(topology, payload.category_code, payload.title, payload.text, guesser)
    urgent = is_urgent(None, payload.urgency)
    if payload.area_code is not None or payload.location is not None:
        area, method = _place(topology, payload.area_code, payload.location, "data.area_code")
        note = disagreement(topology, area, payload.address, payload.text)
        return category, [area], method, triage_record(category, None, note, urgent)
    place = place_from_words(topology, payload.address, f"{payload.title} {payload.text}")
    method = "address_text" if place.placed else "unplaced"
    return category, [place.area_code], method, triage_record(category, place, None, urgent)


def normalise(
    envelope: CloudEvent,
    source: Source,
    payload: SourcePayload,
    topology: Topology,
    now: datetime,
    origin: Origin | None,
    guesser: Guesser | None = None,
) -> Incident:
    key = envelope.idempotency_key
    _not_in_future(payload, now)
    common = {
        "incident_id": incident_id_for(key),
        "idempotency_key": key,
        "source": source,
        "event_id": envelope.id,
        "event_source": envelope.source,
        "received_at": now,
        "origin": origin,
        "content_digest": content_digest(envelope),
    }
    if isinstance(payload, HotlineWorkOrder):
        category, areas, method, triage = _hotline(payload, topology, guesser)
        caller = (
            CallerContact(name=payload.caller_name, phone=payload.caller_phone)
            if payload.caller_name or payload.caller_phone
            else None
        )
        return _incident(
            common,
            category_code=category.category_code,
            title=payload.title,
            text=payload.text,
            area_codes=areas,
            location=payload.location,
            location_method=method,
            occurred_at=payload.received_at,
            caller=caller,
            triage=triage,
        )
    if isinstance(payload, IoTAlarm):
        sensor = topology.sensor_type(payload.sensor_type)
        if sensor is None:
            raise Rejected(
                DeadLetterReason.UNKNOWN_CATEGORY,
                f"data.sensor_type: no category for sensor type {payload.sensor_type!r}",
            )
        area, method = _place(topology, payload.area_code, payload.location, "data.area_code")
        state = "cleared" if payload.cleared else "alarm"
        return _incident(
            common,
            category_code=sensor.category_code,
            title=f"{payload.sensor_type} {state}: {payload.reading:g} {payload.unit} "
            f"(threshold {payload.threshold:g})",
            area_codes=[area],
            location=payload.location,
            location_method=method,
            occurred_at=payload.raised_at,
            device_id=payload.device_id,
            sensor_type=payload.sensor_type,
            cleared=payload.cleared,
        )
    if isinstance(payload, GridReport):
        area = _known_area(topology, payload.grid_id, "data.grid_id")
        code, grid_triage = _structured_category(topology, payload.category_code)
        return _incident(
            common,
            category_code=code,
            triage=grid_triage,
            title=payload.text[:80],
            text=payload.text,
            area_codes=[area],
            location=payload.location,
            occurred_at=payload.reported_at,
            reporter=payload.inspector_id,
        )
    if isinstance(payload, DutyReport):
        areas = [
            _known_area(topology, code, f"data.affected_areas[{i}]")
            for i, code in enumerate(payload.affected_areas)
        ]
        code, duty_triage = _structured_category(topology, payload.category_code)
        if duty_triage is not None and is_urgent(payload.severity):
            duty_triage = duty_triage.model_copy(update={"urgent": True})
        return _incident(
            common,
            category_code=code,
            triage=duty_triage,
            title=payload.summary[:80],
            text=payload.summary,
            area_codes=list(dict.fromkeys(areas)),
            location=payload.location,
            severity=payload.severity,
            occurred_at=payload.reported_at,
            reporter=payload.duty_office,
            casualties=payload.casualties,
        )
    raise AssertionError(f"unhandled payload {type(payload).__name__}")  # pragma: no cover


def take_in(
    raw: bytes,
    topology: Topology,
    now: datetime,
    expected: Source | None = None,
    origin: Origin | None = None,
    guesser: Guesser | None = None,
) -> IntakeResult:
    """The whole intake decision for one raw record."""
    source: Source | None = expected
    key: str | None = None
    try:
        envelope = parse_envelope(raw)
        key = envelope.idempotency_key
        source, payload = validate_payload(envelope, expected)
        return Accepted(normalise(envelope, source, payload, topology, now, origin, guesser))
    except Rejected as rejection:
        return DeadLettered(
            DeadLetter(
                reason=rejection.reason,
                detail=rejection.detail[:2000],
                origin=origin,
                source=source,
                idempotency_key=key,
                payload_b64=base64.b64encode(raw).decode("ascii"),
                recorded_at=now,
            )
        )
