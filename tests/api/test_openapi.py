"""The OpenAPI document is complete and true: every model has an example that validates, and
schemathesis, run against a live system (worker, API, PostgreSQL) as a city duty officer, as a
hotline publisher and with no token, finds no 5xx and no answer the document does not describe
(status, content type, body, headers)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import schemathesis
from pydantic import BaseModel
from schemathesis import Case

from api import schemas
from api.main import REFERENCED_MODELS, create_app
from api.routes.events import HOTLINE_EVENT_EXAMPLE
from api.schemas import CASE_ID_EXAMPLE, REPORT_EXAMPLE, CaseSummary, example_of
from cityloop.contracts import (
    Assignment,
    CallerContact,
    CaseDispatched,
    CaseOpened,
    CloudEvent,
    RoutingReason,
    Source,
)
from cityloop.settings import Settings
from handlers.book import CaseBook
from handlers.cells import correlation_key
from handlers.intake import Accepted, take_in
from handlers.privacy import mask_caller
from tests.conftest import (
    TEST_SECRET,
    RunningSystem,
    bearer,
    postgres_database,
    start_system,
    stop_system,
)
from tests.streams.test_pipeline import wait_for
from topology import load_topology

pytestmark = pytest.mark.long(70)

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)

JSON = {"Content-Type": "application/json"}

INGEST = "^/v1/events/|^/open311/v2/requests.json$"
"""Operations only a publisher gets past the token check of."""


def live(test: Any) -> Any:
    """For tests against a running system: a real broker, and PostgreSQL for the read model."""
    return pytest.mark.postgres(pytest.mark.broker(test))


def openapi_document() -> dict[str, Any]:
    return create_app(Settings(jwt_secret=TEST_SECRET)).openapi()


# --- the document, read without a server --------------------------------------------------


def api_models() -> list[type[BaseModel]]:
    return [
        model
        for model in vars(schemas).values()
        if isinstance(model, type)
        and issubclass(model, BaseModel)
        and model.__module__ == schemas.__name__
    ]


@pytest.mark.parametrize("model", api_models(), ids=lambda model: model.__name__)
def test_every_model_of_the_api_has_examples_that_validate(model: type[BaseModel]) -> None:
    examples = model.model_json_schema(mode="serialization").get("examples")
    assert examples, f"{model.__name__} has no examples"
    for example in examples:
        model.model_validate(example)


def test_every_component_of_the_document_has_examples() -> None:
    """On the schema itself, or on each of its properties; enums list their values anyway."""
    components = openapi_document()["components"]["schemas"]
    without = {
        name
        for name, component in components.items()
        if "examples" not in component
        and "enum" not in component
        and not all("examples" in field for field in component.get("properties", {}).values())
    }
    assert without == set()


CONTRACT_MODELS = (Assignment, CallerContact, RoutingReason, CloudEvent)
"""Wire contracts the document shows as components of their own (in responses or bodies)."""


@pytest.mark.parametrize("model", CONTRACT_MODELS, ids=lambda model: model.__name__)
def test_the_contracts_in_the_document_have_examples_that_validate(
    model: type[BaseModel],
) -> None:
    examples = model.model_json_schema(mode="serialization").get("examples")
    assert examples, f"{model.__name__} has no examples"
    for example in examples:
        model.model_validate(example)


def test_the_examples_tell_one_story() -> None:
    from handlers.classifier import TextClassifier, default_model_path
    from handlers.triage import ClassifierGuesser

    """The example hotline event, through the worker's own handlers on the bundled topology,
    opens the example case, routed as the Assignment example says, with the caller of the
    CallerContact example (whole for duty officers, masked for the rest)."""
    received = datetime(2026, 11, 22, 0, 15, 3, tzinfo=UTC)
    topology = load_topology(None)
    raw = json.dumps(HOTLINE_EVENT_EXAMPLE, ensure_ascii=False).encode()
    # as the worker takes it: the order names no category, and the shipped classifier's is sure
    guesser = ClassifierGuesser(TextClassifier.load(default_model_path()))
    taken = take_in(raw, topology, received, Source.HOTLINE, None, guesser)
    assert isinstance(taken, Accepted), taken
    incident = taken.incident
    decision = CaseBook().correlate(
        incident, correlation_key(topology, incident), topology, {}, received
    )
    opened, dispatched = decision.events[:2]
    assert isinstance(opened, CaseOpened) and isinstance(dispatched, CaseDispatched)
    assert opened.case_id == CASE_ID_EXAMPLE == example_of(CaseSummary)["case_id"]
    assert dispatched.assignment == Assignment.model_validate(example_of(Assignment))
    assert dispatched.assignment.reasons[0] == RoutingReason.model_validate(
        example_of(RoutingReason)
    )
    whole, masked = (
        CallerContact.model_validate(example)
        for example in CallerContact.model_json_schema()["examples"]
    )
    assert opened.first_report.caller == whole
    assert mask_caller(whole) == masked == CallerContact.model_validate(REPORT_EXAMPLE["caller"])


def test_refusals_are_documented_as_they_are_sent() -> None:
    document = openapi_document()
    text = json.dumps(document)
    assert "HTTPValidationError" not in text  # FastAPI's list-shaped 422 is never sent
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for code, response in operation["responses"].items():
                if not code.startswith(("4", "5")) or path == "/readyz":
                    continue
                schema = response["content"]["application/json"]["schema"]
                expected = "Open311Error" if path.startswith("/open311/") else "ProblemResponse"
                assert expected in json.dumps(schema), (method, path, code)
    components = document["components"]["schemas"]
    assert {model.__name__ for model in REFERENCED_MODELS} <= set(components)


# --- schemathesis against a live system ---------------------------------------------------

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261122,
        "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
        "generation": {"max-examples": 25, "deterministic": True, "database": "none"},
        "phases": {"stateful": {"enabled": False}},
        "checks": {"enabled": False, **{check: {"enabled": True} for check in CHECKS}},
        "request-timeout": 5,
        # a stream with nothing new stays open: its 200 is read for a second, then cut
        "operations": [
            {
                "include-path": "/v1/cases/stream",
                "request-timeout": 1,
                "generation": {"max-examples": 10},
            }
        ],
    }
)

# The document as this code builds it; the live system is checked to serve the same.
schema = schemathesis.openapi.from_dict(openapi_document(), config=CONFIG)


@dataclass
class Seeded:
    """A running system with the documented examples in it: the example event's case, a
    command on it, an Open311 request — so the examples schemathesis sends reach real things."""

    system: RunningSystem
    lead_department: str
    command_id: str
    request_id: str

    @property
    def url(self) -> str:
        return self.system.api_url


def found(response: httpx.Response) -> httpx.Response | None:
    return response if response.status_code == 200 else None


@pytest.fixture(scope="module")
def database_url(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL database of its own, dropped afterwards: PostgreSQL refuses what SQLite lets
    pass (a NUL in a string, an integer over a column's range), so it is where a 500 shows."""
    with postgres_database(postgres_url, prefix="openapi") as url:
        yield url


