"""`varta central users ...` and `varta central tokens ...`.

These open central's DuckDB file directly, which DuckDB allows only while `varta central
serve` is stopped (the server holds the file lock); with the server running use the HTTP
API (/api/v1/users, /api/v1/tokens) with an administrator's token instead.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

users_app = typer.Typer(no_args_is_help=True)
tokens_app = typer.Typer(no_args_is_help=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="central.yaml (defaults apply without).")
]
DbOption = Annotated[
    Path | None, typer.Option("--db", help="DuckDB file (default: the one central.yaml names).")
]


def cli_actor() -> str:
    """The audit actor for commands run from a shell: ``cli:<os user>``."""
    return f"cli:{getpass.getuser()}"


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextmanager
def open_central_db(config: Path | None, db: Path | None) -> Iterator[tuple[Any, Any]]:
    """``(CentralConfig, Database)`` for a command; explains the lock if serve is running."""
    import duckdb

    from central.config import CentralConfig
    from central.store.db import Database
    from shared.config import load
    from shared.errors import ConfigError

    try:
        cfg = load(config, CentralConfig) if config is not None else CentralConfig()
    except ConfigError as err:
        raise _fail(str(err), 2) from err
    path = db or Path(cfg.storage.data_dir) / cfg.storage.duckdb_file
    try:
        database = Database(path)
    except duckdb.IOException as err:
        raise _fail(
            f"cannot open {path} ({err}); is `varta central serve` running? "
            "Stop it, or use the HTTP API with an administrator's token."
        ) from err
    try:
        yield cfg, database
    finally:
        database.close()


@contextmanager
def _accounts(config: Path | None, db: Path | None) -> Iterator[Any]:
    from central.accounts.bootstrap import policy_of
    from central.accounts.service import AccountService
    from central.audit import AuditLog

    with open_central_db(config, db) as (cfg, database):
        yield AccountService(database, AuditLog(database), policy_of(cfg.auth))


@contextmanager
def _errors() -> Iterator[None]:
    from shared.errors import InvalidRequest, NotFound

    try:
        yield
    except (InvalidRequest, NotFound) as err:
        raise _fail(str(err)) from err


def _password(password_env: str | None, no_password: bool) -> str | None:
    if no_password:
        return None
    if password_env:
        value = os.environ.get(password_env)
        if not value:
            raise _fail(f"environment variable {password_env} is not set", 2)
        return value
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@users_app.command("add")
def users_add_cmd(
    name: Annotated[str, typer.Argument(help="User name (a-z 0-9 . _ -).")],
    *,
    role: Annotated[
        str, typer.Option("--role", "-r", help="admin, supervisor, operator, police-api, engineer.")
    ],
    password_env: Annotated[
        str | None,
        typer.Option(help="Read the password from this environment variable (else prompt)."),
    ] = None,
    no_password: Annotated[
        bool, typer.Option(help="No login; the user only holds API tokens (police clients).")
    ] = False,
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Add a user with a role (audited as user.create)."""
    password = _password(password_env, no_password)
    with _accounts(config, db) as accounts, _errors():
        user = accounts.create_user(name, role, password, cli_actor())
    typer.echo(f"user {user.username} ({user.role}) created")


@users_app.command("list")
def users_list_cmd(config: ConfigOption = None, db: DbOption = None) -> None:
    """List users with role and state."""
    with _accounts(config, db) as accounts:
        for u in accounts.list_users():
            state = "disabled" if u.disabled else "active"
            typer.echo(f"{u.username}\t{u.role}\t{state}")


@users_app.command("set")
def users_set_cmd(
    name: Annotated[str, typer.Argument(help="User name.")],
    *,
    role: Annotated[str | None, typer.Option(help="New role.")] = None,
    disable: Annotated[bool | None, typer.Option("--disable/--enable", help="Block.")] = None,
    password_env: Annotated[
        str | None, typer.Option(help="New password from this environment variable.")
    ] = None,
    reason: Annotated[str, typer.Option(help="Why (audited).")] = "",
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Change a user's role, block or unblock them, or set a new password."""
    password = _password(password_env, False) if password_env else None
    with _accounts(config, db) as accounts, _errors():
        user = accounts.update_user(name, cli_actor(), role, disable, password, reason)
    typer.echo(f"user {user.username}: {user.role}, {'disabled' if user.disabled else 'active'}")


@tokens_app.command("create")
def tokens_create_cmd(
    *,
    user: Annotated[str, typer.Option("--user", "-u", help="Owner; the token has their role.")],
    scope: Annotated[
        list[str],
        typer.Option("--scope", "-s", help="Scope (repeat): alerts:read, alerts:ack, ..."),
    ],
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
    expires_days: Annotated[float | None, typer.Option(help="Lifetime in days.")] = None,
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Create an API token; its secret is printed once, on stdout, and stored only hashed."""
    with _accounts(config, db) as accounts, _errors():
        made = accounts.create_token(user, scope, cli_actor(), label, expires_days)
    typer.echo(f"token {made.token.token_id} for {user}: {', '.join(made.token.scopes)}", err=True)
    typer.echo(made.secret)


@tokens_app.command("list")
def tokens_list_cmd(
    user: Annotated[str | None, typer.Option(help="Only this user's tokens.")] = None,
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """List API tokens (never their secrets)."""
    with _accounts(config, db) as accounts:
        for t in accounts.list_tokens(user):
            state = "revoked" if t.revoked_at is not None else "live"
            typer.echo(f"{t.token_id}\t{t.username}\t{state}\t{','.join(t.scopes)}\t{t.label}")


@tokens_app.command("revoke")
def tokens_revoke_cmd(
    token_id: Annotated[str, typer.Argument(help="Token id (t_...), from `tokens list`.")],
    reason: Annotated[str, typer.Option(help="Why (audited).")] = "",
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Revoke an API token; it is refused from then on."""
    with _accounts(config, db) as accounts, _errors():
        accounts.revoke_token(token_id, cli_actor(), reason)
    typer.echo(f"token {token_id} revoked")


@tokens_app.command("new-secret")
def tokens_new_secret_cmd() -> None:
    """Print a fresh token secret for auth.bootstrap_token_file (nothing is stored)."""
    from central.accounts.secrets import new_secret

    typer.echo(new_secret("api"))
