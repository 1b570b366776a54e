"""Training and evaluating the hotline text classifier (scikit-learn lives here, not in handlers/).

Labelled examples (title, text, category) become a character n-gram TF-IDF and a logistic
regression; the n-gram range and C are chosen by cross-validation on the examples given, and
the out-of-fold predictions of the chosen setting fit a temperature (calibration) and the two
thresholds the model carries: the smallest top-class probability at which the class is right
at least `class_target` of the time, and the same for the category at `category_target`.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from cityloop.corpus import Example
from cityloop.errors import CityloopError
from handlers.classifier import TextClassifier, model_input, stored_weights

FloatMatrix = npt.NDArray[np.float64]


class TrainingError(CityloopError):
    """Examples a model cannot be trained from."""


@dataclass(frozen=True, slots=True)
class TrainingOptions:
    """The search space and the targets; the defaults are what the shipped model uses."""

    ngram_ranges: tuple[tuple[int, int], ...] = ((1, 3), (2, 4))
    cs: tuple[float, ...] = (10.0, 30.0, 100.0, 300.0)
    folds: int = 5
    min_df: int = 2
    max_features: int = 60_000
    # int16 weights of (features x categories) must fit the model file's budget (~4 MB
    # with the vocabulary): the number of features falls as categories are added.
    coef_budget_bytes: int = 3_000_000
    class_target: float = 0.98
    category_target: float = 0.95
    max_iter: int = 2_000
    seed: int = 0


@dataclass(frozen=True, slots=True)
class ThresholdChoice:
    """A threshold and what it did out-of-fold: the share of orders at or above it and how
    often those were right."""

    target: float
    threshold: float
    coverage: float
    accuracy: float


@dataclass(frozen=True)
class TrainingResult:
    """The fitted pipeline, the model built from it and its file."""

    pipeline: Pipeline
    classifier: TextClassifier
    model_bytes: bytes
    summary: dict[str, Any] = field(default_factory=dict)


# -- reading examples -------------------------------------------------------------------------


# -- training ---------------------------------------------------------------------------------


def _pipeline(
    ngram_range: tuple[int, int], c: float, min_df: int, max_features: int, max_iter: int
) -> Pipeline:
    return Pipeline(
        [
            (
                "tfidf",
                TfidfVectorizer(
                    analyzer="char",
                    ngram_range=ngram_range,
                    lowercase=False,  # model_input has normalised the text already
                    sublinear_tf=True,
                    min_df=min_df,
                    max_features=max_features,
                    norm="l2",
                    dtype=np.float32,
                ),
            ),
            ("logreg", LogisticRegression(C=c, max_iter=max_iter)),
        ]
    )


def _fold_of(labels: Sequence[str], folds: int, seed: int) -> npt.NDArray[np.intp]:
    """Stratified fold numbers: each category's examples dealt round the folds in a shuffled
    order (a category with fewer examples than folds is simply absent from some folds)."""
    rng = np.random.default_rng(seed)
    label_array = np.asarray(labels)
    fold = np.empty(len(labels), dtype=np.intp)
    dealt = 0
    for code in sorted(set(labels)):
        members = np.flatnonzero(label_array == code)
        rng.shuffle(members)
        fold[members] = (np.arange(len(members)) + dealt) % folds
        dealt += len(members)
    return fold


def _full_logits(
    model: LogisticRegression, features: Any, categories: Sequence[str]
) -> FloatMatrix:
    """Decision scores over all categories; a category the fold's model never saw gets -inf."""
    raw = np.asarray(model.decision_function(features), dtype=np.float64)
    known = [str(code) for code in model.classes_]
    if raw.ndim == 1:  # two categories: scikit-learn scores only the second
        raw = np.column_stack([np.zeros_like(raw), raw])
    logits = np.full((raw.shape[0], len(categories)), -np.inf)
    position = {code: i for i, code in enumerate(categories)}
    logits[:, [position[code] for code in known]] = raw
    return logits


def _softmax(logits: FloatMatrix, temperature: float = 1.0) -> FloatMatrix:
    scaled = logits / temperature
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    result: FloatMatrix = exp / exp.sum(axis=1, keepdims=True)
    return result


