"""Users, login sessions and API tokens: the rules, with every change written to the audit log.

Writes to the ``users`` and ``credentials`` tables go through one lock (DuckDB would refuse
two concurrent updates of one row); password hashing runs outside it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

import duckdb
from argon2 import PasswordHasher

from central.accounts import secrets as sec
from central.accounts.login import (
    LoginThrottle,
    LoginThrottled,
    Passwords,
    RefusalDigest,
    ThrottlePolicy,
)
from central.accounts.model import (
    SCOPES,
    CredentialKind,
    Principal,
    Role,
    SessionCreated,
    TokenCreated,
    TokenRead,
    UserRead,
)
from central.accounts.repository import AccountRepository, NewCredential
from central.audit import AuditLog
from central.store.db import Database
from shared.errors import Forbidden, InvalidRequest, NotFound, Unauthorized

log = logging.getLogger(__name__)

NO_PASSWORD: Final = "!"  # never a valid argon2 hash: such a user cannot log in
TOUCH_EVERY_S: Final = 60.0  # last-used time resolution; spares a write per request
BAD_LOGIN: Final = "invalid user name or password, or the account is disabled"
LoginState = tuple[str, bool, int, float | None]


@dataclass(frozen=True)
class AccountPolicy:
    """Session lifetime and the handling of failed logins.

    Attributes:
        session_ttl_s: A login session expires this long after it was made.
        throttle: When failed logins make their source wait (``login.LoginThrottle``).
        refusal_window_s: Refused logins of one user name from one source are audited as
            at most two rows per window this long (``login.RefusalDigest``).
        hash_concurrency: Password hashes computed at the same time, at most.
    """

    session_ttl_s: float = 8 * 3600.0
    throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    refusal_window_s: float = 600.0
    hash_concurrency: int = 2


class AccountService:
    """Create users and tokens, log in, and turn bearer secrets into principals.

    Args:
        db: The central database (writes go through its writer, reads through readers).
        audit: Where logins, failures and changes are recorded.
        policy: Session lifetime and lockout.
        clock: Seconds since the epoch (injectable for tests).
        hasher: argon2 password hasher (tests may pass cheaper parameters).
    """

    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        policy: AccountPolicy | None = None,
        clock: Callable[[], float] = time.time,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self._db = db
        self._audit = audit
        self._policy = p = policy or AccountPolicy()
        self._clock = clock
        self._passwords = Passwords(hasher, p.hash_concurrency)
        self._throttle = LoginThrottle(p.throttle, clock)
        self._refusals = RefusalDigest(audit, p.refusal_window_s, clock)
        self._repo = AccountRepository()

    # users ------------------------------------------------------------------------------

    def create_user(
        self, username: str, role: Role | str, password: str | None, actor: str
    ) -> UserRead:
        """Add a user; ``password=None`` makes a user who can hold API tokens but not log in.

        Raises:
            InvalidRequest: Bad name, role or password, or the name is taken.
        """
        sec.check_username(username)
        role = _role(role)
        hashed = self._passwords.hash(password) if password else NO_PASSWORD

        def insert(con: duckdb.DuckDBPyConnection) -> None:
            if self._repo.get_user(con, username) is not None:
                raise InvalidRequest(f"user {username!r} already exists")
            self._repo.insert_user(con, username, role.value, hashed, self._clock(), actor)

        self._db.writer.call(insert)
        self._audit.record(actor, "user.create", f"user:{username}", details={"role": role.value})
        return self.get_user(username)

    def get_user(self, username: str) -> UserRead:
        """One user.

        Raises:
            NotFound: No such user.
        """
        with self._db.reader() as con:
            user = self._repo.get_user(con, username)
        if user is None:
            raise NotFound(f"no user {username!r}")
        return user

    def list_users(self) -> list[UserRead]:
        """Every user, by name."""
        with self._db.reader() as con:
            return self._repo.list_users(con)

    def update_user(
        self,
        username: str,
        actor: str,
        role: Role | str | None = None,
        disabled: bool | None = None,
        password: str | None = None,
        reason: str = "",
    ) -> UserRead:
        """Change a user's role, disabled flag or password; their login sessions end.

        Raises:
            NotFound: No such user.
            InvalidRequest: Bad role or password, or it would leave no active administrator.
        """
        new_role = _role(role).value if role is not None else None
        hashed = self._passwords.hash(password) if password else None

        def update(con: duckdb.DuckDBPyConnection) -> None:
            before = self._repo.get_user(con, username)
            if before is None:
                raise NotFound(f"no user {username!r}")
            demoted = new_role not in (None, Role.ADMIN.value) or disabled is True
            if before.role == Role.ADMIN.value and not before.disabled and demoted:
                admins = [u for u in self._repo.list_users(con) if _active_admin(u)]
                if len(admins) <= 1:
                    raise InvalidRequest(f"{username!r} is the last active administrator")
            self._repo.update_user(con, username, new_role, disabled, hashed)
            self._repo.revoke_sessions(con, username, self._clock(), actor)

        self._db.writer.call(update)
        changed = {"role": new_role, "disabled": disabled, "password": hashed is not None}
        self._audit.record(actor, "user.change", f"user:{username}", reason, changed)
        return self.get_user(username)

    # login sessions ---------------------------------------------------------------------

    def login(self, username: str, password: str, client: str = "") -> SessionCreated:
        """Check a password and open a session; every attempt is audited.

        Raises:
            LoginThrottled: This client failed too often on this user name, or from its
                address, lately; it must wait (``retry_after_s``). Not hashed, not counted.
            LoginBusy: Too many password checks at once.
            Unauthorized: Wrong name or password, or a disabled account (one message, so a
                caller cannot tell which).
        """
        now = self._clock()
        self._check(username, password, client)
        secret = sec.new_secret("session")
        token_id = self._store_credential(
            "session", secret, username, "login", None, username, now + self._policy.session_ttl_s
        )

        def succeeded(con: duckdb.DuckDBPyConnection) -> None:
            self._repo.set_login_outcome(con, username, 0, None, now)
            self._repo.purge_sessions(con, now - 86_400)

        self._db.writer.call(succeeded)
        self._audit.record(username, "login", f"session:{token_id}", details={"client": client})
        role = self.get_user(username).role
        return SessionCreated(secret, token_id, username, role, now + self._policy.session_ttl_s)

    def _check(self, username: str, password: str, client: str) -> None:
        """Raise unless ``password`` is right and the account usable; count and audit failures.

        Every check that is not throttled costs one password hash, whatever the account.
        """
        wait = self._throttle.wait_s(username, client)
        if wait > 0:
            self._refusals.refused(username, client, "throttled")
            raise LoginThrottled(f"too many failed logins; try again in {math.ceil(wait)} s", wait)
        with self._db.reader() as con:
            state = self._repo.login_state(con, username)
        ok = self._passwords.verify(state[0] if state else None, password)
        why = None
        if not ok:
            why = "bad password" if state is not None else "unknown user"
        elif state is not None and state[1]:
            why = "disabled"
        if why is not None:
            self._throttle.failed(username, client)
            self._refusals.refused(username, client, why)
            raise Unauthorized(BAD_LOGIN)
        self._throttle.succeeded(username, client)

    def flush_refusals(self) -> None:
        """Write the pending counts of refused logins to the audit log now (at shutdown)."""
        self._refusals.flush(everything=True)

    def change_password(self, username: str, current: str, new: str, client: str = "") -> None:
        """A user replaces their own password; all their sessions end.

        Raises:
            Unauthorized: ``current`` is wrong (counted like a failed login).
            LoginThrottled: Too many failures lately (as for ``login``).
            InvalidRequest: ``new`` is not an acceptable password.
        """
        self._check(username, current, client)
        self.update_user(username, username, password=new, reason="own password change")

    def logout(self, principal: Principal) -> None:
        """End the session the principal used (API tokens are revoked, not logged out).

        Raises:
            InvalidRequest: The principal used an API token.
        """
        if principal.kind != "session":
            raise InvalidRequest("expected a login session; API tokens are revoked instead")
        now = self._clock()
        self._db.writer.call(
            lambda con: self._repo.revoke(con, principal.token_id, now, principal.user)
        )
        self._audit.record(principal.user, "logout", f"session:{principal.token_id}")

    # bearer secrets ---------------------------------------------------------------------

    def authenticate(self, secret: str) -> Principal:
        """The principal a bearer secret stands for.

        Raises:
            Unauthorized: Unknown, revoked or expired secret, or a disabled user.
        """
        self._refusals.flush()  # a window of refused logins ended: its summary rows, now
        if not secret.startswith(("vs_", "vt_")) or len(secret) < sec.MIN_SECRET:
            raise Unauthorized("expected a Varta session or API token (vs_... or vt_...)")
        now = self._clock()
        with self._db.reader() as con:
            row = self._repo.credential_by_hash(con, sec.digest(secret))
        if row is None:
            raise Unauthorized("unknown token")
        if row["revoked_at"] is not None:
            raise Unauthorized("token revoked")
        if row["expires_at"] is not None and row["expires_at"] <= now:
            raise Unauthorized("token expired")
        if row["disabled"]:
            raise Unauthorized("user disabled")
        if row["last_used_at"] is None or now - row["last_used_at"] >= TOUCH_EVERY_S:
            token_id = row["token_id"]
            self._db.writer.submit(lambda con: self._repo.touch(con, token_id, now))
        scopes = None if row["kind"] == "session" else frozenset(row["scopes"] or ())
        return Principal(row["username"], Role(row["role"]), scopes, row["token_id"], row["kind"])

    def _store_credential(
        self,
        kind: CredentialKind,
        secret: str,
        username: str,
        label: str,
        scopes: list[str] | None,
        actor: str,
        expires_at: float | None,
    ) -> str:
        """Store a credential by the digest of ``secret``; return its id."""
        token_id = sec.new_id(kind)
        new = NewCredential(
            token_id=token_id,
            kind=kind,
            token_hash=sec.digest(secret),
            username=username,
            label=label,
            scopes=scopes,
            created_at=self._clock(),
            created_by=actor,
            expires_at=expires_at,
        )

        def insert(con: duckdb.DuckDBPyConnection) -> None:
            if self._repo.get_user(con, username) is None:
                raise NotFound(f"no user {username!r}")
            self._repo.insert_credential(con, new)

        self._db.writer.call(insert)
        return token_id

    # API tokens -------------------------------------------------------------------------

    def create_token(
        self,
        username: str,
        scopes: Iterable[str],
        actor: str,
        label: str = "",
        expires_days: float | None = None,
        secret: str | None = None,
        grantable: frozenset[str] | None = None,
    ) -> TokenCreated:
        """Make an API token for ``username``; the secret is returned once, stored hashed.

        Args:
            username: The owner; the token acts with this user's role.
            scopes: What the token may do (``model.SCOPES``).
            actor: Who asked (audited).
            label: What the token is for, e.g. ``"patrol app, district 3"``.
            expires_days: Lifetime; None for no expiry.
            secret: Register this secret instead of a fresh one (bootstrap only).
            grantable: Scopes the actor's own API token holds (None for a login session);
                a token cannot mint a wider one.

        Raises:
            NotFound: No such user.
            InvalidRequest: Unknown scope or non-positive lifetime.
            Forbidden: A scope the actor's token does not hold itself.
        """
        wanted = sorted(set(scopes))
        unknown = [s for s in wanted if s not in SCOPES]
        if unknown:
            raise InvalidRequest(f"expected scopes from {sorted(SCOPES)}, got unknown {unknown}")
        beyond = [s for s in wanted if grantable is not None and s not in grantable]
        if beyond:
            raise Forbidden(f"expected scopes this token holds itself, got {beyond} beyond them")
        if expires_days is not None and expires_days <= 0:
            raise InvalidRequest(f"expected a positive expiry in days, got {expires_days}")
        secret = secret or sec.new_secret("api")
        expires = self._clock() + expires_days * 86_400 if expires_days is not None else None
        token_id = self._store_credential("api", secret, username, label, wanted, actor, expires)
        details = {"user": username, "scopes": wanted, "label": label, "expires_at": expires}
        self._audit.record(actor, "token.create", f"token:{token_id}", details=details)
        return TokenCreated(self.get_token(token_id), secret)

    def list_tokens(self, username: str | None = None) -> list[TokenRead]:
        """API tokens (never their secrets), newest first."""
        with self._db.reader() as con:
            return self._repo.list_tokens(con, username)

    def get_token(self, token_id: str) -> TokenRead:
        """One API token's metadata.

        Raises:
            NotFound: No such API token.
        """
        with self._db.reader() as con:
            token = self._repo.get_token(con, token_id)
        if token is None:
            raise NotFound(f"no API token {token_id!r}")
        return token

    def revoke_token(self, token_id: str, actor: str, reason: str = "") -> TokenRead:
        """Revoke an API token at once (revoking a revoked token changes nothing).

        Raises:
            NotFound: No such API token.
        """
        self.get_token(token_id)
        now = self._clock()
        changed = self._db.writer.call(lambda con: self._repo.revoke(con, token_id, now, actor))
        if changed:
            self._audit.record(actor, "token.revoke", f"token:{token_id}", reason)
        return self.get_token(token_id)

    def token_for_secret(self, secret: str) -> TokenRead | None:
        """The API token made from ``secret``, if any (bootstrap uses it to stay idempotent)."""
        with self._db.reader() as con:
            row = self._repo.credential_by_hash(con, sec.digest(secret))
        if row is None or row["kind"] != "api":
            return None
        return self.get_token(row["token_id"])


def _active_admin(user: UserRead) -> bool:
    return user.role == Role.ADMIN.value and not user.disabled


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError as err:
        raise InvalidRequest(
            f"expected a role from {[r.value for r in Role]}, got {role!r}"
        ) from err
