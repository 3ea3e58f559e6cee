"""Login sessions, the caller's identity, user administration and API tokens over HTTP."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter

from central.accounts import AccountService, Principal, Role
from central.api.auth import ALL_ROLES, PUBLIC, CookiePolicy, requires
from central.api.dto import (
    AuditEntryRead,
    SessionCreated,
    TokenCreated,
    TokenRead,
    UserRead,
    rfc3339,
    to_read,
)
from central.api.login_gate import LoginGate
from central.audit import AuditLog
from central.search.query import parse_time


class LoginRequest(msgspec.Struct, frozen=True):
    """User name and password."""

    username: str
    password: str


class PasswordChange(msgspec.Struct, frozen=True):
    """The current password and the new one."""

    current: str
    new: str


class PrincipalRead(msgspec.Struct, frozen=True):
    """Who the caller is and what their credential allows (``scopes`` null: role decides)."""

    user: str
    role: str
    kind: str
    token_id: str
    scopes: list[str] | None


class UserCreate(msgspec.Struct, frozen=True):
    """A new user; without a password the user can hold API tokens but not log in."""

    username: str
    role: Role
    password: str | None = None


class UserUpdate(msgspec.Struct, frozen=True):
    """Changes to a user; omitted fields stay. ``reason`` goes to the audit log."""

    role: Role | None = None
    disabled: bool | None = None
    password: str | None = None
    reason: str = ""


class TokenCreate(msgspec.Struct, frozen=True):
    """A new API token for ``user`` with ``scopes``; the secret is returned once."""

    user: str
    scopes: list[str]
    label: str = ""
    expires_days: float | None = None


def _client(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else ""


class AuthController(Controller):
    """Log in and out; who am I."""

    path = "/api/v1/auth"
    tags = ("auth",)

    @post("/login", opt=PUBLIC, status_code=200, summary="Log in")
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[LoginRequest],
        accounts: NamedDependency[AccountService],
        cookie_policy: NamedDependency[CookiePolicy],
        login_gate: NamedDependency[LoginGate],
    ) -> Response[SessionCreated]:
        """A session token (also set as an HttpOnly, SameSite=Strict cookie for the web UI).

        Failed logins make their source wait (429 with Retry-After), growing with each
        failure; a login flood is answered 429 rather than queued.
        """
        client = _client(request)
        made = await login_gate.run(partial(accounts.login, data.username, data.password, client))
        session = to_read(made, SessionCreated)
        cookie = Cookie(
            key=cookie_policy.name,
            value=session.token,
            max_age=cookie_policy.max_age_s,
            httponly=True,
            secure=cookie_policy.secure,
            samesite="strict",
            path="/",
        )
        return Response(session, cookies=[cookie])

    @post(
        "/logout",
        guards=[requires(*ALL_ROLES)],
        sync_to_thread=True,
        status_code=204,
        summary="End this session",
    )
    def logout(
        self,
        principal: NamedDependency[Principal],
        accounts: NamedDependency[AccountService],
        cookie_policy: NamedDependency[CookiePolicy],
    ) -> Response[None]:
        """Revoke the session used for this request and clear the cookie."""
        accounts.logout(principal)
        response: Response[None] = Response(None, status_code=204)
        response.delete_cookie(cookie_policy.name, path="/")
        return response

    @post(
        "/password",
        guards=[requires(*ALL_ROLES)],
        status_code=204,
        summary="Change my password",
    )
    async def change_password(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[PasswordChange],
        principal: NamedDependency[Principal],
        accounts: NamedDependency[AccountService],
        login_gate: NamedDependency[LoginGate],
    ) -> None:
        """Replace the caller's password; every session of theirs ends (log in again)."""
        change = partial(
            accounts.change_password, principal.user, data.current, data.new, _client(request)
        )
        await login_gate.run(change)

    @get("/me", guards=[requires(*ALL_ROLES)], sync_to_thread=False, summary="Who am I")
    def me(self, principal: NamedDependency[Principal]) -> PrincipalRead:
        """The caller's user, role and credential."""
        scopes = sorted(principal.scopes) if principal.scopes is not None else None
        return PrincipalRead(
            principal.user, principal.role.value, principal.kind, principal.token_id, scopes
        )