def _log_loss(probabilities: FloatMatrix, truth: npt.NDArray[np.intp]) -> float:
    picked = probabilities[np.arange(len(truth)), truth]
    return float(-np.log(np.clip(picked, 1e-12, 1.0)).mean())


def _expected_calibration_error(
    confidence: FloatMatrix | npt.NDArray[np.float64],
    correct: npt.NDArray[np.bool_],
    bins: int = 10,
) -> float:
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)


def fit_temperature(logits: FloatMatrix, truth: npt.NDArray[np.intp]) -> float:
    """The temperature that minimises the out-of-fold negative log-likelihood.

    The loss is convex in 1/T (a log-sum-exp of lines), so a golden-section search over
    1/T in [1/20, 20] finds its minimum.
    """

    def loss(inverse: float) -> float:
        return _log_loss(_softmax(logits, 1.0 / inverse), truth)

    low, high = 0.05, 20.0
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    left, right = high - ratio * (high - low), low + ratio * (high - low)
    left_loss, right_loss = loss(left), loss(right)
    for _ in range(60):
        if left_loss <= right_loss:
            high, right, right_loss = right, left, left_loss
            left = high - ratio * (high - low)
            left_loss = loss(left)
        else:
            low, left, left_loss = left, right, right_loss
            right = low + ratio * (high - low)
            right_loss = loss(right)
    return 2.0 / (low + high)


def choose_threshold(
    confidence: npt.NDArray[np.float64], correct: npt.NDArray[np.bool_], target: float
) -> ThresholdChoice:
    """The smallest confidence t such that the orders at or above t are right at least
    `target` of the time (1.0 and no coverage when no t reaches it)."""
    order = np.argsort(-confidence, kind="stable")
    ranked = confidence[order]
    accuracy = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    # A threshold takes all orders of equal confidence: judge it at the last of a tie.
    last_of_tie = np.append(ranked[1:] != ranked[:-1], True)
    good = np.flatnonzero(last_of_tie & (accuracy >= target))
    if len(good) == 0:
        return ThresholdChoice(target, 1.0, float((confidence >= 1.0).mean()), 0.0)
    i = int(good[-1])
    return ThresholdChoice(target, float(ranked[i]), (i + 1) / len(order), float(accuracy[i]))


