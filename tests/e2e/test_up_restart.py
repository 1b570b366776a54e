"""A restarted `cityloop up` on the embedded broker, which forgets every topic, keeps every case:
the same cases with the same timelines, and old cases take commands, on the default SQLite read
model in the data directory and on PostgreSQL; an area's emergency mode is kept too; `--fresh`
starts empty."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer

from cityloop.contracts import Mode, Source, SwitchMode
from streams.history import read_history
from tests.conftest import bearer, postgres_database
from tests.e2e.running_up import Up, start_up
from tests.streams.test_pipeline import cloudevent, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.long(100)]


@pytest.fixture(params=["sqlite", "postgres"])
def read_model(request: pytest.FixtureRequest, postgres_url: str) -> Iterator[dict[str, str]]:
    """The environment that names the read model: none (the SQLite file in the data directory),
    or a PostgreSQL database of this test's own."""
    if request.param == "sqlite":
        yield {}
        return
    with postgres_database(postgres_url, prefix="uprestart") as url:
        yield {"CITYLOOP_DATABASE_URL": url}


def cases_and_timelines(up: Up) -> dict[str, Any]:
    """Every case as the city's duty officer sees it, with its full detail."""
    page = httpx.get(
        f"{up.api_url}/v1/cases", params={"limit": 100}, headers=bearer(), timeout=10
    ).json()
    return {
        item["case_id"]: httpx.get(
            f"{up.api_url}/v1/cases/{item['case_id']}", headers=bearer(), timeout=10
        ).json()
        for item in page["items"]
    }


def switch_to_emergency(up: Up, district: str) -> None:
    """平急切换, as a centre's system sends it: to every case partition; the worker records it
    on the modes topic once applied."""
    switch = SwitchMode(
        command_id=f"mode-{uuid.uuid4().hex[:8]}",
        area_code=district,
        mode=Mode.EMERGENCY,
        actor=f"centre:{district}",
        issued_at=datetime.now(UTC),
    )
    bootstrap = f"127.0.0.1:{up.ports['broker']}"
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for partition in range(4):
            producer.send(
                "cityloop.case-control",
                value=switch.model_dump_json().encode(),
                partition=partition,
            ).get(timeout=10)
    finally:
        producer.close()
    assert wait_for(lambda: list(read_history(bootstrap, "cityloop.modes")), 30)


def post(up: Up, lat: float | None = None, **data: Any) -> str:
    placed = {"area_code": None, "location": {"lat": lat, "lon": 104.0802}} if lat else {}
    event = cloudevent(Source.HOTLINE, **placed, **data)
    posted = httpx.post(
        f"{up.api_url}/v1/events/hotline",
        content=json.dumps(event, ensure_ascii=False),
        headers={**bearer("publisher", "hotline"), "Content-Type": "application/json"},
        timeout=30,
    )
    assert posted.status_code == 202, posted.text
    return f"{event['source']}|{event['id']}"


def test_a_restarted_up_keeps_every_case_and_takes_commands_on_them(
    tmp_path: Path, read_model: dict[str, str]
) -> None:
    first = start_up(tmp_path, extra_env=read_model)
    try:
        post(first, 30.6441, title="路面坑洼", text="井边有坑", category_code="pothole")
        post(first, 30.6571, title="井盖缺失", text="人行道井盖缺失", category_code="pothole")
        post(first, 30.6331, title="路灯不亮", text="整条街路灯不亮", category_code="streetlight")
        cases = wait_for(lambda: len(found := cases_and_timelines(first)) == 3 and found, 60)
        assert cases, first.log("worker")[-3000:]
        accepted_id, waiting_id = sorted(
            case_id for case_id, case in cases.items() if case["lead_department"]
        )[:2]
        accepted = cases[accepted_id]
        assert (
            first.act(accepted_id, {"type": "accept"}, "department", accepted["lead_department"])
            == "applied"
        )
        before = wait_for(
            lambda: (
                (seen := cases_and_timelines(first))[accepted_id]["status"] == "accepted" and seen
            ),
            30,
        )
        assert before, first.log("api")[-3000:]
        if (
            not read_model
        ):  # an area's mode is the broker's (streams/keep.py), whatever the database
            switch_to_emergency(first, "510105")
        assert first.stop() == 0
        if not read_model:  # the default read model is the data directory's, kept as it was
            assert (tmp_path / "data" / "cityloop.db").exists()
            assert not (tmp_path / "var").exists()
    finally:
        first.kill_everything()

    second = start_up(tmp_path, ports_of=first)
    try:
        assert "kept from earlier runs: 3 cases" in second.output(), second.output()
        assert cases_and_timelines(second) == before
        # the worker's case book has them too: commands on old cases are decided, not unknown
        assert (
            second.act(
                accepted_id,
                {"type": "resolve", "resolution": "填平"},
                "department",
                accepted["lead_department"],
            )
            == "applied"
        )
        waiting = before[waiting_id]
        assert (
            second.act(waiting_id, {"type": "accept"}, "department", waiting["lead_department"])
            == "applied"
        )
        after = wait_for(
            lambda: (
                (seen := cases_and_timelines(second))[accepted_id]["status"] == "resolved" and seen
            ),
            30,
        )
        assert after, second.log("api")[-3000:]
        timeline = [entry["type"] for entry in after[accepted_id]["timeline"]]
        kept = [entry["type"] for entry in before[accepted_id]["timeline"]]
        assert timeline == [*kept, "CaseResolved"]
        assert after[waiting_id]["status"] == "accepted"
        if not read_model:
            assert "kept from the last run: 1 modes record(s)" in second.output()
            # the district is still in emergency mode: waterlogging there goes to the medium
            # loop, not the small one of normal times (test_lifecycle_stream's emergency test)
            post(
                second,
                title="积水",
                text="路口积水很深",
                category_code="waterlogging",
                area_code="510105001001",
            )
            flooded = wait_for(
                lambda: [
                    case
                    for case_id, case in cases_and_timelines(second).items()
                    if case_id not in before and case["category_code"] == "waterlogging"
                ],
                30,
            )
            assert flooded, second.log("worker")[-3000:]
            assert flooded[0]["loop"] == "medium", flooded[0]
        assert second.stop() == 0
    finally:
        second.kill_everything()

    if read_model:
        return  # --fresh empties whatever database the read model is: once is enough
    fresh = start_up(tmp_path, "--fresh", ports_of=first)
    try:
        assert cases_and_timelines(fresh) == {}
        assert fresh.stop() == 0
    finally:
        fresh.kill_everything()
