"""`cityloop dlq`: inspect dead letters, and re-submit them once what rejected them is fixed."""

from __future__ import annotations

import json
from collections import Counter
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cityloop.settings import get_settings
from streams.deadletters import StoredDeadLetter, original_bytes, read_dead_letters
from streams.topics import topics_for

app = typer.Typer(name="dlq", help="Inspect and replay dead letters.", no_args_is_help=True)
console = Console(soft_wrap=True)


def _letters(reason: str | None = None, source: str | None = None) -> list[StoredDeadLetter]:
    settings = get_settings()
    letters = read_dead_letters(settings.bootstrap_servers, topics_for(settings).dead_letters)
    return [
        stored
        for stored in letters
        if (reason is None or stored.letter.reason.value == reason)
        and (source is None or (stored.letter.source and stored.letter.source.value == source))
    ]


@app.command("list")
def list_letters(
    reason: Annotated[str | None, typer.Option(help="only this reason")] = None,
    source: Annotated[str | None, typer.Option(help="only this source")] = None,
) -> None:
    """One line per dead letter, then the count by reason."""
    letters = _letters(reason, source)
    table = Table("id", "reason", "source", "from", "detail")
    for stored in letters:
        letter = stored.letter
        origin = letter.origin
        table.add_row(
            stored.id,
            letter.reason.value,
            letter.source.value if letter.source else "",
            f"{origin.topic}[{origin.partition}]@{origin.offset}" if origin else "",
            letter.detail[:100],
        )
    console.print(table)
    counts = Counter(stored.letter.reason.value for stored in letters)
    console.print(", ".join(f"{name}: {count}" for name, count in counts.most_common()) or "none")


@app.command()
def show(
    letter_id: Annotated[str, typer.Argument(help="partition:offset, as `list` shows")],
) -> None:
    """One dead letter whole, with its original bytes decoded where they are text."""
    for stored in _letters():
        if stored.id == letter_id:
            document = stored.letter.model_dump(mode="json")
            raw = original_bytes(stored.letter, get_settings().bootstrap_servers)
            document["payload"] = raw.decode("utf-8", errors="replace")
            console.print_json(json.dumps(document, ensure_ascii=False))
            return
    raise typer.BadParameter(f"no dead letter {letter_id}")


@app.command()
def replay(
    letter_ids: Annotated[list[str] | None, typer.Argument(help="partition:offset ids")] = None,
    reason: Annotated[str | None, typer.Option(help="every dead letter of this reason")] = None,
    dry_run: Annotated[bool, typer.Option(help="say what would be sent, send nothing")] = False,
) -> None:
    """Re-submit dead letters' original bytes to the source topic they were read from. What
    already went through is not duplicated: a second submission of an event is an exact
    duplicate (same source and id) and opens no case."""
    from kafka import KafkaProducer

    settings = get_settings()
    names = topics_for(settings)
    chosen = [
        stored
        for stored in _letters(reason)
        if (letter_ids and stored.id in letter_ids) or (not letter_ids and reason is not None)
    ]
    if not chosen:
        raise typer.BadParameter("name dead letters by id, or choose them with --reason")
    sendable = [
        (stored, stored.letter.origin.topic)
        for stored in chosen
        if stored.letter.origin and stored.letter.origin.topic in names.sources
    ]
    for stored in chosen:
        if all(stored is not picked for picked, _ in sendable):
            console.print(f"{stored.id}: not read from a source topic; left alone")
    if dry_run:
        console.print(f"would replay {len(sendable)} dead letters")
        return
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    try:
        for stored, topic in sendable:
            key = stored.letter.idempotency_key
            producer.send(
                topic,
                key=key.encode() if key else None,
                value=original_bytes(stored.letter, settings.bootstrap_servers),
            ).get(timeout=30)
    finally:
        producer.close()
    console.print(f"replayed {len(sendable)} dead letters")
