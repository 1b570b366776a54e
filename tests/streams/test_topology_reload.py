"""Hot reload: a published topology version is used by the running worker at once, recorded on
every case it routes; a broken version is refused and the current one stays."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from kafka import KafkaProducer

from tests.conftest import RunningSystem
from tests.streams.test_lifecycle_stream import new_case, outcome_of
from topology import tiny_topology_path

pytestmark = pytest.mark.broker


def publish_file(system: RunningSystem, file: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "cityloop", "topology", "publish", str(file)],
        env=system.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return f"topology:{hashlib.sha256(file.read_bytes()).hexdigest()[:16]}"


def test_a_published_version_routes_new_cases_without_a_restart(
    system: RunningSystem, tmp_path: Path
) -> None:
    original = tiny_topology_path()
    text = original.read_text(encoding="utf-8")
    assert "version: tiny-1" in text and "lowest_level: small" in text
    # version 2 lets communities handle potholes themselves
    pothole = text.index("code: pothole")
    changed = text[:pothole] + text[pothole:].replace(
        "lowest_level: small", "lowest_level: micro", 1
    )
    second = tmp_path / "tiny-2.yaml"
    second.write_text(changed.replace("version: tiny-1", "version: tiny-2"), encoding="utf-8")
    worker_pid = system.processes["worker"].pid
    try:
        applied = outcome_of(system, publish_file(system, second))
        assert applied.applied and applied.reason == "applied tiny-2"
        case = new_case(system, 30.6531, title="路面坑洼", text="坑", category_code="pothole")
        assert case["loop"] == "micro"
        assert case["assignment"]["topology_version"] == "tiny-2"

        broken = b"version: tiny-3\nareas: [oops"
        producer = KafkaProducer(bootstrap_servers=system.bootstrap, acks="all")
        producer.send(system.topic("topology"), key=b"current", value=broken).get(timeout=10)
        producer.close()
        refused = outcome_of(system, f"topology:{hashlib.sha256(broken).hexdigest()[:16]}")
        assert not refused.applied and refused.reason.startswith("invalid")
        after = new_case(
            system, 30.6516, title="路面坑洼", text="又一个坑", category_code="pothole"
        )
        assert after["assignment"]["topology_version"] == "tiny-2"
        assert (
            system.processes["worker"].pid == worker_pid
            and system.processes["worker"].poll() is None
        )
    finally:
        restored = outcome_of(system, publish_file(system, original))
        assert restored.applied
    back = new_case(system, 30.6501, title="路面坑洼", text="第三个坑", category_code="pothole")
    assert back["loop"] == "small" and back["assignment"]["topology_version"] == "tiny-1"
    assert json.dumps(back)  # the case serialises whole