class UserController(Controller):
    """User administration (administrators only)."""

    path = "/api/v1/users"
    tags = ("users",)
    guards = [requires(Role.ADMIN, scopes=["users:admin"])]  # noqa: RUF012 (Litestar reads it from the class)

    @get("/", sync_to_thread=True, summary="List users")
    def list_users(self, accounts: NamedDependency[AccountService]) -> list[UserRead]:
        """Every user, by name."""
        return [to_read(u, UserRead) for u in accounts.list_users()]

    @post("/", sync_to_thread=True, summary="Create a user")
    def create_user(
        self,
        data: JSONBody[UserCreate],
        principal: NamedDependency[Principal],
        accounts: NamedDependency[AccountService],
    ) -> UserRead:
        """Add a user with a role (and a password, to let them log in)."""
        user = accounts.create_user(data.username, data.role, data.password, principal.user)
        return to_read(user, UserRead)

    @get("/{username:str}", sync_to_thread=True, summary="One user")
    def get_user(
        self, username: FromPath[str], accounts: NamedDependency[AccountService]
    ) -> UserRead:
        """One user."""
        return to_read(accounts.get_user(username), UserRead)

    @patch("/{username:str}", sync_to_thread=True, summary="Change a user")
    def update_user(
        self,
        username: FromPath[str],
        data: JSONBody[UserUpdate],
        principal: NamedDependency[Principal],
        accounts: NamedDependency[AccountService],
    ) -> UserRead:
        """Change role, disabled flag or password; the user's sessions end."""
        user = accounts.update_user(
            username, principal.user, data.role, data.disabled, data.password, data.reason
        )
        return to_read(user, UserRead)


class TokenController(Controller):
    """API tokens for police and automation clients (administrators only)."""

    path = "/api/v1/tokens"
    tags = ("tokens",)
    guards = [requires(Role.ADMIN, scopes=["tokens:admin"])]  # noqa: RUF012

    @post("/", sync_to_thread=True, summary="Create an API token")
    def create_token(
        self,
        data: JSONBody[TokenCreate],
        principal: NamedDependency[Principal],
        accounts: NamedDependency[AccountService],
    ) -> TokenCreated:
        """The secret is in this response only; it is stored hashed.

        An API token may grant only scopes it holds itself.
        """
        made = accounts.create_token(
            data.user,
            data.scopes,
            principal.user,
            data.label,
            data.expires_days,
            grantable=principal.scopes,
        )
        return to_read(made, TokenCreated)

    @get("/", sync_to_thread=True, summary="List API tokens")
    def list_tokens(
        self,
        accounts: NamedDependency[AccountService],
        user: Annotated[str | None, Parameter(description="Only this user's tokens.")] = None,
    ) -> list[TokenRead]:
        """Token metadata with last use, expiry and revocation (never secrets)."""
        return [to_read(t, TokenRead) for t in accounts.list_tokens(user)]

    @delete("/{token_id:str}", sync_to_thread=True, status_code=200, summary="Revoke a token")
    def revoke_token(
        self,
        token_id: FromPath[str],
        principal: NamedDependency[Principal],
        accounts: NamedDependency[AccountService],
        reason: Annotated[str, Parameter(description="Why (audited).")] = "",
    ) -> TokenRead:
        """Revoke at once; later requests with it get 401."""
        return to_read(accounts.revoke_token(token_id, principal.user, reason), TokenRead)


class AuditVerificationRead(msgspec.Struct, frozen=True):
    """The chain check: ``head`` is the hash to note outside central as an anchor."""

    ok: bool
    rows: int
    problems: list[str]
    head: str


class AuditController(Controller):
    """Reading and checking the audit log; reading it is itself audited."""

    path = "/api/v1/audit"
    tags = ("audit",)

    @get(
        "/",
        guards=[requires(Role.ADMIN, Role.SUPERVISOR, scopes=["audit:read"])],
        sync_to_thread=True,
    )
    def entries(
        self,
        audit: NamedDependency[AuditLog],
        principal: NamedDependency[Principal],
        actor: Annotated[str | None, Parameter(description="Only this actor.")] = None,
        action: Annotated[str | None, Parameter(description="Only this action.")] = None,
        target: Annotated[str | None, Parameter(description="Only this target.")] = None,
        since: Annotated[
            str | None, Parameter(description="From (RFC 3339, or UNIX seconds).")
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=1000, description="Rows at most.")] = 100,
    ) -> list[AuditEntryRead]:
        """Audit rows matching every filter, newest first."""
        start = parse_time(since, "since")
        from_s = start.timestamp() if start else None
        rows = audit.query(actor, action, target, from_s, limit)
        filters = {"actor": actor, "action": action, "target": target}
        filters["since"] = rfc3339(from_s) if from_s is not None else None
        audit.record(principal.user, "audit.view", details={**filters, "rows": len(rows)})
        return [to_read(r, AuditEntryRead) for r in rows]

    @get("/verify", guards=[requires(Role.ADMIN, scopes=["audit:read"])], sync_to_thread=True)
    def verify(
        self,
        audit: NamedDependency[AuditLog],
        anchor: Annotated[str | None, Parameter(description="A head noted earlier.")] = None,
    ) -> AuditVerificationRead:
        """Walk the hash chain (``varta central audit verify`` does the same offline)."""
        result = audit.verify(anchor)
        return AuditVerificationRead(result.ok, result.rows, result.problems, result.head)
