"""Operations: liveness, readiness (broker and database reachable), Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response, status
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from api.deps import ReaderDep, SessionDep
from api.schemas import Liveness, Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz(request: Request) -> Liveness:
    """The process is alive (says nothing of the broker or the database)."""
    projector = request.app.state.projector
    return Liveness(
        status="ok",
        projected_events=projector.applied,
        projector_error=projector.last_error,
        topology_version=request.app.state.topology.version,
    )


@router.get(
    "/readyz",
    responses={503: {"model": Readiness, "description": "broker or database unreachable"}},
)
async def readyz(request: Request, response: Response, session: SessionDep) -> Readiness:
    """Ready to take events and answer queries: the broker and the database both answer."""
    readiness = Readiness(broker="ok", database="ok")
    try:
        await asyncio.wait_for(request.app.state.producer.client.fetch_all_metadata(), 3)
    except Exception as exc:  # any failure means not ready; say which
        readiness.broker = f"unreachable: {type(exc).__name__}"
    try:
        await asyncio.wait_for(session.execute(text("select 1")), 3)
    except Exception as exc:
        readiness.database = f"unreachable: {type(exc).__name__}"
    if (readiness.broker, readiness.database) != ("ok", "ok"):
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return readiness


PROMETHEUS_TEXT = {
    "description": "the Prometheus text exposition format",
    "content": {
        "text/plain": {
            "schema": {"type": "string"},
            "example": 'cityloop_events_in_total{source="hotline"} 42.0\n',
        }
    },
}


@router.get("/metrics", response_class=Response, responses={200: PROMETHEUS_TEXT})
async def metrics(request: Request, read: ReaderDep) -> Response:
    """Prometheus exposition: events in by source, dead letters by reason, cases by state and
    loop, escalations, projection lag."""
    body = await request.app.state.metrics.scrape(read, request.app.state.projector.applied)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
