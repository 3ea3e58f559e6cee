"""`varta central` commands. Heavy imports stay inside the commands."""

from __future__ import annotations

from collections.abc import Callable
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

    cfg = _load_config(config)
    _configure_logging(cfg)
    serve(cfg)


def _configure_logging(cfg: Any) -> None:
    """Apply the config's log format; central's secrets are masked in every line."""
    import contextlib
    import os

    from central.alerts.runtime import read_secret
    from shared import keys
    from shared.errors import ConfigError
    from shared.logs import configure

    secrets: list[str | bytes] = []
    # What cannot be read here is reported when central starts.
    with contextlib.suppress(ConfigError, OSError, ValueError):
        secrets.append(keys.load_pair(cfg.ingest.server_secret_key).secret)
    for endpoint in cfg.webhooks.endpoints:
        with contextlib.suppress(ConfigError):
            secrets.append(read_secret(endpoint))
    if cfg.auth.bootstrap_password_env:
        secrets.append(os.environ.get(cfg.auth.bootstrap_password_env, ""))
    configure(cfg.logging, secrets)


@app.command("check-config")
def check_config_cmd(config: Annotated[Path, typer.Argument(help="central.yaml")]) -> None:
    """Validate a configuration file and print it with defaults filled in."""
    import yaml

    cfg = _load_config(config)
    typer.echo(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))


watchlist_app = typer.Typer(no_args_is_help=True)
app.add_typer(
    watchlist_app,
    name="watchlist",
    help="Wanted-vehicle lists: import and sync (over HTTP while central runs).",
)

DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db", help="DuckDB file written when central is stopped (default: the config's)."
    ),
]
ListOption = Annotated[str, typer.Option("--list", "-l", help="Watchlist name.")]
ReasonOption = Annotated[
    str, typer.Option("--reason", help="Why the list changes (written to the audit log).")
]
CentralOption = Annotated[
    str | None,
    typer.Option(
        "--central",
        help="Running central's URL (default: $VARTA_CENTRAL, else the config's http "
        "host and port). When nothing answers there, the DuckDB file is written directly.",
    ),
]
TokenFileOption = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        help="File with an API token allowed watchlists:write (or $VARTA_TOKEN_FILE, "
        "$VARTA_TOKEN).",
    ),
]
OfflineOption = Annotated[
    bool, typer.Option("--offline", help="Write the DuckDB file directly, no HTTP.")
]
MassRemovalOption = Annotated[
    bool, typer.Option(help="Accept a full export that removes over half of the list.")
]


def _open_db(config: Path | None, db: Path | None) -> Any:
    from central.store.db import Database

    if db is None:
        storage = _load_config(config).storage
        db = Path(storage.data_dir) / storage.duckdb_file
    return Database(db)


def _client(config: Path | None, central: str | None, token_file: Path | None) -> Any:
    """A wanted-list client of the running central, or None when it does not answer."""
    from central.watchlist.client import WatchlistClient

    return remote_client(config, central, token_file, WatchlistClient, "writing")


def remote_client(
    config: Path | None,
    central: str | None,
    token_file: Path | None,
    make: Callable[[str, str], Any],
    fallback: str,
) -> Any:
    """``make(url, token)`` for the running central, or None when it does not answer.

    The URL is ``central``, else ``$VARTA_CENTRAL``, else the configured HTTP address. A
    central that does not answer is reported (``"<fallback> the database file"``) and the
    caller falls back to the database; a central that answers but refuses the token ends
    the command with exit code 2.
    """
    import os
    import socket
    from urllib.parse import urlsplit

    from central.watchlist.client import CENTRAL_ENV, read_token
    from shared.errors import VartaError

    url = central or os.environ.get(CENTRAL_ENV, "")
    if not url:
        http = _load_config(config).http
        url = f"http://{http.host}:{http.port}"
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "", parts.port or 80), timeout=5).close()
    except OSError:
        typer.echo(f"central does not answer at {url}: {fallback} the database file", err=True)
        return None
    try:
        return make(url, read_token(token_file))
    except VartaError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err


def _print_report(report: Any, as_json: bool, limit: int = 50) -> None:
    import msgspec

    if as_json:
        typer.echo(msgspec.json.encode(msgspec.structs.replace(report, changed=[])).decode())
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


def _audit_report(db: Any, report: Any, reason: str) -> None:
    """Record an offline import or sync in the audit log (the actor is the OS user)."""
    import getpass

    from central.audit import AuditLog

    details = {k: getattr(report, k) for k in ("rows", "added", "updated", "removed")}
    AuditLog(db).record(
        f"cli:{getpass.getuser()}",
        "watchlist.import",
        f"watchlist:{report.list_name}",
        reason,
        {**details, "rejected": report.rejected, "source": report.source},
    )


