"""The labelled 12345 corpus the project wrote (handlers/data/corpus/*.jsonl): reading it, and
the slice of it kept out of training.

One message in eight (by a hash of its words, so the split never moves) is held out: the
classifier never trains on it, its own figures are measured on it, and the load generator
draws hotline orders' words from it, so that a replay measures classification on text the
model has not seen.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

HELD_OUT_ONE_IN = 8


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled order."""

    title: str
    text: str
    category: str

    @property
    def held_out(self) -> bool:
        """Kept out of training (and used for evaluation and load tests)."""
        digest = hashlib.blake2b(f"{self.title}\n{self.text}".encode(), digest_size=4).digest()
        return int.from_bytes(digest, "big") % HELD_OUT_ONE_IN == 0


@dataclass(frozen=True, slots=True)
class SkippedLine:
    """A line of an examples file that is not used, and why."""

    source: str
    line: int
    reason: str


def corpus_paths() -> list[Path]:
    """The shipped labelled corpus: handlers/data/corpus/*.jsonl."""
    corpus = Path(str(files("handlers") / "data" / "corpus"))
    return sorted(corpus.glob("*.jsonl")) if corpus.is_dir() else []


def read_examples(
    path: Path, known_categories: Iterable[str] | None = None
) -> tuple[list[Example], list[SkippedLine]]:
    """JSON lines of {"title", "text", "category"} (other keys ignored); a line that is not
    such an object, or whose category is not known, is skipped with the reason."""
    known = None if known_categories is None else set(known_categories)
    examples: list[Example] = []
    skipped: list[SkippedLine] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as error:
                skipped.append(SkippedLine(str(path), number, f"not JSON: {error}"))
                continue
            if not isinstance(record, dict):
                skipped.append(SkippedLine(str(path), number, "not a JSON object"))
                continue
            title, text, category = (record.get(key) for key in ("title", "text", "category"))
            if not isinstance(category, str) or not category:
                skipped.append(SkippedLine(str(path), number, "no category"))
                continue
            if not isinstance(title, str | None) or not isinstance(text, str | None):
                skipped.append(SkippedLine(str(path), number, "title or text is not a string"))
                continue
            if not (title or text):
                skipped.append(SkippedLine(str(path), number, "no title and no text"))
                continue
            if known is not None and category not in known:
                skipped.append(SkippedLine(str(path), number, f"unknown category {category!r}"))
                continue
            examples.append(Example(title or "", text or "", category))
    return examples, skipped


def shipped_examples(held_out: bool) -> list[Example]:
    """The shipped corpus's training part (`held_out=False`) or its held-out part."""
    return [
        example
        for path in corpus_paths()
        for example in read_examples(path)[0]
        if example.held_out is held_out
    ]
