"""A stand-in for the text classifier in pure tests of triage: the category whose keyword the
words contain, confident; none found, not confident. The real classifier has its own tests
(tests/handlers/test_classifier.py); these tests are about what triage does with a guess."""

from __future__ import annotations

from cityloop.contracts import CategoryCandidate
from handlers.triage import Guess
from topology import Topology


class KeywordGuesser:
    def __init__(self, topology: Topology, version: str = "keywords-test") -> None:
        self.topology = topology
        self.version = version

    def guess(self, title: str, text: str) -> Guess:
        words = f"{title} {text}".lower()
        for code, category in self.topology.categories.items():
            if any(keyword.lower() in words for keyword in category.keywords):
                return Guess(
                    (CategoryCandidate(code=code, score=0.9),), 0.9, True, 0.5, self.version
                )
        fallback = next(iter(self.topology.categories))
        return Guess((CategoryCandidate(code=fallback, score=0.2),), 0.2, False, 0.5, self.version)
