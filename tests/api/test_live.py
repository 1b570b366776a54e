"""The live case stream (SSE) on a running system: changes arrive as they happen, a client
resumes from its Last-Event-ID, each caller sees only its own cases, and no personal data."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from cityloop.contracts import (
    CASE_EVENT_ADAPTER,
    AssistanceAdded,
    CaseDispatched,
    CaseEvent,
    CaseOpened,
)
from cityloop.loadtest.generate import ScenarioConfig, generate
from cityloop.loadtest.pacing import Pacing
from cityloop.loadtest.replay import ReplayReport, replay
from cityloop.loadtest.streamfile import StreamRecord
from cityloop.settings import Settings
from handlers.book import CaseBook
from handlers.cells import correlation_key
from handlers.intake import Accepted, take_in
from streams.history import read_records
from streams.topics import topics_for
from tests.conftest import RunningSystem, bearer, start_system, stop_system, unique_prefix
from tests.streams.test_lifecycle_stream import new_case
from tests.streams.test_pipeline import wait_for
from topology import load_topology, tiny_topology_path

pytestmark = [pytest.mark.broker, pytest.mark.long(45)]

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
            change = take_line(line, fields)
            if change is not None:
                changes.append(change)
    return changes, "\n".join(raw)


def take_line(line: str, fields: dict[str, str]) -> Change | None:
    """One line of an event stream, gathered into `fields`; the change, once a blank line ends
    it. Comments (the keep-alives) are skipped."""
    if line == "" and "data" in fields:
        change = {"id": fields["id"], "name": fields["event"], **json.loads(fields["data"])}
        fields.clear()
        return change
    if line and not line.startswith(":"):
        name, _, value = line.partition(": ")
        fields[name] = value
    return None


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


# --- watched while a replay runs -------------------------------------------------------------


def follow(
    system: RunningSystem,
    headers: dict[str, str],
    into: list[Change],
    raw: list[str],
    opened: threading.Event,
    stop: threading.Event,
) -> None:
    """Append case changes to `into` as they arrive, until `stop` (or the API goes away)."""
    fields: dict[str, str] = {}
    with httpx.stream(
        "GET",
        f"{system.api_url}/v1/cases/stream",
        headers=headers,
        params={"after": 0},  # a fresh system: from its first event on, all of it live
        timeout=httpx.Timeout(5, read=30),
    ) as response:
        assert response.status_code == 200, response.read()
        opened.set()
        try:
            for line in response.iter_lines():
                if stop.is_set():
                    return
                raw.append(line)
                change = take_line(line, fields)
                if change is not None:
                    into.append(change)
        except httpx.RemoteProtocolError:
            if not stop.is_set():
                raise  # the stream broke while the test still listened
            # the API was stopped under a listener the test was done with


def topic_events(system: RunningSystem) -> list[CaseEvent]:
    """Every case event the worker wrote, read from the topic itself (not the read model)."""
    topic = topics_for(Settings(topic_prefix=system.prefix)).case_events
    return [
        CASE_EVENT_ADAPTER.validate_json(record.value)
        for record in read_records(system.bootstrap, topic)
    ]


def replay_whole(system: RunningSystem, records: list[StreamRecord]) -> ReplayReport:
    """Replay the records into the system, 30 a second, each accounted for (a case's or a
    dead letter's)."""
    report = asyncio.run(
        replay(
            records,
            Settings(kafka_bootstrap_servers=system.bootstrap, topic_prefix=system.prefix),
            Pacing(rate=30),
            settle_s=30,
            timeout_s=90,
        )
    )
    assert report.accounted == report.sent == len(records), report
    return report


def settled_events(system: RunningSystem) -> list[CaseEvent]:
    """The topic once the worker has stopped writing to it for a while."""
    events = topic_events(system)
    for _ in range(30):
        time.sleep(2)
        again = topic_events(system)
        if len(again) == len(events):
            return again
        events = again
    raise AssertionError("the worker kept writing case events")


EventKey = tuple[str, int]
"""A case event as the stream names it: its case and version (the event id is not sent)."""


def key_of(change: Change) -> EventKey:
    return change["case"]["case_id"], int(change["event"]["version"])


def may_see(events: list[CaseEvent], role: str, scope: str) -> tuple[set[EventKey], set[EventKey]]:
    """What a caller must be sent and what it may be sent, worked out from the topic alone: duty officers see the cases placed (or handled) in their subtree from the
    first event on; a department the cases it was put on, at least from that event on."""
    by_case: dict[str, list[CaseEvent]] = {}
    for event in events:
        by_case.setdefault(event.case_id, []).append(event)
    required: set[EventKey] = set()
    allowed: set[EventKey] = set()
    for history in by_case.values():
        history.sort(key=lambda event: event.version)
        ids = [(event.case_id, event.version) for event in history]
        if role in ("auditor", "city"):
            required.update(ids)
            continue
        if role == "duty_officer":
            opened = history[0]
            assert isinstance(opened, CaseOpened)
            handling = [
                e.assignment.handling_area for e in history if isinstance(e, CaseDispatched)
            ]
            places = [opened.area_codes[0], *handling[-1:]]
            if any(place.startswith(scope) for place in places):
                required.update(ids)
            continue
        joined = next(
            (
                n
                for n, event in enumerate(history)
                if (
                    isinstance(event, CaseDispatched)
                    and scope
                    in (event.assignment.lead_department, *event.assignment.co_departments)
                )
                or (isinstance(event, AssistanceAdded) and event.department == scope)
            ),
            None,
        )
        if joined is not None:
            required.update(ids[joined:])
            allowed.update(ids[:joined])
    return required, required | allowed


def test_a_replay_watched_live_by_each_kind_of_caller(kafka_bootstrap: str, tmp_path: Path) -> None:
    topology = load_topology(tiny_topology_path())
    stream = generate(topology, ScenarioConfig(minutes=3, rate=1.0, seed=23))
    personal: set[str] = set()
    for record in stream.records:
        data = (record.event or {}).get("data") or {}
        personal.update(
            str(data[field]) for field in ("caller_name", "caller_phone") if data.get(field)
        )
    assert len(personal) > 10  # the stream has callers to protect
    # the departments the handlers will put on most cases (routing is by category and area)
    book = CaseBook()
    for record in stream.records:
        taken = take_in(record.value or b"", topology, datetime.now(UTC), record.source, None)
        if isinstance(taken, Accepted):
            incident = taken.incident
            book.correlate(
                incident, correlation_key(topology, incident), topology, {}, incident.received_at
            )
    leads = Counter(
        state.assignment.lead_department for state in book.cases.values() if state.assignment
    )
    watchers = {
        ("city", "510100"): bearer(),
        ("duty_officer", "510104"): bearer("duty_officer", "510104"),
        ("duty_officer", "510105001"): bearer("duty_officer", "510105001"),
        ("auditor", ""): bearer("auditor", ""),
        **{
            ("department", department): bearer("department", department)
            for department, _ in leads.most_common(2)
        },
    }
    system = start_system(kafka_bootstrap, tmp_path, prefix=unique_prefix("ssereplay"))
    stop = threading.Event()
    seen: dict[tuple[str, str], list[Change]] = {who: [] for who in watchers}
    raws: dict[tuple[str, str], list[str]] = {who: [] for who in watchers}
    try:
        for who, headers in watchers.items():
            opened = threading.Event()
            threading.Thread(
                target=follow,
                args=(system, headers, seen[who], raws[who], opened, stop),
                daemon=True,
            ).start()
            assert opened.wait(10), who
        report = replay_whole(system, stream.records)
        events = settled_events(system)
        assert report.cases_opened >= 3 and len(events) > 2 * report.cases_opened
        by_key = {(event.case_id, event.version): event for event in events}
        expected = {who: may_see(events, *who) for who in watchers}

        def complete() -> bool:
            return all(
                expected[who][0] <= {key_of(change) for change in list(seen[who])}
                for who in watchers
            )

        assert wait_for(complete, 30), {
            who: len(expected[who][0] - {key_of(change) for change in seen[who]})
            for who in watchers
        }
        time.sleep(1)  # anything that would arrive out of scope has had its chance
    finally:
        stop.set()
        stop_system(system)

    for who in watchers:
        changes = list(seen[who])
        required, allowed = expected[who]
        received = [key_of(change) for change in changes]
        assert len(received) == len(set(received)), f"{who}: an event twice"
        assert required <= set(received) <= allowed, who
        positions = [int(change["id"]) for change in changes]
        assert positions == sorted(positions) and all(
            change["seq"] == int(change["id"]) for change in changes
        ), who
        last_version: dict[str, int] = {}
        for change in changes:
            event = by_key[key_of(change)]
            assert change["name"] == event.type == change["event"]["type"]
            assert change["case"]["case_id"] == event.case_id
            # in order, and nothing of a case skipped once it is seen
            previous = last_version.get(event.case_id)
            assert previous is None or event.version == previous + 1, (who, event)
            last_version[event.case_id] = event.version
            assert not {"first_report", "report"} & set(change["event"]["details"]), who
        text = "\n".join(raws[who])
        shown = [value for value in personal if value in text]
        assert shown == [], f"{who} was shown callers' personal data"
    # every kind of caller saw a share of the replay, and scope made a difference
    sizes = {who: len(expected[who][0]) for who in watchers}
    assert sizes[("city", "510100")] == sizes[("auditor", "")] == len(events)
    assert all(
        0 < size < len(events)
        for who, size in sizes.items()
        if who[0] != "city" and who[0] != "auditor"
    ), sizes
