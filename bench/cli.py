"""`varta bench` commands. Heavy imports stay inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)

# Central's ingest settings, for the benches that run a central (None: the config's default).
MinTurnMs = Annotated[
    int | None,
    typer.Option(help="Central's ingest.min_turn_interval_ms (0: off; default: the config's)."),
]
WriterDuty = Annotated[
    float | None, typer.Option(help="Central's ingest.writer_duty (default: the config's).")
]


@app.command("ingest")
def ingest_cmd(
    agents: Annotated[int, typer.Option(help="Agent processes sending at once.")] = 2,
    seconds: Annotated[float, typer.Option(help="How long the agents produce.")] = 10.0,
    rate: Annotated[float, typer.Option(help="Total sightings/s (0: as fast as possible).")] = 0,
    watchlist: Annotated[
        int, typer.Option(help="Synthetic wanted-list entries to match against (0: none).")
    ] = 0,
    min_turn_ms: MinTurnMs = None,
    writer_duty: WriterDuty = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Agents -> CURVE ZeroMQ -> central -> DuckDB, with ZeroMQ and DuckDB ceilings."""
    import json

    from bench.ingest import run

    result = run(
        agents, seconds, rate, watchlist=watchlist, min_turn_ms=min_turn_ms, writer_duty=writer_duty
    )
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@app.command("soak")
def soak_cmd(
    minutes: Annotated[float, typer.Option(help="How long the agents produce.")] = 60.0,
    agents: Annotated[int, typer.Option(help="Agent processes sending at once.")] = 8,
    rate: Annotated[float, typer.Option(help="Total sightings/s of all agents.")] = 5000.0,
    interval: Annotated[float, typer.Option(help="Seconds between samples.")] = 5.0,
    out: Annotated[
        Path, typer.Option(help="Folder for soak.json (all samples) and soak.png.")
    ] = Path("var/bench/soak"),
    duckdb_memory_mb: Annotated[
        int | None, typer.Option(help="storage.duckdb_memory_limit_mb of central.")
    ] = None,
    cameras: Annotated[
        int, typer.Option(help="Cameras in all, spread over the agents (0: one each).")
    ] = 0,
    min_turn_ms: MinTurnMs = None,
    writer_duty: WriterDuty = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Steady ingest for a long time: RSS, descriptors and threads of central and agents,
    slopes and a flat/leak verdict, every sighting stored once; a PNG plot."""
    import json

    from bench.soak import run

    if minutes <= 0 or agents < 1 or rate <= 0 or interval <= 0:
        raise typer.BadParameter("minutes, agents, rate and interval must be positive")
    if cameras < 0 or cameras > 256 * agents:
        raise typer.BadParameter(f"cameras: 0 to {256 * agents} (256 per agent)")
    result = run(
        minutes, agents, rate, interval, out, duckdb_memory_mb, cameras, min_turn_ms, writer_duty
    )
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@app.command("faults")
def faults_cmd(
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            help="partition, loss_jitter, sigkill_central or clock_jump (repeatable; "
            "default: all four)."
        ),
    ] = None,
    partition_s: Annotated[float, typer.Option(help="Length of the partition.")] = 60.0,
    loss_s: Annotated[float, typer.Option(help="Length of the 20% loss + jitter.")] = 60.0,
    hold_s: Annotated[float, typer.Option(help="How long each clock jump lasts.")] = 20.0,
    work: Annotated[
        Path | None, typer.Option(help="Keep the runs' files here (default: a temp dir).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Network faults between a real agent and central in network namespaces (root):
    sent / stored / duplicates / recovery_s per scenario (docs/faults.md)."""
    import json
    import tempfile

    from bench.faults import netfault
    from bench.faults.scenarios import run

    why_not = netfault.unavailable()
    if why_not:
        raise typer.BadParameter(f"cannot make network faults here: {why_not}")
    with tempfile.TemporaryDirectory(prefix="varta-faults-") as tmp:
        result = run(scenario, Path(work or tmp), partition_s, loss_s, hold_s)
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


@app.command("hub")
def hub_cmd(
    entries: Annotated[int, typer.Option(help="Entries of the hub's national list.")] = 200_000,
    alerts: Annotated[int, typer.Option(help="Alert changes a region forwards.")] = 2000,
    batch: Annotated[int, typer.Option(help="Changes per forwarding request.")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """National hub: signed sync of its list into a region (and 304s), and the rate at which
    it stores alerts a region forwards (one per request, and batched)."""
    import json

    from bench.hub import run

    result = run(entries, alerts, batch)
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@app.command("plates")
def plates_cmd(
    dataset: Annotated[
        list[Path] | None,
        typer.Option(
            help="Data set folder with ground_truth.csv, or a folder of plate-less images "
            "(repeatable)."
        ),
    ] = None,
    video: Annotated[
        list[Path] | None,
        typer.Option(help="A video with no legible plate: count its plate reads (repeatable)."),
    ] = None,
    models: Annotated[
        Path | None, typer.Option(help="Model store root (default: $VARTA_MODELS).")
    ] = None,
    failures: Annotated[bool, typer.Option(help="List the photos read wrongly.")] = False,
    vehicles: Annotated[
        bool, typer.Option(help="Search plates inside vehicle-detector boxes (edge pipeline).")
    ] = False,
    pipeline: Annotated[
        bool, typer.Option(help="Read as `varta edge detect` does: every sighting's plate.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Plate reading: exact-read rate, plate recall, false plate reads per image, worst
    photos and ms/image against naive PP-OCR."""
    import json

    from bench.plates import run

    if not dataset and not video:
        raise typer.BadParameter("give --dataset or --video", param_hint="--dataset")
    results = [run(d, models, failures, vehicles, pipeline) for d in dataset or ()]
    if video:
        from bench.plate_pipeline import video_reads

        results.append({"videos": video_reads(video, models)})
    result = results[0] if len(results) == 1 else {"runs": results}
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@app.command("calibrate")
def calibrate_cmd(
    dataset: Annotated[
        list[Path],
        typer.Option(
            help="Labelled data set folder, or a folder of plate-less images as negatives "
            "(repeatable)."
        ),
    ],
    models: Annotated[
        Path | None, typer.Option(help="Model store root (default: $VARTA_MODELS).")
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(help="JSON-lines file of reads: loaded when present, else written."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write the parameter file here (edge_agent/plate_calibration.json)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Fit the plate-confidence calibration on half the photos and report both halves."""
    import json

    from bench.calibrate import run

    result = run(dataset, models, cache, out)
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@app.command("faces")
def faces_cmd(
    dataset: Annotated[
        list[Path],
        typer.Option(help="Folder with ground_truth.csv (and pairs.csv) of faces (repeatable)."),
    ],
    models: Annotated[
        Path | None, typer.Option(help="Model store root (default: $VARTA_MODELS).")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(help="Match threshold to report (default: the matcher's).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Faces: TAR at FAR 1e-2 / 1e-3, EER, rank-1, ms per face and faces missed."""
    import json

    from bench.faces import run
    from central.faces.matcher import DEFAULT_THRESHOLD

    result = run(dataset, models, DEFAULT_THRESHOLD if threshold is None else threshold)
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@app.command("face-search")
def face_search_cmd(
    persons: Annotated[int, typer.Option(min=1, help="Enrolled persons (synthetic).")] = 100_000,
    photos: Annotated[int, typer.Option(min=1, help="Embeddings per person.")] = 1,
    queries: Annotated[int, typer.Option(min=1, help="Searches timed.")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Face watchlist search: top-5 cosine search time over a large synthetic gallery."""
    import json

    from bench.face_search import run

    result = run(persons, photos, queries)
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@app.command("face-watchlist")
def face_watchlist_cmd(
    persons: Annotated[int, typer.Option(min=1, help="Stored persons (synthetic).")] = 100_000,
    queries: Annotated[int, typer.Option(min=1, help="Matches timed.")] = 300,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Persons watchlist on a real DuckDB file: gallery build time and match latency."""
    import json

    from bench.face_watchlist import run

    result = run(persons, queries)
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@app.command("vehicles")
def vehicles_cmd(
    dataset: Annotated[Path, typer.Option(help="Data set folder with vehicle boxes.")],
    models: Annotated[
        Path | None, typer.Option(help="Model store root (default: $VARTA_MODELS).")
    ] = None,
    threads: Annotated[int, typer.Option(min=1, help="CPU inference threads.")] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Vehicles: detector recall per class and type agreement (car and van one class)."""
    import json

    from bench.vehicles import run

    result = run(dataset, models, threads)
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@app.command("calibrate-types")
def calibrate_types_cmd(
    dataset: Annotated[
        Path, typer.Option(help="Data set folder with vehicle boxes and a train/test split.")
    ],
    models: Annotated[
        Path | None, typer.Option(help="Model store root (default: $VARTA_MODELS).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write the parameter file here (edge_agent/type_calibration.json)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Fit the vehicle-type confidence calibration on the train frames; report the test ones."""
    import json

    from bench.vehicles import calibrate_types

    result = calibrate_types(dataset, models, out)
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@app.command("alerts")
def alerts_cmd(
    entries: Annotated[int, typer.Option(help="Plates on the synthetic wanted list.")] = 1_000_000,
    rate: Annotated[float, typer.Option(help="Sightings/s the agent publishes.")] = 1000.0,
    seconds: Annotated[float, typer.Option(help="How long the agent publishes.")] = 20.0,
    hit_rate: Annotated[float, typer.Option(help="Share of sightings of wanted plates.")] = 0.01,
    upload_entries: Annotated[
        int,
        typer.Option(help="Entries of a second list uploaded over REST meanwhile (0: none)."),
    ] = 0,
    min_turn_ms: MinTurnMs = None,
    writer_duty: WriterDuty = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Sighting published by an agent -> alert seen by a long-polling police client."""
    import json

    from bench.alerts import run

    ingest: dict[str, float] = {}
    if min_turn_ms is not None:
        ingest["min_turn_interval_ms"] = min_turn_ms
    if writer_duty is not None:
        ingest["writer_duty"] = writer_duty
    result = run(entries, rate, seconds, hit_rate, upload_entries, ingest)
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@app.command("console")
def console_cmd(
    sightings: Annotated[
        int, typer.Option(help="Sightings generated into the store.")
    ] = 10_000_000,
    entries: Annotated[
        int, typer.Option(min=5000, help="Plates on the synthetic wanted list (5000 at least).")
    ] = 1_000_000,
    requests: Annotated[int, typer.Option(help="Requests timed per console page.")] = 50,
    alerts: Annotated[int, typer.Option(help="Alerts timed from edge to browser.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Console pages over a real server with a full store; edge sighting -> board in Chromium."""
    import json

    from bench.console import run

    result = run(sightings, entries, requests, alerts)
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


@app.command("national")
def national_cmd(
    rows: Annotated[int, typer.Option(help="Sightings over all regions.")] = 10_000_000,
    regions: Annotated[int, typer.Option(min=1, help="Regional archives.")] = 25,
    days: Annotated[int, typer.Option(min=1, help="UTC days the sightings span.")] = 7,
    cameras: Annotated[int, typer.Option(min=1, help="Cameras per region.")] = 20,
    queries: Annotated[
        int, typer.Option(min=1, help="Sample plates; each gives one query per kind.")
    ] = 5,
    data: Annotated[
        Path | None, typer.Option(help="Keep (and reuse) the generated archives in this folder.")
    ] = None,
    master: Annotated[str, typer.Option(help="Spark master.")] = "local[2]",
    driver_memory: Annotated[str, typer.Option(help="Spark driver heap.")] = "4g",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """National search: the same queries on Spark and on DuckDB over N archived sightings."""
    import json

    from bench.national import run

    result = run(rows, regions, days, cameras, queries, data, master, driver_memory)
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@app.command("national-synth")
def national_synth_cmd(
    out: Annotated[Path, typer.Option(help="Folder of the archives (one per region).")],
    rows: Annotated[int, typer.Option(help="Sightings over all regions.")] = 10_000_000,
    regions: Annotated[int, typer.Option(min=1, help="Regional archives.")] = 25,
    days: Annotated[int, typer.Option(min=1, help="UTC days the sightings span.")] = 7,
    cameras: Annotated[int, typer.Option(min=1, help="Cameras per region.")] = 20,
) -> None:
    """Only generate synthetic regional archives (the layout of central/archive/schema.py)."""
    import json

    from bench.national_synth import SynthSpec, generate

    typer.echo(json.dumps(generate(SynthSpec(rows, regions, days, cameras), out)))


@app.command("archive")
def archive_cmd(
    per_camera_day: Annotated[
        int, typer.Option(min=1, help="Sightings per camera and day (~200 cameras).")
    ] = 5000,
    days: Annotated[int, typer.Option(min=1, help="Days of sightings to archive.")] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Sighting archive: bytes per sighting, MB per camera-day and export rows/s."""
    import json

    from bench.archive import run

    result = run(per_camera_day, days)
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@app.command("past-reads")
def past_reads_cmd(
    sightings: Annotated[int, typer.Option(help="Sightings to generate (all in the window).")] = (
        10_000_000
    ),
    entries: Annotated[int, typer.Option(help="Entries newly listed.")] = 1000,
    days: Annotated[float, typer.Option(help="Look-back window in days.")] = 7.0,
    seen: Annotated[float, typer.Option(help="Share of entries the cameras saw.")] = 0.1,
    keep: Annotated[
        Path | None, typer.Option(help="Keep (and reuse) the DuckDB file in this folder.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Past-read matching: list N entries, match them against a week of sightings."""
    import json

    from bench.past_reads import run

    result = run(sightings, entries, days, keep=keep, seen_share=seen)
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
    face_cameras: Annotated[
        int,
        typer.Option(
            min=0,
            help="Make this many cameras face cameras (a clip with faces, faces on) and "
            "compare with the same run without faces.",
        ),
    ] = 0,
    face_fps: Annotated[float, typer.Option(help="Face detections/s per face camera.")] = 5.0,
    repeat: Annotated[int, typer.Option(min=1, help="Runs per setting (with faces).")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Edge pipeline frames/s at 1080p and 720p (decode included), ms per stage, peak RSS."""
    import json

    if face_cameras:
        from bench.edge_faces import run as run_faces

        result = run_faces(
            models, frames, cameras, max(threads or (2,)), face_cameras, face_fps, repeat
        )
        typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))
        return
    from bench.edge import run

    result = run(models, frames, cameras, tuple(threads or (1, 2)), realtime)
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@app.command("synth-plates")
def synth_plates_cmd(
    out: Annotated[Path, typer.Option(help="Data set folder to write.")],
    count: Annotated[int, typer.Option(min=1, help="Images to make.")] = 500,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same images.")] = 1,
    night_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of night images.")
    ] = 0.3,
    blur_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of motion- or defocus-blurred images.")
    ] = 0.4,
    dirt_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of dirty plates.")
    ] = 0.2,
    street_share: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Share of small plates put in street camera frames."),
    ] = 0.25,
    layout: Annotated[
        list[str] | None,
        typer.Option(
            "--layout",
            help="Only this plate layout (repeatable): ua_current, ua_ev, ua_square, ua_1995, "
            "ua_transit, ua_diplomatic, ua_military.",
        ),
    ] = None,
    font: Annotated[
        Path | None, typer.Option(help="Character font (default: Open DIN, else DejaVu).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a set already in --out.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Synthetic Ukrainian plates in real photos, as a data set for `bench plates`."""
    import json

    from bench.synth import KINDS, SynthOptions, generate

    unknown = sorted(set(layout or ()) - set(KINDS))
    if unknown:
        raise typer.BadParameter(f"unknown layout {', '.join(unknown)}", param_hint="--layout")
    kinds = {k: w for k, w in KINDS.items() if not layout or k in layout}
    options = SynthOptions(
        night_share=night_share,
        blur_share=blur_share,
        dirt_share=dirt_share,
        street_share=street_share,
        kinds=kinds,
    )
    try:
        result = generate(out, count, seed, options, font=font, overwrite=overwrite)
    except (FileExistsError, FileNotFoundError) as err:  # a set in --out; no font or photos
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from err
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@app.command("synth-eval")
def synth_eval_cmd(
    dataset: Annotated[Path, typer.Option(help="Folder written by `bench synth-plates`.")],
    by: Annotated[
        list[str] | None,
        typer.Option(
            "--by",
            help="Break down by this ground-truth column (repeatable; default: condition, "
            "lines, blur); `size` bands the plate width, `dirty` splits on dirt.",
        ),
    ] = None,
    models: Annotated[
        Path | None, typer.Option(help="Model store root (default: $VARTA_MODELS).")
    ] = None,
    baseline: Annotated[
        bool, typer.Option(help="Also run the naive PP-OCR pipeline (doubles the time).")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """`bench plates` figures on a synthetic set, overall and per condition."""
    import json

    from bench.synth_eval import run

    try:
        result = run(dataset, by or ("condition", "lines", "blur"), models, baseline)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--by") from err
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))
