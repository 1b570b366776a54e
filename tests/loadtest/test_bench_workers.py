"""The benches' worker processes do not outlive a bench stopped with SIGTERM (as `timeout` stops
it): a worker left behind spins against its vanished broker and takes CPU from every
measurement after it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cityloop.broker import free_port

BENCH = """
import sys, time
from pathlib import Path
from cityloop.loadtest.bench import workers
from cityloop.settings import Settings

settings = Settings(
    kafka_bootstrap_servers=f"127.0.0.1:{sys.argv[2]}", topic_prefix="stopped", _env_file=None
)
with workers(settings, 1, Path(sys.argv[1])) as processes:
    print(processes[0].pid, flush=True)
    time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_bench_stopped_with_sigterm_stops_its_workers(tmp_path: Path) -> None:
    bench = subprocess.Popen(
        [sys.executable, "-c", BENCH, str(tmp_path), str(free_port())],
        stdout=subprocess.PIPE,
        text=True,
    )
    worker = 0
    try:
        assert bench.stdout is not None
        worker = int(bench.stdout.readline())
        assert _alive(worker)
        bench.send_signal(signal.SIGTERM)
        assert bench.wait(60) == 128 + signal.SIGTERM
        # the worker was the bench's child and was waited for: gone, not left to init
        deadline = time.monotonic() + 5
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker)
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
        if worker and _alive(worker):  # the failure this test is for: leave no orphan behind
            os.kill(worker, signal.SIGKILL)
