"""`varta models` commands. Heavy imports stay inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)

DestOption = Annotated[
    Path | None,
    typer.Option("--dest", help="Model store directory (default: $VARTA_MODELS or var/models)."),
]


@app.command("pull")
def pull_cmd(
    mirror: Annotated[
        Path | None,
        typer.Option(help="Offline mirror root laid out as <host>/<path of URL>."),
    ] = None,
    dest: DestOption = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="Model name to fetch (repeatable; default: all)."),
    ] = None,
) -> None:
    """Fetch model files from the mirror or their official URLs and verify sha256."""
    from models.fetch import pull
    from models.store import default_models_dir, load_manifest
    from shared.errors import ModelError

    root = dest if dest is not None else default_models_dir()
    try:
        entries = load_manifest().select(model)
        paths = pull(entries, root, mirror)
    except ModelError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from err
    typer.echo(f"{len(paths)} files of {len(entries)} models verified in {root}")


@app.command("list")
def list_cmd(
    dest: DestOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show every manifest file as verified, corrupt or missing."""
    import msgspec

    from models.store import ModelStore, default_models_dir

    store = ModelStore(dest if dest is not None else default_models_dir())
    rows = store.status()
    if as_json:
        payload = [
            {
                "model": r.model,
                "precision": r.precision,
                "file": r.file,
                "path": str(r.path),
                "state": r.state,
                "size": r.size,
            }
            for r in rows
        ]
        typer.echo(msgspec.json.encode(payload).decode())
        return
    width = max(len(f"{r.model}/{r.precision}") for r in rows)
    for r in rows:
        typer.echo(f"{r.model + '/' + r.precision:<{width}}  {r.state:<8}  {r.file}")
