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
