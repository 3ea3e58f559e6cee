"""Small factories for alert tests: a Cyrillic wanted list in a real DuckDB, sightings."""

from __future__ import annotations

import csv
import random
from pathlib import Path

from bench.loadgen import make_sighting
from central.store.db import Database
from central.store.sightings import IncomingSighting
from central.watchlist.model import ListSettings
from central.watchlist.repository import WatchlistRepository
from central.watchlist.sync import import_file

# (registry plate as written, category, priority)
WANTED = [
    ("АА7681ТЕ", "stolen", 1),
    ("ВС1234НН", "wanted", 2),
    ("КА0001АВ", "violation", 4),
]


def write_wanted_list(db_file: Path, rows: list[tuple[str, str, int]] = WANTED) -> None:
    """Import a Cyrillic CSV export as list ``national`` into the DuckDB file."""
    export = db_file.parent / "export.csv"
    db_file.parent.mkdir(parents=True, exist_ok=True)
    with export.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["plate", "category", "priority", "reason", "case_ref"])
        for i, (plate, category, priority) in enumerate(rows):
            out.writerow([plate, category, priority, "розшук", f"1202500000{i}"])
    db = Database(db_file)
    try:
        repo = WatchlistRepository(db)
        repo.save_list(ListSettings(name="national"))
        report = import_file(repo, "national", export, full=True)
        assert report.added == len(rows), report
    finally:
        db.close()


def incoming(
    plate: str, camera: str = "cam-1", at: float | None = None, agent: str = "a1", seed: int = 1
) -> IncomingSighting:
    """A stored-sighting record as ingest hands it to ``on_commit`` (two thumbnails)."""
    sighting, _ = make_sighting(random.Random(seed), camera_id=camera, plate=plate, now=at)
    return IncomingSighting(agent, sighting, [("p", 0, 10), ("p", 10, 10)])
