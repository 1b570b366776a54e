"""The API's access log: one record per request, with the request id that the answer carries in
`X-Request-ID` (the caller's own, when it sent a usable one) and every record logged while the
request was answered carries too (cityloop.logs). A live stream whose client went away is a line
of it, not an error."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from anyio import BrokenResourceError, ClosedResourceError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cityloop.logs import ACCESS_LOGGER, REQUEST_ID, redact

log = logging.getLogger(ACCESS_LOGGER)

REQUEST_ID_HEADER = b"x-request-id"
USABLE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
"""A caller's request id is taken when it is this (no spaces, no control characters): it goes
into every log line of the request."""


def request_id_of(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER:
            offered: str = value.decode("latin-1")
            if USABLE_REQUEST_ID.fullmatch(offered):
                return offered
            break
    return uuid.uuid4().hex


def client_went_away(error: BaseException) -> bool:
    """Whether an error is only FastAPI's live-stream machinery finding its client gone: when a
    client disconnects, FastAPI (0.165) closes the stream's queue before it cancels the task
    that fills it, which may then be sending (anyio.BrokenResourceError, in a task group's
    exception group); uvicorn logged each as an ERROR with a 70-line traceback."""
    if isinstance(error, BaseExceptionGroup):
        return all(client_went_away(inner) for inner in error.exceptions)
    return isinstance(error, BrokenResourceError | ClosedResourceError)


class AccessLog:
    """Pure ASGI middleware: the live stream's answer passes through as it comes, and the
    request id's context variable reaches the route's code and its log records."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        header = (REQUEST_ID_HEADER, request_id.encode())
        status = 500  # unless an answer starts: what the server sends for an app that raised
        streaming = False
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers", ())
                streaming = (b"content-type", b"text/event-stream") in (
                    (name.lower(), value.split(b";")[0]) for name, value in headers
                )
                message = {**message, "headers": [*headers, header]}
            await send(message)

        token = REQUEST_ID.set(request_id)
        went_away = False
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as error:
            if not (streaming and client_went_away(error)):
                raise
            went_away = True
        finally:
            REQUEST_ID.reset(token)
            self._log(scope, status, time.perf_counter() - started, request_id, went_away)

    @staticmethod
    def _log(scope: Scope, status: int, seconds: float, request_id: str, went_away: bool) -> None:
        path = scope.get("path", "")
        query = scope.get("query_string", b"").decode("latin-1")
        target = redact(f"{path}?{query}") if query else path  # login tickets stay out
        client = scope.get("client")
        http: dict[str, Any] = {
            "method": scope.get("method", ""),
            "path": target,
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
            "client": f"{client[0]}:{client[1]}" if client else None,
        }
        if went_away:
            http["client_went_away"] = True
        log.info(
            "%s %s %s %.1fms%s request_id=%s",
            http["method"],
            target,
            status,
            http["duration_ms"],
            " (the client went away)" if went_away else "",
            request_id,
            extra={"http": http, "request_id": request_id},
        )
