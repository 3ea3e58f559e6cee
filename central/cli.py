"""`varta central` commands. Heavy imports stay inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(no_args_is_help=True)


def _load_config(config: Path | None) -> Any:
    from central.config import CentralConfig
    from shared.config import load
    from shared.errors import ConfigError

    if config is None:
        return CentralConfig()
    try:
        return load(config, CentralConfig)
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err


ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="central.yaml (defaults apply without).")
]


@app.command("serve")
def serve_cmd(config: ConfigOption = None) -> None:
    """Run ingest and the HTTP API in one process until SIGTERM/SIGINT."""
    from central.serve import serve

    serve(_load_config(config))


@app.command("check-config")
def check_config_cmd(config: Annotated[Path, typer.Argument(help="central.yaml")]) -> None:
    """Validate a configuration file and print it with defaults filled in."""
    import yaml

    cfg = _load_config(config)
    typer.echo(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))


watchlist_app = typer.Typer(no_args_is_help=True)
app.add_typer(watchlist_app, name="watchlist", help="Wanted-vehicle lists: import and sync.")

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="DuckDB file (default: the one central.yaml names)."),
]
ListOption = Annotated[str, typer.Option("--list", "-l", help="Watchlist name.")]


def _watchlist_repo(config: Path | None, db: Path | None) -> Any:
    from central.store.db import Database
    from central.watchlist.repository import WatchlistRepository

    if db is None:
        storage = _load_config(config).storage
        db = Path(storage.data_dir) / storage.duckdb_file
    return WatchlistRepository(Database(db))


def _print_report(report: Any, as_json: bool, limit: int = 50) -> None:
    import msgspec

    if as_json:
        typer.echo(msgspec.json.encode(report).decode())
        return
    typer.echo(
        f"{report.list_name}: {report.rows} rows from {report.source} in {report.seconds}s: "
        f"{report.added} added, {report.updated} updated, {report.removed} removed, "
        f"{report.unchanged} unchanged, {report.rejected} rejected"
        + (" (not modified)" if report.not_modified else "")
    )
    for problem in report.problems[:limit]:
        typer.echo(f"  line {problem.line}: {problem.reason}", err=True)
    if report.rejected > limit:
        typer.echo(f"  ... and {report.rejected - limit} more rejected rows", err=True)


def _progress_bar() -> Any:
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        transient=True,
    )


@watchlist_app.command("import")
def watchlist_import_cmd(
    path: Annotated[Path, typer.Argument(help="CSV, JSON or JSON Lines export.", exists=True)],
    *,
    list_name: ListOption,
    strict: Annotated[bool, typer.Option(help="Exact matches only (no OCR tolerance).")] = False,
    retention_days: Annotated[int, typer.Option(help="Days to keep hit evidence.")] = 90,
    default_priority: Annotated[int, typer.Option(help="Priority of rows without one.")] = 3,
    source: Annotated[str, typer.Option(help="Where the list comes from.")] = "",
    full: Annotated[bool, typer.Option(help="The file is the whole list: remove others.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Create or update a list's settings and load an export into it."""
    from central.watchlist.model import ListSettings
    from central.watchlist.sync import import_file

    repo = _watchlist_repo(config, db)
    settings = ListSettings(
        name=list_name,
        strict=strict,
        retention_days=retention_days,
        default_priority=default_priority,
        source=source or str(path),
    )
    repo.save_list(settings)
    with _progress_bar() as bar:
        task = bar.add_task(f"import {path.name}", total=path.stat().st_size)
        report = import_file(
            repo,
            list_name,
            path,
            full=full,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    _print_report(report, as_json)


@watchlist_app.command("sync")
def watchlist_sync_cmd(
    *,
    list_name: ListOption,
    folder: Annotated[Path | None, typer.Option(help="Drop folder of full exports.")] = None,
    url: Annotated[str, typer.Option(help="HTTP(S) URL of a full export.")] = "",
    watch: Annotated[bool, typer.Option(help="Keep polling until interrupted.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between polls with --watch.")] = 60.0,
    allow_mass_removal: Annotated[
        bool, typer.Option(help="Accept an export that removes over half of the list.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print reports as JSON.")] = False,
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Sync a list to the registry's full export: adds, updates and removals."""
    import threading

    from central.watchlist.model import ListSettings
    from central.watchlist.sync import sync_folder, sync_url, watch_folder
    from shared.errors import InvalidRequest, NotFound, SourceUnavailable

    if (folder is None) == (not url):
        typer.echo("error: expected exactly one of --folder or --url", err=True)
        raise typer.Exit(2)
    repo = _watchlist_repo(config, db)
    try:
        repo.get_list(list_name)
    except NotFound:
        repo.save_list(ListSettings(name=list_name, source=url or str(folder)))
    stop = threading.Event()
    share = 1.0 if allow_mass_removal else 0.5
    try:
        if watch and folder is not None:
            on_report = lambda r: _print_report(r, as_json)  # noqa: E731
            watch_folder(
                repo, list_name, folder, on_report, stop, interval=interval, max_remove_share=share
            )
            return
        while not stop.is_set():
            if folder is not None:
                report = sync_folder(repo, list_name, folder, max_remove_share=share)
            else:
                report = sync_url(repo, list_name, url, max_remove_share=share)
            if report is not None:
                _print_report(report, as_json)
            if not watch:
                break
            stop.wait(interval)
    except (SourceUnavailable, InvalidRequest) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from err
    except KeyboardInterrupt:
        stop.set()


def _add_account_groups() -> None:
    from central.accounts.cli import tokens_app, users_app
    from central.audit.cli import audit_app

    app.add_typer(users_app, name="users", help="Users and roles (server stopped).")
    app.add_typer(tokens_app, name="tokens", help="API tokens for police clients.")
    app.add_typer(audit_app, name="audit", help="Tamper-evident audit log.")


_add_account_groups()


retention_app = typer.Typer(no_args_is_help=True)
app.add_typer(retention_app, name="retention", help="Purge of sightings that hit nothing.")


@retention_app.command("run")
def retention_run_cmd(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Purge once now (central stopped; a running central purges on its own schedule)."""
    import dataclasses
    import getpass
    import json

    from central.alerts.engine import AlertEngine
    from central.audit import AuditLog
    from central.retention import Retention, RetentionPolicy
    from central.store.db import Database
    from central.watchlist import WatchlistRepository, WatchlistService

    cfg = _load_config(config)
    data_dir = Path(cfg.storage.data_dir)
    db = Database(data_dir / cfg.storage.duckdb_file)
    try:
        r = cfg.retention
        alerts = AlertEngine(db, WatchlistService(WatchlistRepository(db)))
        retention = Retention(
            db,
            data_dir / "thumbs",
            alerts,
            AuditLog(db),
            RetentionPolicy(r.non_hit_days, r.chunk_rows),
        )
        report = dataclasses.asdict(retention.run(actor=f"cli:{getpass.getuser()}"))
    finally:
        db.close()
    typer.echo(json.dumps(report) if as_json else json.dumps(report, indent=2))
