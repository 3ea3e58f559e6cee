"""`varta edge` commands. Heavy imports stay inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(no_args_is_help=True)

ModelsOption = Annotated[
    Path | None,
    typer.Option("--models", help="Model store directory (default: $VARTA_MODELS or var/models)."),
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _load_config(path: Path) -> Any:
    from edge_agent.config import AgentConfig
    from shared.config import load
    from shared.errors import ConfigError

    try:
        return load(path, AgentConfig)
    except ConfigError as err:
        raise _fail(str(err), 2) from err


def _configure_logging(cfg: Any) -> None:
    """Apply the config's log format; the agent's CURVE secret key is masked in every line."""
    import contextlib

    from shared import keys
    from shared.errors import ConfigError
    from shared.logs import configure

    secrets = []
    with contextlib.suppress(ConfigError, OSError, ValueError):  # reported at start
        secrets.append(keys.load_pair(cfg.central.agent_secret_key).secret)
    configure(cfg.logging, secrets)


@app.command("detect")
def detect_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Photos, photo folders or video files.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per sighting.")] = False,
    models: ModelsOption = None,
) -> None:
    """Run the full pipeline on files and print one line per sighting.

    A photo gives a sighting per vehicle and per plate found (also plates outside any
    vehicle, as in close-up photos); a video gives one per tracked vehicle pass. Unreadable
    inputs are reported on stderr and skipped; the exit code is 1 only when none could
    be read.
    """
    import json

    from edge_agent.config import PipelineConfig, PlateStageConfig
    from edge_agent.pipeline import build_pipeline
    from edge_agent.run import detect_paths, sighting_record, sighting_text
    from models.store import ModelStore, default_models_dir
    from shared.errors import ModelError

    try:
        pipeline = build_pipeline(
            ModelStore(models or default_models_dir()),
            PipelineConfig(plates=PlateStageConfig(fallback_side=640)),
        )
    except ModelError as err:
        raise _fail(str(err)) from err
    errors: list[str] = []

    def on_error(message: str) -> None:
        errors.append(message)
        typer.echo(f"error: {message}", err=True)

    for emitted in detect_paths(pipeline, paths, on_error):
        record = sighting_record(emitted)
        typer.echo(json.dumps(record, ensure_ascii=False) if as_json else sighting_text(record))
    if pipeline.times.frames == 0:
        raise _fail(f"nothing could be read ({len(errors)} inputs failed)")


@app.command("run")
def run_cmd(
    config: Annotated[Path, typer.Option("--config", "-c", help="agent.yaml")],
    models: ModelsOption = None,
    seconds: Annotated[
        float, typer.Option(help="Stop after this long (0: until SIGTERM/SIGINT).")
    ] = 0.0,
) -> None:
    """Run the agent: cameras -> detection, plates, tracking -> spool -> central."""
    from edge_agent.run import run_agent
    from shared.errors import ConfigError, ModelError

    cfg = _load_config(config)
    _configure_logging(cfg)
    if not cfg.cameras:
        raise _fail(f"{config}: no cameras configured (add a 'cameras:' list)", 2)
    try:
        total = run_agent(cfg, models, seconds=seconds)
    except (ModelError, ConfigError) as err:
        raise _fail(str(err)) from err
    typer.echo(f"agent stopped; {total} sightings spooled", err=True)


@app.command("check-config")
def check_config_cmd(
    config: Annotated[Path, typer.Argument(help="agent.yaml")],
    models: ModelsOption = None,
) -> None:
    """Validate a configuration file, check its models, print it with defaults filled in."""
    import yaml

    from edge_agent.pipeline import required_models
    from models.store import ModelStore, default_models_dir
    from shared.errors import ModelError

    cfg = _load_config(config)
    typer.echo(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    store = ModelStore(models or cfg.pipeline.models_dir or default_models_dir())
    problems = []
    for name, precision in required_models(cfg.pipeline):
        try:
            store.path(name, precision)
        except ModelError as err:
            problems.append(str(err))
    for problem in problems:
        typer.echo(f"error: {problem}", err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"ok: {len(cfg.cameras)} cameras, models verified in {store.root}", err=True)


@app.command("check")
def check_cmd(
    config: Annotated[Path, typer.Option("--config", "-c", help="agent.yaml")],
    models: ModelsOption = None,
    camera_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for each camera's first frame.")
    ] = 10.0,
    link_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for central's handshake and ack.")
    ] = 5.0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, for scripts.")] = False,
) -> None:
    """Check this box: models verified, each camera read and inferred, central takes the
    key, spool writable with room. Prints a table; exits 1 when any check fails."""
    from edge_agent.check import run_checks
    from shared.checks import passed, render_json, render_table

    cfg = _load_config(config)
    results = run_checks(cfg, models, camera_timeout, link_timeout)
    typer.echo(render_json(results) if as_json else render_table(results))
    if not passed(results):
        raise typer.Exit(1)
