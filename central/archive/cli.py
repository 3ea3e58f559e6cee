"""`varta central archive export|status`.

These open central's DuckDB file directly, which DuckDB allows only while `varta central
serve` is stopped; a running central exports on its own every ``archive.interval_s``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

archive_app = typer.Typer(no_args_is_help=True)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="central.yaml")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


@contextmanager
def _exporter(config: Path) -> Iterator[Any]:
    from central.archive.export import build_archive
    from central.config import CentralConfig
    from central.store.db import Database
    from shared.config import load
    from shared.errors import ConfigError

    try:
        cfg = load(config, CentralConfig)
        if not cfg.archive.enabled:
            raise ConfigError(f"{config}: archive.enabled is false; nothing to export")
        db = Database(Path(cfg.storage.data_dir) / cfg.storage.duckdb_file)
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    try:
        exporter = build_archive(cfg, db)
        assert exporter is not None  # enabled, checked above
        yield exporter
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    finally:
        db.close()


def _print(data: dict[str, Any], as_json: bool) -> None:
    typer.echo(json.dumps(data) if as_json else json.dumps(data, indent=2))


@archive_app.command("export")
def export_cmd(config: ConfigOption, as_json: JsonOption = False) -> None:
    """Export every closed partition not yet archived, once (central stopped)."""
    from shared.errors import SourceUnavailable

    with _exporter(config) as exporter:
        try:
            report = exporter.export()
        except SourceUnavailable as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(1) from err
    _print(dataclasses.asdict(report), as_json)


@archive_app.command("status")
def status_cmd(config: ConfigOption, as_json: JsonOption = False) -> None:
    """What the archive holds (parts, rows, bytes, days) and what waits for export."""
    with _exporter(config) as exporter:
        status = exporter.status()
    _print(status, as_json)
