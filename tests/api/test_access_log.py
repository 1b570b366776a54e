"""The API's log on a live system: an access log line per request with the request id its answer
carries (the caller's, or one made for it), no tokens or tickets in it, and live-stream clients
that go away are a line of it, not an ERROR with a traceback."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from cityloop.contracts import Source
from tests.conftest import TEST_SECRET, RunningSystem, bearer
from tests.streams.test_pipeline import cloudevent, wait_for

pytestmark = pytest.mark.broker


def log_since(system: RunningSystem, start: int) -> str:
    return system.log("api")[start:]


def test_each_request_has_an_id_in_its_answer_and_its_access_log_line(
    system: RunningSystem,
) -> None:
    start = len(system.log("api"))
    given = httpx.get(f"{system.api_url}/healthz", headers={"X-Request-ID": "probe-7.a"})
    assert given.headers["x-request-id"] == "probe-7.a"
    made = httpx.get(f"{system.api_url}/v1/cases", headers=bearer())
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    unusable = httpx.get(f"{system.api_url}/healthz", headers={"X-Request-ID": "a b\tc"})
    assert unusable.headers["x-request-id"] != "a b\tc"
    refused = httpx.get(f"{system.api_url}/console/login", params={"ticket": "not-a-ticket"})
    assert "x-request-id" in refused.headers

    def lines() -> str | None:
        written = log_since(system, start)
        return written if refused.headers["x-request-id"] in written else None

    written = wait_for(lines, 10, 0.1)
    assert written, log_since(system, start)
    assert re.search(
        r"INFO api cityloop\.access: GET /healthz 200 [0-9.]+ms request_id=probe-7\.a", written
    )
    assert "GET /v1/cases 200" in written
    assert "ticket=***" in written and "not-a-ticket" not in written
    assert TEST_SECRET not in written and "Bearer" not in written


async def follow_then_leave(system: RunningSystem, events: int) -> None:
    async with (
        httpx.AsyncClient(timeout=30) as client,
        client.stream(
            "GET", f"{system.api_url}/v1/cases/stream", params={"after": 0}, headers=bearer()
        ) as stream,
    ):
        seen = 0
        async for line in stream.aiter_lines():
            seen += line.startswith("id:")
            if seen >= events:
                return  # and the connection closes under the stream


async def clients_come_and_go(system: RunningSystem) -> None:
    async def publisher() -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            for _ in range(20):
                posted = await client.post(
                    f"{system.api_url}/v1/events/hotline",
                    json=cloudevent(Source.HOTLINE),
                    headers=bearer("publisher", "hotline"),
                )
                assert posted.status_code == 202
                await asyncio.sleep(0.05)

    await asyncio.gather(publisher(), *(follow_then_leave(system, 1 + n % 5) for n in range(30)))


def test_live_stream_clients_that_go_away_are_no_errors(system: RunningSystem) -> None:
    start = len(system.log("api"))
    asyncio.run(clients_come_and_go(system))
    written = wait_for(
        lambda: (text := log_since(system, start)).count("GET /v1/cases/stream") >= 30 and text,
        20,
        0.2,
    )
    assert written, log_since(system, start)[-3000:]
    assert " ERROR " not in written and "Traceback" not in written, written[-3000:]
