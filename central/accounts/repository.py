"""SQL for users and credentials (login sessions and API tokens); parameterised only.

Times are stored as TIMESTAMPTZ and exchanged as UNIX seconds. Only SHA-256 digests of
bearer secrets are stored; password hashes are argon2id strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import duckdb

from central.accounts.model import TokenRead, UserRead

_USER_COLUMNS: Final = (
    "username, role, disabled, epoch(created_at), created_by, epoch(last_login_at), "
    "epoch(locked_until)"
)
_TOKEN_COLUMNS: Final = (
    "token_id, username, label, scopes, epoch(created_at), created_by, epoch(expires_at), "
    "epoch(last_used_at), epoch(revoked_at), revoked_by"
)


@dataclass(frozen=True)
class NewCredential:
    """A session or API token to store (its secret only as a digest)."""

    token_id: str
    kind: str
    token_hash: str
    username: str
    label: str
    scopes: list[str] | None
    created_at: float
    created_by: str
    expires_at: float | None


_CREDENTIAL_KEYS: Final = (
    "token_id",
    "kind",
    "username",
    "scopes",
    "expires_at",
    "revoked_at",
    "last_used_at",
    "role",
    "disabled",
)


def _user(row: tuple[Any, ...]) -> UserRead:
    return UserRead(row[0], row[1], bool(row[2]), row[3], row[4], row[5], row[6])


def _token(row: tuple[Any, ...]) -> TokenRead:
    return TokenRead(
        row[0], row[1], row[2], list(row[3] or []), row[4], row[5], row[6], row[7], row[8], row[9]
    )


class AccountRepository:
    """Statements over ``users`` and ``credentials``; the caller passes the cursor."""

    def insert_user(
        self,
        con: duckdb.DuckDBPyConnection,
        username: str,
        role: str,
        password_hash: str,
        now: float,
        actor: str,
    ) -> None:
        """Add a user (the caller checked the name is free)."""
        con.execute(
            "INSERT INTO users (username, role, password_hash, created_at, created_by) "
            "VALUES (?, ?, ?, to_timestamp(?), ?)",
            [username, role, password_hash, now, actor],
        )

    def get_user(self, con: duckdb.DuckDBPyConnection, username: str) -> UserRead | None:
        """One user, or None."""
        row = con.execute(
            f"SELECT {_USER_COLUMNS} FROM users WHERE username = ?", [username]
        ).fetchone()
        return _user(row) if row else None

    def list_users(self, con: duckdb.DuckDBPyConnection) -> list[UserRead]:
        """Every user by name."""
        rows = con.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY username").fetchall()
        return [_user(r) for r in rows]

    def login_state(
        self, con: duckdb.DuckDBPyConnection, username: str
    ) -> tuple[str, bool, int, float | None] | None:
        """``(password_hash, disabled, failed_logins, locked_until)`` of a user, or None."""
        row = con.execute(
            "SELECT password_hash, disabled, failed_logins, epoch(locked_until) "
            "FROM users WHERE username = ?",
            [username],
        ).fetchone()
        return (str(row[0]), bool(row[1]), int(row[2]), row[3]) if row else None

    def set_login_outcome(
        self,
        con: duckdb.DuckDBPyConnection,
        username: str,
        failed_logins: int,
        locked_until: float | None,
        login_at: float | None,
    ) -> None:
        """Store the failure counter and lock after an attempt (and the time of a success)."""
        con.execute(
            "UPDATE users SET failed_logins = ?, locked_until = to_timestamp(?), "
            "last_login_at = coalesce(to_timestamp(?), last_login_at) WHERE username = ?",
            [failed_logins, locked_until, login_at, username],
        )

    def update_user(
        self,
        con: duckdb.DuckDBPyConnection,
        username: str,
        role: str | None = None,
        disabled: bool | None = None,
        password_hash: str | None = None,
    ) -> None:
        """Change the given fields; None leaves a field as it is."""
        con.execute(
            "UPDATE users SET role = coalesce(?, role), disabled = coalesce(?, disabled), "
            "password_hash = coalesce(?, password_hash), "
            "failed_logins = CASE WHEN ? THEN 0 ELSE failed_logins END, "
            "locked_until = CASE WHEN ? THEN NULL ELSE locked_until END "
            "WHERE username = ?",
            [role, disabled, password_hash, *[password_hash is not None] * 2, username],
        )

    def insert_credential(self, con: duckdb.DuckDBPyConnection, new: NewCredential) -> None:
        """Store a session or API token by the digest of its secret."""
        con.execute(
            "INSERT INTO credentials (token_id, kind, token_hash, username, label, scopes, "
            "created_at, created_by, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, to_timestamp(?), ?, to_timestamp(?))",
            [
                new.token_id,
                new.kind,
                new.token_hash,
                new.username,
                new.label,
                new.scopes,
                new.created_at,
                new.created_by,
                new.expires_at,
            ],
        )

    def credential_by_hash(
        self, con: duckdb.DuckDBPyConnection, token_hash: str
    ) -> dict[str, Any] | None:
        """A credential joined with its user's role and state, or None."""
        row = con.execute(
            "SELECT c.token_id, c.kind, c.username, c.scopes, epoch(c.expires_at), "
            "epoch(c.revoked_at), epoch(c.last_used_at), u.role, u.disabled "
            "FROM credentials c JOIN users u USING (username) WHERE c.token_hash = ?",
            [token_hash],
        ).fetchone()
        if row is None:
            return None
        return dict(zip(_CREDENTIAL_KEYS, row, strict=True))

    def touch(self, con: duckdb.DuckDBPyConnection, token_id: str, now: float) -> None:
        """Record that a credential was just used."""
        con.execute(
            "UPDATE credentials SET last_used_at = to_timestamp(?) WHERE token_id = ?",
            [now, token_id],
        )

    def revoke(
        self,
        con: duckdb.DuckDBPyConnection,
        token_id: str,
        now: float,
        actor: str,
    ) -> bool:
        """Revoke one credential; False if it does not exist or was already revoked."""
        rows = con.execute(
            "UPDATE credentials SET revoked_at = to_timestamp(?), revoked_by = ? "
            "WHERE token_id = ? AND revoked_at IS NULL RETURNING token_id",
            [now, actor, token_id],
        ).fetchall()
        return bool(rows)

    def revoke_sessions(
        self, con: duckdb.DuckDBPyConnection, username: str, now: float, actor: str
    ) -> None:
        """Revoke every live login session of a user (after a password or role change)."""
        con.execute(
            "UPDATE credentials SET revoked_at = to_timestamp(?), revoked_by = ? "
            "WHERE username = ? AND kind = 'session' AND revoked_at IS NULL",
            [now, actor, username],
        )

    def get_token(self, con: duckdb.DuckDBPyConnection, token_id: str) -> TokenRead | None:
        """One API token's metadata, or None (sessions are not listed)."""
        row = con.execute(
            f"SELECT {_TOKEN_COLUMNS} FROM credentials WHERE token_id = ? AND kind = 'api'",
            [token_id],
        ).fetchone()
        return _token(row) if row else None

    def list_tokens(
        self, con: duckdb.DuckDBPyConnection, username: str | None = None
    ) -> list[TokenRead]:
        """API tokens (of one user, if given), newest first."""
        rows = con.execute(
            f"SELECT {_TOKEN_COLUMNS} FROM credentials WHERE kind = 'api' "
            "AND (? IS NULL OR username = ?) ORDER BY created_at DESC, token_id",
            [username, username],
        ).fetchall()
        return [_token(r) for r in rows]

    def purge_sessions(self, con: duckdb.DuckDBPyConnection, before: float) -> None:
        """Delete login sessions that expired or were revoked before ``before``."""
        con.execute(
            "DELETE FROM credentials WHERE kind = 'session' AND "
            "(expires_at < to_timestamp(?) OR revoked_at < to_timestamp(?))",
            [before, before],
        )
