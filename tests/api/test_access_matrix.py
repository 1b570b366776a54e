"""The access matrix on a live system: every role, in scope and out of scope, against every
endpoint — the status each must get, and whose eyes see callers' personal data."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest

from api.auth import mint_token
from cityloop.contracts import Source
from handlers.access import Principal, Role
from tests.conftest import RunningSystem, bearer
from tests.streams.test_lifecycle_stream import new_case
from tests.streams.test_pipeline import cloudevent

pytestmark = pytest.mark.broker

PHONE = "13800001003"  # the caller in tests.contracts.test_contracts.HOTLINE


def request(
    system: RunningSystem, who: dict[str, str], method: str, path: str, body: Any = None
) -> httpx.Response:
    if path.endswith("/stream"):  # an open stream answers 200 at once; read no further
        with httpx.stream(
            method, system.api_url + path, headers=who, params={"after": 0}, timeout=10
        ) as response:
            return response  # the status is all this needs
    return httpx.request(method, system.api_url + path, headers=who, json=body, timeout=15)


def test_every_role_gets_what_it_may_and_nothing_else(system: RunningSystem) -> None:
    case = new_case(system, 30.6321, title="路面塌陷", text="人行道塌陷", category_code="pothole")
    case_id, lead, street = case["case_id"], case["lead_department"], case["handling_area"]
    assert street.startswith("510104")
    foreign = mint_token(
        "not-the-secret-" + "x" * 32, Principal(subject="x", role=Role.AUDITOR), timedelta(hours=1)
    )

    who = {
        "nobody": {},
        "forged": {"Authorization": f"Bearer {foreign}"},
        "hotline publisher": bearer("publisher", "hotline"),
        "iot publisher": bearer("publisher", "iot"),
        "its department": bearer("department", lead),
        "another department": bearer("department", "510105001.urban_management"),
        "its street's duty officer": bearer("duty_officer", street),
        "its district's duty officer": bearer("duty_officer", "510104"),
        "another district's duty officer": bearer("duty_officer", "510105"),
        "the city's duty officer": bearer("duty_officer", "510100"),
        "auditor": bearer("auditor", ""),
    }
    readers = {
        "its department": 200,
        "another department": 404,
        "its street's duty officer": 200,
        "its district's duty officer": 200,
        "another district's duty officer": 404,
        "the city's duty officer": 200,
        "auditor": 200,
    }
    unauthenticated = {"nobody": 401, "forged": 401}
    publishers = {"hotline publisher": 403, "iot publisher": 403}
    hotline_event = json.loads(json.dumps(cloudevent(Source.HOTLINE)))

    def expected_for(readers_get: dict[str, int]) -> dict[str, int]:
        return {**unauthenticated, **publishers, **readers_get}

    matrix: list[tuple[str, str, Any, dict[str, int]]] = [
        ("GET", f"/v1/cases/{case_id}", None, expected_for(readers)),
        ("GET", "/v1/cases", None, expected_for({name: 200 for name in readers})),
        ("GET", "/v1/stats", None, expected_for({name: 200 for name in readers})),
        ("GET", "/v1/cases/stream", None, expected_for({name: 200 for name in readers})),
        (
            "POST",
            f"/v1/cases/{case_id}/actions",
            {"type": "progress", "note": "on our way"},
            {
                **unauthenticated,
                **publishers,
                **readers,
                "its department": 202,
                "its street's duty officer": 202,
                "its district's duty officer": 202,
                "the city's duty officer": 202,
                "auditor": 403,  # sees everything, acts on nothing
            },
        ),
        (
            "POST",
            "/v1/events/hotline",
            hotline_event,
            {
                **unauthenticated,
                "hotline publisher": 202,
                "iot publisher": 403,
                **{name: 403 for name in readers},
            },
        ),
        ("GET", "/open311/v2/services.json", None, {name: 200 for name in who}),
        ("GET", "/healthz", None, {name: 200 for name in who}),
    ]

    wrong = []
    for method, path, body, expected in matrix:
        assert set(expected) == set(who), path  # every role has a cell
        for name, headers in who.items():
            got = request(system, headers, method, path, body).status_code
            if got != expected[name]:
                wrong.append(f"{name} {method} {path}: {got}, expected {expected[name]}")
    assert wrong == []

    # in the cases a role may read, whose eyes see the caller's phone
    for name, sees_phone in [
        ("its department", False),
        ("its street's duty officer", True),
        ("the city's duty officer", True),
        ("auditor", False),
    ]:
        detail = request(system, who[name], "GET", f"/v1/cases/{case_id}").text
        assert (PHONE in detail) is sees_phone, name
        if not sees_phone:
            assert "138****1003" in detail, name

    # a list never leaks a case outside the caller's scope
    for name in ("another department", "another district's duty officer"):
        listed = request(system, who[name], "GET", "/v1/cases?limit=500").json()["items"]
        assert case_id not in {item["case_id"] for item in listed}, name
