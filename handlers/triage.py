"""Triage of a human report: its category, its place, and whether a person must decide them.

A real 12345 centre never lets an order it cannot classify land on a wrong desk: when the call
taker gave no category (or one the topology does not know), the classifier proposes one, and
only a confident proposal is dispatched without a person. Whatever is not sure — the category,
or where the matter is — waits at the dispatch desk (人工派单) with what was found, for a
dispatcher to decide. Pure: the classifier is passed in, and so is the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from cityloop.contracts import (
    UNCLASSIFIED,
    AreaLevel,
    CaseDispatched,
    CaseEvent,
    CaseOpened,
    CaseReclassified,
    CategoryCandidate,
    DeskReason,
    Severity,
    Source,
    Triage,
    TriageDecision,
)
from handlers.classifier import TextClassifier
from topology import Topology
from topology.names import PlaceFinding, area_names

DESK_MINUTES = 30
"""The desk's SLA: an order waiting for a dispatcher is dispatched within half an hour."""
URGENT_DESK_MINUTES = 10
"""...and within ten minutes when it is urgent (a very urgent order, a graded emergency)."""


@dataclass(frozen=True)
class Guess:
    """What a text classifier makes of a message."""

    candidates: tuple[CategoryCandidate, ...]
    """Best first; the first is the proposed category."""
    confidence: float
    """How sure it is of the proposal's top-level class, 0–1 (calibrated)."""
    class_sure: bool
    """The class's probability clears the model's class threshold."""
    category_threshold: float
    """The probability at which the model's category itself is taken as sure."""
    model_version: str


def _department_mass(topology: Topology, candidates: Sequence[CategoryCandidate]) -> float:
    """The probability that the top candidate's lead department kind is the right one: its own
    and that of the other candidates led by the same kind (wages or a labour contract: both go
    to the labour bureau)."""
    top = topology.category(candidates[0].code)
    if top is None:
        return 0.0
    return sum(
        candidate.score
        for candidate in candidates
        if (category := topology.category(candidate.code)) is not None
        and category.lead_kind == top.lead_kind
    )


def is_confident(topology: Topology, guess: Guess) -> bool:
    """Dispatched without a person only when the class is sure AND the department it leads to
    is: the class alone can hide two departments (a river's noise and its black water are one
    class, the police and the water authority)."""
    if not guess.candidates or not guess.class_sure:
        return False
    return _department_mass(topology, guess.candidates) >= guess.category_threshold


class Guesser(Protocol):
    """A text classifier, as triage uses it."""

    def guess(self, title: str, text: str) -> Guess: ...


@dataclass(frozen=True)
class CategoryDecision:
    category_code: str
    """The category to route by; `UNCLASSIFIED` when a person must decide."""
    decision: TriageDecision
    reasons: tuple[DeskReason, ...] = ()
    guess: Guess | None = None
    given_category_code: str | None = None
    """The sender's code, verbatim, when the topology does not know it."""


def categorise(
    topology: Topology,
    given_code: str | None,
    title: str,
    text: str,
    guesser: Guesser | None,
) -> CategoryDecision:
    """The category of a message: the sender's when the topology knows it, else the
    classifier's when it is confident, else the desk's to decide."""
    if given_code is not None and topology.category(given_code) is not None:
        return CategoryDecision(given_code, TriageDecision.GIVEN)
    guess = guesser.guess(title, text) if guesser is not None else None
    if given_code is not None:
        return CategoryDecision(
            UNCLASSIFIED,
            TriageDecision.DESK,
            (DeskReason.UNKNOWN_CATEGORY_CODE,),
            guess,
            given_code,
        )
    if guess is not None and is_confident(topology, guess):
        return CategoryDecision(guess.candidates[0].code, TriageDecision.AUTO, (), guess)
    return CategoryDecision(UNCLASSIFIED, TriageDecision.DESK, (DeskReason.LOW_CONFIDENCE,), guess)


@dataclass(frozen=True)
class PlaceDecision:
    area_code: str
    """The area found, or (for the desk) the lowest area every candidate lies in."""
    placed: bool
    reason: DeskReason | None = None
    area_candidates: tuple[str, ...] = ()
    note: str | None = None


