"""The read model on SQLite and on PostgreSQL: projection applies each case version once, and the
case routes page, filter and mask over it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.db import (
    Base,
    CaseEventRow,
    CaseRow,
    ReportRow,
    migrate,
    session_factory,
)
from api.main import create_app
from api.projection import project, project_or_skip
from api.reading import reader_for
from cityloop.clock import Clock, wall_clock
from cityloop.contracts import CASE_COMMAND_ADAPTER, CallerContact, Incident, Source
from cityloop.settings import Settings
from handlers.case import fold
from handlers.correlate import SeenReport, correlate
from handlers.lifecycle import absorb_reports, decide_command
from tests.conftest import TEST_SECRET, bearer
from topology import load_topology, tiny_topology_path

NOW = datetime(2026, 11, 22, 0, 30, tzinfo=UTC)
TINY = load_topology(tiny_topology_path())


def incident(number: int, category: str = "garbage_exposed") -> Incident:
    key = f"/test/hotline|WO-{number}"
    return Incident(
        incident_id=f"i{number}",
        idempotency_key=key,
        source=Source.HOTLINE,
        event_id=f"WO-{number}",
        event_source="/test/hotline",
        category_code=category,
        title=f"report {number}",
        area_codes=["510104001001"],
        occurred_at=NOW + timedelta(minutes=number),
        received_at=NOW + timedelta(minutes=number),
        caller=CallerContact(name="张三丰", phone="13912345678"),
    )


async def test_migrations_build_the_schema_the_models_describe(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        differences = await connection.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    assert differences == []
    await migrate(engine)  # a second run finds nothing to do


async def test_projection_applies_each_version_once(engine: AsyncEngine) -> None:
    opened = correlate(incident(1), None, None, [], None, TINY, {}, NOW)
    state = fold(list(opened.events))
    duplicate = correlate(
        incident(1), SeenReport(opened.case_id, None), state, [], None, TINY, {}, NOW
    )
    sessions = session_factory(engine)
    async with sessions() as session:
        assert await project(session, opened.events) == 2
    async with sessions() as session:  # a redelivery of the same batch, plus the next event
        assert await project(session, [*opened.events, *duplicate.events]) == 1
    async with sessions() as session:
        row = await session.get(CaseRow, opened.case_id)
        assert row is not None
        assert (row.version, row.status, row.duplicate_count, row.report_count) == (
            3,
            "dispatched",
            1,
            1,
        )
        assert row.lead_department == "510104001001.urban_management"
        assert row.opened_at == NOW  # read back timezone-aware, in UTC
        events = await session.scalar(select(func.count()).select_from(CaseEventRow))
        reports = await session.scalar(select(func.count()).select_from(ReportRow))
        assert (events, reports) == (3, 1)
        if engine.dialect.name == "postgresql":
            assert await session.scalar(text("select 1")) == 1


def wired_app(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], clock: Clock = wall_clock
) -> FastAPI:
    """The app with what its lifespan would give it, on this test's database (no broker)."""
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(Settings(database_url=url, jwt_secret=TEST_SECRET), clock)
    app.state.sessions = sessions
    app.state.reader = reader_for(url)
    app.state.topology = TINY
    return app


