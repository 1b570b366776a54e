"""The 12345 dispatch desk on a running system: an order the topology cannot place by its code
waits at the desk, a dispatcher dispatches it through the API, a department returns it as not
its matter, the dispatcher re-dispatches it; every step is on the timeline and in the desk's
figures. Nobody outside the desk's area may touch it."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from cityloop.contracts import Source
from tests.api.test_actions import act, outcome
from tests.conftest import RunningSystem, bearer
from tests.streams.test_pipeline import cases_with_report, cloudevent, publish, wait_for

pytestmark = pytest.mark.broker


def case_detail(system: RunningSystem, case_id: str, headers: dict[str, str]) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(
        f"{system.api_url}/v1/cases/{case_id}", headers=headers, timeout=10
    ).json()
    return answer


def test_a_dispatcher_dispatches_redispatches_and_it_is_all_on_the_timeline(
    system: RunningSystem,
) -> None:
    order = cloudevent(
        Source.HOTLINE,
        category_code="labour_dispute",  # a call taker's code the topology does not know
        title="讨薪",
        text="公司拖欠三个月工资，老板电话不接",
        area_code="510104002001",
    )
    publish(system, "hotline", json.dumps(order, ensure_ascii=False).encode())
    found = wait_for(lambda: cases_with_report(system, f"{order['source']}|{order['id']}"), 30)
    assert found and len(found) == 1, system.log("worker")[-3000:]
    case = found[0]
    assert case["status"] == "awaiting_dispatch" and case["lead_department"] is None

    desk = bearer("dispatcher", "510104")
    detail = case_detail(system, case["case_id"], desk)
    assert detail["desk"]["desk"] == "desk:510104"
    assert detail["desk"]["reasons"] == ["unknown_category_code"]
    assert detail["desk"]["given_category_code"] == "labour_dispute"
    assert detail["desk"]["dispatch_deadline"] is not None

    # a dispatcher of another district, or any department, does not even see it
    for outsider in (bearer("dispatcher", "510105"), bearer("department", "510104002.police")):
        attempt = {"type": "dispatch", "category_code": "noise"}
        assert act(system, case["case_id"], attempt, outsider).status_code == 404
    # a duty officer sees it, but dispatching is the desk's
    officer = bearer("duty_officer", "510104")
    refused = outcome(
        system,
        act(system, case["case_id"], {"type": "dispatch", "category_code": "noise"}, officer),
        officer,
    )
    assert refused["state"] == "rejected" and refused["reason"] == "not_permitted"

    dispatched = outcome(
        system,
        act(
            system,
            case["case_id"],
            {"type": "dispatch", "category_code": "noise", "lead_department": "510104.police"},
            desk,
        ),
        desk,
    )
    assert dispatched["state"] == "applied", dispatched
    assert dispatched["event_types"] == ["CaseReclassified", "CaseDispatched"]
    after = case_detail(system, case["case_id"], desk)
    assert after["status"] == "dispatched" and after["category_code"] == "noise"
    assert after["lead_department"] == "510104.police"

    lead = bearer("department", "510104.police")
    returned = outcome(
        system,
        act(system, case["case_id"], {"type": "return", "reason": "not_ours: 是欠薪"}, lead),
        lead,
    )
    assert returned["event_types"] == ["CaseReturned", "CaseSentToDesk"]
    back = case_detail(system, case["case_id"], desk)
    assert back["status"] == "awaiting_dispatch"
    assert back["desk"]["reasons"] == ["returned_not_ours"]

    redispatched = outcome(
        system,
        act(
            system,
            case["case_id"],
            {"type": "reclassify", "category_code": "garbage_exposed", "reason": "转城管"},
            desk,
        ),
        desk,
    )
    assert redispatched["state"] == "applied", redispatched
    final = case_detail(system, case["case_id"], desk)
    assert final["status"] == "dispatched" and final["category_code"] == "garbage_exposed"
    steps = [(entry["type"], entry["actor"]) for entry in final["timeline"]]
    assert ("CaseReclassified", "desk:510104") in steps
    assert steps.count(("CaseSentToDesk", "system")) == 1
    assert ("CaseSentToDesk", "dept:510104.police") in steps
    reclassified = [e for e in final["timeline"] if e["type"] == "CaseReclassified"]
    assert [e["details"]["to_category"] for e in reclassified] == ["noise", "garbage_exposed"]

    figures = httpx.get(
        f"{system.api_url}/v1/stats/desk",
        params={"by": "department", "since": "2026-11-01T00:00:00Z"},
        headers=desk,
        timeout=10,
    ).json()
    rows = {row["group"]: row for row in figures["rows"]}
    assert rows["510104.police"]["dispatched_by_hand"] == 1
    assert rows["510104.police"]["not_ours_returns"] == 1
    assert rows["510104.police"]["misdispatch_rate"] == 1.0
    assert sum(row["redispatched"] for row in rows.values()) == 1
