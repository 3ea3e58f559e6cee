"""How the console answers errors: pages, not JSON.

No session, or an expired one, sends the browser to the login page (an htmx request gets
``HX-Redirect`` so the whole page goes); a role that may not do something gets the 403
page; a refused CSRF check, a bad form or an illegal step gets a page saying so. The REST
API keeps its JSON error bodies (``central/api/errors.py``): these handlers are set on the
console's router only.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.response import Redirect
from litestar.types import ExceptionHandlersMap

from central.alerts.model import IllegalTransition
from central.api.errors import STATUS
from central.web.pages import LOGIN, Console, render
from shared.errors import Unauthorized, VartaError

_TITLES = {
    400: "The request was not accepted",
    403: "Not allowed",
    404: "Not found",
    409: "Not possible in the alert's current state",
    429: "Too many requests",
}


def _to_login(request: Request[Any, Any, Any]) -> Response[Any]:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = f"{LOGIN}?expired=true&next={quote(target, safe='')}"
    if request.headers.get("hx-request") == "true":
        return Response(content=b"", status_code=401, headers={"HX-Redirect": url})
    if "text/event-stream" in request.headers.get("accept", ""):
        return Response(content=b"", status_code=401)
    return Redirect(path=url, status_code=303)


def error_handlers(console: Console) -> ExceptionHandlersMap:
    """The console router's exception handlers."""

    def page(request: Request[Any, Any, Any], status: int, message: str) -> Response[Any]:
        return render(
            console,
            request,
            "error.html",
            "error",
            status_code=status,
            status=status,
            title=_TITLES.get(status, "Something went wrong"),
            message=message,
        )

    def varta(request: Request[Any, Any, Any], exc: VartaError) -> Response[Any]:
        if isinstance(exc, Unauthorized):
            return _to_login(request)
        status = next((s for t, s in STATUS.items() if isinstance(exc, t)), 500)
        if isinstance(exc, IllegalTransition):
            status = 409
        return page(request, status, str(exc))

    def http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
        if isinstance(exc, NotAuthorizedException):
            return _to_login(request)
        message = exc.detail
        if isinstance(exc, PermissionDeniedException) and "CSRF" in exc.detail:
            message = "csrf"
        return page(request, exc.status_code, message)

    return {VartaError: varta, HTTPException: http}