def place_from_words(topology: Topology, address: str, text: str) -> PlaceDecision:
    """Where an order with no area code and no coordinates is, from the names in its address
    (first) or its words."""
    place = area_names(topology).find(address, text)
    if place.finding is PlaceFinding.FOUND and place.area is not None:
        return PlaceDecision(place.area, True)
    if place.finding is PlaceFinding.AMBIGUOUS:
        return PlaceDecision(
            place.area or topology.city,
            False,
            DeskReason.AMBIGUOUS_PLACE,
            place.candidates,
            "the address names several places",
        )
    return PlaceDecision(
        topology.city, False, DeskReason.UNPLACED, (), "no place of the city in the address"
    )


def disagreement(topology: Topology, area_code: str, address: str, text: str) -> str | None:
    """A note when the address names another district than the area code is in."""
    district = topology.ancestor_at(area_code, AreaLevel.DISTRICT)
    if district is None:
        return None
    place = area_names(topology).find(address, text)
    if place.finding is not PlaceFinding.FOUND or district in place.districts:
        return None
    named = ", ".join(sorted(place.districts))
    return f"the area code is in district {district}; the address names {named}"


def triage_record(
    category: CategoryDecision,
    place: PlaceDecision | None = None,
    note: str | None = None,
    urgent: bool = False,
) -> Triage:
    """The triage a report carries: what was decided, and what the desk is shown."""
    reasons = list(category.reasons)
    if place is not None and place.reason is not None:
        reasons.append(place.reason)
    guess = category.guess
    return Triage(
        decision=TriageDecision.DESK if reasons else category.decision,
        desk_reasons=reasons,
        confidence=round(guess.confidence, 4) if guess else None,
        candidates=list(guess.candidates) if guess else [],
        model_version=guess.model_version if guess else None,
        given_category_code=category.given_category_code,
        area_candidates=list(place.area_candidates) if place else [],
        place_note=(place.note if place and not place.placed else None) or note,
        urgent=urgent,
    )


def desk_for(topology: Topology, area_codes: Sequence[str]) -> str:
    """The 12345 centre that dispatches a case: its district's, or the city's when the case
    is not placed within one district."""
    districts = {topology.ancestor_at(code, AreaLevel.DISTRICT) for code in area_codes}
    if len(districts) == 1 and None not in districts:
        return f"desk:{districts.pop()}"
    return f"desk:{topology.city}"


def desk_area(desk: str) -> str:
    """The area code a desk (desk:<area>) serves."""
    return desk.removeprefix("desk:")


def dispatch_deadline(now: datetime, urgent: bool) -> datetime:
    return now + timedelta(minutes=URGENT_DESK_MINUTES if urgent else DESK_MINUTES)


def is_urgent(severity: Severity | None, urgency: str | None = None) -> bool:
    """Graded emergencies (I–III) and very urgent orders get the desk's short deadline."""
    return urgency == "very_urgent" or severity in (Severity.I, Severity.II, Severity.III)


class ClassifierGuesser:
    """The shipped text classifier, as triage asks it."""

    def __init__(self, classifier: TextClassifier) -> None:
        self.classifier = classifier

    @property
    def version(self) -> str:
        return self.classifier.version

    def guess(self, title: str, text: str) -> Guess:
        found = self.classifier.classify(title, text)
        return Guess(
            candidates=tuple(
                CategoryCandidate(code=c.code, score=round(c.probability, 4))
                for c in found.candidates
            ),
            confidence=found.class_probability,
            class_sure=found.class_sure,
            category_threshold=self.classifier.category_threshold,
            model_version=found.model_version,
        )


def dispatcher_labels(events: Iterable[CaseEvent]) -> Iterator[tuple[str, str, str]]:
    """What the city's own history teaches the classifier: (title, text, category) of each
    hotline order whose category a dispatcher set or confirmed at the desk, the last such
    decision winning. Events in the case-event topic's order."""
    first: dict[str, tuple[str, str]] = {}
    decided: dict[str, str] = {}
    for event in events:
        if isinstance(event, CaseOpened):
            report = event.first_report
            if report.source is Source.HOTLINE:
                first[event.case_id] = (report.title, report.text)
        elif isinstance(event, CaseReclassified) and event.actor.startswith("desk:"):
            decided[event.case_id] = event.to_category
        elif (
            isinstance(event, CaseDispatched)
            and event.actor.startswith("desk:")
            and event.category_code is not None
        ):
            decided[event.case_id] = event.category_code  # confirmed as it stood
    for case_id, category in decided.items():
        if case_id in first and category != UNCLASSIFIED:
            title, text = first[case_id]
            yield title, text, category
