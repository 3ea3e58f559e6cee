"""Document the error responses every operation can give, in the served OpenAPI schema.

Litestar documents what a handler returns, not what guards and the error handlers in
``central/api/errors.py`` answer. This adds those answers, derived from each route:
400 for any request (validation), 401 and 403 for guarded routes (401 also for the login
routes), 404 for routes that take an id in their path or name an object in their body, 409
for alert transitions and entries that exist already, 429 (with ``Retry-After``) for logins and
password changes, 503 for searches that read the sighting archive. All share the error body
``{"status", "error", "detail"}``.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Litestar
from litestar.openapi.spec import (
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Reference,
    Schema,
)
from litestar.routes import HTTPRoute

ERROR_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["status", "error", "detail"],
    properties={
        "status": Schema(type=OpenAPIType.INTEGER, description="The HTTP status code."),
        "error": Schema(type=OpenAPIType.STRING, description="What was expected, what came."),
        "detail": Schema(description="Details, e.g. the invalid parameters."),
    },
)
RETRY_AFTER: dict[str, OpenAPIHeader | Reference] = {
    "Retry-After": OpenAPIHeader(
        schema=Schema(type=OpenAPIType.INTEGER), description="Seconds to wait."
    )
}
DESCRIPTIONS = {
    400: "Invalid request: the body says what was expected.",
    401: "No valid credentials (token or session).",
    403: "Authenticated, but the role or token scope does not allow this.",
    404: "No such object.",
    409: "Not allowed in the object's current state.",
    429: "Too many attempts or logins at once; try again after Retry-After seconds.",
    503: "The sighting archive is enabled but does not answer; try again later.",
}
THROTTLED = ("/api/v1/auth/login", "/api/v1/auth/password")
ARCHIVE_READERS = ("/api/v1/sightings/search", "/api/v1/vehicles/journey")


def _codes(path: str, method: str, guarded: bool) -> list[int]:
    codes = [400]
    if guarded:
        codes += [401, 403]
    elif path.startswith("/api/v1/auth/"):
        codes.append(401)  # wrong credentials, no session
    if "{" in path or (guarded and method != "GET"):
        codes.append(404)  # an id in the path or a named object in the body
    if method == "POST" and path.startswith("/api/v1/alerts/"):
        codes.append(409)
    if path in THROTTLED:
        codes.append(429)
    if method == "POST" and path.startswith("/api/v1/watchlists/") and path.endswith("/entries"):
        codes.append(409)  # the entry exists already
    if path in ARCHIVE_READERS:
        codes.append(503)  # archived days are read from the archive
    return codes


def document_errors(app: Litestar) -> None:
    """Add the error responses to ``app.openapi_schema`` (served at /schema)."""
    schema = app.openapi_schema
    components = schema.components
    components.schemas = {**(components.schemas or {}), "Error": ERROR_SCHEMA}
    body = {
        "application/json": OpenAPIMediaType(schema=Reference(ref="#/components/schemas/Error"))
    }
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        path = re.sub(r"\{(\w+):[^}]+\}", r"{\1}", route.path)
        item = (schema.paths or {}).get(path)
        if item is None:
            continue
        for handler in route.route_handlers:
            guarded = bool(handler.resolve_guards())
            for method in handler.http_methods:
                operation: Any = getattr(item, method.lower(), None)
                if operation is None:
                    continue
                responses = operation.responses or {}
                for code in _codes(path, method, guarded):
                    headers = RETRY_AFTER if code == 429 else None
                    responses.setdefault(
                        str(code),
                        OpenAPIResponse(
                            description=DESCRIPTIONS[code], content=body, headers=headers
                        ),
                    )
                operation.responses = responses
