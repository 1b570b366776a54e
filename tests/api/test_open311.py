"""The Open311 GeoReport v2 facade on a live system: services are the topology's categories; a
request becomes a hotline case whose status reads open, then closed once resolved."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from api.routes.open311 import OPEN311_EVENT_SOURCE
from tests.api.test_actions import act, outcome
from tests.conftest import RunningSystem, bearer, start_system, stop_system
from tests.streams.test_pipeline import cases_with_report, wait_for
from topology import load_topology, tiny_topology_path

pytestmark = pytest.mark.broker

CALLER = {"first_name": "芳", "last_name": "王", "phone": "13800001003"}


def create(
    system: RunningSystem, form: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.post(
        f"{system.api_url}/open311/v2/requests.json",
        data=form,
        headers=bearer("publisher", "hotline") if headers is None else headers,
        timeout=15,
    )


def status_of(
    system: RunningSystem, request_id: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.get(
        f"{system.api_url}/open311/v2/requests/{request_id}.json",
        headers=bearer("publisher", "hotline") if headers is None else headers,
        timeout=10,
    )


def test_services_are_the_topologys_categories(system: RunningSystem) -> None:
    response = httpx.get(f"{system.api_url}/open311/v2/services.json", timeout=10)
    assert response.status_code == 200  # public: no token
    services = {service["service_code"]: service for service in response.json()}
    categories = load_topology(tiny_topology_path()).categories
    assert set(services) == set(categories)
    pothole = services["pothole"]
    assert pothole["service_name"] == categories["pothole"].name
    assert pothole["group"] == "municipal"
    assert pothole["metadata"] is False and pothole["type"] == "realtime"
    assert "pothole" in pothole["keywords"].split(",")


def test_a_request_becomes_a_case_and_reads_closed_once_resolved(system: RunningSystem) -> None:
    form = {
        "service_code": "pothole",
        "lat": "30.6612",
        "long": "104.0779",
        "address_string": "红星路二段口",
        "description": "人行道上有个大坑",
        "email": "wang@example.com",
        "attribute[depth]": "deep",
        **CALLER,
    }
    created = create(system, form)
    assert created.status_code == 200, created.text
    (receipt,) = created.json()
    request_id = receipt["service_request_id"]
    assert request_id.startswith("O311-") and receipt["account_id"] is None

    cases = wait_for(lambda: cases_with_report(system, f"{OPEN311_EVENT_SOURCE}|{request_id}"))
    assert len(cases) == 1, system.log("worker")[-3000:]
    case = cases[0]
    report = next(r for r in case["reports"] if r["idempotency_key"].endswith(request_id))
    assert report["source"] == "hotline" and report["category_code"] == "pothole"
    assert report["title"] == "道路坑洼" and report["text"] == "人行道上有个大坑"
    assert report["caller"] == {"name": "王芳", "phone": "13800001003"}  # a duty officer's view

    assert wait_for(lambda: status_of(system, request_id).status_code == 200)
    (opened,) = status_of(system, request_id).json()
    assert opened["status"] == "open" and opened["status_notes"] == case["status"]
    assert opened["service_code"] == "pothole" and opened["service_name"] == "道路坑洼"
    assert opened["address_id"] == "510104001001" and opened["address"] == "红星社区"
    assert (opened["lat"], opened["long"]) == (30.6612, 104.0779)
    assert opened["agency_responsible"] == "春熙街道综合行政执法队"
    for personal in ("王", "芳", "13800001003", "wang@example.com", "大坑"):
        assert personal not in status_of(system, request_id).text

    department = bearer("department", case["lead_department"])
    centre = bearer("duty_officer", case["handling_area"])
    for action, headers in (
        ({"type": "accept"}, department),
        ({"type": "resolve", "resolution": "filled"}, department),
    ):
        applied = outcome(system, act(system, case["case_id"], action, headers), headers)
        assert applied["state"] == "applied", applied

    def reads(status_notes: str) -> dict[str, Any] | None:
        (now,) = status_of(system, request_id, centre).json()
        return now if now["status_notes"] == status_notes else None

    resolved = wait_for(lambda: reads("resolved"), 15)
    assert resolved and resolved["status"] == "closed"
    for closing in ({"type": "verify", "satisfied": True}, {"type": "close", "reason": "archived"}):
        settled = outcome(system, act(system, case["case_id"], closing, centre), centre)
        assert settled["state"] == "applied", settled
    closed = wait_for(lambda: reads("closed"), 15)
    assert closed and closed["status"] == "closed"

    # who may read it: hotline publishers, and those who may see the case
    assert status_of(system, request_id, department).status_code == 200
    elsewhere = status_of(system, request_id, bearer("department", "510105001.urban_management"))
    assert elsewhere.status_code == 404
    assert elsewhere.json()[0]["code"] == 404 and case["case_id"] not in elsewhere.text
    iot = status_of(system, request_id, bearer("publisher", "iot"))
    assert iot.status_code == 403 and iot.json()[0]["code"] == 403


def test_refusals_are_in_open311_format(system: RunningSystem) -> None:
    place = {"lat": "30.6612", "long": "104.0779"}
    unknown = create(system, {"service_code": "teleport", **place})
    assert unknown.status_code == 400
    assert unknown.json() == [
        {"code": 400, "description": "service_code: no service 'teleport'; see services.json"}
    ]
    nowhere = create(system, {"service_code": "pothole", "address_string": "红星路"})
    assert nowhere.status_code == 400 and "address_id" in nowhere.json()[0]["description"]
    missing = create(system, place)
    assert missing.status_code == 400 and "service_code" in missing.json()[0]["description"]
    bad_phone = create(system, {"service_code": "pothole", "phone": "call me", **place})
    assert bad_phone.status_code == 400
    assert bad_phone.json()[0]["description"].startswith("invalid_payload: phone:")
    unknown_area = create(system, {"service_code": "pothole", "address_id": "510199001"})
    assert (
        unknown_area.status_code == 400 and "unknown_area" in unknown_area.json()[0]["description"]
    )

    anonymous = create(system, {"service_code": "pothole", **place}, headers={})
    assert anonymous.status_code == 401 and anonymous.json()[0]["code"] == 401
    officer = create(system, {"service_code": "pothole", **place}, headers=bearer())
    assert officer.status_code == 403 and officer.json()[0]["code"] == 403

    never = status_of(system, "O311-0000")
    assert never.status_code == 404 and never.json()[0]["code"] == 404


# --- search: GET requests.json -------------------------------------------------------------


@pytest.fixture(scope="module")
def own_system(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningSystem]:
    """A system of its own: a search answers exact sets only where every request is ours."""
    running = start_system(kafka_bootstrap, tmp_path_factory.mktemp("open311_search"))
    yield running
    stop_system(running)


def search(
    system: RunningSystem,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return httpx.get(
        f"{system.api_url}/open311/v2/requests.json",
        params=params,
        headers=bearer("publisher", "hotline") if headers is None else headers,
        timeout=10,
    )


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [found["service_request_id"] for found in response.json()]


# three requests of three families (never one case), in two districts
PLACED = (
    {"service_code": "pothole", "address_id": "510104002001"},  # 望江社区, 锦江区
    {"service_code": "noise", "address_id": "510105001001"},  # 浣花社区, 青羊区
    {"service_code": "garbage_exposed", "address_id": "510104001002"},  # 东大社区, 锦江区
)


def test_search_by_id_service_status_and_date_within_the_callers_scope(
    own_system: RunningSystem,
) -> None:
    system = own_system
    made = []
    for n, place in enumerate(PLACED):
        created = create(system, {**place, "description": f"第{n}个请求", **CALLER})
        assert created.status_code == 200, created.text
        made.append(created.json()[0]["service_request_id"])
    pothole, noise, garbage = made
    for request_id in made:
        assert wait_for(lambda r=request_id: status_of(system, r).status_code == 200), system.log(
            "worker"
        )[-3000:]

    everything = search(system)
    assert ids(everything) == [garbage, noise, pothole]  # newest first
    for personal in ("王", "芳", "13800001003", "个请求"):
        assert personal not in everything.text
    singles = [status_of(system, request_id).json()[0] for request_id in reversed(made)]
    assert everything.json() == singles  # each as GET requests/{id}.json has it
    requested = {found["service_request_id"]: found["requested_datetime"] for found in singles}

    assert ids(search(system, {"service_code": "pothole,noise"})) == [noise, pothole]
    assert ids(search(system, {"service_code": "garbage_exposed"})) == [garbage]
    assert ids(search(system, {"status": "open"})) == [garbage, noise, pothole]
    assert ids(search(system, {"status": "closed"})) == []

    (case,) = cases_with_report(system, f"{OPEN311_EVENT_SOURCE}|{pothole}")
    department = bearer("department", case["lead_department"])
    steps: list[dict[str, object]] = [{"type": "accept"}, {"type": "resolve", "resolution": "x"}]
    for action in steps:
        applied = outcome(system, act(system, case["case_id"], action, department), department)
        assert applied["state"] == "applied", applied
    assert wait_for(lambda: ids(search(system, {"status": "closed"})) == [pothole], 15)
    assert ids(search(system, {"status": "open"})) == [garbage, noise]
    assert ids(search(system, {"status": "open,closed"})) == [garbage, noise, pothole]

    # ids override every other filter; an id with no request is simply not in the answer
    by_id = {
        "service_request_id": f"{pothole}, {noise},O311-none",
        "status": "open",
        "service_code": "garbage_exposed",
        "start_date": "2099-01-01T00:00:00Z",
    }
    assert ids(search(system, by_id)) == [noise, pothole]

    # a range of requested_datetime, both ends included; alone, a start or an end covers 90 days
    middle = requested[noise]
    assert ids(search(system, {"start_date": middle})) == [garbage, noise]
    assert ids(search(system, {"end_date": middle})) == [noise, pothole]
    assert ids(search(system, {"start_date": middle, "end_date": middle})) == [noise]
    long_ago = (datetime.now(UTC) - timedelta(days=91)).isoformat()
    assert ids(search(system, {"start_date": long_ago})) == []  # its 90 days ended before
    assert ids(search(system, {"end_date": long_ago})) == []

    # what each caller may see, as for one request; never a hint of the others
    officer = bearer("duty_officer", "510104")
    assert ids(search(system, headers=officer)) == [garbage, pothole]
    assert ids(search(system, headers=bearer("duty_officer", "510105"))) == [noise]
    assert ids(search(system, headers=bearer())) == [garbage, noise, pothole]
    assert ids(search(system, headers=bearer("auditor", ""))) == [garbage, noise, pothole]
    assert ids(search(system, headers=department)) == [pothole]
    elsewhere = search(system, headers=bearer("department", "510105002.police"))
    assert ids(elsewhere) == []
    assert "13800001003" not in search(system, headers=officer).text  # no personal data at all


@pytest.mark.parametrize(
    ("params", "headers", "code", "words"),
    [
        ({"status": "pending"}, None, 400, "status"),
        ({"service_code": "pothole,teleport"}, None, 400, "no service 'teleport'"),
        ({"start_date": "1764000000"}, None, 400, "numbers are not taken as times"),
        ({"end_date": "2026-11-22T08:00:00"}, None, 400, "end_date"),
        (
            {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"},
            None,
            400,
            "at most 90 days",
        ),
        (
            {"start_date": "2026-06-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"},
            None,
            400,
            "before start_date",
        ),
        ({"start_date": "9999-12-31T00:00:00Z"}, None, 200, ""),  # its 90 days end with time
        ({}, {}, 401, ""),
        ({}, bearer("publisher", "iot"), 403, ""),
        ({}, bearer("publisher", "hotline", ["/12345/chengdu"]), 403, "source_not_allowed"),
        ({}, bearer("publisher", "hotline", []), 403, "no_source_claim"),
    ],
)
def test_search_refusals_are_in_open311_format(
    system: RunningSystem,
    params: dict[str, str],
    headers: dict[str, str] | None,
    code: int,
    words: str,
) -> None:
    response = search(system, params, headers)
    assert response.status_code == code, response.text
    if code == 200:
        assert response.json() == []
        return
    (problem,) = response.json()
    assert problem["code"] == code and words in problem["description"]
