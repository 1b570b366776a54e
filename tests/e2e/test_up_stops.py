"""However `cityloop up` ends, nothing it started is left: stopped in order on SIGTERM (the API
and the worker, then the broker), even when it inherited SIGINT ignored as `cityloop up &` from a
script does; and when it is killed outright, its children notice and stop themselves. What it
leaves are its log files: without terminal codes, and JSON lines when asked for."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.e2e.running_up import start_up

pytestmark = [pytest.mark.broker, pytest.mark.long(70)]


def ignores_sigint(pid: int) -> bool:
    """Whether a process has SIGINT ignored (bit 1 of SigIgn in /proc/PID/status)."""
    status = Path(f"/proc/{pid}/status").read_text()
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:"))
    return bool(int(mask, 16) & (1 << (signal.SIGINT - 1)))


def ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    ("started_with", "log_format"), [("defaults", "text"), ("sigint_ignored", "json")]
)
def test_sigterm_stops_everything_up_started(
    tmp_path: Path, started_with: str, log_format: str
) -> None:
    up = start_up(
        tmp_path,
        extra_env={"CITYLOOP_LOG_FORMAT": log_format},
        preexec_fn=ignore_sigint if started_with == "sigint_ignored" else None,
    )
    try:
        children = up.children()
        assert len(children) == 3, up.output()  # broker, worker, API
        # what `up` inherited is not what its children run with
        assert not any(ignores_sigint(pid) for pid in children)

        assert up.stop(signal.SIGTERM) == 0, up.output()
        assert up.wait_gone(5) == []
        assert up.open_ports() == []
        assert "SIGTERM: stopping" in up.output()
        # the broker outlived the worker and the API: they stopped without retrying it
        for role in ("worker", "api"):
            assert "Connect call failed" not in up.log(role), role
        for role in ("broker", "worker", "api"):
            assert "\x1b" not in up.log(role), role
        assert "request_id=" in up.log("api") or '"request_id"' in up.log("api")
        if log_format == "json":
            for role in ("worker", "api"):
                for line in up.log(role).splitlines():
                    document = json.loads(line)
                    assert {"time", "level", "role", "logger", "message"} <= set(document), line
    finally:
        up.kill_everything()


def test_children_of_a_killed_up_stop_themselves(tmp_path: Path) -> None:
    up = start_up(tmp_path)
    try:
        assert len(up.children()) == 3, up.output()
        up.process.kill()  # SIGKILL: `up` stops nothing
        up.process.wait()
        # the parent-death signal asks each to stop at once; a worker or API that still runs
        # 10 s later (a worker whose broker went first retries it) exits regardless
        assert up.wait_gone(20) == []
        assert up.open_ports() == []
    finally:
        up.kill_everything()


def test_up_stops_everything_when_its_broker_dies(tmp_path: Path) -> None:
    up = start_up(tmp_path)
    try:
        broker = next(
            pid for pid in up.children() if "broker" in Path(f"/proc/{pid}/cmdline").read_text()
        )
        os.kill(broker, signal.SIGKILL)  # the OOM killer's choice, say
        # up notices, stops the worker and the API (15 s of grace at most) and exits
        assert up.process.wait(40) == 0, up.output()
        assert "the embedded broker exited" in up.output()
        assert up.wait_gone(5) == []
        assert up.open_ports() == []
    finally:
        up.kill_everything()
