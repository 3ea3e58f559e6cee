"""Factories for the archive tests: a store of sightings over several UTC days."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from central.archive.export import ArchiveExporter
from central.archive.target import ArchiveTarget
from central.store.db import Database
from tests.central.search_helpers import T0, Spec

DAY = 86_400.0
NOW = T0 + 20 * DAY  # T0 is 2026-09-21 00:53 UTC; with 14 days kept, days 0-5 are purged
OLD_SPECS = [
    Spec("AT1234BO", "cam-1", 0),
    Spec("AT1234BO", "0042", 60),  # a camera id that is digits: partition keys are strings
    Spec("AT1234B0", "cam-3", 40, "car", "silver"),
    Spec("BC0000XX", "cam-4", 70, "van", "black", candidates=("AT1234BO",)),
    Spec("AT1299BE", "cam-1", DAY + 30, "van", "silver"),
    Spec("KA5678CC", "0042", DAY + 100, "truck", "red"),
    Spec("AI9999AA", "cam-1", 2 * DAY + 110, "car", "blue", raw="AI 9999 AA"),
    Spec(None, "0042", 2 * DAY + 120, "van", "silver"),
    Spec("AT1234BO", "cam-2", 2 * DAY + 900),
]
NEW_SPECS = [  # day 17 and 19: the database keeps them
    Spec("AT1234BO", "cam-1", 17 * DAY),
    Spec("KA5678CC", "0042", 17 * DAY + 60, "truck", "red"),
    Spec("AT1234BO", "cam-2", 19 * DAY + 10),
]


def exporter(db: Database, target: ArchiveTarget, now: float = NOW) -> ArchiveExporter:
    """An exporter on a fixed clock (grace one hour, archive kept 60 days)."""
    return ArchiveExporter(
        db, target, "UA-IF", grace_s=3600, retention_days=60, lag_s=60, clock=lambda: now
    )


def archive_rows(root: Path) -> list[tuple[Any, ...]]:
    """``(date, camera_id, event_id)`` of every archived row, as a national reader sees it."""
    pattern = (root / "sightings" / "**" / "*.parquet").as_posix()
    rel = duckdb.sql(
        f"SELECT date, camera_id, event_id FROM read_parquet('{pattern}', "
        "hive_partitioning = true, hive_types = {'date': DATE, 'camera_id': VARCHAR}) "
        "ORDER BY ALL"
    )
    assert rel is not None
    return rel.fetchall()
