"""A record the producer gave up on: the worker starts over, unless no resend could help."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import RecordTooLargeError, UnknownError

import streams.worker as worker


def failed(error: Exception) -> asyncio.Future[None]:
    delivery: asyncio.Future[None] = (
        asyncio.get_event_loop_policy().new_event_loop().create_future()
    )
    delivery.set_exception(error)
    return delivery


@pytest.fixture
def restarts(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    calls: list[bool] = []
    monkeypatch.setattr(
        worker, "start_over", lambda *, after_topic_loss: calls.append(after_topic_loss)
    )
    return calls


def test_an_undelivered_record_starts_the_worker_over_keeping_its_offsets(
    restarts: list[bool],
) -> None:
    worker.report_undelivered("cityloop.incidents", failed(UnknownError()))
    assert restarts == [False]


def test_a_record_the_broker_refuses_for_good_does_not(restarts: list[bool]) -> None:
    worker.report_undelivered("cityloop.dead-letters", failed(RecordTooLargeError()))
    assert restarts == []


def test_a_delivered_record_does_not(restarts: list[bool]) -> None:
    delivery: asyncio.Future[None] = (
        asyncio.get_event_loop_policy().new_event_loop().create_future()
    )
    delivery.set_result(None)
    worker.report_undelivered("cityloop.incidents", delivery)
    assert restarts == []
