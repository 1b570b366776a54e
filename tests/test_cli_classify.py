"""`cityloop classify --json` decides as the worker does, line by line, with the shipped model."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from typer.testing import CliRunner

from cityloop.cli import app
from cityloop.contracts import EVENT_TYPES, UNCLASSIFIED, Source, TriageDecision
from handlers.classifier import TextClassifier, default_model_path
from handlers.intake import Accepted, take_in
from handlers.triage import ClassifierGuesser
from topology import load_topology

ORDERS = [
    {"title": "讨薪", "text": "我们在工地干了半年，包工头拖欠三个月工资不发，电话也不接"},
    {
        "title": "河道",
        "text": "家门口那条河水又黑又臭，夏天味道熏得窗户都不敢开",
        "address": "锦江区",
    },
    {"title": "咨询", "text": "你好"},
    {"title": "孩子上学", "text": "孩子户口在这边，划片的小学说没有学位，怎么办？"},
]


def test_classify_writes_one_line_per_order_as_the_worker_decides() -> None:
    lines = "\n".join(json.dumps(order, ensure_ascii=False) for order in ORDERS)
    result = CliRunner().invoke(app, ["classify", "--json"], input=lines + "\n")
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert len(answers) == len(ORDERS)

    topology = load_topology()
    guesser = ClassifierGuesser(TextClassifier.load(default_model_path()))
    for order, answer in zip(ORDERS, answers, strict=True):
        assert set(answer) >= {"category", "confidence", "decision", "candidates", "area"}
        assert len(answer["candidates"]) == 3
        assert 0 <= answer["confidence"] <= 1
        # the worker, given the same order with no category (placed by an area code)
        event = {
            "specversion": "1.0",
            "id": "WO-x",
            "source": "/test",
            "type": EVENT_TYPES[Source.HOTLINE],
            "data": {
                "order_id": "WO-x",
                "received_at": "2026-11-22T08:00:00+08:00",
                "title": order["title"],
                "text": order["text"],
                "area_code": "510104001001",
            },
        }
        taken = take_in(
            json.dumps(event, ensure_ascii=False).encode(),
            topology,
            datetime(2026, 11, 22, tzinfo=UTC),
            Source.HOTLINE,
            guesser=guesser,
        )
        assert isinstance(taken, Accepted) and taken.incident.triage is not None
        worker = taken.incident.triage.decision
        assert answer["decision"] == ("desk" if worker is TriageDecision.DESK else "auto")
        expected = None if worker is TriageDecision.DESK else taken.incident.category_code
        assert answer["category"] == expected
        if answer["category"] is None:
            assert taken.incident.category_code == UNCLASSIFIED

    # plain cases the shipped model must get; a greeting is no category at all
    assert answers[0]["category"] == "wage_arrears"
    assert answers[1]["category"] in ("black_smelly_river", "water_pollution")
    assert answers[1]["area"] == "510104"
    assert answers[2]["decision"] == "desk" and answers[2]["category"] is None
    assert answers[3]["category"] == "school_enrollment"


def test_classify_refuses_a_line_that_is_not_json() -> None:
    result = CliRunner().invoke(app, ["classify", "--json"], input="not json\n")
    assert result.exit_code == 2
