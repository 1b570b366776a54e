"""`cityloop projection rebuild`: the read model rebuilt from the case-event topic, into SQLite
and into PostgreSQL, equals the one the live projector built — and a second rebuild changes
nothing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from api.db import CaseDepartmentRow, CaseEventRow, CaseRow, ReportRow, create_engine
from tests.conftest import RunningSystem, bearer
from tests.streams.test_lifecycle_stream import new_case

pytestmark = pytest.mark.broker

Snapshot = dict[str, Any]


async def _snapshot(database_url: str) -> Snapshot:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            cases = {
                row.case_id: (row.version, row.status, row.report_count, row.lead_department)
                for row in await connection.execute(select(CaseRow))
            }
            events = {
                (row.case_id, row.version, row.type)
                for row in await connection.execute(select(CaseEventRow))
            }
            reports = {
                (row.idempotency_key, row.case_id)
                for row in await connection.execute(select(ReportRow))
            }
            departments = {
                (row.case_id, row.department_id)
                for row in await connection.execute(select(CaseDepartmentRow))
            }
        return {"cases": cases, "events": events, "reports": reports, "departments": departments}
    finally:
        await engine.dispose()


def snapshot(database_url: str) -> Snapshot:
    return asyncio.run(_snapshot(database_url))


def rebuild(system: RunningSystem, database_url: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cityloop", "projection", "rebuild"],
        env={**system.env, "CITYLOOP_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_a_rebuild_equals_the_live_read_model(
    system: RunningSystem, tmp_path: Path, postgres_url: str
) -> None:
    case = new_case(
        system, 30.6331, title="井盖缺失", text="人行道井盖缺失", category_code="pothole"
    )
    department = bearer("department", case["lead_department"])
    accepted = httpx.post(
        f"{system.api_url}/v1/cases/{case['case_id']}/actions",
        json={"type": "accept"},
        headers=department,
        timeout=10,
    )
    assert accepted.status_code == 202
    outcome = httpx.get(
        system.api_url + accepted.json()["status_url"],
        params={"wait": 10},
        headers=department,
        timeout=15,
    ).json()
    assert outcome["state"] == "applied", outcome

    rebuilt_url = f"sqlite+aiosqlite:///{tmp_path}/rebuilt.db"
    printed = rebuild(system, rebuilt_url)
    rebuilt = snapshot(rebuilt_url)
    assert rebuilt["cases"][case["case_id"]][1] == "accepted", printed

    deadline = time.monotonic() + 30  # the live projector may still be a batch behind
    while (live := snapshot(system.database_url)) != rebuilt:
        assert time.monotonic() < deadline, {
            key: (len(live[key]), len(rebuilt[key])) for key in live
        }
        time.sleep(0.5)

    assert "case events" in rebuild(system, rebuilt_url)
    assert snapshot(rebuilt_url) == rebuilt  # a second rebuild over the first: the same

    rebuild(system, postgres_url)
    assert snapshot(postgres_url) == rebuilt
