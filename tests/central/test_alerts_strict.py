"""A read below the calibrated alert threshold never raises a strict-list alert: real
DuckDB, real wanted lists, the real matcher and alert engine (live and past reads)."""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from central.alerts.engine import AlertEngine
from central.alerts.past_reads import PastReads
from central.store.db import Database
from central.store.sightings import IncomingSighting, SightingRepository
from central.watchlist.model import ListSettings
from central.watchlist.repository import WatchlistRepository
from central.watchlist.service import WatchlistService
from central.watchlist.sync import import_file
from shared.plates import STRICT_MIN_CONFIDENCE
from tests.central.alerts_helpers import incoming, write_wanted_list
from tests.harness import wait_for

STRICT_PLATE = "KA0007KA"  # on the strict list "police"
TOLERANT_PLATE = "AA7681TE"  # on the OCR-tolerant list "national"


def _read(
    plate: str, confidence: float, seed: int = 1, at: float | None = None
) -> IncomingSighting:
    """A stored sighting whose plate was read with ``confidence`` (candidates likewise)."""
    inc = incoming(plate, seed=seed, at=at)
    read = inc.sighting.plate
    assert read is not None
    read = msgspec.structs.replace(
        read,
        confidence=confidence,
        candidates=[msgspec.structs.replace(c, confidence=confidence) for c in read.candidates],
    )
    return IncomingSighting(
        inc.agent_id, msgspec.structs.replace(inc.sighting, plate=read), inc.thumbs
    )


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    write_wanted_list(tmp_path / "c.duckdb")
    database = Database(tmp_path / "c.duckdb")
    repo = WatchlistRepository(database)
    repo.save_list(ListSettings(name="police", strict=True))
    export = tmp_path / "police.csv"
    with export.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["plate", "category"], [STRICT_PLATE, "wanted"]])
    assert import_file(repo, "police", export).problems == []
    yield database
    database.close()


@pytest.mark.parametrize(
    ("plate", "confidence", "lists"),
    [
        (STRICT_PLATE, STRICT_MIN_CONFIDENCE, {"police"}),
        (STRICT_PLATE, 0.999, {"police"}),
        (STRICT_PLATE, STRICT_MIN_CONFIDENCE - 0.01, set()),  # confident-looking, not enough
        (STRICT_PLATE, 0.5, set()),
        (TOLERANT_PLATE, 0.5, {"national"}),  # a tolerant list still matches it
        (TOLERANT_PLATE, 0.999, {"national"}),
    ],
)
def test_strict_list_alerts_only_at_or_above_the_threshold(
    db: Database, plate: str, confidence: float, lists: set[str]
) -> None:
    engine = AlertEngine(db, WatchlistService(WatchlistRepository(db)), min_score=0.6)
    engine.start()
    try:
        engine.on_commit([_read(plate, confidence)])
        assert wait_for(lambda: engine.stats.sightings_checked >= 1, 5, 0.01), engine.stats
        if lists:
            assert wait_for(lambda: bool(engine.open_alerts), 5, 0.01), engine.stats
        alerts = engine.open_alerts
        assert {a.details["list_name"] for a in alerts} == lists, [a.details for a in alerts]
    finally:
        engine.stop()


def test_past_reads_follow_the_same_rule(db: Database) -> None:
    now = time.time()
    weak = _read(STRICT_PLATE, STRICT_MIN_CONFIDENCE - 0.05, seed=1, at=now - 60)
    strong = _read(STRICT_PLATE, 0.995, seed=2, at=now - 30)
    db.writer.call(lambda con: SightingRepository().insert(con, [weak, strong], now))
    repo = WatchlistRepository(db)
    table = repo.active_entries()
    keys = [
        k
        for k, name in zip(
            table["entry_key"].to_pylist(), table["list_name"].to_pylist(), strict=True
        )
        if name == "police"
    ]
    engine = AlertEngine(db, None, min_score=0.6)
    report = PastReads(db, repo, engine, days=1, min_score=0.6).run("police", tuple(keys))
    assert report.hits == 1
    with db.reader() as con:
        trail = [t for a in engine.open_alerts for t in engine.repository.trail(con, a.alert_id)]
    assert [t.event_id for t in trail] == [strong.sighting.event_id]
