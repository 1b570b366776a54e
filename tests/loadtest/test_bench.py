"""`cityloop bench` end to end at a tiny size, on an embedded broker of its own: every phase
runs, every record of the throughput runs is accounted for, the JSON carries each figure, and
the row it appends to the docs fits the table's header."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from topology import tiny_topology_path

pytestmark = [pytest.mark.broker, pytest.mark.long(40)]


def test_the_bench_measures_every_phase_and_appends_a_row(tmp_path: Path) -> None:
    env = {**os.environ, "CITYLOOP_TOPOLOGY_FILE": str(tiny_topology_path())}
    env.pop("CITYLOOP_KAFKA_BOOTSTRAP_SERVERS", None)
    docs = tmp_path / "benchmarks.md"
    done = subprocess.run(
        [sys.executable, "-m", "cityloop", "bench", "--events", "300", "--rate-seconds", "0.5"]
        + ["--json", "--docs", str(docs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=280,  # under pytest's own 300 s
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)
    for name in (
        "ceiling_events_per_s",
        "one_worker_events_per_s",
        "one_worker_backlog_events_per_s",
        "two_workers_events_per_s",
        "one_worker_warm_backlog_events_per_s",
        "two_workers_warm_backlog_events_per_s",
    ):
        assert figures[name] > 0, name
    assert figures["backlog_over_ceiling"] == pytest.approx(
        figures["one_worker_backlog_events_per_s"] / figures["ceiling_events_per_s"], abs=1e-3
    )
    assert figures["two_over_one_warm_backlog"] == pytest.approx(
        figures["two_workers_warm_backlog_events_per_s"]
        / figures["one_worker_warm_backlog_events_per_s"],
        abs=1e-3,
    )
    # nothing left unaccounted in any throughput run, and no warm group changed in its drain
    assert figures["notes"] == []
    assert set(figures["latency_ms"]) == {"100", "1000", "5000"}
    lines = docs.read_text(encoding="utf-8").splitlines()
    header = next(line for line in lines if line.startswith("| run |"))
    row = next(line for line in lines if line.startswith("| 20"))
    assert row.count("|") == header.count("|")
