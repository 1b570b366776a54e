"""`cityloop up` without CITYLOOP_JWT_SECRET keeps its session's secret in the data directory
(0600) and says so; `cityloop token`, run beside it, mints tokens its API takes."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from cityloop.broker import free_port
from cityloop.contracts import Source
from tests.conftest import unique_prefix
from tests.streams.test_pipeline import cloudevent
from topology import tiny_topology_path

pytestmark = pytest.mark.broker


def test_cityloop_token_mints_for_the_session_up_started(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    api_port = free_port()
    data_dir = tmp_path / "data"
    env = {key: value for key, value in os.environ.items() if key != "CITYLOOP_JWT_SECRET"}
    env.update(
        {
            "CITYLOOP_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "CITYLOOP_TOPIC_PREFIX": unique_prefix("up-secret"),
            "CITYLOOP_API_PORT": str(api_port),
            "CITYLOOP_DATA_DIR": str(data_dir),
            "CITYLOOP_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cases.db",
            "CITYLOOP_TOPOLOGY_FILE": str(tiny_topology_path()),
        }
    )
    up = subprocess.Popen(
        [sys.executable, "-m", "cityloop", "up"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    try:
        assert up.stdout is not None
        for line in up.stdout:
            output.append(line)
            if "cityloop is up" in line:
                break
        said = "".join(output)
        secret_file = data_dir / "jwt-secret"
        assert f"kept in {secret_file} (0600)" in said, said
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600

        def token(*args: str) -> str:
            minted = subprocess.run(
                [sys.executable, "-m", "cityloop", "token", *args],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert minted.returncode == 0, minted.stderr
            return minted.stdout.strip()

        api = f"http://127.0.0.1:{api_port}"
        department = token("--role", "department", "--scope", "510104001.urban_management")
        cases = httpx.get(
            f"{api}/v1/cases", headers={"Authorization": f"Bearer {department}"}, timeout=10
        )
        assert cases.status_code == 200, cases.text
        publisher = token("--role", "publisher", "--scope", "grid", "--source", "/test/grid")
        posted = httpx.post(
            f"{api}/v1/events/grid",
            json=cloudevent(Source.GRID),
            headers={"Authorization": f"Bearer {publisher}"},
            timeout=15,
        )
        assert posted.status_code == 202, posted.text
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGINT)
            try:
                up.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)
                up.wait()
