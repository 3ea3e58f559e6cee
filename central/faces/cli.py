"""`varta central persons`: enrol, bulk-enrol, list, show, expire and remove wanted persons.

Over HTTP while central runs (an API token with ``faces:write``; ``faces:read`` to list),
else on the DuckDB file directly (``--offline``, or when nothing answers). Heavy imports
stay inside the commands.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

persons_app = typer.Typer(no_args_is_help=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="central.yaml (defaults apply without).")
]
CentralOption = Annotated[
    str | None,
    typer.Option(
        "--central",
        help="Running central's URL (default: $VARTA_CENTRAL, else the config's http host "
        "and port). When nothing answers there, the DuckDB file is used directly.",
    ),
]
TokenFileOption = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        help="File with an API token allowed faces:write (or $VARTA_TOKEN_FILE, $VARTA_TOKEN).",
    ),
]
OfflineOption = Annotated[
    bool, typer.Option("--offline", help="Use the DuckDB file directly (central stopped).")
]
DbOption = Annotated[Path | None, typer.Option("--db", help="DuckDB file (default: the config's).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why (written to the audit log).")]


@contextmanager
def _backend(
    config: Path | None,
    central: str | None,
    token_file: Path | None,
    offline: bool,
    db: Path | None,
) -> Iterator[Any]:
    """The running central's API, or the file (opened and closed here)."""
    from central import cli

    if not offline:
        client = _remote(config, central, token_file)
        if client is not None:
            yield client
            return
    import getpass
    import time

    from central.app import face_analyser
    from central.audit import AuditLog
    from central.faces.client import LocalPersons
    from central.faces.service import FaceWatchlist

    cfg = cli._load_config(config)
    database = cli._open_db(config, db)
    try:
        watchlist = FaceWatchlist(
            database,
            AuditLog(database),
            face_analyser(cfg),
            threshold=cfg.faces.threshold,
            top_k=cfg.faces.top_k,
        )
        yield LocalPersons(watchlist, f"cli:{getpass.getuser()}", time.time)
    finally:
        database.close()


def _remote(config: Path | None, central: str | None, token_file: Path | None) -> Any:
    from central import cli
    from central.faces.client import RemotePersons

    return cli.remote_client(config, central, token_file, RemotePersons, "using")


def _run(action: Callable[[Any], Any], backend: Any) -> Any:
    from shared.errors import VartaError

    try:
        return action(backend)
    except VartaError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from err


def _line(p: dict[str, Any]) -> str:
    return (
        f"{p['person_id']}\t{p['status']}\t{p['name']}\t{p['legal_basis']}\t"
        f"expires {p['expires_at']}\t{len(p['photos'])} photo(s)"
    )


def _print(value: Any, as_json: bool) -> None:
    import json

    if as_json:
        typer.echo(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, list):
        for p in value:
            typer.echo(_line(p))
    else:
        typer.echo(_line(value))


@persons_app.command("enrol")
def enrol_cmd(
    photos: Annotated[list[Path], typer.Argument(help="Photos of the person.", exists=True)],
    *,
    name: Annotated[str, typer.Option(help="Name or label.")],
    legal_basis: Annotated[str, typer.Option(help="Legal basis / authorisation reference.")],
    reason: Annotated[str, typer.Option(help="Why the person is wanted.")],
    expires: Annotated[
        str, typer.Option(help="Expiry: ISO 8601, a date (its end, UTC) or UNIX seconds.")
    ],
    as_json: JsonOption = False,
    central: CentralOption = None,
    token_file: TokenFileOption = None,
    offline: OfflineOption = False,
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Enrol a person from one or more photos (each must show exactly one face)."""
    fields = {"name": name, "legal_basis": legal_basis, "reason": reason, "expires": expires}
    with _backend(config, central, token_file, offline, db) as backend:
        _print(_run(lambda b: b.enrol(fields, list(photos)), backend), as_json)


@persons_app.command("bulk")
def bulk_cmd(
    folder: Annotated[Path, typer.Argument(help="Folder of photos.", exists=True, file_okay=False)],
    csv_file: Annotated[
        Path,
        typer.Argument(
            help="CSV with columns files (';'-separated), name, legal_basis, reason, expires.",
            exists=True,
            dir_okay=False,
        ),
    ],
    as_json: JsonOption = False,
    central: CentralOption = None,
    token_file: TokenFileOption = None,
    offline: OfflineOption = False,
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Enrol every row of a CSV with its photos; failing rows are listed with their reason
    and do not stop the others (exit 1 when any row failed)."""
    with _backend(config, central, token_file, offline, db) as backend:
        report = _run(lambda b: b.bulk(folder, csv_file), backend)
    if as_json:
        _print(report, True)
    else:
        typer.echo(
            f"{report['rows']} rows: {len(report['enrolled'])} enrolled, "
            f"{len(report['problems'])} refused"
        )
        for p in report["enrolled"]:
            typer.echo(_line(p))
        for problem in report["problems"]:
            typer.echo(f"  line {problem['line']}: {problem['reason']}", err=True)
    if report["problems"]:
        raise typer.Exit(1)


@persons_app.command("list")
def list_cmd(
    status: Annotated[
        str | None, typer.Option(help="active, expired or removed (default: all).")
    ] = None,
    as_json: JsonOption = False,
    central: CentralOption = None,
    token_file: TokenFileOption = None,
    offline: OfflineOption = False,
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Persons, newest enrolment first."""
    with _backend(config, central, token_file, offline, db) as backend:
        _print(_run(lambda b: b.people(status), backend), as_json)


@persons_app.command("show")
def show_cmd(
    person_id: Annotated[str, typer.Argument(help="The person's id.")],
    central: CentralOption = None,
    token_file: TokenFileOption = None,
    offline: OfflineOption = False,
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """One person with their photos (JSON)."""
    with _backend(config, central, token_file, offline, db) as backend:
        _print(_run(lambda b: b.person(person_id), backend), True)


@persons_app.command("expire")
def expire_cmd(
    person_id: Annotated[str, typer.Argument(help="The person's id.")],
    *,
    reason: ReasonOption,
    as_json: JsonOption = False,
    central: CentralOption = None,
    token_file: TokenFileOption = None,
    offline: OfflineOption = False,
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Stop matching a person now (their photos stay until removed)."""
    with _backend(config, central, token_file, offline, db) as backend:
        _print(_run(lambda b: b.expire(person_id, reason), backend), as_json)


@persons_app.command("remove")
def remove_cmd(
    person_id: Annotated[str, typer.Argument(help="The person's id.")],
    *,
    reason: ReasonOption,
    as_json: JsonOption = False,
    central: CentralOption = None,
    token_file: TokenFileOption = None,
    offline: OfflineOption = False,
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Delete a person's photos and embeddings; the record stays for the audit trail."""
    with _backend(config, central, token_file, offline, db) as backend:
        _print(_run(lambda b: b.remove(person_id, reason), backend), as_json)
