"""A publisher's token names the CloudEvent sources it may publish, on a live system: an event of
any other source is refused 403 — one posted alone, in a batch, through Open311 — so that no
publisher can take another's idempotency keys (the squatting attack of issue #16)."""

from __future__ import annotations

import httpx
import pytest

from cityloop.contracts import Source
from tests.api.test_batch_ingest import post_batch, published_ids
from tests.api.test_open311 import create
from tests.conftest import RunningSystem, bearer
from tests.streams.test_pipeline import cases_with_report, cloudevent, wait_for

pytestmark = pytest.mark.broker

HOTLINE_SYSTEM = ("/12345/chengdu",)
IOT_PLATFORM = ("/cim/iot",)


def post(
    system: RunningSystem, source: str, event: object, headers: dict[str, str]
) -> httpx.Response:
    return httpx.post(
        f"{system.api_url}/v1/events/{source}", json=event, headers=headers, timeout=15
    )


def test_a_hotline_publisher_cannot_squat_an_iot_alarms_id(system: RunningSystem) -> None:
    squatter = cloudevent(Source.HOTLINE, order_id="AL-77")
    squatter.update(id="AL-77", source="/cim/iot")
    refused = post(system, "hotline", squatter, bearer("publisher", "hotline", HOTLINE_SYSTEM))
    assert refused.status_code == 403, refused.text
    assert refused.json()["detail"]["reason"] == "source_not_allowed"
    assert "/cim/iot" in refused.json()["detail"]["message"]
    # nor in a batch, nor hidden among events it may send
    honest = cloudevent(Source.HOTLINE)
    honest["source"] = HOTLINE_SYSTEM[0]
    batch = post_batch(system, [honest, squatter], bearer("publisher", "hotline", HOTLINE_SYSTEM))
    assert batch.status_code == 403, batch.text
    detail = batch.json()["detail"]
    assert detail["reason"] == "source_not_allowed"
    assert [(item["index"], item["reason"]) for item in detail["items"]] == [
        (1, "source_not_allowed")
    ]
    assert not published_ids(system, system.topic("events.hotline")) & {"AL-77", honest["id"]}

    # the real alarm with that id, from the IoT platform, becomes a case
    alarm = cloudevent(Source.IOT, alarm_id="AL-77")
    alarm.update(id="AL-77", source="/cim/iot")
    accepted = post(system, "iot", alarm, bearer("publisher", "iot", IOT_PLATFORM))
    assert accepted.status_code == 202, accepted.text
    cases = wait_for(lambda: cases_with_report(system, "/cim/iot|AL-77"), 30)
    assert len(cases) == 1, system.log("worker")[-3000:]
    (report,) = [r for r in cases[0]["reports"] if r["idempotency_key"] == "/cim/iot|AL-77"]
    assert report["source"] == "iot"


def test_a_publisher_token_without_sources_may_publish_nothing(system: RunningSystem) -> None:
    claimless = bearer("publisher", "hotline", ())
    event = cloudevent(Source.HOTLINE)
    for response in (
        post(system, "hotline", event, claimless),
        post_batch(system, [event], claimless),
    ):
        assert response.status_code == 403, response.text
        assert response.json()["detail"]["reason"] == "no_source_claim"
    open311 = create(system, {"service_code": "pothole", "address_id": "510104001"}, claimless)
    assert open311.status_code == 403
    assert "no_source_claim" in open311.json()[0]["description"]


def test_open311_needs_a_token_that_names_its_source(system: RunningSystem) -> None:
    form = {"service_code": "pothole", "address_id": "510104001", "description": "路面有坑"}
    refused = create(system, form, bearer("publisher", "hotline", HOTLINE_SYSTEM))
    assert refused.status_code == 403
    assert "source_not_allowed" in refused.json()[0]["description"]
    allowed = create(system, form, bearer("publisher", "hotline", ("/cityloop/open311",)))
    assert allowed.status_code == 200, allowed.text


def test_a_publisher_may_name_several_sources(system: RunningSystem) -> None:
    two = bearer("publisher", "grid", ("/grid/app", "/grid/pad"))
    for source in ("/grid/app", "/grid/pad"):
        event = cloudevent(Source.GRID)
        event["source"] = source
        assert post(system, "grid", event, two).status_code == 202
    other = cloudevent(Source.GRID)
    other["source"] = "/grid/other"
    assert post(system, "grid", other, two).status_code == 403
