"""Benchmark of past-read matching: newly listed entries against a week of sightings.

Generates ``sightings`` in DuckDB with ``bench.search``'s SQL (realistic Ukrainian plates,
raw reads with spaces, OCR-confused second candidates; no Python per row), all captured in
the matching window (the last ``days`` before now), and builds the plate index as one
key-sorted run per UTC day (the state after the indexer's nightly merge). Then a list of
``entries`` plates is loaded - a share of them (``--seen``, default a tenth) plates the
cameras saw, the rest random plates of the same format - and ``PastReads.run`` is timed on
their keys: matcher build, the SQL pre-filter over the plate index, rebuilding and matching
the candidates, and writing the historical alerts. ``cpu_seconds`` is the CPU time of all
threads in that pass, for a machine shared with other work (``load_average_1m`` says how
busy it was). A second pass over the same keys shows it raises nothing twice.

As in ``bench/search.py``, ``sightings`` has no ART primary key on ``event_id``: with it, a
pass with at most 200 hits fetches them through the key (~4 ms each); more are found by
one scan either way.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from bench.search import REGIONS, SERIES, _generate_sql
from central.alerts.engine import AlertEngine
from central.alerts.past_reads import PastReads
from central.search.index import key_rows_sql
from central.store.db import Database
from central.watchlist.importer import SCHEMA
from central.watchlist.model import ListSettings
from central.watchlist.repository import WatchlistRepository

LIST = "bench-stolen"


def _generate(db: Database, rows: int, start: float, days: float) -> None:
    """``rows`` sightings from ``start`` over ``days``, then the per-day index runs."""
    sql = _generate_sql(max(1000, rows // 25), start, days * 86_400 / rows)

    def create(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("CREATE TABLE bench_s AS SELECT * FROM sightings LIMIT 0")
        con.execute("DROP TABLE sightings")
        con.execute("ALTER TABLE bench_s RENAME TO sightings")

    db.writer.call(create)
    chunk = 10_000_000
    for lo in range(0, rows, chunk):

        def insert(con: duckdb.DuckDBPyConnection, lo: int = lo) -> None:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE bench_ids AS SELECT range AS i FROM range(?, ?)",
                [lo, min(rows, lo + chunk)],
            )
            con.execute(sql)
            con.execute("DROP TABLE bench_ids")

        db.writer.call(insert, timeout=3600.0)
    index = key_rows_sql("sightings", "captured_at >= ? AND captured_at < ?")
    first = datetime.fromtimestamp(start, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    end = datetime.fromtimestamp(start + days * 86_400, UTC)
    day = first
    while day < end:

        def run_day(con: duckdb.DuckDBPyConnection, day: datetime = day) -> None:
            con.execute(
                f"INSERT INTO plate_index SELECT * FROM ({index}) ORDER BY k, captured_at",
                [day, day + timedelta(days=1)],
            )

        db.writer.call(run_day, timeout=3600.0)
        day += timedelta(days=1)
    db.writer.call(
        lambda con: con.execute(
            "UPDATE plate_index_state SET watermark = ?, merged_through = ?", [end, first]
        )
    )
    db.writer.call(lambda con: con.execute("CHECKPOINT"), timeout=3600.0)


def _plates(db: Database, entries: int, seen_share: float, seed: int) -> list[str]:
    """``seen_share`` of them seen by the cameras, the rest random plates of that format."""
    rng = random.Random(seed)
    seen = max(1, round(entries * seen_share))
    with db.reader() as con:
        rows = con.execute(  # ints of this module, not user input
            f"SELECT DISTINCT plate FROM sightings USING SAMPLE reservoir({int(seen * 3)} ROWS) "
            f"REPEATABLE ({int(seed)})"
        ).fetchall()
    plates = {r[0] for r in rows[:seen]}
    while len(plates) < entries:
        plates.add(
            rng.choice(REGIONS)
            + f"{rng.randrange(10_000):04d}"
            + rng.choice(SERIES)
            + rng.choice(SERIES)
        )
    return sorted(plates)


def _entries(plates: list[str]) -> pa.Table:
    n = len(plates)
    text = pa.array([""] * n, pa.string())
    cols = {
        "entry_key": pa.array(plates, pa.string()),
        "kind": pa.array(["plate"] * n, pa.string()),
        "plate": pa.array(plates, pa.string()),
        "plate_raw": pa.array(plates, pa.string()),
        "category": pa.array(["stolen"] * n, pa.string()),
        "priority": pa.array([2] * n, pa.int16()),
        "reason": text,
        "case_ref": text,
        "valid_from": pa.array([None] * n, pa.timestamp("us")),
        "valid_until": pa.array([None] * n, pa.timestamp("us")),
        "source": text,
        "vehicle_type": text,
        "colour": text,
    }
    return pa.table([cols[f.name] for f in SCHEMA], schema=SCHEMA)


def run(
    sightings: int,
    entries: int = 1000,
    days: float = 7.0,
    keep: Path | None = None,
    seed: int = 1,
    seen_share: float = 0.1,
) -> dict[str, Any]:
    """Generate, list, match; return the report.

    Args:
        sightings: Sightings to generate (all inside the window).
        entries: Entries newly listed.
        days: The look-back window (``alerts.past_reads_days``).
        keep: Folder to keep the DuckDB file in; a file of as many sightings found there is
            reused (its sightings then lie where an earlier run put them).
        seed: Plate sample.
        seen_share: Share of the entries that are plates the cameras saw (each ~25-30 times
            in the window); the rest are random plates.
    """
    with tempfile.TemporaryDirectory(prefix="varta-bench-past-") as tmp:
        folder = keep or Path(tmp)
        path = folder / f"past-reads-{sightings}.duckdb"
        reuse = path.exists()
        db = Database(path)
        spill = str(folder / "spill")
        db.writer.call(lambda con: con.execute("SET temp_directory = ?", [spill]))
        now = time.time()
        started = time.perf_counter()
        if not reuse:
            _generate(db, sightings, now - days * 86_400 + 60, days)
        else:
            with db.reader() as con:
                row = con.execute("SELECT epoch(max(captured_at)) FROM sightings").fetchall()
            now = float(row[0][0]) + 60
        generated = time.perf_counter()
        repo = WatchlistRepository(db)
        name = f"{LIST}-{time.time_ns()}"
        repo.save_list(ListSettings(name=name, default_priority=2))
        counts = repo.load(name, _entries(_plates(db, entries, seen_share, seed)), full=False)
        engine = AlertEngine(db, None)
        past = PastReads(db, repo, engine, days=days, clock=lambda: now)
        cpu = time.process_time()
        first = past.run(name, counts.changed)
        cpu_first = time.process_time() - cpu
        again = past.run(name, counts.changed)
        load = os.getloadavg()[0]
        size = sum(f.stat().st_size for f in folder.glob(f"{path.name}*"))
        db.close()
    return {
        "sightings": sightings,
        "entries": first.entries,
        "seen_share": seen_share,
        "days": days,
        "seconds": first.seconds,
        "find_seconds": first.find_seconds,
        "alert_write_seconds": round(first.seconds - first.find_seconds, 3),
        "candidates": first.candidates,
        "hits": first.hits,
        "alerts": first.alerts,
        "cpu_seconds": round(cpu_first, 3),
        "load_average_1m": round(load, 2),
        "repeat_seconds": again.seconds,
        "repeat_find_seconds": again.find_seconds,
        "repeat_alerts": again.alerts,
        "generate_s": None if reuse else round(generated - started, 1),
        "file_bytes": size,
        "threads": os.cpu_count(),
        "note": "sightings without the ART primary key on event_id; plate index as per-day "
        "sorted runs; see bench/past_reads.py",
    }
