"""The hotline text classifier at inference: category probabilities for an order's title and text.

The model is a character n-gram TF-IDF and a multinomial logistic regression, trained by
`cityloop classifier train` (cityloop/classifier_train.py) and shipped as one file: a zip of
a JSON header, the n-gram vocabulary as JSON and numpy arrays (.npy, read without pickle, so
a model file cannot run code). Inference is numpy only: scikit-learn is not imported here.

Besides the category, a prediction carries the probability mass of the top category's
top-level class (wages and social insurance are both `labour`): a dispatcher's desk can be
skipped when the class is sure even if the category within it is not. The thresholds that say
"sure" were chosen out-of-fold at training time and travel in the model file.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cityloop.errors import CityloopError
from handlers.text import normalise_text, prepare_normaliser

MODEL_FORMAT = "cityloop-text-classifier"
FORMAT_VERSION = 1
# What the model reads of an order: a long complaint says what it is about early on, and
# reading all of a 20,000-character text would cost milliseconds for nothing.
MAX_TITLE_CHARS = 200
MAX_TEXT_CHARS = 1500
# Zip members are read whole: refuse a file that would unpack to something absurd.
_MAX_MEMBER_BYTES = 256 * 1024 * 1024

# n-grams of up to three code points (21 bits each) are looked up as one 64-bit integer.
_CODE_POINT_BITS = 21
_PACKED_CHARS = 3

_HEADER = "header.json"
_VOCABULARY = "vocabulary.json"
_ARRAYS = ("idf", "coef", "coef_scale", "intercept")
_INT16_MAX = 32767

FloatArray = npt.NDArray[np.float32]


class ClassifierModelError(CityloopError):
    """A model file that is not a readable, consistent cityloop text classifier."""


def default_model_path() -> Path:
    """The shipped model, trained on the shipped corpus."""
    return Path(str(files("handlers") / "data" / "classifier" / "model.clf"))


def model_input(
    title: str,
    text: str,
    *,
    max_title_chars: int = MAX_TITLE_CHARS,
    max_text_chars: int = MAX_TEXT_CHARS,
) -> tuple[str, bool]:
    """The string the model reads for an order (normalised title, a newline, the normalised
    text cut to its first characters) and whether the text was cut.

    Only a prefix of twice the limit is normalised, so a very long text costs no more than a
    long one. The string never holds two whitespace characters in a row, as scikit-learn's
    char analyzer would fold them into one and training and inference would read differently.
    """
    head = normalise_text(title[: 2 * max_title_chars])[:max_title_chars].rstrip()
    body = normalise_text(text[: 2 * max_text_chars])
    truncated = len(body) > max_text_chars or len(text) > 2 * max_text_chars
    return f"{head}\n{body[:max_text_chars].rstrip()}", truncated


@dataclass(frozen=True, slots=True)
class Candidate:
    """One category the text may be about, with the model's probability for it."""

    code: str
    probability: float


@dataclass(frozen=True, slots=True)
class Classification:
    """What the model says about one order; `*_sure` compare against the model's thresholds."""

    candidates: tuple[Candidate, ...]  # best first
    category: str
    probability: float
    class_code: str
    class_probability: float  # the sum over the categories of `class_code`
    category_sure: bool  # probability >= the model's category_threshold
    class_sure: bool  # class_probability >= the model's class_threshold
    truncated: bool  # the text was longer than the model reads
    model_version: str