@watchlist_app.command("import")
def watchlist_import_cmd(
    path: Annotated[Path, typer.Argument(help="CSV, JSON or JSON Lines export.", exists=True)],
    *,
    list_name: ListOption,
    reason: ReasonOption,
    strict: Annotated[
        bool | None, typer.Option(help="Exact matches only (default: keep, new: no).")
    ] = None,
    retention_days: Annotated[
        int | None, typer.Option(help="Days to keep hit evidence (default: keep, new: 90).")
    ] = None,
    default_priority: Annotated[
        int | None, typer.Option(help="Priority of rows without one (default: keep, new: 3).")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Where the list comes from.")] = None,
    full: Annotated[bool, typer.Option(help="The file is the whole list: remove others.")] = False,
    allow_mass_removal: MassRemovalOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    central: CentralOption = None,
    token_file: TokenFileOption = None,
    offline: OfflineOption = False,
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Load an export into a list (created when new; its settings kept unless given)."""
    from central.watchlist.importer import detect_format
    from central.watchlist.model import ListChange
    from shared.errors import VartaError

    change = ListChange(
        strict=strict,
        retention_days=retention_days,
        default_priority=default_priority,
        source=source,
    )
    client = None if offline else _client(config, central, token_file)
    try:
        if client is not None:
            report = client.upload(
                list_name,
                path,
                detect_format(path.name),
                reason=reason,
                full=full,
                allow_mass_removal=allow_mass_removal,
                change=change,
            )
        else:
            report = _import_offline(config, db, list_name, path, change, full, reason)
    except VartaError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from err
    _print_report(report, as_json)


def _import_offline(
    config: Path | None,
    db_file: Path | None,
    list_name: str,
    path: Path,
    change: Any,
    full: bool,
    reason: str,
) -> Any:
    import msgspec

    from central.watchlist.edits import merge_settings, require_reason
    from central.watchlist.repository import WatchlistRepository
    from central.watchlist.sync import import_file
    from shared.errors import NotFound

    why = require_reason(reason)
    db = _open_db(config, db_file)
    try:
        repo = WatchlistRepository(db)
        try:
            before = repo.get_list(list_name)
        except NotFound:
            before = None
        if before is None and change.source is None:
            change = msgspec.structs.replace(change, source=str(path))
        repo.save_list(merge_settings(list_name, before, change))
        with _progress_bar() as bar:
            task = bar.add_task(f"import {path.name}", total=path.stat().st_size)
            report = import_file(
                repo,
                list_name,
                path,
                full=full,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        _audit_report(db, report, why)
        return report
    finally:
        db.close()


@watchlist_app.command("sync")
def watchlist_sync_cmd(
    *,
    list_name: ListOption,
    reason: ReasonOption,
    folder: Annotated[Path | None, typer.Option(help="Drop folder of full exports.")] = None,
    url: Annotated[str, typer.Option(help="HTTP(S) URL of a full export.")] = "",
    watch: Annotated[bool, typer.Option(help="Keep polling until interrupted.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between polls with --watch.")] = 60.0,
    allow_mass_removal: MassRemovalOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print reports as JSON.")] = False,
    central: CentralOption = None,
    token_file: TokenFileOption = None,
    offline: OfflineOption = False,
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Sync a list to the registry's full export: adds, updates and removals."""
    import threading

    from central.watchlist.client import RemoteSync
    from shared.errors import VartaError

    if (folder is None) == (not url):
        typer.echo("error: expected exactly one of --folder or --url", err=True)
        raise typer.Exit(2)
    client = None if offline else _client(config, central, token_file)
    stop = threading.Event()
    if client is None:
        database = _open_db(config, db)
        run = _offline_sync(database, list_name, reason, allow_mass_removal)
    else:
        database = None
        run = RemoteSync(client, list_name, reason, allow_mass_removal=allow_mass_removal).run
    try:
        while not stop.is_set():
            report = run(folder, url)
            if report is not None:
                _print_report(report, as_json)
            if not watch:
                break
            stop.wait(interval)
    except VartaError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from err
    except KeyboardInterrupt:
        stop.set()
    finally:
        if database is not None:
            database.close()


def _offline_sync(db: Any, list_name: str, reason: str, allow_mass_removal: bool) -> Any:
    """One sync pass on the DuckDB file: ``(folder, url) -> report or None`` (audited)."""
    from central.watchlist.edits import require_reason
    from central.watchlist.model import ListSettings
    from central.watchlist.repository import WatchlistRepository
    from central.watchlist.sync import sync_folder, sync_url
    from shared.errors import NotFound

    why = require_reason(reason)
    repo = WatchlistRepository(db)
    share = 1.0 if allow_mass_removal else 0.5

    def run(folder: Path | None, url: str) -> Any:
        try:
            repo.get_list(list_name)
        except NotFound:
            repo.save_list(ListSettings(name=list_name, source=url or str(folder)))
        if folder is not None:
            report = sync_folder(repo, list_name, folder, max_remove_share=share)
        else:
            report = sync_url(repo, list_name, url, max_remove_share=share)
        if report is not None and not report.not_modified:
            _audit_report(db, report, why)
        return report

    return run


def _add_account_groups() -> None:
    from central.accounts.cli import tokens_app, users_app
    from central.archive.cli import archive_app
    from central.audit.cli import audit_app

    app.add_typer(users_app, name="users", help="Users and roles (server stopped).")
    app.add_typer(tokens_app, name="tokens", help="API tokens for police clients.")
    app.add_typer(audit_app, name="audit", help="Tamper-evident audit log.")
    app.add_typer(archive_app, name="archive", help="Parquet archive of closed days.")


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
    from central.archive.export import build_archive
    from central.audit import AuditLog
    from central.retention import Retention, RetentionPolicy
    from central.store.db import Database
    from central.watchlist import WatchlistRepository, WatchlistService

    cfg = _load_config(config)
    data_dir = Path(cfg.storage.data_dir)
    db = Database(
        data_dir / cfg.storage.duckdb_file, memory_limit_mb=cfg.storage.duckdb_memory_limit_mb
    )
    try:
        r = cfg.retention
        alerts = AlertEngine(db, WatchlistService(WatchlistRepository(db)))
        archive = build_archive(cfg, db)  # held until archived; the archive purged too
        retention = Retention(
            db,
            data_dir / "thumbs",
            alerts,
            AuditLog(db),
            RetentionPolicy(
                r.non_hit_days, r.chunk_rows, r.health_history_days, archive is not None
            ),
            archive=archive,
        )
        report = dataclasses.asdict(retention.run(actor=f"cli:{getpass.getuser()}"))
    finally:
        db.close()
    typer.echo(json.dumps(report) if as_json else json.dumps(report, indent=2))


evidence_app = typer.Typer(no_args_is_help=True)
app.add_typer(evidence_app, name="evidence", help="Evidence packages (alert or journey ZIPs).")


@evidence_app.command("verify")
def evidence_verify_cmd(
    file: Annotated[Path, typer.Argument(help="The evidence package (.zip).")],
) -> None:
    """Check every file's sha256 against the manifest, the manifest's own hash and each audit
    row's chain hash; print the verdict (exit 1 on any mismatch, 2 if unreadable)."""
    from central.evidence import verify_package

    try:
        data = file.read_bytes()
    except OSError as err:
        typer.echo(f"error: cannot read {file}: {err}", err=True)
        raise typer.Exit(2) from err
    verdict = verify_package(data)
    if verdict.ok:
        typer.echo(
            f"OK: {verdict.files} files and {verdict.audit_rows} audit rows match; "
            f"manifest sha256 {verdict.manifest_sha256}"
        )
        return
    typer.echo(f"FAILED: {file} does not match its manifest or chain hashes", err=True)
    for problem in verdict.problems:
        typer.echo(f"  {problem}", err=True)
    raise typer.Exit(1)


def _add_persons_group() -> None:
    from central.faces.cli import persons_app

    app.add_typer(
        persons_app,
        name="persons",
        help="Wanted persons for face matching (over HTTP while central runs).",
    )


_add_persons_group()


def _add_national_group() -> None:
    from central.national.cli import national_app

    app.add_typer(
        national_app, name="national", help="National hub: the signing key of published lists."
    )


_add_national_group()


@app.command("check")
def check_cmd(
    config: Annotated[Path, typer.Option("--config", "-c", help="central.yaml")],
    timeout: Annotated[float, typer.Option(help="Seconds to wait for a running central.")] = 3.0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, for scripts.")] = False,
) -> None:
    """Check this server: config, keys, webhook secrets, database schema, disk, ports free
    or served by central. Prints a table; exits 1 when any check fails."""
    from central.check import run_checks
    from central.config import CentralConfig
    from shared.checks import fail, passed, render_json, render_table
    from shared.config import load
    from shared.errors import ConfigError

    try:
        results = run_checks(load(config, CentralConfig), timeout)
    except ConfigError as err:
        results = [fail("config", str(err), f"correct {config} (see docs/configuration.md)")]
    typer.echo(render_json(results) if as_json else render_table(results))
    if not passed(results):
        raise typer.Exit(1)
