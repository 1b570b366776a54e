"""`cityloop classifier`: train on a tiny file, evaluate the model, describe it."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from typer.testing import CliRunner

from cityloop.cli import app
from tests.handlers.test_classifier import tiny_corpus

runner = CliRunner()


def _write_examples(path: Path, extra: list[dict[str, str]] | None = None) -> Path:
    lines = [json.dumps(asdict(example), ensure_ascii=False) for example in tiny_corpus()]
    lines += [json.dumps(record, ensure_ascii=False) for record in extra or []]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_train_then_evaluate_then_info(tmp_path: Path) -> None:
    examples = _write_examples(
        tmp_path / "examples.jsonl",
        extra=[
            {"title": "欠薪", "text": "老板欠了三个月工资", "category": "labour_disputez"},
            {"title": "", "text": "", "category": "pothole"},
        ],
    )
    model = tmp_path / "models" / "model.clf"
    result = runner.invoke(
        app, ["classifier", "train", "--from", str(examples), "--no-corpus", "--out", str(model)]
    )
    assert result.exit_code == 0, result.output
    assert "unknown category 'labour_disputez'" in result.output
    assert "no title and no text" in result.output
    assert "training on 60 examples of 6 categories from 1 file(s)" in result.output
    assert "wrote clf-" in result.output
    assert "class_threshold:" in result.output
    assert model.stat().st_size > 0

    result = runner.invoke(
        app, ["classifier", "evaluate", "--from", str(examples), "--model", str(model), "--json"]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["model_version"].startswith("clf-")
    assert figures["examples"] == 61  # the unknown code is evaluated, and counted wrong
    assert figures["unknown_categories"] == {"labour_disputez": 1}
    assert figures["accuracy"] > 0.9
    assert set(figures["confusion"]) == {"environment", "labour", "urban", "?"}
    assert 0.0 <= figures["class_coverage"] <= 1.0

    result = runner.invoke(
        app, ["classifier", "evaluate", "--from", str(examples), "--model", str(model)]
    )
    assert result.exit_code == 0, result.output
    assert "confusion by class" in result.output
    assert "category threshold:" in result.output

    result = runner.invoke(app, ["classifier", "info", "--model", str(model)])
    assert result.exit_code == 0, result.output
    assert "6 in 3 classes" in result.output
    result = runner.invoke(app, ["classifier", "info", "--model", str(model), "--json"])
    header = json.loads(result.stdout)
    assert header["summary"]["examples"] == 60


def test_a_broken_model_is_refused_with_the_reason(tmp_path: Path) -> None:
    broken = tmp_path / "broken.clf"
    broken.write_bytes(b"not a model")
    result = runner.invoke(app, ["classifier", "info", "--model", str(broken)])
    assert result.exit_code == 1
    assert "not a zip" in result.output


def test_train_needs_something_to_train_on(tmp_path: Path) -> None:
    out = tmp_path / "model.clf"
    result = runner.invoke(app, ["classifier", "train", "--no-corpus", "--out", str(out)])
    assert result.exit_code == 1
    assert "nothing to train on" in result.output
    one_category = tmp_path / "one.jsonl"
    one_category.write_text(json.dumps({"title": "", "text": "路灯不亮", "category": "pothole"}))
    result = runner.invoke(
        app,
        ["classifier", "train", "--from", str(one_category), "--no-corpus", "--out", str(out)],
    )
    assert result.exit_code == 1
    assert "at least 2 are needed" in result.output
    assert not out.exists()
