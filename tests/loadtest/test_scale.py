"""`cityloop bench --scale` at a tiny size, on embedded brokers of its own: the JSON it prints,
and a read model rebuilt with every case the history holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from topology import tiny_topology_path

pytestmark = [pytest.mark.broker, pytest.mark.long(35)]

FIELDS = {"events", "ready_s", "worker_rss_mb", "rebuild_events_per_s", "cold_ready_s"}


def test_the_scale_bench_prints_a_row_per_size_and_rebuilds_every_case() -> None:
    env = {**os.environ, "CITYLOOP_TOPOLOGY_FILE": str(tiny_topology_path())}
    env.pop("CITYLOOP_KAFKA_BOOTSTRAP_SERVERS", None)
    done = subprocess.run(
        [sys.executable, "-m", "cityloop", "bench", "--scale", "--sizes", "2000", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)
    assert list(figures) == ["scale"]
    (row,) = figures["scale"]
    assert FIELDS <= set(row)
    assert row["events"] == 2000
    for name in ("ready_s", "cold_ready_s", "worker_rss_mb", "rebuild_events_per_s"):
        assert row[name] > 0, name
    # most cases closed, a few still open; the read model holds every one written (and the
    # probes' own cases besides)
    assert 0 < row["open_cases"] < row["cases"] * 0.1
    assert row["cases_missing_from_read_model"] == 0
    assert row["read_model_cases"] >= row["cases"]
    assert row["snapshot_bytes"] > 0
    # `cityloop audit` over the history and the rebuilt read model, the probes' records included
    assert row["audit_holds"] is True and row["audit_peak_rss_mb"] > 0
