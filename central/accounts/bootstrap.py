"""Build the account service from configuration, reading the named bootstrap secrets."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from central.accounts.login import ThrottlePolicy
from central.accounts.model import SCOPES, TOKEN_PREFIX, Role
from central.accounts.secrets import MIN_SECRET
from central.accounts.service import AccountPolicy, AccountService
from central.audit import AuditLog
from central.config import AuthConfig
from central.store.db import Database
from shared.errors import ConfigError

log = logging.getLogger(__name__)

BOOTSTRAP = "bootstrap"  # the actor and token label of what start-up itself creates


def policy_of(config: AuthConfig) -> AccountPolicy:
    """The service's policy from the ``auth`` config section."""
    login = config.login
    throttle = ThrottlePolicy(
        free_failures=login.free_failures,
        source_free_failures=login.source_free_failures,
        account_free_failures=login.account_free_failures,
        delay_initial_s=login.delay_initial_s,
        delay_max_s=login.delay_max_s,
        forget_s=login.forget_s,
    )
    return AccountPolicy(
        config.session_ttl_s, throttle, login.audit_window_s, login.hash_concurrency
    )


def read_token_file(path: Path) -> str:
    """An API token secret from a file (warns if others may read it).

    Raises:
        ConfigError: Unreadable file, or content that is not a ``vt_`` secret.
    """
    try:
        secret = path.read_text().strip()
        mode = path.stat().st_mode
    except OSError as err:
        raise ConfigError(f"auth.bootstrap_token_file: cannot read {path}: {err}") from err
    if not secret.startswith(TOKEN_PREFIX) or len(secret) < MIN_SECRET:
        raise ConfigError(
            f"auth.bootstrap_token_file: expected {path} to hold a token starting "
            f"{TOKEN_PREFIX!r} of at least {MIN_SECRET} characters "
            "(make one with `varta central tokens new-secret`)"
        )
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("bootstrap token file %s is readable by others; chmod 600 it", path)
    return secret


def build_accounts(
    config: AuthConfig,
    db: Database,
    audit: AuditLog,
    environ: Mapping[str, str] | None = None,
) -> AccountService:
    """The account service, with the bootstrap administrator and token in place.

    Args:
        config: The ``auth`` section.
        db: The central database.
        audit: The audit log.
        environ: Where ``bootstrap_password_env`` is looked up (default ``os.environ``).

    Raises:
        ConfigError: A named bootstrap secret is missing or malformed.
    """
    env = os.environ if environ is None else environ
    name = config.bootstrap_password_env
    password = env.get(name) if name else None
    token = read_token_file(config.bootstrap_token_file) if config.bootstrap_token_file else None
    accounts = AccountService(db, audit, policy_of(config))
    if name and not password and not accounts.list_users():
        raise ConfigError(
            f"auth.bootstrap_password_env: no user exists yet and environment variable "
            f"{name} is not set"
        )
    bootstrap(accounts, config.bootstrap_admin, password, token)
    return accounts


def bootstrap(
    accounts: AccountService, admin: str, password: str | None, token_secret: str | None
) -> None:
    """First start: make the admin if no user exists; register a configured token.

    Args:
        accounts: The account service.
        admin: The bootstrap administrator's user name.
        password: Their password (from the environment), or None.
        token_secret: An API token secret from a file, or None. It gets every scope;
            other live tokens labelled ``bootstrap`` of ``admin`` are revoked.

    Raises:
        ConfigError: The token in the file was revoked or belongs to another user.
    """
    users = accounts.list_users()
    exists = any(u.username == admin for u in users)
    if (not users and password) or (token_secret and not exists):
        accounts.create_user(admin, Role.ADMIN, password if not users else None, BOOTSTRAP)
        log.info("bootstrap administrator %s created", admin)
    elif not users:
        log.warning("no users yet: add one with `varta central users add` (server stopped)")
    if token_secret is None:
        return
    current = accounts.token_for_secret(token_secret)
    if current is not None and (current.revoked_at is not None or current.username != admin):
        raise ConfigError(
            f"auth.bootstrap_token_file: the token in it ({current.token_id}) was revoked or "
            f"belongs to {current.username!r}; write a new secret to the file"
        )
    for token in accounts.list_tokens(admin):
        live = token.revoked_at is None and token.label == BOOTSTRAP
        if live and (current is None or token.token_id != current.token_id):
            accounts.revoke_token(token.token_id, BOOTSTRAP, "bootstrap token replaced")
    if current is None:
        accounts.create_token(admin, SCOPES, BOOTSTRAP, BOOTSTRAP, secret=token_secret)
