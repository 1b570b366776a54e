"""The one logging setup of every cityloop process (worker, API, `up`, the other commands): one
line format with time, level and process role, or one JSON object a line
(`CITYLOOP_LOG_FORMAT=json`); the request id of the HTTP request a record was written for; and
no secrets — passwords in URLs, bearer tokens and login tickets are masked in whatever is
written, third-party libraries' records and tracebacks included."""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

from cityloop.settings import get_settings

REQUEST_ID: ContextVar[str | None] = ContextVar("cityloop_request_id", default=None)
"""The id of the HTTP request being answered (api/access.py sets it)."""

ACCESS_LOGGER = "cityloop.access"
_HANDLER_NAME = "cityloop"

_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host: a database or broker URL
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@\"']*:)[^\s@/\"']+@"), r"\1***@"),
    (re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1***"),
    # JSON Web Tokens: API tokens and the console's login tickets
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "***"),
    (re.compile(r"(?i)([?&](?:ticket|token|access_token|password|secret)=)[^&\s\"']+"), r"\1***"),
)
_NOISY = ("aiokafka", "kafka", "faust", "mode", "asyncio")
"""Kafka clients' and Faust's debug records, built for nothing on the hot path."""


def redact(text: str) -> str:
    """`text` with passwords in URLs, bearer tokens, JWTs and ticket/token parameters masked."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def redacted_url(url: str) -> str:
    """A database or broker URL fit to print: its password masked."""
    return redact(url)


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _RequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class LineFormatter(logging.Formatter):
    """`2026-12-02T09:15:00.123Z WARNING worker streams.worker: message [request_id=…]`"""

    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {self.role} {record.name}: "
        line += record.getMessage()
        request_id = getattr(record, "request_id", None)
        if request_id and record.name != ACCESS_LOGGER:
            line += f" request_id={request_id}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, role, logger, message, and request_id, http
    (the access log's method, path, status, duration) and exception when a record has them."""

    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "role": self.role,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in ("request_id", "http"):
            value = getattr(record, field, None)
            if value is not None:
                document[field] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return redact(json.dumps(document, ensure_ascii=False, default=str))


def configure_logging(
    level: str = "WARNING", role: str = "cityloop", log_format: Literal["text", "json"] = "text"
) -> None:
    """Set up the root logger for the whole process (again: the handler of an earlier call is
    replaced): records at `level` and above (the access log's at INFO) to stderr, in
    `log_format`. Uvicorn's loggers write through it (run uvicorn with `log_config=None`); its
    own access log stays off, for api/access.py writes one with request ids."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(role) if log_format == "json" else LineFormatter(role))
    handler.addFilter(_RequestId())
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for earlier in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(earlier)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.WARNING))
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers.clear()
    uvicorn_access.propagate = False
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.INFO)
    logging.captureWarnings(True)  # a library's warning is a record in the same format


def configure_logging_for(level: str = "WARNING", role: str = "cli") -> None:
    """`configure_logging` in the format CITYLOOP_LOG_FORMAT names: what each command (the CLI's,
    the load tester's, the benchmark's) calls before it does anything."""
    configure_logging(level, role, get_settings().log_format)