@pytest.fixture(scope="module")
def seeded(
    kafka_bootstrap: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seeded]:
    # a system of its own: what schemathesis publishes must not reach other tests' counts
    system = start_system(kafka_bootstrap, tmp_path_factory.mktemp("openapi"), database_url)
    try:
        with httpx.Client(base_url=system.api_url, timeout=15) as api:
            seeds = seed(system, api)
        yield seeds
    finally:
        stop_system(system)


def seed(system: RunningSystem, api: httpx.Client) -> Seeded:
    publisher = bearer("publisher", "hotline")
    posted = api.post("/v1/events/hotline", json=HOTLINE_EVENT_EXAMPLE, headers=publisher)
    assert posted.status_code == 202, posted.text
    opened = wait_for(lambda: found(api.get(f"/v1/cases/{CASE_ID_EXAMPLE}", headers=bearer())))
    assert opened, system.log("worker")[-3000:]
    if opened.json()["status"] == "awaiting_dispatch":
        # the tiny topology has no category for the example's manhole: the desk dispatches it
        desk = bearer("dispatcher", "510100")
        sent = api.post(
            f"/v1/cases/{CASE_ID_EXAMPLE}/actions",
            json={"type": "dispatch", "category_code": "pothole"},
            headers=desk,
        )
        assert sent.status_code == 202, sent.text

        def dispatched() -> httpx.Response | None:
            answer = api.get(f"/v1/cases/{CASE_ID_EXAMPLE}", headers=bearer())
            return answer if answer.json().get("lead_department") else None

        opened = wait_for(dispatched)
        assert opened, system.log("worker")[-3000:]
    form = {"service_code": "pothole", "lat": "30.6612", "long": "104.0779"}
    created = api.post("/open311/v2/requests.json", data=form, headers=publisher)
    assert created.status_code == 200, created.text
    request_id = created.json()[0]["service_request_id"]
    placed = wait_for(
        lambda: found(api.get(f"/open311/v2/requests/{request_id}.json", headers=publisher))
    )
    assert placed, system.log("worker")[-3000:]
    acted = api.post(
        f"/v1/cases/{CASE_ID_EXAMPLE}/actions",
        json={"type": "escalate", "reason": "spans streets"},
        headers=bearer(),
    )
    assert acted.status_code == 202, acted.text
    return Seeded(system, opened.json()["lead_department"], acted.json()["command_id"], request_id)