def train(
    examples: Sequence[Example],
    classes: Mapping[str, str],
    options: TrainingOptions | None = None,
) -> TrainingResult:
    """Choose the n-gram range and C by cross-validation, calibrate and set the thresholds on
    the out-of-fold predictions, fit on all examples and build the model file."""
    options = options or TrainingOptions()
    labels = [example.category for example in examples]
    categories = sorted(set(labels))
    if len(categories) < 2:
        raise TrainingError(f"examples of {len(categories)} categories; at least 2 are needed")
    unclassed = [code for code in categories if code not in classes]
    if unclassed:
        raise TrainingError(f"no class for the categories {', '.join(unclassed)}")
    documents = [model_input(example.title, example.text)[0] for example in examples]
    truth = np.asarray([categories.index(code) for code in labels], dtype=np.intp)
    class_names = sorted({classes[code] for code in categories})
    class_index = np.asarray([class_names.index(classes[code]) for code in categories])
    max_features = max(
        1_000, min(options.max_features, options.coef_budget_bytes // (2 * len(categories)))
    )
    folds = max(2, min(options.folds, Counter(labels).most_common(1)[0][1]))
    fold = _fold_of(labels, folds, options.seed)
    label_array = np.asarray(labels)

    convergence_warnings = 0
    grid: list[dict[str, Any]] = []
    best: tuple[float, float, tuple[int, int], float, FloatMatrix] | None = None
    for ngram_range in options.ngram_ranges:
        logits_by_c = {c: np.zeros((len(documents), len(categories))) for c in options.cs}
        for k in range(folds):
            held_out = fold == k
            train_rows = np.flatnonzero(~held_out)
            test_rows = np.flatnonzero(held_out)
            if len(test_rows) == 0 or len(set(label_array[train_rows])) < 2:
                continue
            vectorizer = _pipeline(
                ngram_range, 1.0, options.min_df, max_features, options.max_iter
            ).named_steps["tfidf"]
            x_train = vectorizer.fit_transform([documents[i] for i in train_rows])
            x_test = vectorizer.transform([documents[i] for i in test_rows])
            # Each C from a cold start: warm-starting from the last C's weights is faster, but
            # lbfgs then stops at once when the gradient is within tolerance, as it is for a
            # large C started from a nearby one (C=30 and C=100 gave the same model).
            for c in options.cs:
                model = LogisticRegression(C=c, max_iter=options.max_iter)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", ConvergenceWarning)
                    model.fit(x_train, label_array[train_rows])
                convergence_warnings += sum(
                    issubclass(w.category, ConvergenceWarning) for w in caught
                )
                logits_by_c[c][test_rows] = _full_logits(model, x_test, categories)
        for c, logits in logits_by_c.items():
            probabilities = _softmax(logits)
            accuracy = float((probabilities.argmax(axis=1) == truth).mean())
            loss = _log_loss(probabilities, truth)
            grid.append(
                {
                    "ngram_range": list(ngram_range),
                    "C": c,
                    "cv_accuracy": round(accuracy, 4),
                    "cv_log_loss": round(loss, 4),
                }
            )
            if best is None or (accuracy, -loss) > (best[0], -best[1]):
                best = (accuracy, loss, ngram_range, c, logits)
    assert best is not None  # noqa: S101 - the grid is never empty
    cv_accuracy, cv_loss, ngram_range, c, oof_logits = best

    temperature = fit_temperature(oof_logits, truth)
    oof = _softmax(oof_logits, temperature)
    top = oof.argmax(axis=1)
    top_probability = oof[np.arange(len(top)), top]
    class_mass = np.zeros((len(documents), len(class_names)))
    np.add.at(class_mass.T, class_index, oof.T)
    top_class = class_index[top]
    top_class_probability = class_mass[np.arange(len(top)), top_class]
    category_right = top == truth
    class_right = top_class == class_index[truth]
    class_choice = choose_threshold(top_class_probability, class_right, options.class_target)
    category_choice = choose_threshold(top_probability, category_right, options.category_target)

    pipeline = _pipeline(ngram_range, c, options.min_df, max_features, options.max_iter)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        pipeline.fit(documents, labels)
    convergence_warnings += sum(issubclass(w.category, ConvergenceWarning) for w in caught)

    summary: dict[str, Any] = {
        "examples": len(examples),
        "categories": len(categories),
        "classes": len(class_names),
        "examples_per_category": {
            "min": min(Counter(labels).values()),
            "max": max(Counter(labels).values()),
        },
        "ngram_range": list(ngram_range),
        "C": c,
        "min_df": options.min_df,
        "max_features": max_features,
        "folds": folds,
        "cv_accuracy": round(cv_accuracy, 4),
        "cv_class_accuracy": round(float(class_right.mean()), 4),
        "cv_log_loss": round(cv_loss, 4),
        "cv_log_loss_calibrated": round(_log_loss(oof, truth), 4),
        "cv_ece": round(
            _expected_calibration_error(_softmax(oof_logits).max(axis=1), category_right), 4
        ),
        "cv_ece_calibrated": round(_expected_calibration_error(top_probability, category_right), 4),
        "temperature": round(temperature, 4),
        "class_threshold": _rounded(class_choice),
        "category_threshold": _rounded(category_choice),
        "grid": grid,
        "convergence_warnings": convergence_warnings,
        "examples_sha256": _examples_digest(examples),
    }
    classifier = classifier_from_pipeline(
        pipeline,
        classes,
        temperature=temperature,
        category_threshold=category_choice.threshold,
        class_threshold=class_choice.threshold,
        summary=summary,
    )
    return TrainingResult(pipeline, classifier, classifier.to_bytes(), summary)


def _rounded(choice: ThresholdChoice) -> dict[str, float]:
    return {key: round(value, 4) for key, value in asdict(choice).items()}


def _examples_digest(examples: Sequence[Example]) -> str:
    digest = hashlib.sha256()
    for example in examples:
        digest.update(json.dumps([example.title, example.text, example.category]).encode())
    return digest.hexdigest()


def classifier_from_pipeline(
    pipeline: Pipeline,
    classes: Mapping[str, str],
    *,
    temperature: float = 1.0,
    category_threshold: float = 1.0,
    class_threshold: float = 1.0,
    summary: Mapping[str, Any] | None = None,
) -> TextClassifier:
    """The inference model of a fitted pipeline; its version names its content."""
    vectorizer: TfidfVectorizer = pipeline.named_steps["tfidf"]
    model: LogisticRegression = pipeline.named_steps["logreg"]
    categories = [str(code) for code in model.classes_]
    vocabulary = [""] * len(vectorizer.vocabulary_)
    for gram, index in vectorizer.vocabulary_.items():
        vocabulary[index] = gram
    coef = np.asarray(model.coef_, dtype=np.float64)
    intercept = np.asarray(model.intercept_, dtype=np.float64)
    if coef.shape[0] == 1:  # two categories: the logistic is a softmax over (0, score)
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    fields: dict[str, Any] = {
        "categories": categories,
        "classes": {code: classes[code] for code in categories},
        "vocabulary": vocabulary,
        "idf": vectorizer.idf_,
        # Quantised as in the file, so that the model in memory and the one loaded from the
        # file compute the same.
        "coef": stored_weights(coef.T),
        "intercept": intercept,
        "ngram_range": tuple(vectorizer.ngram_range),
        "temperature": temperature,
        "category_threshold": category_threshold,
        "class_threshold": class_threshold,
        "summary": summary,
    }
    unversioned = TextClassifier(version="", **fields).to_bytes()
    return TextClassifier(version="clf-" + hashlib.sha256(unversioned).hexdigest()[:12], **fields)


# -- evaluation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """How a model does on labelled examples, overall and above its thresholds."""

    examples: int
    accuracy: float
    class_accuracy: float
    class_threshold: float
    class_coverage: float  # share of orders whose class probability clears class_threshold
    class_accuracy_above: float  # how often their class is right
    category_accuracy_above_class_threshold: float
    category_threshold: float
    category_coverage: float
    category_accuracy_above: float
    confusion: dict[str, dict[str, int]]  # true class -> predicted class -> orders
    unknown_categories: dict[str, int]  # labels the model does not know (counted wrong)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(classifier: TextClassifier, examples: Sequence[Example]) -> Evaluation:
    """Accuracy, class accuracy, coverage at the model's thresholds and a confusion by class."""
    if not examples:
        raise TrainingError("no examples to evaluate on")
    right = class_right = 0
    class_sure = class_sure_right = class_sure_category_right = 0
    category_sure = category_sure_right = 0
    confusion: dict[str, Counter[str]] = {}
    unknown: Counter[str] = Counter()
    for example in examples:
        result = classifier.classify(example.title, example.text)
        true_class = classifier.class_of(example.category)
        if true_class is None:
            unknown[example.category] += 1
        category_ok = result.category == example.category
        class_ok = result.class_code == true_class
        right += category_ok
        class_right += class_ok
        if result.class_sure:
            class_sure += 1
            class_sure_right += class_ok
            class_sure_category_right += category_ok
        if result.category_sure:
            category_sure += 1
            category_sure_right += category_ok
        confusion.setdefault(true_class or "?", Counter())[result.class_code] += 1
    n = len(examples)

    def share(part: int, whole: int) -> float:
        return round(part / whole, 4) if whole else 0.0

    return Evaluation(
        examples=n,
        accuracy=share(right, n),
        class_accuracy=share(class_right, n),
        class_threshold=classifier.class_threshold,
        class_coverage=share(class_sure, n),
        class_accuracy_above=share(class_sure_right, class_sure),
        category_accuracy_above_class_threshold=share(class_sure_category_right, class_sure),
        category_threshold=classifier.category_threshold,
        category_coverage=share(category_sure, n),
        category_accuracy_above=share(category_sure_right, category_sure),
        confusion={
            true: dict(sorted(predicted.items())) for true, predicted in sorted(confusion.items())
        },
        unknown_categories=dict(sorted(unknown.items())),
    )
