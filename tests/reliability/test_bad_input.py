"""The bad-input corpus (tests/data/bad_inputs.json): over HTTP each gets a 4xx naming the
problem; over Kafka each becomes a dead letter with its reason; the worker never stops."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from cityloop.contracts import Source
from tests.conftest import RunningSystem, bearer
from tests.streams.test_pipeline import (
    cases_with_report,
    cloudevent,
    dead_letters,
    publish,
    wait_for,
)

pytestmark = pytest.mark.broker
CORPUS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "data" / "bad_inputs.json").read_text(encoding="utf-8")
)


def raw(entry: dict[str, Any]) -> bytes:
    if "raw_b64" in entry:
        return base64.b64decode(entry["raw_b64"])
    if "text" in entry:
        return str(entry["text"]).encode()
    return json.dumps(entry["body"], ensure_ascii=False).encode()


@pytest.mark.parametrize("entry", CORPUS, ids=[entry["name"] for entry in CORPUS])
def test_http_refuses_with_the_problem_named(system: RunningSystem, entry: dict[str, Any]) -> None:
    response = httpx.post(
        f"{system.api_url}/v1/events/{entry['source']}",
        content=raw(entry),
        headers={**bearer("publisher", entry["source"]), "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == entry["http"], response.text
    detail = response.json()["detail"]
    assert detail["reason"] == entry["reason"]
    assert entry["field"] in detail["message"]


def test_http_size_limit_and_text_in_any_script(system: RunningSystem) -> None:
    publisher = bearer("publisher", "hotline")
    huge = cloudevent(Source.HOTLINE, text="水" * (10 * 1024 * 1024 // 3))
    too_large = httpx.post(
        f"{system.api_url}/v1/events/hotline", json=huge, headers=publisher, timeout=30
    )
    assert too_large.status_code == 413
    mixed = cloudevent(Source.HOTLINE, title="井盖 🕳️ manhole", text="Ёжик 路口 🚧 ليس هناك غطاء")
    accepted = httpx.post(f"{system.api_url}/v1/events/hotline", json=mixed, headers=publisher)
    assert accepted.status_code == 202


def test_kafka_dead_letters_every_bad_record_and_keeps_going(system: RunningSystem) -> None:
    for entry in CORPUS:
        publish(system, entry["source"], raw(entry))
    # an id reused for different content is not a resend: it is refused, not merged
    first = cloudevent(Source.GRID, text="路灯不亮")
    reused = {**first, "data": {**first["data"], "text": "完全不同的一件事"}}
    publish(system, "grid", json.dumps(first, ensure_ascii=False).encode())
    publish(system, "grid", json.dumps(reused, ensure_ascii=False).encode())
    expected = {raw(entry): entry["reason"] for entry in CORPUS}
    reused_key = f"{reused['source']}|{reused['id']}"

    def all_dead() -> dict[bytes, str] | None:
        letters = dead_letters(system)
        conflict = any(
            letter.reason.value == "conflicting_duplicate" and letter.idempotency_key == reused_key
            for letter in letters
        )
        found = {
            base64.b64decode(letter.payload_b64): letter.reason.value
            for letter in letters
            if letter.payload_is_original
        }
        found = {payload: reason for payload, reason in found.items() if payload in expected}
        return found if conflict and len(found) == len(expected) else None

    found = wait_for(all_dead, timeout_s=60)
    if found is None:
        seen = {base64.b64decode(letter.payload_b64) for letter in dead_letters(system)}
        names = [e["name"] for e in CORPUS if raw(e) not in seen]
        raise AssertionError(f"no dead letter for {names} (or for the reused id)")
    assert found == expected
    assert system.processes["worker"].poll() is None
    assert wait_for(lambda: cases_with_report(system, f"{first['source']}|{first['id']}"))
