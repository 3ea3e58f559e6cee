"""Benchmark of the sighting archive: bytes per sighting, MB per camera-day, export rate.

Generates ``days`` of sightings over ~200 cameras at ``per_camera_day`` sightings per
camera and day (``bench.search``'s generator: realistic Ukrainian plates, raw OCR text,
a third with an OCR-confused second candidate), fills in what that generator leaves empty
and a real sighting has (per-character confidences, plate and vehicle boxes), then runs
the production exporter (``ArchiveExporter``, zstd Parquet to a local directory) over the
closed days and times it. One archived plate search (``ArchiveSearch``) is timed too.
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import duckdb

from bench.search import CAMERAS, START, insert_sightings
from central.archive.export import ArchiveExporter
from central.archive.search import ArchiveSearch
from central.archive.target import open_target
from central.config import ArchiveConfig
from central.search import PlateQuery, SearchQuery
from central.store.db import Database

DAY_S: Final = 86_400.0

# Per-character confidences (one per plate character), a plate box and a vehicle box, as
# the edge sends them; hash-derived so they compress like measured values, not constants.
_DETAILS = """
UPDATE sightings SET
    plate_char_confidences = list_transform(
        range(length(plate)), lambda i: (0.80 + (hash(event_id, i) % 200) / 1000.0)::FLOAT),
    plate_box = [x + 40, y + 90, x + 140, y + 115]::FLOAT[4],
    vehicle_box = [x, y, x + 180 + (h % 60), y + 130 + (h % 40)]::FLOAT[4]
FROM (SELECT event_id AS id, hash(event_id, 'box') AS h, (hash(event_id, 'x') % 1600)::FLOAT AS x,
             (hash(event_id, 'y') % 900)::FLOAT AS y FROM sightings) AS b
WHERE sightings.event_id = b.id
"""


def run(per_camera_day: int = 5000, days: int = 2) -> dict[str, Any]:
    """Generate, export, search once; return the report."""
    rows = CAMERAS * per_camera_day * days
    with tempfile.TemporaryDirectory(prefix="varta-bench-archive-") as tmp:
        folder = Path(tmp)
        db = Database(folder / "archive.duckdb")
        hours = 6 * 3600.0
        started = time.perf_counter()

        def generate(con: duckdb.DuckDBPyConnection) -> None:
            con.execute("CREATE TABLE bench_s AS SELECT * FROM sightings LIMIT 0")
            con.execute("DROP TABLE sightings")  # no ART key: bulk load speed (bench.search)
            con.execute("ALTER TABLE bench_s RENAME TO sightings")
            insert_sightings(con, rows, START.timestamp(), days * DAY_S)
            con.execute(_DETAILS)

        db.writer.call(generate, alone=True, timeout=hours)
        generated = time.perf_counter() - started
        now = (START + timedelta(days=days + 1)).timestamp()
        config = ArchiveConfig(enabled=True, root=str(folder / "archive"), region="UA-BENCH")
        target = open_target(config)
        exporter = ArchiveExporter(
            db, target, config.region, grace_s=3600, retention_days=365, clock=lambda: now
        )
        t0, cpu0 = time.perf_counter(), time.process_time()
        report = exporter.export()
        export_s, export_cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
        with db.reader() as con:
            found = con.execute("SELECT plate FROM sightings LIMIT 1").fetchall()
        archive = ArchiveSearch(db, target, keep_days=0.5, clock=lambda: now)
        query = SearchQuery(plate=PlateQuery.parse(found[0][0], "exact"))
        t0 = time.perf_counter()
        hits = archive.search(query)
        search_s = time.perf_counter() - t0
        db.close()
    camera_days = report.parts
    return {
        "sightings": report.rows,
        "cameras": CAMERAS,
        "days": days,
        "per_camera_day_target": per_camera_day,
        "parts": report.parts,
        "archive_bytes": report.bytes,
        "bytes_per_sighting": round(report.bytes / max(report.rows, 1), 1),
        "mb_per_camera_day": round(report.bytes / max(camera_days, 1) / 1e6, 3),
        "export_s": round(export_s, 2),
        "export_rows_per_s": round(report.rows / export_s),
        "export_cpu_s": round(export_cpu_s, 2),
        "export_rows_per_cpu_s": round(report.rows / export_cpu_s),
        "archive_exact_search_s": round(search_s, 3),
        "archive_exact_search_results": len(hits),
        "generate_s": round(generated, 1),
        "threads": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 1),
        "note": "one part per camera-day (no late rows); zstd level in "
        "central/archive/export.py; search reads every archived day (no time range); "
        "rows per CPU-second (all threads) is the figure that a busy machine does not skew",
    }