async def test_case_routes_page_filter_and_mask(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    case_ids = []
    async with sessions() as session:
        for number, category in [(1, "garbage_exposed"), (2, "noise"), (3, "garbage_exposed")]:
            decision = correlate(incident(number, category), None, None, [], None, TINY, {}, NOW)
            await project(session, decision.events)
            case_ids.append(decision.case_id)
    moment = [NOW]
    app = wired_app(engine, sessions, clock=lambda: moment[0])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=bearer()
    ) as client:
        first = (await client.get("/v1/cases", params={"limit": 2})).json()
        assert len(first["items"]) == 2 and first["next_cursor"]
        second = (
            await client.get("/v1/cases", params={"limit": 2, "cursor": first["next_cursor"]})
        ).json()
        assert second["next_cursor"] is None
        seen = [item["case_id"] for item in first["items"] + second["items"]]
        assert sorted(seen) == sorted(case_ids) and len(set(seen)) == 3

        garbage = (await client.get("/v1/cases", params={"category": "garbage_exposed"})).json()
        assert len(garbage["items"]) == 2
        in_area = (await client.get("/v1/cases", params={"area": "510104"})).json()
        assert len(in_area["items"]) == 3
        elsewhere = (await client.get("/v1/cases", params={"area": "510105"})).json()
        assert elsewhere["items"] == []

        async def count(**params: str | bool) -> int:
            return len((await client.get("/v1/cases", params=params)).json()["items"])

        assert await count(source="hotline") == 3 and await count(source="iot") == 0
        assert await count(area="510104001") == 3  # a street: the district's column and prefix
        assert await count(area="510104002") == 0
        assert await count(area="5101") == 3  # shorter than a district: the prefix alone
        assert await count(area="51010_") == 0  # a code, not a pattern
        assert await count(opened_since=NOW.isoformat()) == 3
        assert await count(opened_until=NOW.isoformat()) == 0
        later = (NOW + timedelta(days=30)).isoformat()
        assert await count(overdue=True, as_of=NOW.isoformat()) == 0
        assert await count(overdue=False, as_of=NOW.isoformat()) == 3
        assert await count(overdue=True, as_of=later) == 3  # nobody accepted them
        assert await count(overdue=True) == 0  # as of now, by the app's clock
        moment[0] = NOW + timedelta(days=2)  # past the deadlines, before the token expires
        assert await count(overdue=True) == 3
        moment[0] = NOW
        naive = await client.get("/v1/cases", params={"opened_since": "2026-11-22T00:00:00"})
        assert naive.status_code == 422

        detail = (await client.get(f"/v1/cases/{case_ids[0]}")).json()
        assert [entry["type"] for entry in detail["timeline"]] == ["CaseOpened", "CaseDispatched"]
        assert detail["reports"][0]["caller"] == {"name": "张三丰", "phone": "13912345678"}
        assert detail["assignment"]["loop"] == "micro"

        missing = await client.get("/v1/cases/CL-00000000-000000000000")
        assert missing.status_code == 404
        bad_cursor = await client.get("/v1/cases", params={"cursor": "!!"})
        assert bad_cursor.status_code == 400

        # access: a department sees the cases it handles, masked; others see nothing of them
        lead = detail["assignment"]["lead_department"]
        own = (await client.get("/v1/cases", headers=bearer("department", lead))).json()
        assert {item["case_id"] for item in own["items"]} >= {case_ids[0]}
        as_department = await client.get(
            f"/v1/cases/{case_ids[0]}", headers=bearer("department", lead)
        )
        assert as_department.json()["reports"][0]["caller"] == {
            "name": "张**",
            "phone": "139****5678",
        }
        stranger = bearer("department", "510105001.urban_management")
        assert (await client.get("/v1/cases", headers=stranger)).json()["items"] == []
        hidden = await client.get(f"/v1/cases/{case_ids[0]}", headers=stranger)
        assert hidden.status_code == 404  # the same answer as for a case that does not exist
        wildcard = bearer("duty_officer", "51010_")  # a scope is a code, not a pattern
        assert (await client.get("/v1/cases", headers=wildcard)).json()["items"] == []
        assert (await client.get(f"/v1/cases/{case_ids[0]}", headers=wildcard)).status_code == 404
        other_district = bearer("duty_officer", "510105")
        assert (await client.get("/v1/cases", headers=other_district)).json()["items"] == []
        own_district = (
            await client.get("/v1/cases", headers=bearer("duty_officer", "510104"))
        ).json()
        assert len(own_district["items"]) == 3
        auditor = await client.get(f"/v1/cases/{case_ids[0]}", headers=bearer("auditor", ""))
        assert auditor.json()["reports"][0]["caller"]["phone"] == "139****5678"
        publisher = await client.get("/v1/cases", headers=bearer("publisher", "hotline"))
        assert publisher.status_code == 403
        assert (
            await client.get("/v1/cases", headers={"Authorization": "Bearer nope"})
        ).status_code == 401


