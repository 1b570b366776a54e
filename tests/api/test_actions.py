"""Acting through the API on a live system: a command is posted, decided by the worker, and its
outcome read back; scope and role decide who may post at all."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
import pytest

from tests.conftest import RunningSystem, bearer
from tests.streams.test_lifecycle_stream import new_case

pytestmark = pytest.mark.broker


def act(
    system: RunningSystem, case_id: str, action: Mapping[str, object], headers: dict[str, str]
) -> httpx.Response:
    return httpx.post(
        f"{system.api_url}/v1/cases/{case_id}/actions", json=action, headers=headers, timeout=10
    )


def outcome(
    system: RunningSystem, response: httpx.Response, headers: dict[str, str]
) -> dict[str, object]:
    assert response.status_code == 202, response.text
    url = system.api_url + response.json()["status_url"]
    answer: dict[str, object] = httpx.get(
        url, params={"wait": 10}, headers=headers, timeout=15
    ).json()
    return answer


def test_departments_and_centres_act_through_the_api(system: RunningSystem) -> None:
    case = new_case(system, 30.6441, title="路面坑洼", text="井边有坑", category_code="pothole")
    department = bearer("department", case["lead_department"])
    street_centre = bearer("duty_officer", case["handling_area"])

    early = outcome(
        system,
        act(system, case["case_id"], {"type": "resolve", "resolution": "x"}, department),
        department,
    )
    assert early["state"] == "rejected" and early["reason"] == "invalid_state"

    accepted = outcome(
        system, act(system, case["case_id"], {"type": "accept"}, department), department
    )
    assert accepted["state"] == "applied" and accepted["event_types"] == ["CaseAccepted"]
    resolved = outcome(
        system,
        act(system, case["case_id"], {"type": "resolve", "resolution": "filled"}, department),
        department,
    )
    assert resolved["state"] == "applied"
    verified = outcome(
        system,
        act(system, case["case_id"], {"type": "verify", "satisfied": True}, street_centre),
        street_centre,
    )
    assert verified["state"] == "applied"
    closed = outcome(
        system,
        act(system, case["case_id"], {"type": "close", "reason": "archived"}, street_centre),
        street_centre,
    )
    assert closed["state"] == "applied"
    final = httpx.get(f"{system.api_url}/v1/cases/{case['case_id']}", headers=street_centre).json()
    assert final["status"] == "closed"
    actors = [entry["actor"] for entry in final["timeline"]]
    assert (
        f"dept:{case['lead_department']}" in actors and f"centre:{case['handling_area']}" in actors
    )


def test_scope_and_role_are_checked_before_anything_is_posted(system: RunningSystem) -> None:
    case = new_case(system, 30.6426, title="路面坑洼", text="路中间有坑", category_code="pothole")
    elsewhere = bearer("department", "510105001.urban_management")
    assert act(system, case["case_id"], {"type": "accept"}, elsewhere).status_code == 404
    auditor = act(system, case["case_id"], {"type": "accept"}, bearer("auditor", ""))
    assert auditor.status_code == 403
    department = bearer("department", case["lead_department"])
    unknown = act(system, case["case_id"], {"type": "teleport"}, department)
    assert unknown.status_code == 422 and unknown.json()["detail"]["reason"] == "invalid_action"
    missing_field = act(system, case["case_id"], {"type": "return"}, department)
    assert (
        missing_field.status_code == 422 and "reason" in missing_field.json()["detail"]["message"]
    )
    posted = act(system, case["case_id"], {"type": "accept"}, department)
    assert posted.status_code == 202
    # someone else's command is not theirs to read
    other = httpx.get(system.api_url + posted.json()["status_url"], headers=bearer())
    assert other.status_code == 404
