"""The warm-backlog figures of `cityloop bench` (one and two workers, settled in their group,
draining the same backlog) in its JSON and in the row it appends, and the pause that keeps the
publisher of that backlog off the workers' cores."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from cityloop.loadtest.bench import (
    TABLE_HEADER,
    BenchResult,
    _paused,
    append_row,
    markdown_row,
)


def _result() -> BenchResult:
    return BenchResult(
        events=10_000,
        ceiling=3_000.0,
        one_worker=1_500.0,
        one_worker_backlog=1_800.0,
        two_workers=2_100.0,
        one_worker_warm_backlog=1_900.0,
        two_workers_warm_backlog=3_230.0,
        latency={rate: {"p99_ms": 100.0} for rate in (100, 1_000, 5_000)},
        raw_latency={rate: {"p99_ms": 40.0} for rate in (100, 1_000, 5_000)},
    )


def test_the_json_carries_both_warm_backlogs_and_their_ratio() -> None:
    figures = _result().to_json()
    assert figures["one_worker_warm_backlog_events_per_s"] == 1_900.0
    assert figures["two_workers_warm_backlog_events_per_s"] == 3_230.0
    assert figures["two_over_one_warm_backlog"] == 1.7
    # the figures that were there keep their meaning
    assert figures["one_worker_backlog_events_per_s"] == 1_800.0
    assert figures["two_over_one"] == 1.4


def test_no_ratio_without_a_one_worker_figure() -> None:
    result = BenchResult(events=10, two_workers_warm_backlog=100.0)
    assert result.to_json()["two_over_one_warm_backlog"] == 0.0


def test_the_row_ends_with_the_warm_backlogs_and_fits_the_header(tmp_path: Path) -> None:
    row = markdown_row(_result(), datetime(2026, 12, 5, 1, 0, tzinfo=UTC), "default")
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    header, rule = TABLE_HEADER.splitlines()
    names = [name.strip() for name in header.strip("|").split("|")]
    assert len(cells) == len(names) == rule.count("---")
    assert names[-2:] == [
        "1 warm worker, a backlog (ev/s)",
        "2 warm workers, a backlog (ev/s, 2 / 1)",
    ]
    assert cells[-3:] == ["1,800 (0.600)", "1,900", "3,230 (1.70)"]
    docs = tmp_path / "benchmarks.md"
    append_row(docs, row)
    lines = docs.read_text(encoding="utf-8").splitlines()
    assert lines.index(header) + 2 == lines.index(row)


def _state(pid: int) -> str:
    """The process's state letter in /proc (T: stopped)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0]


def _wait_for_state(pid: int, wanted: set[str]) -> str:
    deadline = time.monotonic() + 5
    state = _state(pid)
    while state not in wanted and time.monotonic() < deadline:
        time.sleep(0.01)
        state = _state(pid)
    return state


def test_paused_workers_are_stopped_in_the_block_and_go_on_after_it() -> None:
    processes = [
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) for _ in range(2)
    ]
    try:
        with _paused(processes):
            assert [_wait_for_state(p.pid, {"T"}) for p in processes] == ["T", "T"]
        assert all(_wait_for_state(p.pid, {"S", "R"}) in {"S", "R"} for p in processes)
    finally:
        for process in processes:
            process.kill()
            process.wait()


def test_paused_workers_go_on_when_the_block_fails() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        try:
            with _paused([process]):
                raise RuntimeError("the backlog could not be published")
        except RuntimeError:
            pass
        assert _wait_for_state(process.pid, {"S", "R"}) in {"S", "R"}
    finally:
        process.kill()
        process.wait()
