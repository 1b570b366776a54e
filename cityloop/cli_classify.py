"""`cityloop classify --json`: triage hotline orders read as JSON lines, as the worker would."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from cityloop.cli_classifier import ModelFile, TopologyFile, load_classifier
from topology import Topology, TopologyValidationError, load_topology


def triaged(topology: Topology, guesser: Any, order: dict[str, Any]) -> dict[str, Any]:
    """One order's line: the category decision exactly as the worker takes it for an order
    with no category, and the place its address or words name."""
    from handlers.triage import categorise, place_from_words

    title = str(order.get("title") or "")
    text = str(order.get("text") or "")
    address = str(order.get("address") or "")
    decision = categorise(topology, None, title, text, guesser)
    guess = decision.guess
    place = place_from_words(topology, address, f"{title} {text}")
    top = guess.candidates[0].code if guess and guess.candidates else None
    return {
        "category": None if decision.decision.value == "desk" else decision.category_code,
        "confidence": round(guess.confidence, 4) if guess else 0.0,
        "decision": "desk" if decision.decision.value == "desk" else "auto",
        "class": topology.class_of(top) if top else None,
        "candidates": [
            {"code": candidate.code, "score": candidate.score}
            for candidate in (guess.candidates if guess else ())
        ],
        "area": place.area_code if place.placed else None,
        "place": "found" if place.placed else ("ambiguous" if place.area_candidates else "none"),
        "area_candidates": list(place.area_candidates),
    }


def classify(
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON lines in and out (the only format for now).")
    ] = True,
    source: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Read orders from this file (default: standard input).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    model: ModelFile = None,
    topology_file: TopologyFile = None,
) -> None:
    """Triage hotline orders with no category: JSON lines of {"title", "text", optional
    "address"} in, one JSON line out for each: category (null when the desk decides),
    confidence, decision (auto or desk), class, candidates (top 3), area and place."""
    from handlers.triage import ClassifierGuesser

    try:
        topology = load_topology(topology_file)
    except TopologyValidationError as error:
        typer.echo("\n".join(error.problems), err=True)
        raise typer.Exit(1) from None
    guesser = ClassifierGuesser(load_classifier(model))
    lines = source.open(encoding="utf-8") if source else sys.stdin
    try:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                order = json.loads(line)
            except ValueError as error:
                typer.echo(f"line {number}: not JSON: {error}", err=True)
                raise typer.Exit(2) from None
            if not isinstance(order, dict):
                typer.echo(f"line {number}: not a JSON object", err=True)
                raise typer.Exit(2)
            typer.echo(json.dumps(triaged(topology, guesser, order), ensure_ascii=False))
    finally:
        if source:
            lines.close()
