"""`varta national search` and `varta national journey`: audited searches of every region's
archive on Spark. Results print as one JSON object (the regional API's shape, plus each
sighting's ``region``); the reason and the query go to the national audit log."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(no_args_is_help=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="central.yaml with a `national_search` section."),
]
ReasonOption = Annotated[
    str, typer.Option(help="Case number or purpose (required; written to the audit log).")
]
PlateOption = Annotated[str | None, typer.Option(help="Plate (Cyrillic or Latin) or pattern.")]
FromOption = Annotated[
    str | None, typer.Option("--from", help="Captured at or after (ISO 8601 or UNIX s).")
]
ToOption = Annotated[str | None, typer.Option("--to", help="Captured before (ISO 8601 or UNIX s).")]
RegionOption = Annotated[
    list[str] | None, typer.Option("--region", help="Only this region; repeat for several.")
]
ArchiveOption = Annotated[
    list[str] | None,
    typer.Option(
        "--archive", help="REGION=ROOT, an archive besides the configured ones (repeatable)."
    ),
]
MasterOption = Annotated[
    str | None, typer.Option(help="Spark master (local[N] or spark://host:port) for this run.")
]
EngineOption = Annotated[
    str, typer.Option(help="spark (national) or duckdb (same query on this machine).")
]
AuditDbOption = Annotated[
    Path | None, typer.Option(help="Audit DuckDB file (default: the configured one).")
]


def _config(
    config: Path | None, archives: list[str] | None, master: str | None, audit_db: Path | None
) -> Any:
    from central.config import CentralConfig, RegionArchiveConfig
    from shared.config import load
    from shared.errors import ConfigError

    try:
        cfg = (
            load(config, CentralConfig) if config is not None else CentralConfig()
        ).national_search
        extra = []
        for item in archives or []:
            region, sep, root = item.partition("=")
            if not sep or not root:
                raise typer.BadParameter(
                    f"expected REGION=ROOT, got {item!r}", param_hint="--archive"
                )
            extra.append(RegionArchiveConfig(region=region, root=root))
        changes: dict[str, Any] = {"archives": [*cfg.archives, *extra]}
        if master:
            changes["master"] = master
        if audit_db:
            changes["audit_db"] = audit_db
        return type(cfg).model_validate({**cfg.model_dump(), **changes})
    except (ConfigError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err


def _run(cfg: Any, engine: str, call: Any) -> Any:
    from national.app import EngineKind, open_national
    from national.spark import SparkUnavailable
    from shared.errors import InvalidRequest

    kinds: dict[str, EngineKind] = {"spark": "spark", "duckdb": "duckdb"}
    if engine not in kinds:
        typer.echo(f"error: --engine: expected spark or duckdb, got {engine!r}", err=True)
        raise typer.Exit(2)
    try:
        with open_national(cfg, kinds[engine]) as national:
            return call(national)
    except (InvalidRequest, SparkUnavailable) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err


@app.command("search")
def search_cmd(
    reason: ReasonOption,
    plate: PlateOption = None,
    match: Annotated[
        str | None, typer.Option(help="exact, wildcard (? one, * any) or fuzzy.")
    ] = None,
    from_: FromOption = None,
    to: ToOption = None,
    camera_id: Annotated[
        list[str] | None, typer.Option(help="Camera id; repeat for several.")
    ] = None,
    agent_id: Annotated[str | None, typer.Option(help="Only this edge agent.")] = None,
    vehicle_type: Annotated[str | None, typer.Option(help="car, van, truck ...")] = None,
    colour: Annotated[str | None, typer.Option(help="silver, white ...")] = None,
    region: RegionOption = None,
    limit: Annotated[int, typer.Option(help="Page size (1-1000).")] = 50,
    cursor: Annotated[str | None, typer.Option(help="'next' of the previous page.")] = None,
    config: ConfigOption = None,
    archive: ArchiveOption = None,
    master: MasterOption = None,
    engine: EngineOption = "spark",
    audit_db: AuditDbOption = None,
) -> None:
    """Sightings in every region's archive matching all conditions, newest first (JSON)."""
    from central.accounts.cli import cli_actor
    from central.search.query import Cursor, PlateQuery, SearchQuery, parse_time
    from national.query import NationalQuery
    from shared.errors import InvalidRequest

    cfg = _config(config, archive, master, audit_db)
    try:
        query = NationalQuery(
            SearchQuery(
                plate=PlateQuery.parse(plate, match) if plate else None,
                start=parse_time(from_, "from"),
                end=parse_time(to, "to"),
                camera_ids=tuple(camera_id or ()),
                agent_id=agent_id,
                vehicle_type=vehicle_type,
                colour=colour,
                limit=limit,
                cursor=Cursor.decode(cursor) if cursor else None,
            ),
            tuple(region or ()),
        )
    except InvalidRequest as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    page = _run(cfg, engine, lambda n: n.search(query, cli_actor(), reason))
    typer.echo(json.dumps({"items": page.items, "next": page.next}, ensure_ascii=False))


@app.command("journey")
def journey_cmd(
    plate: Annotated[str, typer.Option(help="The vehicle's plate.")],
    reason: ReasonOption,
    match: Annotated[str, typer.Option(help="exact or fuzzy.")] = "exact",
    from_: FromOption = None,
    to: ToOption = None,
    region: RegionOption = None,
    limit: Annotated[int, typer.Option(help="Most sightings (1-10000).")] = 1000,
    config: ConfigOption = None,
    archive: ArchiveOption = None,
    master: MasterOption = None,
    engine: EngineOption = "spark",
    audit_db: AuditDbOption = None,
) -> None:
    """One vehicle's sightings across every region, oldest first, with gaps (JSON)."""
    from central.accounts.cli import cli_actor
    from central.search.query import JourneyQuery, PlateQuery, parse_time
    from national.query import NationalJourney
    from shared.errors import InvalidRequest

    cfg = _config(config, archive, master, audit_db)
    try:
        query = NationalJourney(
            JourneyQuery(
                PlateQuery.parse(plate, match),
                parse_time(from_, "from"),
                parse_time(to, "to"),
                limit,
            ),
            tuple(region or ()),
        )
    except InvalidRequest as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    trip = _run(cfg, engine, lambda n: n.journey(query, cli_actor(), reason))
    typer.echo(json.dumps(dataclasses.asdict(trip), ensure_ascii=False))