class TextClassifier:
    """A trained model: `classify` for a decision, `probabilities` for all categories."""

    def __init__(
        self,
        *,
        version: str,
        categories: Sequence[str],
        classes: Mapping[str, str],
        vocabulary: Sequence[str],
        idf: npt.ArrayLike,
        coef: npt.ArrayLike,
        intercept: npt.ArrayLike,
        ngram_range: tuple[int, int],
        temperature: float = 1.0,
        category_threshold: float = 1.0,
        class_threshold: float = 1.0,
        max_title_chars: int = MAX_TITLE_CHARS,
        max_text_chars: int = MAX_TEXT_CHARS,
        summary: Mapping[str, Any] | None = None,
    ) -> None:
        self.version = version
        self.categories: tuple[str, ...] = tuple(categories)
        self.classes: dict[str, str] = {
            code: classes[code] for code in self.categories if code in classes
        }
        self.vocabulary: tuple[str, ...] = tuple(vocabulary)
        self.idf: FloatArray = np.asarray(idf, dtype=np.float32)
        self.coef: FloatArray = np.asarray(coef, dtype=np.float32)  # (features, categories)
        self.intercept: FloatArray = np.asarray(intercept, dtype=np.float32)
        self.ngram_range = (int(ngram_range[0]), int(ngram_range[1]))
        self.temperature = float(temperature)
        self.category_threshold = float(category_threshold)
        self.class_threshold = float(class_threshold)
        self.max_title_chars = int(max_title_chars)
        self.max_text_chars = int(max_text_chars)
        self.summary: dict[str, Any] = dict(summary or {})
        problems = self._problems()
        if problems:
            raise ClassifierModelError("inconsistent classifier model: " + "; ".join(problems))
        packed = [(i, gram) for i, gram in enumerate(self.vocabulary) if len(gram) <= _PACKED_CHARS]
        packed_keys = np.fromiter(
            (_ngram_key(gram) for _, gram in packed), dtype=np.uint64, count=len(packed)
        )
        order = np.argsort(packed_keys)
        self._packed_keys = packed_keys[order]
        self._packed_features = np.asarray([i for i, _ in packed], dtype=np.intp)[order]
        self._long_grams = {
            gram: i for i, gram in enumerate(self.vocabulary) if len(gram) > _PACKED_CHARS
        }
        self._class_members: dict[str, npt.NDArray[np.intp]] = {
            name: np.flatnonzero([self.classes[code] == name for code in self.categories])
            for name in set(self.classes.values())
        }

    def _problems(self) -> list[str]:
        problems: list[str] = []
        features, categories = len(self.vocabulary), len(self.categories)
        if categories < 2:
            problems.append(f"{categories} categories (at least 2 needed)")
        if len(set(self.categories)) != categories:
            problems.append("a category appears twice")
        if len(set(self.vocabulary)) != features:
            problems.append("an n-gram appears twice in the vocabulary")
        missing = [code for code in self.categories if code not in self.classes]
        if missing:
            problems.append(f"no class for {', '.join(missing[:5])}")
        if self.idf.shape != (features,):
            problems.append(f"idf has shape {self.idf.shape}, expected ({features},)")
        if self.coef.shape != (features, categories):
            problems.append(
                f"coef has shape {self.coef.shape}, expected ({features}, {categories})"
            )
        if self.intercept.shape != (categories,):
            problems.append(f"intercept has shape {self.intercept.shape}, expected ({categories},)")
        for name in ("idf", "coef", "intercept"):
            if not np.isfinite(getattr(self, name)).all():
                problems.append(f"{name} holds a value that is not finite")
        low, high = self.ngram_range
        if not 1 <= low <= high <= 10:
            problems.append(f"ngram_range {self.ngram_range} is not 1 <= low <= high <= 10")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            problems.append(f"temperature {self.temperature} is not a positive number")
        for name in ("category_threshold", "class_threshold"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                problems.append(f"{name} {value} is not within [0, 1]")
        if self.max_title_chars < 1 or self.max_text_chars < 1:
            problems.append("max_title_chars and max_text_chars must be positive")
        return problems

    # -- inference --------------------------------------------------------------------------

    def model_input(self, title: str, text: str) -> tuple[str, bool]:
        """The string this model reads for an order, and whether the text was cut."""
        return model_input(
            title, text, max_title_chars=self.max_title_chars, max_text_chars=self.max_text_chars
        )

    def _features(self, document: str) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]:
        """The vocabulary features of a model-input string and how often each occurs.

        An n-gram of up to three characters is looked up as one integer (21 bits a code
        point) in a sorted array, in numpy: three times faster than slicing and hashing
        every n-gram as a string, which is left to longer n-grams.
        """
        low, high = self.ngram_range
        codes = np.frombuffer(document.encode("utf-32-le"), dtype="<u4").astype(np.uint64) + 1
        length = len(codes)
        keys = [
            _ngram_keys(codes, n) for n in range(low, min(high, _PACKED_CHARS) + 1) if n <= length
        ]
        found: list[npt.NDArray[np.intp]] = []
        if keys and len(self._packed_keys):
            wanted = np.concatenate(keys)
            position = np.searchsorted(self._packed_keys, wanted)
            position[position == len(self._packed_keys)] = 0
            hit = self._packed_keys[position] == wanted
            found.append(self._packed_features[position[hit]])
        if high > _PACKED_CHARS:
            lookup = self._long_grams.get
            longer = [
                lookup(document[start : start + n], -1)
                for n in range(max(low, _PACKED_CHARS + 1), high + 1)
                for start in range(length - n + 1)
            ]
            found.append(np.asarray([f for f in longer if f >= 0], dtype=np.intp))
        if not found:
            return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.int64)
        every = np.bincount(np.concatenate(found))
        features = np.flatnonzero(every)
        return features, every[features]

    def _logits(self, document: str) -> npt.NDArray[np.float64]:
        """Raw scores (before temperature) for a model-input string, as scikit-learn's
        TfidfVectorizer(analyzer="char", sublinear_tf=True, norm="l2") followed by the
        logistic regression's decision function compute them."""
        features, counts = self._features(document)
        logits = self.intercept.astype(np.float64)
        if len(features) == 0:
            return logits
        weights = (np.log(counts) + 1.0) * self.idf[features]
        norm = math.sqrt(float(weights @ weights))
        if norm == 0.0:
            return logits
        scores = (weights / norm).astype(np.float32) @ self.coef[features]
        result: npt.NDArray[np.float64] = logits + scores
        return result

    def _softmax(self, logits: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        scaled = logits / self.temperature
        scaled -= scaled.max()
        exp = np.exp(scaled)
        result: npt.NDArray[np.float64] = exp / exp.sum()
        return result

    def probabilities_of_input(self, document: str) -> npt.NDArray[np.float64]:
        """Probabilities over `categories` for an already built model-input string."""
        return self._softmax(self._logits(document))

    def probabilities(self, title: str, text: str) -> dict[str, float]:
        """The probability of every category for an order's title and text."""
        document, _ = self.model_input(title, text)
        probabilities = self.probabilities_of_input(document)
        return {code: float(p) for code, p in zip(self.categories, probabilities, strict=True)}

    def classify(self, title: str, text: str, *, top: int = 3) -> Classification:
        """The top categories for an order, its class's probability mass, and whether each
        clears the model's threshold."""
        document, truncated = self.model_input(title, text)
        probabilities = self.probabilities_of_input(document)
        count = max(1, min(top, len(self.categories)))
        best = np.argpartition(-probabilities, count - 1)[:count]
        best = best[np.argsort(-probabilities[best], kind="stable")]
        candidates = tuple(
            Candidate(self.categories[i], float(probabilities[i])) for i in best.tolist()
        )
        category = candidates[0].code
        class_code = self.classes[category]
        class_probability = min(1.0, float(probabilities[self._class_members[class_code]].sum()))
        return Classification(
            candidates=candidates,
            category=category,
            probability=candidates[0].probability,
            class_code=class_code,
            class_probability=class_probability,
            category_sure=candidates[0].probability >= self.category_threshold,
            class_sure=class_probability >= self.class_threshold,
            truncated=truncated,
            model_version=self.version,
        )

    def class_of(self, code: str) -> str | None:
        """The top-level class of a category this model knows."""
        return self.classes.get(code)

    # -- the model file ---------------------------------------------------------------------

    def header(self) -> dict[str, Any]:
        """Everything but the vocabulary and the arrays, as written to the model file."""
        return {
            "format": MODEL_FORMAT,
            "format_version": FORMAT_VERSION,
            "version": self.version,
            "categories": list(self.categories),
            "classes": {code: self.classes[code] for code in self.categories},
            "ngram_range": list(self.ngram_range),
            "analyzer": "char",
            "sublinear_tf": True,
            "norm": "l2",
            "temperature": self.temperature,
            "category_threshold": self.category_threshold,
            "class_threshold": self.class_threshold,
            "max_title_chars": self.max_title_chars,
            "max_text_chars": self.max_text_chars,
            "features": len(self.vocabulary),
            "summary": self.summary,
        }

    def to_bytes(self) -> bytes:
        """The model file: a zip of header.json, vocabulary.json and the arrays as .npy
        (weights as int16 with a scale per category: half the size of float32)."""
        buffer = io.BytesIO()
        coef, coef_scale = quantise_weights(self.coef)
        arrays: dict[str, npt.NDArray[Any]] = {
            "idf": self.idf.astype(np.float32),
            "coef": coef,
            "coef_scale": coef_scale,
            "intercept": self.intercept.astype(np.float32),
        }
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(_zip_info(_HEADER), _json_bytes(self.header()))
            archive.writestr(_zip_info(_VOCABULARY), _json_bytes(list(self.vocabulary)))
            for name, array in arrays.items():
                npy = io.BytesIO()
                np.save(npy, array, allow_pickle=False)
                archive.writestr(_zip_info(f"{name}.npy"), npy.getvalue())
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TextClassifier:
        """Read a model file; ClassifierModelError says what is wrong with one that is not."""
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                header = json.loads(_member(archive, _HEADER))
                if not isinstance(header, dict) or header.get("format") != MODEL_FORMAT:
                    raise ClassifierModelError(f"not a {MODEL_FORMAT} model (header.json)")
                if header.get("format_version") != FORMAT_VERSION:
                    raise ClassifierModelError(
                        f"model format version {header.get('format_version')!r}; "
                        f"this cityloop reads version {FORMAT_VERSION}"
                    )
                vocabulary = json.loads(_member(archive, _VOCABULARY))
                arrays = {
                    name: np.load(io.BytesIO(_member(archive, f"{name}.npy")), allow_pickle=False)
                    for name in _ARRAYS
                }
        except zipfile.BadZipFile as error:
            raise ClassifierModelError(
                f"not a classifier model file (not a zip: {error})"
            ) from None
        except (ValueError, EOFError, OSError, zipfile.LargeZipFile) as error:
            raise ClassifierModelError(f"unreadable classifier model file: {error}") from None
        if not isinstance(vocabulary, list) or not all(isinstance(g, str) for g in vocabulary):
            raise ClassifierModelError("vocabulary.json is not a list of strings")
        for name, array in arrays.items():
            expected = "int16" if name == "coef" else "floats"
            if (array.dtype != np.int16) if name == "coef" else (array.dtype.kind != "f"):
                raise ClassifierModelError(f"{name}.npy holds {array.dtype}, not {expected}")
        if arrays["coef_scale"].shape != arrays["coef"].shape[1:]:
            raise ClassifierModelError(
                f"coef_scale has shape {arrays['coef_scale'].shape}, "
                f"coef {arrays['coef'].shape}: one scale per category expected"
            )
        try:
            ngram_low, ngram_high = header["ngram_range"]
            model = cls(
                version=str(header["version"]),
                categories=[str(code) for code in header["categories"]],
                classes={str(code): str(name) for code, name in header["classes"].items()},
                vocabulary=vocabulary,
                idf=arrays["idf"],
                coef=arrays["coef"].astype(np.float32) * arrays["coef_scale"].astype(np.float32),
                intercept=arrays["intercept"],
                ngram_range=(int(ngram_low), int(ngram_high)),
                temperature=float(header["temperature"]),
                category_threshold=float(header["category_threshold"]),
                class_threshold=float(header["class_threshold"]),
                max_title_chars=int(header["max_title_chars"]),
                max_text_chars=int(header["max_text_chars"]),
                summary=dict(header.get("summary") or {}),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ClassifierModelError(f"header.json is incomplete or wrong: {error!r}") from None
        prepare_normaliser()  # a loaded model is about to be asked: its first answer is fast
        return model

    @classmethod
    def load(cls, path: Path) -> TextClassifier:
        """Read a model file from disk."""
        try:
            data = path.read_bytes()
        except OSError as error:
            raise ClassifierModelError(f"cannot read classifier model {path}: {error}") from None
        try:
            return cls.from_bytes(data)
        except ClassifierModelError as error:
            raise ClassifierModelError(f"{path}: {error}") from None


def quantise_weights(coef: npt.ArrayLike) -> tuple[npt.NDArray[np.int16], FloatArray]:
    """Weights (features x categories) as int16 and one float32 scale per category.

    A category's largest weight gets the full int16 range: the error of every weight is
    then at most 1/65534 of that, which keeps probabilities within ~1e-4 of the float64
    model, where float16 (the same size) errs three times more on the large weights.
    """
    weights = np.asarray(coef, dtype=np.float32)
    largest = np.abs(weights).max(axis=0) if weights.size else np.zeros(weights.shape[1:])
    scale = np.where(largest > 0, largest / _INT16_MAX, 1.0).astype(np.float32)
    quantised = np.clip(np.rint(weights / scale), -_INT16_MAX, _INT16_MAX).astype(np.int16)
    return quantised, scale


def stored_weights(coef: npt.ArrayLike) -> FloatArray:
    """The weights as a model file gives them back (quantised, then scaled)."""
    quantised, scale = quantise_weights(coef)
    result: FloatArray = quantised.astype(np.float32) * scale
    return result


def _ngram_key(gram: str) -> int:
    """An n-gram of up to three characters as one integer: each code point + 1 (so that no
    shorter n-gram shares a key) in 21 bits."""
    return sum((ord(char) + 1) << (_CODE_POINT_BITS * i) for i, char in enumerate(gram))


def _ngram_keys(codes: npt.NDArray[np.uint64], n: int) -> npt.NDArray[np.uint64]:
    """The keys (as _ngram_key) of every n-gram of a text given as code points + 1."""
    count = len(codes) - n + 1
    keys = codes[:count].copy()
    for offset in range(1, n):
        keys |= codes[offset : offset + count] << np.uint64(_CODE_POINT_BITS * offset)
    return keys


def _zip_info(name: str) -> zipfile.ZipInfo:
    # A fixed timestamp: the same model gives the same bytes.
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=False).encode("utf-8")


def _member(archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise ClassifierModelError(f"the model file has no {name}") from None
    if info.file_size > _MAX_MEMBER_BYTES:
        raise ClassifierModelError(f"{name} unpacks to {info.file_size} bytes; too large")
    return archive.read(info)
