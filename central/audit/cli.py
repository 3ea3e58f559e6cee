"""`varta central audit ...`: check the audit log's hash chain (server stopped)."""

from __future__ import annotations

from typing import Annotated

import typer

from central.accounts.cli import ConfigOption, DbOption, open_central_db

audit_app = typer.Typer(no_args_is_help=True)


@audit_app.command("verify")
def audit_verify_cmd(
    anchor: Annotated[
        str | None,
        typer.Option(help="A head hash noted earlier; it must still be in the chain."),
    ] = None,
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Walk the chain; print OK, the row count and the head hash, or the broken rows (exit 1).

    Note the printed head hash outside central (ticket, log book, WORM storage) and pass it
    as --anchor later: that also detects rows cut off the end or a rebuilt chain.
    """
    from central.audit import AuditLog

    with open_central_db(config, db) as (_, database):
        result = AuditLog(database).verify(anchor)
    if result.ok:
        typer.echo(f"OK: {result.rows} rows, head {result.head}")
        return
    typer.echo(f"BROKEN: {result.rows} rows read", err=True)
    for problem in result.problems:
        typer.echo(f"  {problem}", err=True)
    raise typer.Exit(1)
