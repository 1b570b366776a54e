"""One topology everywhere: the API validates events against the version the worker routes with.
After `cityloop topology publish`, an event of a category only the new version knows is taken
(202) where it was refused (422); an API started later begins with that version; a version that
does not load changes nothing."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer

from cityloop.contracts import Source, idempotency_key_for
from tests.conftest import RunningSystem, bearer, start_system, stop_system
from tests.streams.test_lifecycle_stream import outcome_of
from tests.streams.test_pipeline import cases_with_report, cloudevent, wait_for
from tests.streams.test_topology_reload import publish_file
from topology import tiny_topology_path

pytestmark = pytest.mark.broker

NEW_CATEGORY = """categories:
  - code: manhole_cover
    name: 井盖缺失
    family: municipal
    lead_kind: urban_management
    lowest_level: small
    sla: {accept_minutes: 30, resolve_minutes: 480}
    correlation: {radius_m: 50, window_minutes: 1440}
    keywords: [井盖, manhole]
"""
NEW_SENSOR = (
    "sensor_types:\n  - {sensor_type: manhole_tilt, category_code: manhole_cover, "
    "needs_verification: false, name: 井盖倾斜传感器, unit: deg}\n"
)


@pytest.fixture
def system(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningSystem]:
    """A system of its own: the version published here must not meet other tests' events."""
    running = start_system(kafka_bootstrap, tmp_path_factory.mktemp("topology-feed"))
    try:
        yield running
    finally:
        stop_system(running)


def tilted_manhole() -> dict[str, Any]:
    """An alarm of a sensor type the tiny topology lacks (its category is new too)."""
    return cloudevent(
        Source.IOT,
        device_id="MH-7",
        sensor_type="manhole_tilt",
        reading=12.0,
        threshold=5.0,
        unit="deg",
        location={"lat": 30.6571, "lon": 104.0832},
    )


def post(system: RunningSystem, event: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{system.api_url}/v1/events/iot",
        content=json.dumps(event, ensure_ascii=False).encode(),
        headers={**bearer("publisher", "iot"), "Content-Type": "application/cloudevents+json"},
        timeout=15,
    )


def version_in_service(system: RunningSystem) -> str:
    version: str = httpx.get(f"{system.api_url}/healthz", timeout=5).json()["topology_version"]
    return version


def test_the_api_validates_against_the_published_version(
    system: RunningSystem, tmp_path: Path
) -> None:
    refused = post(system, tilted_manhole())
    assert refused.status_code == 422
    assert refused.json()["detail"]["reason"] == "unknown_category"
    assert version_in_service(system) == "tiny-1"

    text = tiny_topology_path().read_text(encoding="utf-8")
    assert text.count("categories:\n") == text.count("sensor_types:\n") == 1
    changed = text.replace("version: tiny-1", "version: tiny-feed", 1)
    changed = changed.replace("categories:\n", NEW_CATEGORY, 1)
    changed = changed.replace("sensor_types:\n", NEW_SENSOR, 1)
    published = tmp_path / "tiny-feed.yaml"
    published.write_text(changed, encoding="utf-8")
    command_id = publish_file(system, published)

    # the worker puts it in service and says so; the API follows the same topic
    assert outcome_of(system, command_id).reason == "applied tiny-feed"
    assert wait_for(lambda: version_in_service(system) == "tiny-feed", 30), system.log("api")[
        -3000:
    ]
    event = tilted_manhole()
    taken = post(system, event)
    assert taken.status_code == 202, taken.text
    key = idempotency_key_for(event["source"], event["id"])
    (case,) = wait_for(lambda: cases_with_report(system, key), 30)
    assert case["category_code"] == "manhole_cover"
    assert case["assignment"]["topology_version"] == "tiny-feed"

    # an API started now begins with the newest version on the topic, before its first answer
    system.processes["api"].terminate()
    system.processes["api"].wait(15)
    system.start("api")
    assert wait_for(lambda: api_answers(system), 60), system.log("api")[-3000:]
    assert version_in_service(system) == "tiny-feed"
    assert post(system, tilted_manhole()).status_code == 202

    # a version that does not load: the worker refuses it, the API skips it; both keep theirs
    broken = b"version: tiny-broken\nareas: [oops"
    ignored_before = system.log("api").count("ignored")
    producer = KafkaProducer(bootstrap_servers=system.bootstrap, acks="all")
    try:
        producer.send(system.topic("topology"), key=b"current", value=broken).get(timeout=10)
    finally:
        producer.close()
    refusal = outcome_of(system, f"topology:{hashlib.sha256(broken).hexdigest()[:16]}")
    assert not refusal.applied and refusal.reason.startswith("invalid")
    assert wait_for(lambda: system.log("api").count("ignored") > ignored_before, 30)
    assert version_in_service(system) == "tiny-feed"
    assert post(system, tilted_manhole()).status_code == 202


def api_answers(system: RunningSystem) -> bool:
    try:
        return httpx.get(f"{system.api_url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
