"""Account types: roles, token scopes and the authenticated principal (no I/O here).

Two kinds of credential prove who a caller is:

* a *session*, made by logging in with a password; it carries the user's role and is
  limited only by that role (``Principal.scopes is None``);
* an *API token* for a police or automation client, made by an administrator; it carries
  the owner's role *and* an explicit set of scopes, and a route that names scopes refuses
  a token without them.

Both are random bearer secrets stored only as their SHA-256 digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal

import msgspec


class Role(StrEnum):
    """What a user is, and so which routes they may call."""

    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    OPERATOR = "operator"
    POLICE_API = "police-api"
    ENGINEER = "engineer"


SCOPES: Final[frozenset[str]] = frozenset(
    {
        "alerts:read",
        "alerts:ack",
        "evidence:read",
        "search",
        "export",
        "agents:read",
        "status:read",
        "users:admin",
        "tokens:admin",
        "audit:read",
        "watchlists:read",
        "watchlists:write",
        "faces:read",
        "faces:write",
        "faces:decide",
        "national:read",
        "national:forward",
    }
)
"""Scopes an API token may carry; a route names the ones it needs (``requires(scopes=...)``)."""

CredentialKind = Literal["session", "api"]

SESSION_PREFIX: Final = "vs_"
TOKEN_PREFIX: Final = "vt_"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the user, their role, and what the credential allows.

    Attributes:
        user: The user name (the actor written to the audit log).
        role: The user's role.
        scopes: The API token's scopes, or ``None`` for a login session (role decides alone).
        token_id: The id of the session or API token used (for logout, revocation, audit).
        kind: ``"session"`` or ``"api"``.
    """

    user: str
    role: Role
    scopes: frozenset[str] | None
    token_id: str
    kind: CredentialKind = "session"

    def has_scope(self, scope: str) -> bool:
        """Whether this credential allows ``scope`` (sessions allow every scope)."""
        return self.scopes is None or scope in self.scopes


class UserRead(msgspec.Struct, frozen=True):
    """A user as shown to administrators (never the password hash)."""

    username: str
    role: str
    disabled: bool
    created_at: float
    created_by: str
    last_login_at: float | None
    locked_until: float | None


class TokenRead(msgspec.Struct, frozen=True):
    """An API token's metadata (never its secret)."""

    token_id: str
    username: str
    label: str
    scopes: list[str]
    created_at: float
    created_by: str
    expires_at: float | None
    last_used_at: float | None
    revoked_at: float | None
    revoked_by: str | None


class TokenCreated(msgspec.Struct, frozen=True):
    """A new API token: ``secret`` is shown this once and never stored."""

    token: TokenRead
    secret: str


class SessionCreated(msgspec.Struct, frozen=True):
    """A new login session: ``token`` is the bearer secret (also set as an HttpOnly cookie)."""

    token: str
    session_id: str
    username: str
    role: str
    expires_at: float
