"""Personal numbers typed into free text, on a live system: masked on every surface for a role
that sees callers masked — the list, a case, its timeline, the live stream, Open311, the
console's pages — and whole for duty officers."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from cityloop.contracts import Source
from tests.api.test_actions import act, outcome
from tests.api.test_open311 import create, status_of
from tests.conftest import RunningSystem, bearer
from tests.streams.test_pipeline import cases_with_report, cloudevent, wait_for

pytestmark = pytest.mark.broker

TITLE = "电梯困人，回电13800001003"
TEXT = (
    "市民王芳（身份证510104199001011234）反映：电梯困人，联系电话１３８-0000-1003，"
    "座机028-85551234，银行卡6222 0212 3456 7890"
)
NOTE = "已电话联系13900001004，身份证号51010419900101123X"
WHOLE = [
    "13800001003",
    "１３８-0000-1003",
    "510104199001011234",
    "028-85551234",
    "6222 0212 3456 7890",
    "13900001004",
    "51010419900101123X",
]
MASKED = [
    "138****1003",
    "１３８-****-1003",
    "5101**********1234",
    "028-****1234",
    "6222 **** **** 7890",
    "139****1004",
    "5101**********123X",
]


def leaks(answer: str) -> list[str]:
    return [number for number in WHOLE if number in answer]


def as_text(answer: httpx.Response) -> str:
    """The answer as its reader sees it (JSON written out whole, not \\u-escaped)."""
    try:
        return json.dumps(answer.json(), ensure_ascii=False)
    except ValueError:
        return answer.text


@pytest.fixture(scope="module")
def typed_case(system: RunningSystem) -> dict[str, Any]:
    """A case whose title, text and a progress note hold personal numbers."""
    event = cloudevent(
        Source.HOTLINE,
        title=TITLE,
        text=TEXT,
        category_code="elevator_entrapment",
        area_code="510105001002",
        received_at="2026-10-01T09:00:00+08:00",  # a day of its own: it joins no other case
    )
    posted = httpx.post(
        f"{system.api_url}/v1/events/hotline",
        json=event,
        headers=bearer("publisher", "hotline"),
        timeout=15,
    )
    assert posted.status_code == 202, posted.text
    cases = wait_for(lambda: cases_with_report(system, f"{event['source']}|{event['id']}"), 30)
    assert len(cases) == 1 and cases[0]["title"] == TITLE, cases
    case: dict[str, Any] = cases[0]
    department = bearer("department", case["lead_department"])
    accepted = outcome(
        system, act(system, case["case_id"], {"type": "accept"}, department), department
    )
    assert accepted["state"] == "applied", accepted
    noted = outcome(
        system,
        act(system, case["case_id"], {"type": "progress", "note": NOTE}, department),
        department,
    )
    assert noted["state"] == "applied", noted
    return case


def test_a_duty_officer_sees_the_text_as_written(
    system: RunningSystem, typed_case: dict[str, Any]
) -> None:
    detail = httpx.get(
        f"{system.api_url}/v1/cases/{typed_case['case_id']}", headers=bearer(), timeout=10
    ).json()
    assert detail["title"] == TITLE
    assert detail["reports"][0]["title"] == TITLE and detail["reports"][0]["text"] == TEXT
    assert NOTE in [entry["details"].get("note") for entry in detail["timeline"]]


def test_a_case_and_its_timeline_are_masked_for_its_department(
    system: RunningSystem, typed_case: dict[str, Any]
) -> None:
    department = bearer("department", typed_case["lead_department"])
    answer = httpx.get(
        f"{system.api_url}/v1/cases/{typed_case['case_id']}", headers=department, timeout=10
    )
    detail = answer.json()
    assert leaks(as_text(answer)) == []
    assert detail["title"] == "电梯困人，回电138****1003"
    report = detail["reports"][0]
    assert report["title"] == detail["title"]
    assert report["text"] == (
        "市民王芳（身份证5101**********1234）反映：电梯困人，联系电话１３８-****-1003，"
        "座机028-****1234，银行卡6222 **** **** 7890"
    )
    assert "已电话联系139****1004，身份证号5101**********123X" in [
        entry["details"].get("note") for entry in detail["timeline"]
    ]
    opened = next(entry for entry in detail["timeline"] if entry["type"] == "CaseOpened")
    assert opened["details"]["title"] == detail["title"]


def test_the_list_is_masked_for_an_auditor(
    system: RunningSystem, typed_case: dict[str, Any]
) -> None:
    answer = httpx.get(
        f"{system.api_url}/v1/cases",
        params={"category": "elevator_entrapment", "limit": 500},
        headers=bearer("auditor", ""),
        timeout=10,
    )
    (listed,) = [
        item for item in answer.json()["items"] if item["case_id"] == typed_case["case_id"]
    ]
    assert listed["title"] == "电梯困人，回电138****1003"
    assert leaks(as_text(answer)) == []


def test_the_live_stream_is_masked_for_a_dispatcher(
    system: RunningSystem, typed_case: dict[str, Any]
) -> None:
    seen: list[dict[str, Any]] = []
    with httpx.stream(
        "GET",
        f"{system.api_url}/v1/cases/stream",
        params={"after": 0},
        headers=bearer("dispatcher", "510100"),
        timeout=20,
    ) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            change = json.loads(line.removeprefix("data:"))
            if change["case"]["case_id"] == typed_case["case_id"]:
                seen.append(change)
                if change["event"]["details"].get("note"):
                    break
    written = json.dumps(seen, ensure_ascii=False)
    assert leaks(written) == []
    assert {change["case"]["title"] for change in seen} == {"电梯困人，回电138****1003"}
    assert "已电话联系139****1004，身份证号5101**********123X" in written


def test_the_console_shows_what_the_api_shows(
    system: RunningSystem, typed_case: dict[str, Any]
) -> None:
    department = bearer("department", typed_case["lead_department"])
    for page in (
        "/console",
        "/console/map?fit=all",
        f"/console/cases/{typed_case['case_id']}",
        f"/console/fragments/cases/{typed_case['case_id']}",
    ):
        html = httpx.get(f"{system.api_url}{page}", headers=department, timeout=10)
        assert html.status_code == 200, (page, html.text[:500])
        assert "138****1003" in html.text, page
        assert leaks(html.text) == [], page
    officer_page = httpx.get(
        f"{system.api_url}/console/cases/{typed_case['case_id']}", headers=bearer(), timeout=10
    )
    assert "13800001003" in officer_page.text


def test_open311_answers_carry_no_free_text(system: RunningSystem) -> None:
    form = {
        "service_code": "pothole",
        "address_id": "510105001001",
        "description": "路面塌陷，电话13700001005，身份证510104199001011234",
        "phone": "13700001005",
    }
    created = create(system, form)
    assert created.status_code == 200, created.text
    request_id = created.json()[0]["service_request_id"]
    found = wait_for(lambda: status_of(system, request_id).status_code == 200, 30)
    assert found, system.log("worker")[-3000:]
    for who in (bearer("publisher", "hotline"), bearer("auditor", ""), bearer()):
        for answer in (
            status_of(system, request_id, who),
            httpx.get(
                f"{system.api_url}/open311/v2/requests.json",
                params={"service_request_id": request_id},
                headers=who,
                timeout=10,
            ),
        ):
            assert answer.status_code == 200, answer.text
            assert "13700001005" not in answer.text and "1005" not in answer.text
            assert "510104199001011234" not in answer.text
    key = f"/cityloop/open311|{request_id}"
    (case,) = wait_for(lambda: cases_with_report(system, key), 30)
    detail = httpx.get(
        f"{system.api_url}/v1/cases/{case['case_id']}", headers=bearer("auditor", ""), timeout=10
    )
    (report,) = [r for r in detail.json()["reports"] if r["idempotency_key"] == key]
    assert report["text"] == "路面塌陷，电话137****1005，身份证5101**********1234"
    assert report["caller"]["phone"] == "137****1005"
