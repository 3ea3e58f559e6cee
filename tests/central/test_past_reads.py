"""Past-read matching on a real DuckDB file: the SQL pre-filter finds every read the
matcher accepts (exact, OCR look-alike, one character more or less, patterns), in the
plate index and in the rows not yet indexed, within the window only, and alerts once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from central.alerts.engine import AlertEngine
from central.alerts.past_reads import PastReads, Probe
from central.search.index import PlateIndexer
from central.store.db import Database
from central.store.sightings import IncomingSighting, SightingRepository
from central.watchlist.importer import read_records
from central.watchlist.model import ListSettings
from central.watchlist.repository import WatchlistRepository
from tests.central.alerts_helpers import incoming

NOW = time.time()
DAY = 86_400.0
READS = [  # (read, days ago, indexed yet)
    ("AA1234BB", 1.0, True),  # exact
    ("AA12348B", 2.0, True),  # OCR look-alike B -> 8
    ("AA1234B", 3.0, False),  # one character missing
    ("AA11234BB", 0.5, False),  # one character more
    ("AA1235BB", 1.0, True),  # another character: no match
    ("AA1234BB", 10.0, True),  # before the window
]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "central.duckdb")
    sightings = SightingRepository()
    for indexed in (True, False):
        items = [
            incoming(plate, at=NOW - days * DAY, seed=i)
            for i, (plate, days, index) in enumerate(READS)
            if index is indexed
        ]

        def store(con: duckdb.DuckDBPyConnection, items: list[IncomingSighting] = items) -> None:
            sightings.insert(con, items, time.time())

        database.writer.call(store)
        if indexed:
            PlateIndexer(database, lag_s=0.0).compact()
    yield database
    database.close()


def _listed(db: Database, name: str, entries: list[dict[str, str]], strict: bool) -> list[str]:
    repo = WatchlistRepository(db)
    repo.save_list(ListSettings(name=name, strict=strict))
    batch = read_records(enumerate(entries, start=1))
    assert not batch.problems
    return list(repo.load(name, batch.table, full=False).changed)


@pytest.mark.parametrize("lookups", [200, 0])  # rows by primary key, or by a scan
@pytest.mark.parametrize(
    ("entries", "strict", "expected"),
    [
        ([{"plate": "АА1234ВВ"}], False, {"AA1234BB", "AA12348B", "AA1234B", "AA11234BB"}),
        ([{"plate": "AA1234BB"}], True, {"AA1234BB"}),
        ([{"plate": "AA123*"}], False, {"AA1234BB", "AA12348B", "AA1234B", "AA1235BB"}),
        ([{"plate": "KA0000XX"}, {"vehicle_type": "van"}], False, set()),
    ],
)
def test_changed_entries_find_past_reads_once(
    db: Database, entries: list[dict[str, str]], strict: bool, expected: set[str], lookups: int
) -> None:
    keys = _listed(db, "stolen", entries, strict)
    # The reads' confidences are random; the strict-list confidence gate has its own tests
    # (tests/central/test_alerts_strict.py).
    engine = AlertEngine(db, None, min_score=0.0, strict_min_confidence=0.0)
    repo = WatchlistRepository(db)
    past = PastReads(db, repo, engine, days=7, min_score=0.0, lookups=lookups)
    report = past.run("stolen", keys)
    assert report.hits == len(expected) and report.candidates >= report.hits
    alerts = engine.open_alerts
    assert all(a.historical for a in alerts)
    with db.reader() as con:
        trail = [t for a in alerts for t in engine.repository.trail(con, a.alert_id)]
    assert {t.plate for t in trail} == expected
    assert all(NOW - 7 * DAY < t.captured_at < NOW for t in trail)  # the sighting's own time
    assert past.run("stolen", keys).alerts == 0  # again: nothing twice


def test_background_passes_run_in_order(db: Database) -> None:
    keys = _listed(db, "stolen", [{"plate": "AA1234BB"}], False)
    engine = AlertEngine(db, None, min_score=0.0)
    past = PastReads(db, WatchlistRepository(db), engine, days=7, min_score=0.0)
    past.start()
    try:
        past.submit("stolen", keys)
        past.submit("stolen", keys)
        assert past.wait_idle(30)
    finally:
        past.stop()
    assert past.last is not None and past.last.alerts == 0
    assert sum(a.sightings for a in engine.open_alerts) == 4


def test_probe_skips_attribute_only_entries() -> None:
    table = read_records(enumerate([{"vehicle_type": "van", "colour": "white"}], 1)).table
    with_list = table.append_column("list_name", pa.array(["x"], pa.string()))
    assert Probe.of(with_list, set()).empty
