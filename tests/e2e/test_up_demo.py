"""The main job as a new user runs it: `cityloop up --demo`, then the API, then Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from cityloop.broker import free_port, port_open
from cityloop.contracts import Source
from cityloop.demo import demo_lines
from cityloop.loadtest.model import DecisionModel, run_record
from topology import load_topology

pytestmark = [pytest.mark.broker, pytest.mark.long(30)]


def demo_cases_by_the_handlers() -> int:
    """How many cases the worker's own decisions (the shipped classifier among them) make of
    the demo, in one process."""
    model = DecisionModel.like_the_worker(load_topology())
    opened = set()
    for line in demo_lines():
        raw = json.dumps(line["event"], ensure_ascii=False).encode()
        outcome = run_record(model, raw, Source(str(line["source"])), None, datetime.now(UTC))
        opened |= {event.case_id for event in outcome.events if event.type == "CaseOpened"}
    return len(opened)


def processes_with_env(marker: str) -> list[int]:
    """Processes whose environment carries `marker` (all that `up` started for this test)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_up_demo_publishes_cases_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        pytest.fail("this test runs the embedded broker; unset KAFKA_BOOTSTRAP_SERVERS")
    broker_port, api_port = free_port(), free_port()
    # unique per run: tmp_path's name repeats across pytest sessions running side by side
    tag = uuid.uuid4().hex
    marker = f"CITYLOOP_E2E_MARKER={tag}"
    env = {
        **os.environ,
        "CITYLOOP_BROKER_PORT": str(broker_port),
        "CITYLOOP_API_PORT": str(api_port),
        "CITYLOOP_E2E_MARKER": tag,
    }
    up = subprocess.Popen(
        [sys.executable, "-m", "cityloop", "up", "--demo"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a shell gives a foreground job
    )
    output: list[str] = []
    try:
        assert up.stdout is not None
        deadline = time.monotonic() + 150
        count = None
        token = None
        for line in up.stdout:
            output.append(line)
            if "curl -H 'Authorization: Bearer " in line:
                token = line.split("Bearer ", 1)[1].split("'", 1)[0]
            match = re.search(r"demo: (\d+) cases", line)
            if match:
                count = int(match.group(1))
                break
            if time.monotonic() > deadline:
                break
        assert count is not None, "".join(output)
        # the demo's ground truth: 18 events, 3 exact retries, one flooded underpass reported by
        # two callers and a water-level sensor (which later clears), and 11 other matters, one of
        # them a wage complaint under a code the topology lacks, which waits at the 12345 desk
        assert len(demo_lines()) == 18
        assert count == demo_cases_by_the_handlers() == 12

        assert token, "".join(output)
        cases_url = f"http://127.0.0.1:{api_port}/v1/cases"
        assert httpx.get(cases_url).status_code == 401
        headers = {"Authorization": f"Bearer {token}"}
        page = httpx.get(cases_url, params={"limit": 100}, headers=headers).json()
        assert len(page["items"]) == count
        waiting = [item for item in page["items"] if item["status"] == "awaiting_dispatch"]
        assert [item["title"] for item in waiting] == ["讨要工资"]
        assert {item["loop"] for item in page["items"]} >= {"micro", "small", "medium"}
        assert (tmp_path / "var" / "cityloop.db").exists()
        assert len(processes_with_env(marker)) >= 3  # up, broker, worker, api

        # Ctrl-C: the terminal signals the whole foreground group, not `up` alone
        os.killpg(up.pid, signal.SIGINT)
        up.wait(30)
        gone = time.monotonic() + 5  # up waited for its children; the kernel may lag a moment
        while processes_with_env(marker) and time.monotonic() < gone:
            time.sleep(0.05)
        assert processes_with_env(marker) == []
        # the broker outlived the worker and the API: they stopped without retrying it
        for role in ("worker", "api"):
            log = (tmp_path / "var" / "logs" / f"{role}.log").read_text(errors="replace")
            assert "Connect call failed" not in log, role
        assert not port_open("127.0.0.1", broker_port)
        assert not port_open("127.0.0.1", api_port)
    finally:
        if up.poll() is None:
            up.kill()
        for pid in processes_with_env(marker):
            os.kill(pid, signal.SIGKILL)
