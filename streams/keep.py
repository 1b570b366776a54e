"""What the embedded broker forgets on a restart besides the case events, kept in the data
directory by `cityloop up`: the compacted topics whose newest record per key is state in
service — the areas switched to emergency mode, the topology and the classifier versions
published. Saved when `up` stops (a `up` killed outright saves nothing: the last saved state
comes back), put back on the fresh broker before the worker starts, where the worker reads them
as it reads them on any start."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from cityloop.settings import Settings
from streams.history import read_records
from streams.topics import topics_for

KEPT_DIR = "kept"
"""The folder of the data directory that holds them."""


def kept_topics(settings: Settings) -> dict[str, str]:
    """File name → topic."""
    names = topics_for(settings)
    return {"modes": names.modes, "topology": names.topology, "classifier": names.classifier}


def _encode(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode("ascii") if data is not None else None


def _decode(text: str | None) -> bytes | None:
    return base64.b64decode(text) if text is not None else None


def save_kept(settings: Settings, directory: Path, timeout_s: float = 15.0) -> dict[str, int]:
    """Write the newest record of each key of the kept topics to `directory` (one JSON-lines
    file each, written whole or not at all); how many records each holds. Blocking."""
    directory.mkdir(parents=True, exist_ok=True)
    saved = {}
    for name, topic in kept_topics(settings).items():
        newest: dict[bytes | None, Any] = {}
        for record in read_records(settings.bootstrap_servers, topic, stall_s=timeout_s):
            newest.pop(record.key, None)  # in the order of each key's newest record
            newest[record.key] = record
        lines = [
            json.dumps(
                {
                    "key": _encode(record.key),
                    "value": _encode(record.value),
                    "headers": [[header, _encode(value)] for header, value in record.headers or ()],
                }
            )
            for record in newest.values()
        ]
        partial = directory / f".{name}.jsonl.{os.getpid()}"
        partial.write_text("".join(line + "\n" for line in lines), encoding="ascii")
        partial.replace(directory / f"{name}.jsonl")
        saved[name] = len(lines)
    return saved


def put_back_kept(settings: Settings, directory: Path) -> dict[str, int]:
    """Publish what `save_kept` wrote onto the kept topics (which must exist); how many records
    each got. Blocking."""
    from kafka import KafkaProducer

    put_back: dict[str, int] = {}
    files = {name: directory / f"{name}.jsonl" for name in kept_topics(settings)}
    if not any(path.exists() for path in files.values()):
        return put_back
    producer = KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        max_request_size=max(settings.max_event_bytes * 2, 16 << 20),  # a classifier model
    )
    try:
        for name, topic in kept_topics(settings).items():
            if not files[name].exists():
                continue
            count = 0
            for line in files[name].read_text(encoding="ascii").splitlines():
                kept = json.loads(line)
                producer.send(
                    topic,
                    key=_decode(kept["key"]),
                    value=_decode(kept["value"]),
                    headers=[(header, _decode(value)) for header, value in kept["headers"]],
                )
                count += 1
            put_back[name] = count
        producer.flush(timeout=60)
    finally:
        producer.close()
    return put_back
