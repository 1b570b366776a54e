"""HTTP answers for refusals, in one shape: {"detail": {"reason": ..., "message": ...}}."""

from __future__ import annotations

from fastapi import HTTPException, status

from handlers.access import Denied


def forbidden(denied: Denied) -> HTTPException:
    return HTTPException(
        status.HTTP_403_FORBIDDEN, {"reason": "forbidden", "message": denied.reason}
    )
