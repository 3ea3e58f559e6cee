"""The one place where the project's exceptions become HTTP responses."""

from __future__ import annotations

import math
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from shared.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    SourceUnavailable,
    TooManyRequests,
    Unauthorized,
    VartaError,
)

STATUS: dict[type[VartaError], int] = {
    InvalidRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooManyRequests: 429,
    SourceUnavailable: 503,
}


def error_body(status: int, message: str, detail: Any = None) -> dict[str, Any]:
    """Every error response has this shape: ``{"status", "error", "detail"}``."""
    return {"status": status, "error": message, "detail": detail}


def varta_error(_: Request[Any, Any, Any], exc: VartaError) -> Response[dict[str, Any]]:
    """Map our exceptions to 4xx (500 only for what is truly unexpected); 429 says when
    to try again in ``Retry-After`` (whole seconds)."""
    status = next((s for t, s in STATUS.items() if isinstance(exc, t)), 500)
    headers = {}
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    return Response(error_body(status, str(exc)), status_code=status, headers=headers)


def http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    """Litestar's own errors (validation, 404 routes) in the same shape."""
    detail = exc.extra if isinstance(exc, ValidationException) else None
    return Response(error_body(exc.status_code, exc.detail, detail), status_code=exc.status_code)


HANDLERS: ExceptionHandlersMap = {VartaError: varta_error, HTTPException: http_error}
