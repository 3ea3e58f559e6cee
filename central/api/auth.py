"""HTTP authentication and per-route authorisation.

Every route needs a valid credential unless its handler says ``opt=PUBLIC``; the
``TokenAuthMiddleware`` reads ``Authorization: Bearer <token>`` (API tokens ``vt_...`` and
login sessions ``vs_...``) or, for the web UI, the HttpOnly session cookie, and puts the
``Principal`` on ``request.user``. Roles and token scopes are then checked per route with a
guard::

    @get("/alerts", guards=[requires(Role.OPERATOR, Role.POLICE_API, scopes=["alerts:read"])])
    def alerts(self, principal: Principal) -> ...:  # or request.user

No or bad credential: 401. Wrong role or missing scope: 403. Both in the standard error body.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import anyio.to_thread
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import (
    AbstractAuthenticationMiddleware,
    AuthenticationResult,
    DefineMiddleware,
)
from litestar.types import ASGIApp

from central.accounts import AccountService, Principal, Role
from shared.errors import Forbidden, Unauthorized

__all__ = [
    "ALL_ROLES",
    "PUBLIC",
    "CookiePolicy",
    "Principal",
    "Role",
    "RoleGuard",
    "TokenAuthMiddleware",
    "auth_dependencies",
    "auth_middleware",
    "current_principal",
    "requires",
]

PUBLIC: Final[dict[str, Any]] = {"exclude_from_auth": True}
"""``opt`` of a handler anyone may call without a credential (health, login)."""

ALL_ROLES: Final[tuple[Role, ...]] = tuple(Role)
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_PATHS: Final = ["^/schema"]  # the OpenAPI document and its UIs


@dataclass(frozen=True)
class CookiePolicy:
    """How the web UI's session cookie is set.

    Attributes:
        name: Cookie name.
        secure: Send over HTTPS only.
        max_age_s: Lifetime in the browser (the session's own expiry is what counts).
    """

    name: str = "varta_session"
    secure: bool = True
    max_age_s: int = 8 * 3600


class TokenAuthMiddleware(AbstractAuthenticationMiddleware):
    """Turn a bearer token or session cookie into a ``Principal`` on ``request.user``."""

    def __init__(
        self,
        app: ASGIApp,
        accounts: AccountService,
        cookie: str = "varta_session",
        exclude: list[str] | None = None,
    ) -> None:
        super().__init__(app, exclude=exclude)
        self.accounts = accounts
        self.cookie = cookie

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        """Find and check the credential (in a worker thread: it reads DuckDB).

        Raises:
            Unauthorized: No credential, or one that is unknown, expired or revoked.
            Forbidden: A cookie-authenticated change from another origin.
        """
        secret, via_cookie = _credential(connection, self.cookie)
        if via_cookie and connection.scope.get("method") not in SAFE_METHODS:
            _same_origin(connection)
        principal = await anyio.to_thread.run_sync(self.accounts.authenticate, secret)
        return AuthenticationResult(user=principal, auth=principal.token_id)


def _credential(connection: ASGIConnection[Any, Any, Any, Any], cookie: str) -> tuple[str, bool]:
    """The bearer secret and whether it came from the cookie."""
    header = connection.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("expected 'Authorization: Bearer <token>'")
        return token.strip(), False
    if value := connection.cookies.get(cookie):
        return value, True
    raise Unauthorized("expected 'Authorization: Bearer <token>' or a session cookie")


def _same_origin(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """Refuse cookie-carried changes that a browser sent from another site (CSRF)."""
    origin = connection.headers.get("origin")
    if origin is None:
        return
    if urlsplit(origin).netloc != connection.headers.get("host", ""):
        raise Forbidden(f"expected a request from this site's origin, got {origin!r}")


class RoleGuard:
    """A Litestar guard: the principal must hold one of ``roles`` and every one of ``scopes``.

    Attributes:
        roles: Roles allowed.
        scopes: Scopes an API token must carry (login sessions have them all).
    """

    def __init__(self, roles: Iterable[Role], scopes: Iterable[str] = ()) -> None:
        self.roles = frozenset(Role(r) for r in roles)  # a misspelt role fails at import
        self.scopes = tuple(scopes)
        if not self.roles:
            raise ValueError("requires() needs at least one role")

    def __call__(self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        """Raise unless the caller may use the route."""
        principal = connection.scope.get("user")
        if not isinstance(principal, Principal):
            raise Unauthorized("expected 'Authorization: Bearer <token>' or a session cookie")
        if principal.role not in self.roles:
            allowed = sorted(r.value for r in self.roles)
            raise Forbidden(f"expected a role in {allowed}, got {principal.role.value!r}")
        missing = [s for s in self.scopes if not principal.has_scope(s)]
        if missing:
            raise Forbidden(f"expected a token with scopes {list(self.scopes)}, missing {missing}")

    def __repr__(self) -> str:
        return f"requires({sorted(r.value for r in self.roles)}, scopes={list(self.scopes)})"


def requires(*roles: Role, scopes: Iterable[str] = ()) -> RoleGuard:
    """A guard for ``guards=[...]`` of a handler, controller or router.

    Args:
        *roles: Roles that may call the route.
        scopes: Scopes an API token must carry as well, e.g. ``["alerts:read"]``.
    """
    return RoleGuard(roles, scopes)


def current_principal(request: Request[Any, Any, Any]) -> Principal:
    """Dependency ``principal``: who is calling (only on authenticated routes)."""
    principal = request.scope.get("user")
    if not isinstance(principal, Principal):
        raise Unauthorized("expected 'Authorization: Bearer <token>' or a session cookie")
    return principal


def auth_middleware(accounts: AccountService, cookie: str = "varta_session") -> DefineMiddleware:
    """The middleware for ``Litestar(middleware=[...])``; /schema stays public."""
    return DefineMiddleware(
        TokenAuthMiddleware, accounts=accounts, cookie=cookie, exclude=PUBLIC_PATHS
    )


def auth_dependencies(accounts: AccountService, cookie: CookiePolicy) -> dict[str, Provide]:
    """Dependencies ``principal``, ``accounts`` and ``cookie_policy`` for the app."""
    return {
        "principal": Provide(current_principal, sync_to_thread=False),
        "accounts": Provide(lambda: accounts, sync_to_thread=False),
        "cookie_policy": Provide(lambda: cookie, sync_to_thread=False),
    }
