"""The bundled sample stream for `cityloop up --demo`, published as departmental systems would."""

from __future__ import annotations

import json
import time
from importlib import resources

import httpx

from cityloop.contracts import Source, idempotency_key_for
from cityloop.settings import Settings
from streams.topics import topics_for


def demo_lines() -> list[dict[str, object]]:
    text = resources.files("cityloop").joinpath("data/demo.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def publish_demo(settings: Settings) -> int:
    """Publish every demo event with a bare kafka-python producer; return how many."""
    from kafka import KafkaProducer

    names = topics_for(settings)
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", linger_ms=5)
    try:
        lines = demo_lines()
        for line in lines:
            event = line["event"]
            if not isinstance(event, dict):
                raise ValueError(f"demo line without an event object: {line}")
            producer.send(
                names.source(Source(str(line["source"]))),
                key=idempotency_key_for(str(event["source"]), str(event["id"])).encode(),
                value=json.dumps(event, ensure_ascii=False).encode(),
            )
        producer.flush(timeout=30)
        return len(lines)
    finally:
        producer.close()


def wait_for_cases(api_url: str, token: str, timeout_s: float = 60.0, settle_s: float = 3.0) -> int:
    """Poll the API until the number of cases stops changing; return it."""
    deadline = time.monotonic() + timeout_s
    last, stable_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = 0
        cursor: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = httpx.get(
                f"{api_url}/v1/cases",
                params=params,
                headers={"Authorization": f"Bearer {token}"},
                timeout=5,
            ).json()
            count += len(page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                break
        if count != last:
            last, stable_since = count, time.monotonic()
        elif count > 0 and time.monotonic() - stable_since >= settle_s:
            return count
        time.sleep(0.5)
    return max(last, 0)
