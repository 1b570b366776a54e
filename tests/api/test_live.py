"""The live case stream (SSE) on a running system: changes arrive as they happen, a client
resumes from its Last-Event-ID, each caller sees only its own cases, and no personal data."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import RunningSystem, bearer
from tests.streams.test_lifecycle_stream import new_case

pytestmark = pytest.mark.broker

Change = dict[str, Any]


def read_stream(
    system: RunningSystem,
    headers: dict[str, str],
    enough: Callable[[list[Change]], bool],
    timeout_s: float = 30,
    params: dict[str, Any] | None = None,
    opened: threading.Event | None = None,
) -> tuple[list[Change], str]:
    """Read case changes until `enough` says so; returns them and the raw text read."""
    changes: list[Change] = []
    raw: list[str] = []
    deadline = time.monotonic() + timeout_s
    fields: dict[str, str] = {}
    with httpx.stream(
        "GET",
        f"{system.api_url}/v1/cases/stream",
        headers=headers,
        params=params,
        timeout=httpx.Timeout(5, read=20),
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        if opened is not None:
            opened.set()
        lines = response.iter_lines()
        while not enough(changes):
            assert time.monotonic() < deadline, f"stream gave only {changes}"
            line = next(lines)  # the server sends a keep-alive comment every 15 s
            raw.append(line)
            if line == "" and "data" in fields:
                changes.append(
                    {"id": fields["id"], "name": fields["event"], **json.loads(fields["data"])}
                )
                fields = {}
            elif line and not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
    return changes, "\n".join(raw)


def of_case(case_id: str) -> Callable[[list[Change]], bool]:
    return lambda changes: (
        {"CaseOpened", "CaseDispatched"}
        <= {c["name"] for c in changes if c["case"]["case_id"] == case_id}
    )


def test_changes_arrive_live_and_a_client_resumes_where_it_left(system: RunningSystem) -> None:
    opened = threading.Event()
    result: dict[str, Any] = {}
    made: dict[str, Any] = {}

    def listen() -> None:
        try:
            result["changes"], result["raw"] = read_stream(
                system,
                bearer(),
                lambda changes: "case_id" in made and of_case(made["case_id"])(changes),
                opened=opened,
            )
        except BaseException as exc:  # reported below, in the test's own thread
            result["error"] = exc

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert opened.wait(10), result
    case = new_case(
        system, 30.6688, title="路灯不亮", text="整条街路灯不亮", category_code="pothole"
    )
    made["case_id"] = case["case_id"]
    listener.join(40)
    assert "error" not in result, result.get("error")
    mine = [c for c in result["changes"] if c["case"]["case_id"] == case["case_id"]]
    assert [c["name"] for c in mine][:2] == ["CaseOpened", "CaseDispatched"]
    assert [int(c["id"]) for c in mine] == sorted(int(c["id"]) for c in mine)
    assert all(c["seq"] == int(c["id"]) and c["event"]["type"] == c["name"] for c in mine)
    assert "13800001003" not in result["raw"] and "王芳" not in result["raw"]  # masked: not sent

    # a client that saw CaseOpened and reconnects gets what came after it, and only that
    resumed, _ = read_stream(
        system,
        {**bearer(), "Last-Event-ID": mine[0]["id"]},
        lambda changes: any(c["id"] == mine[1]["id"] for c in changes),
    )
    assert all(int(c["id"]) > int(mine[0]["id"]) for c in resumed)
    assert resumed[0]["name"] != "CaseOpened" or resumed[0]["case"]["case_id"] != case["case_id"]


def test_each_caller_streams_only_the_cases_it_may_see(system: RunningSystem) -> None:
    # theirs first: a stream read up to ours has passed theirs
    theirs = new_case(system, 30.6371, title="噪音扰民", text="夜间施工", category_code="noise")
    ours = new_case(system, 30.6351, title="路面坑洼", text="坑很深", category_code="pothole")
    department = ours["lead_department"]
    assert theirs["lead_department"] != department
    history, _ = read_stream(
        system,
        bearer("department", department),
        lambda changes: any(c["case"]["case_id"] == ours["case_id"] for c in changes),
        params={"after": 0},
    )
    case_ids = {c["case"]["case_id"] for c in history}
    for case_id in case_ids:  # each one the department may open itself
        detail = httpx.get(
            f"{system.api_url}/v1/cases/{case_id}", headers=bearer("department", department)
        )
        assert detail.status_code == 200, case_id
    everything, _ = read_stream(
        system,
        bearer(),
        lambda changes: (
            {ours["case_id"], theirs["case_id"]} <= {c["case"]["case_id"] for c in changes}
        ),
        params={"after": 0},
    )
    assert ours["case_id"] in case_ids and theirs["case_id"] not in case_ids
    assert case_ids < {c["case"]["case_id"] for c in everything}

    publisher = httpx.get(
        f"{system.api_url}/v1/cases/stream", headers=bearer("publisher", "hotline"), timeout=5
    )
    assert publisher.status_code == 403
    bad = httpx.get(
        f"{system.api_url}/v1/cases/stream",
        headers={**bearer(), "Last-Event-ID": "yesterday"},
        timeout=5,
    )
    assert bad.status_code == 400 and bad.json()["detail"]["reason"] == "bad_last_event_id"
