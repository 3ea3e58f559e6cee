"""`varta bench` commands. Heavy imports stay inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("ingest")
def ingest_cmd(
    agents: Annotated[int, typer.Option(help="Agent processes sending at once.")] = 2,
    seconds: Annotated[float, typer.Option(help="How long the agents produce.")] = 10.0,
    rate: Annotated[float, typer.Option(help="Total sightings/s (0: as fast as possible).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Agents -> CURVE ZeroMQ -> central -> DuckDB, with ZeroMQ and DuckDB ceilings."""
    import json

    from bench.ingest import run

    result = run(agents, seconds, rate)
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@app.command("match")
def match_cmd(
    entries: Annotated[int, typer.Option(help="Plates on the synthetic list.")] = 1_000_000,
    partial: Annotated[int, typer.Option(help="Wildcard and attribute entries.")] = 300,
    sightings: Annotated[int, typer.Option(help="Sightings to match.")] = 20_000,
    hit_rate: Annotated[float, typer.Option(help="Share of sightings of listed plates.")] = 0.05,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Watchlist: import a CSV export into DuckDB, build the matcher, time match()."""
    import json

    from bench.match import run

    result = run(entries, partial, sightings, hit_rate)
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@app.command("plates")
def plates_cmd(
    dataset: Annotated[Path, typer.Option(help="Data set folder with ground_truth.csv.")],
    models: Annotated[
        Path | None, typer.Option(help="Model store root (default: $VARTA_MODELS).")
    ] = None,
    failures: Annotated[bool, typer.Option(help="List the photos read wrongly.")] = False,
    vehicles: Annotated[
        bool, typer.Option(help="Search plates inside vehicle-detector boxes (edge pipeline).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Plate reading: exact-read rate, plate recall and ms/image against naive PP-OCR."""
    import json

    from bench.plates import run

    result = run(dataset, models, failures, vehicles)
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@app.command("alerts")
def alerts_cmd(
    entries: Annotated[int, typer.Option(help="Plates on the synthetic wanted list.")] = 1_000_000,
    rate: Annotated[float, typer.Option(help="Sightings/s the agent publishes.")] = 1000.0,
    seconds: Annotated[float, typer.Option(help="How long the agent publishes.")] = 20.0,
    hit_rate: Annotated[float, typer.Option(help="Share of sightings of wanted plates.")] = 0.01,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Sighting published by an agent -> alert seen by a long-polling police client."""
    import json

    from bench.alerts import run

    result = run(entries, rate, seconds, hit_rate)
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@app.command("search")
def search_cmd(
    rows: Annotated[int, typer.Option(help="Sightings to generate.")] = 10_000_000,
    queries: Annotated[
        int, typer.Option(help="Sample plates; each gives one query per kind.")
    ] = 10,
    with_pk: Annotated[
        bool, typer.Option(help="Keep the production PRIMARY KEY (ART) on event_id.")
    ] = False,
    keep: Annotated[
        Path | None, typer.Option(help="Keep (and reuse) the DuckDB file in this folder.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Sighting search: generate N sightings in DuckDB, build the plate index, time queries."""
    import json

    from bench.search import run

    result = run(rows, queries, with_pk, keep=keep)
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@app.command("edge")
def edge_cmd(
    models: Annotated[
        Path | None, typer.Option(help="Model store root (default: $VARTA_MODELS).")
    ] = None,
    frames: Annotated[int, typer.Option(help="Frames of the clip each camera plays.")] = 240,
    cameras: Annotated[int, typer.Option(help="Cameras playing the clip at once.")] = 4,
    threads: Annotated[
        list[int] | None, typer.Option("--threads", help="Inference threads (repeatable).")
    ] = None,
    realtime: Annotated[
        bool, typer.Option(help="Pace cameras at the clip's fps and drop late frames.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Edge pipeline frames/s at 1080p and 720p (decode included), ms per stage, peak RSS."""
    import json

    from bench.edge import run

    result = run(models, frames, cameras, tuple(threads or (1, 2)), realtime)
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))
