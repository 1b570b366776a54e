"""The CloudEvents HTTP protocol binding (1.0) for ingest: which content mode a request is in,
chosen by its Content-Type as the binding says, and the structured JSON event of a request in
binary mode (pure: headers and body in, bytes out).

- structured mode: `Content-Type: application/cloudevents+json`, the whole event in the body;
- binary mode: the attributes in `ce-*` headers (values percent-encoded), the data in the body,
  its media type the request's Content-Type, which for our events is `application/json`;
- batched mode: `application/cloudevents-batch+json`, an array of structured events.

A request with `Content-Type: application/json` and no `ce-specversion` header carries a whole
event in its body, as cityloop has always taken it; the binding would have it be binary mode,
which without `ce-specversion` is no CloudEvent at all, so nothing the binding allows is turned
away by taking it so."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
JSON = "application/json"
HEADER_PREFIX = "ce-"
REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type")


class Mode(StrEnum):
    STRUCTURED = "structured"
    BINARY = "binary"


class BindingRefused(Exception):
    """A request the binding cannot read: `unsupported` for a media type we do not take (415),
    else a message whose headers are wrong (400)."""

    def __init__(self, reason: str, message: str, unsupported: bool = False):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.unsupported = unsupported


@dataclass(frozen=True)
class MediaType:
    essence: str
    charset: str | None

    @classmethod
    def parse(cls, header: str | None) -> MediaType | None:
        """`type/subtype` in lower case and its charset parameter, or None without a header."""
        if header is None or not header.strip():
            return None
        essence, *parameters = header.split(";")
        charset = None
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "charset":
                charset = value.strip().strip('"').lower()
        return cls(essence.strip().lower(), charset)


def _unsupported(got: MediaType | None, wanted: Sequence[str]) -> BindingRefused:
    shown = got.essence if got is not None else "none"
    return BindingRefused(
        "unsupported_media_type",
        f"Content-Type {shown}: post {' or '.join(wanted)}"
        + (
            " (CloudEvents structured mode; binary mode is application/json with ce-* headers)"
            if STRUCTURED in wanted
            else ""
        ),
        unsupported=True,
    )


def _utf8(media: MediaType) -> None:
    if media.charset not in (None, "utf-8", "utf8"):
        raise BindingRefused(
            "unsupported_media_type",
            f"charset {media.charset}: events are JSON in UTF-8",
            unsupported=True,
        )


def event_mode(content_type: str | None, headers: Mapping[str, str]) -> Mode:
    """The content mode of a single event, by its Content-Type (and, for JSON, whether it has
    the binary mode's `ce-specversion`); BindingRefused (415) for any other media type."""
    media = MediaType.parse(content_type)
    wanted = (STRUCTURED, JSON)
    if media is None or media.essence not in wanted:
        raise _unsupported(media, wanted)
    _utf8(media)
    if media.essence == STRUCTURED:
        return Mode.STRUCTURED
    return Mode.BINARY if HEADER_PREFIX + "specversion" in headers else Mode.STRUCTURED


def check_batch_media_type(content_type: str | None) -> None:
    """A batch is JSON: the binding's batched mode, or plain JSON; BindingRefused (415) else."""
    media = MediaType.parse(content_type)
    wanted = (BATCH, JSON)
    if media is None or media.essence not in wanted:
        raise _unsupported(media, wanted)
    _utf8(media)


def binary_attributes(headers: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The event's attributes from a binary-mode request's `ce-*` headers (names lower case,
    values percent-decoded as UTF-8); a header given twice or a required one missing is
    BindingRefused."""
    attributes: dict[str, str] = {}
    for name, value in headers:
        lowered = name.lower()
        if not lowered.startswith(HEADER_PREFIX):
            continue
        attribute = lowered.removeprefix(HEADER_PREFIX)
        if attribute in attributes:
            raise BindingRefused("bad_request", f"header {name} is given twice")
        if attribute in ("data", "data_base64", "datacontenttype"):
            raise BindingRefused(
                "bad_request",
                f"header {name}: in binary mode the data is the body and its type the Content-Type",
            )
        attributes[attribute] = unquote(value, encoding="utf-8", errors="strict")
    missing = [name for name in REQUIRED_ATTRIBUTES if name not in attributes]
    if missing:
        raise BindingRefused(
            "bad_request",
            "binary mode needs the headers " + ", ".join(HEADER_PREFIX + m for m in missing),
        )
    return attributes


def structured_from_binary(headers: Sequence[tuple[str, str]], body: bytes) -> bytes:
    """The structured JSON event a binary-mode request carries: its `ce-*` attributes, and its
    body (JSON) as the data. The body is decoded here; bytes that are not UTF-8 JSON raise
    ValueError (json.JSONDecodeError or UnicodeDecodeError), for intake to call undecodable."""
    try:
        attributes = binary_attributes(headers)
    except UnicodeDecodeError as exc:
        raise BindingRefused("bad_request", f"a ce-* header is not UTF-8: {exc}") from exc
    data = json.loads(body.decode("utf-8"))
    event = {**attributes, "datacontenttype": JSON, "data": data}
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
