"""A classifier put into service with `cityloop classifier publish` is the one running workers
triage with from then on, and the command-outcomes topic says so; a file that is no model is
refused before anything is published."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cityloop.classifier_train import TrainingOptions, train
from cityloop.contracts import Source
from cityloop.corpus import Example
from tests.conftest import RunningSystem, start_system, stop_system
from tests.reliability.test_worker_crash import case_history
from tests.streams.test_lifecycle_stream import outcome_of
from tests.streams.test_pipeline import cloudevent, publish, wait_for

pytestmark = pytest.mark.broker

WORDS = {
    "pothole": ["路上有个大坑", "路面坑坑洼洼", "人行道塌了个坑", "马路坑洼不平"],
    "noise": ["楼上装修噪音太大", "广场舞音响太吵", "半夜有人唱歌扰民", "酒吧音乐吵得睡不着"],
    "garbage_exposed": ["垃圾堆在路边", "垃圾没人清理", "小区门口垃圾成堆", "路边垃圾发臭"],
}


def small_model(tmp_path: Path) -> Path:
    examples = [
        Example(title=phrase[:4], text=f"{place}{phrase}，请处理", category=category)
        for category, phrases in WORDS.items()
        for phrase in phrases
        for place in ("我家门口", "小区旁边", "学校附近", "菜市场外面", "公交站边上")
    ]
    classes = {code: code for code in WORDS}  # a flat catalogue: each category its own class
    options = TrainingOptions(ngram_ranges=((1, 2),), cs=(30.0,), folds=3, min_df=1)
    model = tmp_path / "small.clf"
    model.write_bytes(train(examples, classes, options).model_bytes)
    return model


def cityloop(system: RunningSystem, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cityloop", *args],
        env=system.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def system(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningSystem]:
    """A system of its own: the classifier it is given must not triage other tests' orders,
    nor theirs reach it."""
    running = start_system(kafka_bootstrap, tmp_path_factory.mktemp("classifier"))
    try:
        yield running
    finally:
        stop_system(running)


def test_a_published_classifier_triages_what_comes_next(
    system: RunningSystem, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.clf"
    junk.write_bytes(b"not a model")
    refused = cityloop(system, "classifier", "publish", str(junk))
    assert refused.returncode == 1 and "not published" in refused.stderr

    model = small_model(tmp_path)
    published = cityloop(system, "classifier", "publish", str(model))
    assert published.returncode == 0, published.stderr
    version = published.stdout.split()[1]
    digest = hashlib.sha256(model.read_bytes()).hexdigest()[:16]
    outcome = outcome_of(system, f"classifier:{digest}", timeout_s=60)
    assert outcome.applied and version in outcome.reason

    order = cloudevent(
        Source.HOTLINE,
        category_code=None,
        title="路面",
        text="我家门口路上有个大坑，请处理",
        area_code="510104002001",
    )
    publish(system, "hotline", json.dumps(order, ensure_ascii=False).encode())
    key = f"{order['source']}|{order['id']}"

    def dispatched() -> list[Any] | None:
        mine = [e for e in case_history(system) if e.caused_by == key]
        return mine if any(e.type == "CaseDispatched" for e in mine) else None

    events = wait_for(dispatched, 60)
    assert events, system.log("worker")[-3000:]
    opened = next(e for e in events if e.type == "CaseOpened")
    assert opened.category_code == "pothole"
    dispatch = next(e for e in events if e.type == "CaseDispatched")
    assert dispatch.reason == "auto_classified"
