"""The worker runs on uvloop where it is installed (it is a dependency on every platform but
Windows), and its Faust app's loop is then uvloop's."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvloop

from cityloop.settings import Settings
from handlers.classifier import TextClassifier, default_model_path
from streams.event_loop import use_the_fastest_loop
from streams.worker import build_worker
from topology import load_topology, tiny_topology_path


@pytest.fixture
def policy_restored() -> Iterator[None]:
    before = asyncio.get_event_loop_policy()
    yield
    asyncio.set_event_loop_policy(before)


def test_the_worker_app_runs_on_uvloop(tmp_path: Path, policy_restored: None) -> None:
    assert use_the_fastest_loop()
    settings = Settings(
        kafka_bootstrap_servers="127.0.0.1:9",  # never dialled: the app is built, not started
        topic_prefix="loop",
        data_dir=tmp_path,
        topology_file=tiny_topology_path(),
    )
    worker = build_worker(
        settings,
        topology=load_topology(tiny_topology_path()),
        classifier=TextClassifier.load(default_model_path()),
    )
    loop = worker.app.loop
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