@live
def test_the_live_system_serves_this_document(seeded: Seeded) -> None:
    served = httpx.get(f"{seeded.url}/openapi.json", timeout=10)
    assert served.json() == openapi_document()


@live
@schema.parametrize()
def test_api_as_a_city_duty_officer(case: Case[Any], seeded: Seeded) -> None:
    case.call_and_validate(base_url=seeded.url, headers=bearer())


@live
@schema.include(path_regex=INGEST).parametrize()
def test_ingest_as_a_hotline_publisher(case: Case[Any], seeded: Seeded) -> None:
    case.call_and_validate(base_url=seeded.url, headers=bearer("publisher", "hotline"))


@live
@schema.parametrize()
def test_api_without_a_token(case: Case[Any], seeded: Seeded) -> None:
    case.call_and_validate(base_url=seeded.url)


@live
def test_known_things_answer_as_documented(seeded: Seeded) -> None:
    """What generated ids rarely reach: a command, an Open311 request, the stream replayed."""
    known = [
        (bearer(), "/v1/commands/{command_id}", {"command_id": seeded.command_id}, {}),
        (
            bearer("publisher", "hotline"),
            "/open311/v2/requests/{service_request_id}.json",
            {"service_request_id": seeded.request_id},
            {},
        ),
        (
            bearer(),
            "/open311/v2/requests/{service_request_id}.json",
            {"service_request_id": seeded.request_id},
            {},
        ),
        (bearer(), "/v1/cases/stream", {}, {"after": 0}),
        (
            bearer("department", seeded.lead_department),
            "/v1/cases/{case_id}",
            {"case_id": CASE_ID_EXAMPLE},
            {},
        ),
    ]
    for headers, path, path_parameters, query in known:
        case = schema[path]["GET"].Case(path_parameters=path_parameters, query=query)
        response = case.call_and_validate(base_url=seeded.url, headers=headers)
        assert response.status_code == 200, (path, response.text)


