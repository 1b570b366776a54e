"""Dead letters can be inspected and re-submitted after a fix, without duplicating what went
through: `cityloop dlq list|show|replay` against a live system."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cityloop.contracts import Source
from tests.conftest import RunningSystem
from tests.streams.test_lifecycle_stream import outcome_of
from tests.streams.test_pipeline import cases_with_report, cloudevent, publish, wait_for
from tests.streams.test_topology_reload import publish_file
from topology import tiny_topology_path

pytestmark = pytest.mark.broker


def dlq(system: RunningSystem, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "cityloop", "dlq", *args],
        env={**system.env, "COLUMNS": "250"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_a_fixed_dead_letter_replays_into_one_case(system: RunningSystem, tmp_path: Path) -> None:
    alarm = cloudevent(Source.IOT, sensor_type="radiation", area_code="510104001001")
    key = f"{alarm['source']}|{alarm['id']}"
    publish(system, "iot", json.dumps(alarm).encode())

    def listed() -> str | None:
        out = dlq(system, "list", "--reason", "unknown_category")
        return out if "radiation" in out else None

    listing = wait_for(listed, timeout_s=30)
    assert listing, dlq(system, "list")
    candidates = [
        line.split("│")[1].strip() for line in listing.splitlines() if "radiation" in line
    ]
    shown_by_id = {
        letter_id: json.loads(dlq(system, "show", letter_id)) for letter_id in candidates
    }
    letter_id, shown = next(
        (letter_id, shown)
        for letter_id, shown in shown_by_id.items()
        if json.loads(shown["payload"])["id"] == alarm["id"]
    )
    assert shown["reason"] == "unknown_category"

    # the fix: a topology version that knows radiation sensors
    text = tiny_topology_path().read_text(encoding="utf-8")
    fixed = tmp_path / "tiny-radiation.yaml"
    fixed.write_text(
        text.replace("version: tiny-1", "version: tiny-radiation").replace(
            "sensor_types:\n",
            "sensor_types:\n  - {sensor_type: radiation, category_code: gas_leak, "
            "needs_verification: false, name: 辐射探测器, unit: uSv/h}\n",
        ),
        encoding="utf-8",
    )
    try:
        assert outcome_of(system, publish_file(system, fixed)).applied
        assert "replayed 1" in dlq(system, "replay", letter_id)
        cases = wait_for(lambda: cases_with_report(system, key), timeout_s=30)
        assert len(cases) == 1 and cases[0]["category_code"] == "gas_leak"

        assert "replayed 1" in dlq(system, "replay", letter_id)  # again: nothing new opens

        def duplicate_recorded() -> list[dict[str, object]]:
            again = cases_with_report(system, key)
            return again if again and again[0]["duplicate_count"] == 1 else []

        again = wait_for(duplicate_recorded, timeout_s=30)
        assert len(again) == 1 and again[0]["case_id"] == cases[0]["case_id"]
    finally:
        assert outcome_of(system, publish_file(system, tiny_topology_path())).applied
