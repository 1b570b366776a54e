"""HTTP refusals, in one shape for the whole API: {"detail": Problem}, documented as such."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.utils import is_body_allowed_for_status_code
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.schemas import (
    COMPONENTS,
    BatchProblemResponse,
    FieldProblem,
    Problem,
    ProblemResponse,
)
from handlers.access import Denied

REFUSALS: dict[int, str] = {
    status.HTTP_400_BAD_REQUEST: "the request cannot be read (a bad cursor, position or body)",
    status.HTTP_401_UNAUTHORIZED: "no bearer token, or one that is expired or not ours",
    status.HTTP_403_FORBIDDEN: "the token's role or scope does not allow this",
    status.HTTP_404_NOT_FOUND: "no such thing, or none the caller may see",
    status.HTTP_413_CONTENT_TOO_LARGE: "the body is over the limit",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "the Content-Type carries no event: a single event "
    "is application/cloudevents+json or application/json, a batch application/json or "
    "application/cloudevents-batch+json",
    status.HTTP_422_UNPROCESSABLE_CONTENT: "a parameter or the body is invalid; `fields` names "
    "the parameters at fault",
    status.HTTP_503_SERVICE_UNAVAILABLE: "the broker did not acknowledge in time; retry",
}
"""What each refusal status means, as the OpenAPI document says it."""


def refuse(
    status_code: int, reason: str, message: str, headers: Mapping[str, str] | None = None
) -> HTTPException:
    """The one way a route refuses: a reason a program can branch on, a message a person reads."""
    return refuse_with(status_code, Problem(reason=reason, message=message), headers)


def refuse_with(
    status_code: int, problem: Problem, headers: Mapping[str, str] | None = None
) -> HTTPException:
    """A refusal with more to say than a reason and a message (a batch's bad items)."""
    return HTTPException(
        status_code, problem.model_dump(mode="json", exclude_defaults=True), dict(headers or {})
    )


def forbidden(denied: Denied) -> HTTPException:
    return refuse(status.HTTP_403_FORBIDDEN, denied.code, denied.reason)


PROBLEM_MODELS: tuple[type[BaseModel], ...] = (ProblemResponse, BatchProblemResponse)
"""The refusal bodies; `api.main` puts them in the OpenAPI components."""


def problems(
    *codes: int, model: type[BaseModel] = ProblemResponse
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these refusal codes, each with the body it really has — JSON
    even where the route's own answer is not (the live stream)."""
    body = {"schema": {"$ref": COMPONENTS + model.__name__}}
    return {
        code: {"description": REFUSALS[code], "content": {"application/json": body}}
        for code in codes
    }


def field_problems(exc: RequestValidationError) -> list[FieldProblem]:
    """FastAPI's validation errors, each named by where the field is (`query.limit`)."""
    return [
        FieldProblem(field=".".join(str(step) for step in error["loc"]), message=error["msg"])
        for error in exc.errors()
    ]


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 for parameters or a body FastAPI refused, in the shape of every other refusal."""
    fields = field_problems(exc)
    problem = Problem(
        reason="invalid_request",
        message="; ".join(f"{field.field}: {field.message}" for field in fields),
        fields=fields,
    )
    return JSONResponse(
        {"detail": problem.model_dump(mode="json")},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


async def http_refusal(request: Request, exc: StarletteHTTPException) -> Response:
    """Refusals raised with `refuse` pass as they are; Starlette's own (an unknown path, a method
    the path does not take) get a reason too."""
    if not is_body_allowed_for_status_code(exc.status_code):
        return Response(status_code=exc.status_code, headers=exc.headers)
    detail: Any = exc.detail
    if not isinstance(detail, dict):
        reason = {
            status.HTTP_400_BAD_REQUEST: "bad_request",
            status.HTTP_404_NOT_FOUND: "not_found",
            status.HTTP_405_METHOD_NOT_ALLOWED: "method_not_allowed",
        }.get(exc.status_code, "refused")
        detail = Problem(reason=reason, message=str(detail)).model_dump(exclude_defaults=True)
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)


def install_refusals(app: FastAPI) -> None:
    app.exception_handler(RequestValidationError)(invalid_request)
    app.exception_handler(StarletteHTTPException)(http_refusal)
