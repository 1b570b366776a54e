"""The case lifecycle on the real broker: commands, deadlines driven by ticks, emergency mode."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from kafka import KafkaConsumer, KafkaProducer

from cityloop.contracts import CommandOutcome, Mode, Source, SwitchMode, Tick
from tests.conftest import RunningSystem, bearer
from tests.streams.test_pipeline import cases_with_report, cloudevent, publish, wait_for

pytestmark = pytest.mark.broker
PARTITIONS = 4


def send_control(system: RunningSystem, message: dict[str, Any], key: str | None) -> None:
    """One control message to the partition of `key`, or to every partition when key is None."""
    producer = KafkaProducer(bootstrap_servers=system.bootstrap, acks="all")
    topic = system.topic("case-control")
    value = json.dumps(message).encode()
    try:
        if key is None:
            for partition in range(PARTITIONS):
                producer.send(topic, value=value, partition=partition).get(timeout=10)
        else:
            producer.send(topic, key=key.encode(), value=value).get(timeout=10)
    finally:
        producer.close()


def outcome_of(system: RunningSystem, command_id: str, timeout_s: float = 20) -> CommandOutcome:
    consumer = KafkaConsumer(
        system.topic("command-outcomes"),
        bootstrap_servers=system.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=int(timeout_s * 1000),
    )
    try:
        for record in consumer:
            outcome = CommandOutcome.model_validate_json(record.value)
            if outcome.command_id == command_id:
                return outcome
    finally:
        consumer.close()
    raise AssertionError(f"no outcome for {command_id}")


def new_case(system: RunningSystem, lat: float, **data: Any) -> dict[str, Any]:
    event = cloudevent(
        Source.HOTLINE, area_code=None, location={"lat": lat, "lon": 104.0802}, **data
    )
    publish(system, "hotline", json.dumps(event, ensure_ascii=False).encode())
    cases = wait_for(lambda: cases_with_report(system, f"{event['source']}|{event['id']}"), 30)
    assert len(cases) == 1, system.log("worker")[-3000:]
    case: dict[str, Any] = cases[0]
    return case


def case_now(system: RunningSystem, case_id: str) -> dict[str, Any]:
    case: dict[str, Any] = httpx.get(
        f"{system.api_url}/v1/cases/{case_id}", headers=bearer(), timeout=5
    ).json()
    return case


def command(kind: str, case: dict[str, Any], actor: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "command_id": f"cmd-{uuid.uuid4().hex[:10]}",
        "case_id": case["case_id"],
        "actor": actor,
        "issued_at": datetime.now(UTC).isoformat(),
        **fields,
    }


def test_commands_are_applied_or_rejected_with_the_reason(system: RunningSystem) -> None:
    case = new_case(
        system, 30.6571, title="路面坑洼", text="人行道有个大坑", category_code="pothole"
    )
    assert case["status"] == "dispatched" and case["loop"] == "small"
    key = case["correlation_key"]

    resolve_first = command("resolve", case, f"dept:{case['lead_department']}", resolution="done")
    send_control(system, resolve_first, key)
    assert outcome_of(system, resolve_first["command_id"]).reason == "invalid_state"

    stranger = command("accept", case, "dept:510105001.urban_management")
    send_control(system, stranger, key)
    assert outcome_of(system, stranger["command_id"]).reason == "not_permitted"

    accept = command("accept", case, f"dept:{case['lead_department']}")
    send_control(system, accept, key)
    applied = outcome_of(system, accept["command_id"])
    assert applied.applied and applied.event_types == ["CaseAccepted"]
    accepted = wait_for(
        lambda: (c := case_now(system, case["case_id"]))["status"] == "accepted" and c
    )
    assert accepted["timeline"][-1]["actor"] == f"dept:{case['lead_department']}"


def test_a_missed_deadline_escalates_when_the_clock_passes_it(system: RunningSystem) -> None:
    case = new_case(system, 30.6591, title="路面坑洼", text="车道有坑", category_code="pothole")
    deadline = datetime.fromisoformat(case["accept_deadline"])
    send_control(system, Tick(now=deadline - timedelta(minutes=1)).model_dump(mode="json"), None)
    send_control(system, Tick(now=deadline + timedelta(minutes=1)).model_dump(mode="json"), None)

    def escalated() -> dict[str, Any] | None:
        now = case_now(system, case["case_id"])
        return now if now["loop"] == "medium" else None

    after = wait_for(escalated, timeout_s=30)
    assert after, system.log("worker")[-3000:]
    types = [entry["type"] for entry in after["timeline"]]
    assert types[-3:] == ["SupervisionNoticeIssued", "CaseEscalated", "CaseDispatched"]
    assert after["timeline"][-2]["details"]["reason"] == "accept_deadline_missed"


def test_emergency_mode_raises_open_cases_and_routes_new_ones_higher(system: RunningSystem) -> None:
    flood = new_case(
        system, 30.6611, title="积水", text="路口积水很深", category_code="waterlogging"
    )
    assert flood["loop"] == "small"
    switch = SwitchMode(
        command_id=f"mode-{uuid.uuid4().hex[:8]}",
        area_code="510104",
        mode=Mode.EMERGENCY,
        actor="centre:510104",
        issued_at=datetime.now(UTC),
    )
    send_control(system, switch.model_dump(mode="json"), None)
    assert outcome_of(system, switch.command_id).applied
    raised = wait_for(lambda: (c := case_now(system, flood["case_id"]))["loop"] == "medium" and c)
    assert raised and raised["timeline"][-2]["details"]["reason"] == "emergency_mode"
    fresh = new_case(system, 30.6461, title="积水", text="另一处积水", category_code="waterlogging")
    assert fresh["loop"] == "medium"
    back = switch.model_copy(update={"command_id": switch.command_id + "-off", "mode": Mode.NORMAL})
    send_control(system, back.model_dump(mode="json"), None)
    assert outcome_of(system, back.command_id).applied