async def test_stats_add_up_the_cases_each_caller_may_see(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    first = correlate(incident(1), None, None, [], None, TINY, {}, NOW)
    second = correlate(incident(2, "noise"), None, None, [], None, TINY, {}, NOW)
    assert first.state is not None and second.state is not None
    lead = first.state.assignment.lead_department if first.state.assignment else ""
    accepted = decide_command(
        CASE_COMMAND_ADAPTER.validate_python(
            {
                "type": "accept",
                "command_id": "c1",
                "case_id": first.case_id,
                "actor": f"dept:{lead}",
                "issued_at": NOW.isoformat(),
            }
        ),
        first.state,
        TINY,
        {},
        NOW + timedelta(minutes=5),
    )
    async with sessions() as session:
        await project(session, [*first.events, *second.events, *accepted.events])
    app = wired_app(engine, sessions)
    period = {
        "since": (NOW - timedelta(days=1)).isoformat(),
        "until": (NOW + timedelta(days=1)).isoformat(),
    }
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        city = (await client.get("/v1/stats", params=period, headers=bearer())).json()
        rows = {row["group"]: row for row in city["rows"]}
        assert rows[lead]["received"] == 1 and rows[lead]["accepted"] == 1
        assert rows[lead]["accepted_on_time"] == 1.0 and rows[lead]["median_minutes_to_accept"] == 5
        assert sum(row["received"] for row in city["rows"]) == 2

        by_loop = (
            await client.get("/v1/stats", params={**period, "by": "loop"}, headers=bearer())
        ).json()
        assert sum(row["received"] for row in by_loop["rows"]) == 2

        own = (
            await client.get("/v1/stats", params=period, headers=bearer("department", lead))
        ).json()
        assert [row["group"] for row in own["rows"]] == [lead]  # nothing of other departments

        backwards = {"since": (NOW + timedelta(days=1)).isoformat(), "until": NOW.isoformat()}
        assert (
            await client.get("/v1/stats", params=backwards, headers=bearer())
        ).status_code == 422
        publisher = await client.get("/v1/stats", headers=bearer("publisher", "hotline"))
        assert publisher.status_code == 403


async def test_a_merge_moves_the_reports_to_the_surviving_case(engine: AsyncEngine) -> None:
    survivor = correlate(incident(1), None, None, [], None, TINY, {}, NOW)
    merged = correlate(incident(2), None, None, [], None, TINY, {}, NOW)
    assert survivor.state is not None and merged.state is not None
    merge = decide_command(
        CASE_COMMAND_ADAPTER.validate_python(
            {
                "type": "merge",
                "command_id": "m1",
                "case_id": merged.case_id,
                "actor": "centre:510100",
                "issued_at": NOW.isoformat(),
                "into_case_id": survivor.case_id,
                "reason": "the same pit",
            }
        ),
        merged.state,
        TINY,
        {},
        NOW + timedelta(minutes=5),
    )
    assert merge.absorb is not None, merge.outcome
    absorbed = absorb_reports(merge.absorb, survivor.state, NOW + timedelta(minutes=5))
    sessions = session_factory(engine)
    async with sessions() as session:
        await project(session, [*survivor.events, *merged.events])
    async with sessions() as session:  # the merge arrives in a later batch, as it would
        assert await project(session, [*merge.events, *absorbed.events]) == 2
    async with sessions() as session:
        on_case = {
            (row.idempotency_key, row.case_id)
            for row in (await session.execute(select(ReportRow))).scalars()
        }
        assert on_case == {
            ("/test/hotline|WO-1", survivor.case_id),
            ("/test/hotline|WO-2", merged.case_id),  # the merged case keeps its history
            ("/test/hotline|WO-2", survivor.case_id),
        }
        row = await session.get(CaseRow, survivor.case_id)
        assert row is not None and row.report_count == 2


async def test_an_event_the_database_refuses_is_skipped_not_fatal(engine: AsyncEngine) -> None:
    good = correlate(incident(1), None, None, [], None, TINY, {}, NOW)
    other = correlate(incident(2), None, None, [], None, TINY, {}, NOW)
    # a case id longer than its column: PostgreSQL refuses it (SQLite does not check lengths)
    refused = [event.model_copy(update={"case_id": "X" * 60}) for event in other.events]
    sessions = session_factory(engine)
    applied, skipped = await project_or_skip(sessions, [*refused, *good.events])
    strict = engine.dialect.name == "postgresql"
    assert (applied, skipped) == ((len(good.events), 1) if strict else (4, 0))
    async with sessions() as session:
        assert (await session.get(CaseRow, good.case_id)) is not None  # the good case is there
