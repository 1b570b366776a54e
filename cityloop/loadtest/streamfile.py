"""The stream-file format: one Kafka record per JSON line, with its topic, key, headers and
timestamp, and its value either as a JSON event or byte-exact (text or base64)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cityloop.contracts import Source

FORMAT_VERSION = 1


class StreamFileError(ValueError):
    """A stream-file line that cannot be read, with its line number."""


@dataclass(frozen=True)
class StreamRecord:
    """One record as it was (or will be) on a topic. `value` is the exact bytes."""

    value: bytes | None
    key: bytes | None = None
    timestamp_ms: int | None = None
    source: Source | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    headers: tuple[tuple[str, bytes], ...] = field(default=())
    event: Any = field(default=None, compare=False)
    """The decoded JSON event when the line carried one (generated or hand-written files)."""


def _encode_bytes(data: bytes, text_field: str, b64_field: str) -> dict[str, str]:
    try:
        return {text_field: data.decode("utf-8")}
    except UnicodeDecodeError:
        return {b64_field: base64.b64encode(data).decode("ascii")}


def _json_event(value: bytes) -> Any:
    """The value as a JSON event when re-serialising it gives back exactly these bytes, so
    that a recorded file stays readable without losing a byte; else None."""
    try:
        text = value.decode("utf-8")
        document = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    for separators in ((", ", ": "), (",", ":")):
        for ascii_only in (False, True):
            if json.dumps(document, ensure_ascii=ascii_only, separators=separators) == text:
                return document
    return None


def event_bytes(event: Any) -> bytes:
    """How a JSON event from a file goes on the wire: compact UTF-8 JSON."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def to_line(record: StreamRecord) -> dict[str, Any]:
    line: dict[str, Any] = {"v": FORMAT_VERSION}
    if record.source is not None:
        line["source"] = record.source.value
    if record.topic is not None:
        line["topic"] = record.topic
    if record.partition is not None:
        line["partition"] = record.partition
    if record.offset is not None:
        line["offset"] = record.offset
    if record.timestamp_ms is not None:
        line["timestamp_ms"] = record.timestamp_ms
    if record.key is None:
        line["key"] = None
    else:
        line.update(_encode_bytes(record.key, "key", "key_b64"))
    if record.headers:
        line["headers"] = [
            [name, value.decode("utf-8")]
            if _is_utf8(value)
            else [name, {"b64": base64.b64encode(value).decode("ascii")}]
            for name, value in record.headers
        ]
    if record.value is None:
        line["value"] = None
    elif record.event is not None and event_bytes(record.event) == record.value:
        line["event"] = record.event
    elif (document := _json_event(record.value)) is not None:
        line["event"] = document
        if event_bytes(document) != record.value:
            # keep the exact bytes too: the compact form differs from what was on the wire
            line.update(_encode_bytes(record.value, "value", "value_b64"))
    else:
        line.update(_encode_bytes(record.value, "value", "value_b64"))
    return line


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _bytes_field(line: dict[str, Any], text_field: str, b64_field: str, where: str) -> bytes | None:
    if b64_field in line:
        try:
            return base64.b64decode(str(line[b64_field]), validate=True)
        except ValueError as exc:
            raise StreamFileError(f"{where}: {b64_field} is not base64: {exc}") from exc
    text = line.get(text_field)
    if text is None:
        return None
    if not isinstance(text, str):
        raise StreamFileError(f"{where}: {text_field} must be a string or null")
    return text.encode("utf-8")


def from_line(line: dict[str, Any], where: str = "line") -> StreamRecord:
    """Read one line. Exact bytes (`value`/`value_b64`) win over `event`; `source` may be left
    out when `topic` ends in `.events.<source>`."""
    if not isinstance(line, dict):
        raise StreamFileError(f"{where}: a stream line must be a JSON object")
    event = line.get("event")
    if "value" in line or "value_b64" in line:
        value = _bytes_field(line, "value", "value_b64", where)
    elif "event" in line:
        value = event_bytes(event)
    else:
        raise StreamFileError(f"{where}: no event, value or value_b64")
    source = _source_of(line, where)
    if source is None and line.get("topic") is None:
        raise StreamFileError(f"{where}: needs a source or a topic")
    headers: list[tuple[str, bytes]] = []
    for item in line.get("headers") or []:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            raise StreamFileError(f"{where}: headers must be [name, value] pairs")
        name, raw = item
        if isinstance(raw, dict) and "b64" in raw:
            headers.append((name, base64.b64decode(str(raw["b64"]))))
        elif isinstance(raw, str):
            headers.append((name, raw.encode("utf-8")))
        else:
            raise StreamFileError(f"{where}: header {name!r} must be text or {{'b64': ...}}")
    timestamp = line.get("timestamp_ms")
    if timestamp is not None and not isinstance(timestamp, int):
        raise StreamFileError(f"{where}: timestamp_ms must be an integer (epoch milliseconds)")
    return StreamRecord(
        value=value,
        key=_bytes_field(line, "key", "key_b64", where),
        timestamp_ms=timestamp,
        source=source,
        topic=line.get("topic"),
        partition=line.get("partition"),
        offset=line.get("offset"),
        headers=tuple(headers),
        event=event,
    )


def _source_of(line: dict[str, Any], where: str) -> Source | None:
    if line.get("source") is not None:
        try:
            return Source(str(line["source"]))
        except ValueError as exc:
            raise StreamFileError(f"{where}: unknown source {line['source']!r}") from exc
    topic = line.get("topic")
    if isinstance(topic, str) and ".events." in topic:
        try:
            return Source(topic.rsplit(".events.", 1)[1])
        except ValueError:
            return None
    return None


def read_records(path: Path) -> Iterator[StreamRecord]:
    with path.open(encoding="utf-8") as lines:
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                document = json.loads(text)
            except ValueError as exc:
                raise StreamFileError(f"{path}:{number}: not JSON: {exc}") from exc
            yield from_line(document, f"{path}:{number}")


def write_line(out: IO[str], line: dict[str, Any]) -> None:
    out.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")))
    out.write("\n")


def write_records(path: Path, records: Iterable[StreamRecord]) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            write_line(out, to_line(record))
            count += 1
    return count
