"""The text classifier: trained on a tiny corpus, written to bytes, read back, and asked."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cityloop.classifier_train import (
    TrainingOptions,
    TrainingResult,
    choose_threshold,
    classifier_from_pipeline,
    evaluate,
    fit_temperature,
    train,
)
from cityloop.corpus import Example
from handlers.classifier import (
    MAX_TEXT_CHARS,
    ClassifierModelError,
    TextClassifier,
    default_model_path,
    model_input,
)

CLASSES = {
    "wage_arrears": "labour",
    "pension": "labour",
    "noise": "environment",
    "black_smelly_river": "environment",
    "pothole": "urban",
    "streetlight_out": "urban",
}
_PHRASES = {
    "wage_arrears": ["拖欠工资", "老板不发工资", "包工头跑路了", "讨薪", "欠了我们三个月工钱"],
    "pension": ["养老金", "退休手续", "养老金没有按时发放", "视同缴费年限", "退休工资算少了"],
    "noise": ["广场舞太吵", "噪音扰民", "酒吧音响声音很大", "楼上装修电钻声", "半夜唱歌吵得睡不着"],
    "black_smelly_river": [
        "河水发黑发臭",
        "臭水沟",
        "河道异味很重",
        "河里的水又黑又臭",
        "沟渠发臭",
    ],
    "pothole": ["路面坑洼", "路上有个大坑", "马路坑坑洼洼", "道路破损", "坑里积水车子颠簸"],
    "streetlight_out": ["路灯不亮", "路灯坏了", "晚上路灯全黑", "路灯一闪一闪", "灯杆上的灯不亮"],
}
_PLACES = ["锦江区春熙路", "武侯区玉林小区", "成华区建设路", "青羊区宽窄巷子旁", "高新区天府三街"]
_FILLERS = [
    "已经好几天了，希望尽快处理。",
    "反映过很多次都没有人管，请相关部门重视。",
    "谢谢领导！",
    "麻烦派人来看看。",
    "附近居民意见很大。",
]


def tiny_corpus(per_category: int = 10, seed: int = 7) -> list[Example]:
    """A small labelled corpus over six categories in three classes."""
    rng = random.Random(seed)
    examples = []
    for category, phrases in _PHRASES.items():
        for _ in range(per_category):
            phrase = rng.choice(phrases)
            text = f"我住在{rng.choice(_PLACES)}，{phrase}，{rng.choice(_FILLERS)}"
            examples.append(Example(title=phrase[:6], text=text, category=category))
    return examples


TINY_OPTIONS = TrainingOptions(ngram_ranges=((1, 2), (1, 3)), cs=(3.0, 30.0), folds=4, min_df=1)
QUESTIONS = [
    ("", "我们小区门口的路灯不亮了，晚上黑漆漆的"),
    ("欠薪", "工地老板拖欠工资半年了"),
    ("河道", "這條河的水又黑又臭，夏天味道很大"),  # traditional
    ("ＮＯＩＳＥ", "楼上 装修 噪音 太大"),  # full-width, spaces
    ("", "天气不错"),  # about nothing the model knows
    ("", ""),
]


@pytest.fixture(scope="module")
def trained() -> TrainingResult:
    return train(tiny_corpus(), CLASSES, TINY_OPTIONS)


@pytest.fixture(scope="module")
def loaded(trained: TrainingResult) -> TextClassifier:
    return TextClassifier.from_bytes(trained.model_bytes)


def _softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    scaled = logits / temperature
    exp = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    probabilities: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
    return probabilities


def test_a_trained_model_predicts_its_categories(loaded: TextClassifier) -> None:
    assert loaded.categories == tuple(sorted(CLASSES))
    assert loaded.classify("", QUESTIONS[0][1]).category == "streetlight_out"
    assert loaded.classify(*QUESTIONS[1]).category == "wage_arrears"
    assert loaded.classify(*QUESTIONS[2]).category == "black_smelly_river"
    assert loaded.classify(*QUESTIONS[3]).category == "noise"
    assert loaded.version.startswith("clf-")


def test_inference_computes_what_scikit_learn_computes(trained: TrainingResult) -> None:
    documents = [model_input(title, text)[0] for title, text in QUESTIONS]
    documents += [model_input(e.title, e.text)[0] for e in tiny_corpus(per_category=2, seed=99)]
    # Without temperature: scikit-learn's own probabilities.
    plain = TextClassifier.from_bytes(
        classifier_from_pipeline(trained.pipeline, CLASSES).to_bytes()
    )
    expected = trained.pipeline.predict_proba(documents)
    got = np.array([plain.probabilities_of_input(d) for d in documents])
    assert np.abs(got - expected).max() < 1e-4
    # The shipped model: the same scores at the fitted temperature.
    calibrated = TextClassifier.from_bytes(trained.model_bytes)
    expected = _softmax(trained.pipeline.decision_function(documents), calibrated.temperature)
    got = np.array([calibrated.probabilities_of_input(d) for d in documents])
    assert np.abs(got - expected).max() < 1e-4


def test_a_classification_carries_candidates_and_class_mass(loaded: TextClassifier) -> None:
    for title, text in QUESTIONS:
        result = loaded.classify(title, text)
        probabilities = loaded.probabilities(title, text)
        assert sum(probabilities.values()) == pytest.approx(1.0)
        assert [c.code for c in result.candidates] == sorted(
            probabilities, key=lambda code: -probabilities[code]
        )[:3]
        assert result.probability == result.candidates[0].probability
        assert result.class_code == CLASSES[result.category]
        mass = sum(p for code, p in probabilities.items() if CLASSES[code] == result.class_code)
        assert result.class_probability == pytest.approx(mass)
        assert result.class_probability >= result.probability
        assert result.model_version == loaded.version


def test_thresholds_decide_sure(loaded: TextClassifier) -> None:
    for title, text in QUESTIONS:
        result = loaded.classify(title, text)
        assert result.category_sure == (result.probability >= loaded.category_threshold)
        assert result.class_sure == (result.class_probability >= loaded.class_threshold)
    header = loaded.header()
    for threshold, sure in [(0.0, True), (1.0, False)]:
        strict = _with_header(loaded, category_threshold=threshold, class_threshold=threshold)
        result = strict.classify(*QUESTIONS[1])
        assert (result.category_sure, result.class_sure) == (sure, sure)
    assert header["category_threshold"] == loaded.category_threshold


def test_thresholds_reach_their_targets_out_of_fold(trained: TrainingResult) -> None:
    summary = trained.summary
    for name, target in [("class_threshold", 0.98), ("category_threshold", 0.95)]:
        choice = summary[name]
        assert choice["target"] == target
        assert choice["accuracy"] >= target or choice["coverage"] == 0
        assert getattr(trained.classifier, name) == pytest.approx(choice["threshold"], abs=1e-4)
    assert summary["examples"] == 60
    assert summary["categories"] == 6
    assert summary["classes"] == 3
    assert 0 < summary["temperature"]
    assert {(tuple(row["ngram_range"]), row["C"]) for row in summary["grid"]} == {
        ((1, 2), 3.0),
        ((1, 2), 30.0),
        ((1, 3), 3.0),
        ((1, 3), 30.0),
    }


@pytest.mark.parametrize(
    ("confidence", "correct", "target", "threshold", "coverage"),
    [
        ([0.9, 0.8, 0.7, 0.6], [1, 1, 1, 1], 0.95, 0.6, 1.0),
        ([0.9, 0.8, 0.7, 0.6], [1, 1, 0, 0], 0.95, 0.8, 0.5),
        ([0.9, 0.8, 0.7, 0.6], [1, 1, 0, 1], 0.75, 0.6, 1.0),  # smallest that reaches it
        ([0.9, 0.8, 0.8, 0.6], [1, 1, 0, 0], 0.95, 0.9, 0.25),  # a tie is taken whole
        ([0.9, 0.8], [0, 0], 0.5, 1.0, 0.0),  # nothing reaches it
    ],
)
def test_choose_threshold(
    confidence: list[float], correct: list[int], target: float, threshold: float, coverage: float
) -> None:
    choice = choose_threshold(np.array(confidence), np.array(correct, dtype=bool), target)
    assert choice.threshold == threshold
    assert choice.coverage == coverage


def test_fit_temperature_recovers_a_known_temperature() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(scale=4.0, size=(4000, 8))
    probabilities = _softmax(logits, 2.5)
    truth = np.array([rng.choice(8, p=row) for row in probabilities])
    assert fit_temperature(logits, truth) == pytest.approx(2.5, rel=0.1)


def test_a_long_text_is_cut_not_refused(loaded: TextClassifier) -> None:
    head = "路灯不亮，晚上很黑。" * 150  # 1,500 characters
    text = head + "楼上装修噪音太大了。" * 1850  # 20,000 characters
    assert len(text) == 20_000
    started = time.perf_counter()
    result = loaded.classify("", text)
    elapsed = time.perf_counter() - started
    assert result.truncated
    assert result.category == "streetlight_out"
    assert loaded.probabilities("", text) == loaded.probabilities("", head[:MAX_TEXT_CHARS])
    assert elapsed < 0.5
    assert not loaded.classify("", head[:100]).truncated


def test_the_model_file_round_trips(loaded: TextClassifier, trained: TrainingResult) -> None:
    assert loaded.to_bytes() == trained.model_bytes
    assert loaded.header()["summary"] == json.loads(json.dumps(trained.summary))


def _rebuilt_zip(model: bytes, replace: dict[str, bytes | None]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(model)) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            if name in replace:
                if replace[name] is not None:
                    target.writestr(name, replace[name])  # type: ignore[arg-type]
            else:
                target.writestr(name, source.read(name))
    return out.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _with_header(model: TextClassifier, **changes: object) -> TextClassifier:
    header = {**model.header(), **changes}
    data = _rebuilt_zip(model.to_bytes(), {"header.json": json.dumps(header).encode()})
    return TextClassifier.from_bytes(data)


def test_from_bytes_refuses_a_corrupt_file(trained: TrainingResult) -> None:
    model = trained.model_bytes
    header = json.loads(zipfile.ZipFile(io.BytesIO(model)).read("header.json"))
    cases: list[tuple[bytes, str]] = [
        (b"", "not a zip"),
        (b"\x80\x04\x95 pickled", "not a zip"),
        (model[: len(model) // 2], "not a zip"),
        (_rebuilt_zip(model, {"coef.npy": None}), "no coef.npy"),
        (_rebuilt_zip(model, {"header.json": b"{not json"}), "unreadable"),
        (_rebuilt_zip(model, {"header.json": b'{"format": "other"}'}), "not a cityloop"),
        (
            _rebuilt_zip(
                model, {"header.json": json.dumps({**header, "format_version": 99}).encode()}
            ),
            "format version 99",
        ),
        (
            _rebuilt_zip(
                model, {"header.json": json.dumps({**header, "temperature": -1}).encode()}
            ),
            "temperature",
        ),
        (_rebuilt_zip(model, {"idf.npy": _npy(np.array([{"x": 1}], dtype=object))}), "unreadable"),
        (_rebuilt_zip(model, {"idf.npy": _npy(np.ones(3, dtype=np.float32))}), "idf has shape"),
        (_rebuilt_zip(model, {"coef.npy": _npy(np.ones((2, 2), dtype=np.int64))}), "not int16"),
        (_rebuilt_zip(model, {"coef_scale.npy": _npy(np.ones(2, dtype=np.float32))}), "coef_scale"),
        (_rebuilt_zip(model, {"intercept.npy": _npy(np.ones(6, dtype=np.int32))}), "not floats"),
        (_rebuilt_zip(model, {"vocabulary.json": b'{"a": 1}'}), "vocabulary"),
    ]
    for data, message in cases:
        with pytest.raises(ClassifierModelError, match=message):
            TextClassifier.from_bytes(data)


def test_load_names_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.clf"
    broken.write_bytes(b"garbage")
    with pytest.raises(ClassifierModelError, match="broken.clf"):
        TextClassifier.load(broken)
    with pytest.raises(ClassifierModelError, match="cannot read"):
        TextClassifier.load(tmp_path / "missing.clf")


def test_evaluate_counts_the_thresholds(loaded: TextClassifier) -> None:
    examples = tiny_corpus(per_category=3, seed=11) + [Example("", "路灯不亮", "unknown_code")]
    evaluation = evaluate(loaded, examples)
    assert evaluation.examples == 19
    assert evaluation.unknown_categories == {"unknown_code": 1}
    assert evaluation.accuracy >= 0.8
    assert sum(sum(row.values()) for row in evaluation.confusion.values()) == 19
    assert evaluation.confusion["?"] == {"urban": 1}


def test_inference_does_not_import_scikit_learn(tmp_path: Path, trained: TrainingResult) -> None:
    model = tmp_path / "model.clf"
    model.write_bytes(trained.model_bytes)
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from handlers.classifier import TextClassifier\n"
        f"TextClassifier.load(Path({str(model)!r})).classify('路灯', '路灯不亮')\n"
        "print('sklearn' in sys.modules, 'scipy' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stdout.split() == ["False", "False"], result.stderr


def test_the_shipped_model_knows_the_shipped_topology() -> None:
    from topology import load_topology

    started = time.perf_counter()
    model = TextClassifier.load(default_model_path())
    assert time.perf_counter() - started < 2.0
    assert default_model_path().stat().st_size < 4 * 1024 * 1024
    topology = load_topology(None)
    for code in model.categories:
        assert code in topology.categories, code
        assert model.class_of(code) == topology.class_of(code), code
    assert 0.0 < model.class_threshold <= 1.0
    assert 0.0 < model.category_threshold <= 1.0
