"""Places from words: the areas an address or a citizen's text names (地址识别).

An Aho–Corasick automaton over the topology's district, street and community names, and the
short forms people write ("锦江区" → "锦江", "新市街道" → "新市街办"), finds every name in one
pass. The names found are then read as a place: the deepest area that agrees with every other
name found. Nothing here guesses: no name, or names that point at several places, is said so,
and a person at the dispatch desk decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import ahocorasick

from cityloop.contracts import AreaLevel
from topology.graph import Topology

NAMED_LEVELS = (AreaLevel.DISTRICT, AreaLevel.STREET, AreaLevel.COMMUNITY)
"""Grids are patches an inspector walks, never named by citizens; the city is implied."""

DISTRICT_SUFFIXES = ("区", "县", "市")
STREET_SUFFIXES = ("街道", "镇")
MIN_SHORT_FORM = 2
"""A short form must keep at least two characters: one character names nothing."""


class PlaceFinding(StrEnum):
    FOUND = "found"
    """Exactly one area agrees with every name in the words."""
    AMBIGUOUS = "ambiguous"
    """The names point at several areas (a community name shared by several streets, say)."""
    NONE = "none"
    """No name of the topology is in the words."""


@dataclass(frozen=True)
class Place:
    finding: PlaceFinding
    area: str | None = None
    """The area found; for an ambiguous finding, the lowest area all candidates lie in."""
    candidates: tuple[str, ...] = ()
    """For an ambiguous finding, the areas that could be meant (at most `MAX_CANDIDATES`)."""
    districts: frozenset[str] = frozenset()
    """The districts the place (or its candidates) lie in, to tell a disagreeing area code."""


MAX_CANDIDATES = 10
MAX_READINGS_KEPT = 65_536
"""Readings remembered per topology: a few MB at most, and the combinations citizens write
are far fewer."""
DISTRICT_CODE_LENGTH = 6


def _short_forms(name: str, level: AreaLevel) -> list[str]:
    """What people write for a name beside the name itself."""
    forms = [name]
    if level is AreaLevel.DISTRICT:
        for suffix in DISTRICT_SUFFIXES:
            if name.endswith(suffix) and len(name) - len(suffix) >= MIN_SHORT_FORM:
                forms.append(name[: -len(suffix)])
        if name.startswith("成都") and len(name) > MIN_SHORT_FORM + 2:
            forms.append(name.removeprefix("成都"))  # 成都高新区 → 高新区
        if name.endswith("成都直管区"):
            forms.append(name.removesuffix("成都直管区"))  # 天府新区成都直管区 → 天府新区
    elif level is AreaLevel.STREET and name.endswith("街道"):
        stem = name.removesuffix("街道")
        forms += [f"{stem}街办", f"{stem}街道办"]
    return forms


class AreaNames:
    """The topology's place names, compiled once; `find` reads a text."""

    def __init__(self, topology: Topology) -> None:
        self._topology = topology
        automaton = ahocorasick.Automaton()
        codes_of: dict[str, set[str]] = {}
        for code, area in topology.areas.items():
            if area.level not in NAMED_LEVELS:
                continue
            for form in _short_forms(area.name, area.level):
                codes_of.setdefault(form, set()).add(code)
        for form, codes in codes_of.items():
            automaton.add_word(form, (len(form), tuple(sorted(codes))))
        automaton.make_automaton()
        self._automaton = automaton
        self._empty = not codes_of
        # the same few names recur across thousands of texts: a reading is read once
        self._read_once = lru_cache(maxsize=MAX_READINGS_KEPT)(self._read)

    def names_in(self, text: str) -> list[tuple[str, ...]]:
        """The areas each name in the text may mean, longest names first where they overlap
        ("新市街道" wins over "新市" inside it)."""
        if self._empty or not text:
            return []
        spans: list[tuple[int, int, tuple[str, ...]]] = []
        for end, (length, codes) in self._automaton.iter(text):
            spans.append((end - length + 1, end + 1, codes))
        spans.sort(key=lambda span: (span[0], -(span[1] - span[0])))
        kept: list[tuple[str, ...]] = []
        covered_until = -1
        for start, stop, codes in spans:
            if start < covered_until:
                continue  # inside a longer name already read
            kept.append(codes)
            covered_until = stop
        return kept

    def find(self, *texts: str) -> Place:
        """The place the texts name (an address first, then the citizen's words)."""
        for text in texts:
            place = self._read_once(tuple(self.names_in(text)))
            if place.finding is not PlaceFinding.NONE:
                return place
        return Place(PlaceFinding.NONE)

    def _read(self, names: tuple[tuple[str, ...], ...]) -> Place:
        topology = self._topology
        readings = [frozenset(codes) for codes in names]
        if not readings:
            return Place(PlaceFinding.NONE)
        # an area agrees with a name if the name means it, an area above it, or below it
        candidates: set[str] = set().union(*readings)
        agreeing = {
            code for code in candidates if all(self._agrees(code, reading) for reading in readings)
        }
        if not agreeing:
            agreeing = candidates  # the names contradict each other: all of them stay open
        deepest = _deepest(topology, agreeing)
        districts = frozenset(code[:DISTRICT_CODE_LENGTH] for code in deepest)
        if len(deepest) == 1:
            return Place(PlaceFinding.FOUND, deepest[0], districts=districts)
        common = topology.lowest_common_ancestor(deepest) or topology.city
        return Place(
            PlaceFinding.AMBIGUOUS,
            common,
            tuple(sorted(deepest)[:MAX_CANDIDATES]),
            districts,
        )

    def _agrees(self, code: str, reading: frozenset[str]) -> bool:
        topology = self._topology
        if code in reading:
            return True
        chain = topology.ancestors(code)
        if any(other in chain for other in reading):
            return True
        return any(code in topology.ancestors(other) for other in reading)


def _deepest(topology: Topology, codes: set[str]) -> list[str]:
    """The codes no other code of the set lies below."""
    above = {ancestor for code in codes for ancestor in topology.ancestors(code)[1:]}
    return sorted(codes - above)


@lru_cache(maxsize=4)
def area_names(topology: Topology) -> AreaNames:
    """The compiled names of a topology (one per topology version in service)."""
    return AreaNames(topology)
