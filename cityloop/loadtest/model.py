"""The pipeline's decisions without Kafka: intake, correlation key, dedup and routing over plain
dicts, as the worker's agents make them. The benchmark's ceiling loop runs it; tests use it to
check a generated stream's ground truth against what dedup can find."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cityloop.contracts import CaseEvent, DeadLetterReason, Incident, Mode, Origin, Source
from cityloop.loadtest.streamfile import StreamRecord
from handlers.book import CaseBook
from handlers.cells import correlation_key
from handlers.classifier import TextClassifier, default_model_path
from handlers.correlate import CorrelationDecision
from handlers.intake import Accepted, take_in
from handlers.triage import ClassifierGuesser, Guesser
from topology import Topology, UnroutableError


@dataclass
class DecisionModel:
    """The case partitions' decisions in one process, over the worker's own case book."""

    topology: Topology
    guesser: Guesser | None = None
    """The hotline classifier; None sends every order without a category to the desk."""
    book: CaseBook = field(default_factory=CaseBook)
    modes: Mapping[str, Mode] = field(default_factory=dict)

    @classmethod
    def like_the_worker(cls, topology: Topology) -> DecisionModel:
        """With the classifier a worker loads by default (the shipped model)."""
        return cls(topology, ClassifierGuesser(TextClassifier.load(default_model_path())))

    def decide(self, incident: Incident, key: str, now: datetime) -> tuple[CaseEvent, ...]:
        """What one incident does to the cases; raises UnroutableError as the agent would."""
        decision = self.book.correlate(incident, key, self.topology, self.modes, now)
        return decision.events


@dataclass(frozen=True)
class Outcome:
    events: tuple[CaseEvent, ...] = ()
    dead_letter: DeadLetterReason | str | None = None


def run_record(
    model: DecisionModel,
    value: bytes,
    source: Source | None,
    origin: Origin | None,
    now: datetime,
) -> Outcome:
    """One source record through intake and the case decision, in one step."""
    result = take_in(value, model.topology, now, source, origin, model.guesser)
    if not isinstance(result, Accepted):
        return Outcome(dead_letter=result.dead_letter.reason)
    incident = result.incident
    try:
        return Outcome(model.decide(incident, correlation_key(model.topology, incident), now))
    except UnroutableError as exc:
        return Outcome(dead_letter=exc.reason)


def correlated(
    model: DecisionModel, records: Iterable[StreamRecord]
) -> Iterator[tuple[Incident, CorrelationDecision]]:
    """Each generated record that intake accepts and a case partition can route, with the
    decision it made, each on the record's own time (what benchmarks build their cases from)."""
    for record in records:
        if record.timestamp_ms is None or record.value is None:
            continue
        received = datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
        result = take_in(record.value, model.topology, received, record.source, None, model.guesser)
        if not isinstance(result, Accepted):
            continue
        incident = result.incident
        key = correlation_key(model.topology, incident)
        try:
            decision = model.book.correlate(incident, key, model.topology, model.modes, received)
        except UnroutableError:
            continue
        yield incident, decision