@live
@pytest.mark.parametrize(
    ("method", "path", "options", "status", "reason", "field"),
    [
        ("GET", "/v1/cases", {"params": {"limit": 0}}, 422, "invalid_request", "query.limit"),
        (
            "GET",
            "/v1/cases",
            {"params": {"loop": "galactic"}},
            422,
            "invalid_request",
            "query.loop",
        ),
        # PostgreSQL holds no NUL; year 1 at +06:00 is before year 1 in UTC
        ("GET", "/v1/cases", {"params": {"area": "51\x00"}}, 422, "invalid_request", "query.area"),
        (
            "GET",
            "/v1/cases",
            {"params": {"as_of": "0001-01-01T01:00:00+06:00"}},
            422,
            "invalid_request",
            "query.as_of",
        ),
        (
            "GET",
            "/v1/cases",
            {"params": {"opened_since": "2026-11-22T08:00:00"}},
            422,
            "invalid_request",
            "query.opened_since",
        ),
        # a number is not a time (pydantic alone reads it as seconds since 1970)
        (
            "GET",
            "/v1/cases",
            {"params": {"opened_since": "1764000000"}},
            422,
            "invalid_request",
            "query.opened_since",
        ),
        (
            "GET",
            "/v1/cases",
            {"params": {"overdue": "true", "as_of": "1764000000.5"}},
            422,
            "invalid_request",
            "query.as_of",
        ),
        ("GET", "/v1/stats", {"params": {"since": "0"}}, 422, "invalid_request", "query.since"),
        ("GET", "/v1/cases/CL-1%00", {}, 422, "invalid_request", "path.case_id"),
        ("GET", "/v1/stats", {"params": {"until": "1900-01-02T00:00:00Z"}}, 200, None, None),
        # positions are the read model's INTEGERs; `²` is a digit to `isdigit`, not to `int`
        (
            "GET",
            "/v1/cases/stream",
            {"params": {"after": 2**31}},
            422,
            "invalid_request",
            "query.after",
        ),
        (
            "GET",
            "/v1/cases/stream",
            {"headers": {"Last-Event-ID": "²".encode("latin-1")}},
            400,
            "bad_last_event_id",
            None,
        ),
        (
            "GET",
            "/v1/cases/stream",
            {"headers": {"Last-Event-ID": "9" * 5000}},
            400,
            "bad_last_event_id",
            None,
        ),
        (
            "POST",
            f"/v1/cases/{CASE_ID_EXAMPLE}/actions",
            {"content": b'{"type": "\xff"}', "headers": JSON},
            400,
            "bad_request",
            None,
        ),
        (
            "POST",
            f"/v1/cases/{CASE_ID_EXAMPLE}/actions",
            # a control character is refused in any text of a command, as in events
            {"json": {"type": "merge", "into_case_id": "CL-\x00", "reason": "same"}},
            422,
            "invalid_action",
            None,
        ),
        ("DELETE", "/v1/cases", {}, 405, "method_not_allowed", None),
    ],
)
def test_bad_input_is_refused_by_name(
    seeded: Seeded,
    method: str,
    path: str,
    options: dict[str, Any],
    status: int,
    reason: str | None,
    field: str | None,
) -> None:
    options = {**options, "headers": {**bearer(), **options.get("headers", {})}}
    with httpx.stream(method, seeded.url + path, timeout=10, **options) as response:
        assert response.status_code == status
        if reason is None:
            return
        detail = json.loads(response.read())["detail"]
    assert detail["reason"] == reason
    if field is not None:
        assert [problem["field"] for problem in detail["fields"]] == [field]
        assert detail["message"].startswith(f"{field}: ")


def keepalive_race(failure: str) -> bool:
    """FastAPI's own SSE keep-alive task, sending as the client hangs up (fastapi/fastapi
    discussion 15725): logged, but after the client left, and not ours to fix."""
    traceback = failure.split("INFO:", 1)[0]
    return "_keepalive_inserter" in traceback and "BrokenResourceError" in traceback


@live
def test_nothing_failed_out_of_sight(seeded: Seeded) -> None:
    """Last, on purpose: an error inside an event stream only cuts it (its 200 is sent), and the
    projector's errors reach no response — so read the API's log and its health."""
    failures = seeded.system.log("api").split("Exception in ASGI application")[1:]
    assert [failure for failure in failures if not keepalive_race(failure)] == []
    health = httpx.get(f"{seeded.url}/healthz", timeout=10).json()
    assert health["projector_error"] is None, health
