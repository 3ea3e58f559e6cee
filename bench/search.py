"""Benchmark of sighting search over a large synthetic store.

Generates ``rows`` sightings inside DuckDB (``range()`` + ``hash()``, no Python per row):
30 days in capture-time order over ~200 cameras, vehicles seen ~25 times each with
realistic Ukrainian plates (region codes of both schemes, four digits, two of the 12
series letters), raw OCR text with spaces and, for a third of the reads, a second
candidate with an OCR confusion (O->0, B->8, I->1). The plate index is then built with
the production SQL (``central.search.index.key_rows_sql``) as one key-sorted run per UTC
day - the state the indexer's nightly ``merge_day`` leaves behind. Queries go through the
real ``SearchService`` (with the audit log) on a reader cursor; its clock is set to the end
of the generated month, as if the data were live.

The bench store differs from production in two ways, both reported in the output:
``sightings`` has no PRIMARY KEY (ART index on ``event_id``) unless ``--with-pk`` is given,
and the plate index is built directly as per-day runs rather than by hourly compaction
followed by merges. At 10M rows the key added 38% to the file (1.70 vs 1.23 GB) and did
not slow generation; at 100M it was not measured (it would add ~5 GB and must fit in
memory when DuckDB loads it). Search does not use it: pages are fetched by ``captured_at``
zone maps plus ``event_id``. Ingest needs it for idempotent inserts, so production keeps it.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import duckdb

from central.audit import AuditLog
from central.search import JourneyQuery, PlateQuery, SearchQuery, SearchService
from central.search.index import first_row, key_rows_sql
from central.store.db import Database

START: Final = datetime(2026, 10, 1, tzinfo=UTC)
DAYS: Final = 30
CAMERAS: Final = 200
REGIONS: Final = (
    "AA", "KA", "AB", "KB", "AC", "KC", "AE", "KE", "AH", "KH", "AI", "KI", "AM", "KM", "AO",
    "KO", "AP", "KP", "AT", "KT", "AX", "KX", "BA", "HA", "BC", "HC", "BE", "HE", "BH", "HH",
    "BI", "HI", "BK", "HK", "BM", "HM", "BO", "HO", "BT", "HT", "BX", "HX", "CA", "IA", "CB",
    "IB", "CE", "IE", "II",
)  # fmt: skip
SERIES: Final = "ABEIKMHOPCTX"
TYPES: Final = ("car", "car", "car", "van", "truck", "bus", "motorcycle")
COLOURS: Final = ("white", "black", "silver", "gray", "blue", "red", "green")


def _sql_list(items: tuple[str, ...]) -> str:
    """A SQL list literal of this module's constant strings (never user input)."""
    if not all(x.isalnum() for x in items):
        raise ValueError("constant lists must be alphanumeric")
    return "[" + ", ".join(f"'{x}'" for x in items) + "]"


def _generate_sql(vehicles: int, start: float, step: float) -> str:
    """The INSERT of one chunk (ids from ``bench_ids``).

    Every value is a constant of this module formatted as a literal, so DuckDB folds them;
    with ``?`` parameters the projections ran several times slower.
    """
    pick = "list_extract({lst}, 1 + (hash(v, {salt}) % {n})::INTEGER)"
    plate = (
        pick.format(lst=_sql_list(REGIONS), salt=1, n=len(REGIONS))
        + " || lpad((hash(v, 2) % 10000)::VARCHAR, 4, '0')"
        + f" || substr('{SERIES}', 1 + (hash(v, 3) % 12)::INTEGER, 1)"
        + f" || substr('{SERIES}', 1 + (hash(v, 4) % 12)::INTEGER, 1)"
    )
    vtype = pick.format(lst=_sql_list(TYPES), salt=7, n=len(TYPES))
    colour = pick.format(lst=_sql_list(COLOURS), salt=8, n=len(COLOURS))
    return f"""
INSERT INTO sightings
SELECT uuidv7(), 'edge-' || (cam // 4), 'cam-' || cam, to_timestamp(sec),
       to_timestamp(sec + 1.5),
       plate, substr(plate, 1, 2) || ' ' || substr(plate, 3, 4) || ' ' || substr(plate, 7),
       0.9::FLOAT,
       CASE WHEN hash(i, 9) % 3 = 0 AND translate(plate, 'OBI', '081') <> plate
            THEN [{{'text': plate, 'confidence': 0.9::FLOAT}},
                  {{'text': translate(plate, 'OBI', '081'), 'confidence': 0.1::FLOAT}}]
            ELSE [{{'text': plate, 'confidence': 0.9::FLOAT}}] END,
       NULL, 'ua_current', 'UA-' || substr(plate, 1, 2), NULL, NULL,
       {vtype}, 0.8::FLOAT, {colour}, 0.7::FLOAT, 12, 1.5::FLOAT,
       [{{'role': 'vehicle', 'width': 320, 'height': 240,
          'pack': pack, 'offset': i * 8000, 'length': 6000}},
        {{'role': 'plate', 'width': 160, 'height': 40,
          'pack': pack, 'offset': i * 8000 + 6000, 'length': 2000}}]
FROM (
    SELECT i, v, cam, sec,
           strftime(DATE '{START.date().isoformat()}' + ((i * {step!r}) // 86400)::INTEGER,
                    '%Y%m%d') || '/000001' AS pack,
           {plate} AS plate
    FROM (
        SELECT i, hash(i, 0) % {int(vehicles)} AS v, (hash(i, 6) % {CAMERAS})::INTEGER AS cam,
               {float(start)!r} + i * {float(step)!r} AS sec
        FROM bench_ids
    )
)
"""


def _generate(con: duckdb.DuckDBPyConnection, rows: int, with_pk: bool) -> None:
    if not with_pk:  # same columns, no ART primary key (see the module docstring)
        con.execute("CREATE TABLE bench_s AS SELECT * FROM sightings LIMIT 0")
        con.execute("DROP TABLE sightings")
        con.execute("ALTER TABLE bench_s RENAME TO sightings")
    insert_sightings(con, rows, START.timestamp(), DAYS * 86_400)


def insert_sightings(
    con: duckdb.DuckDBPyConnection, rows: int, start: float, span_s: float
) -> None:
    """``rows`` synthetic sightings captured evenly from ``start`` over ``span_s``."""
    sql = _generate_sql(max(1000, rows // 25), start, span_s / max(rows, 1))
    chunk = 10_000_000
    for lo in range(0, rows, chunk):
        # range() is one thread; scanning a table of the ids runs on every core.
        con.execute(
            "CREATE OR REPLACE TEMP TABLE bench_ids AS SELECT range AS i FROM range(?, ?)",
            [lo, min(rows, lo + chunk)],
        )
        con.execute(sql)
    con.execute("DROP TABLE IF EXISTS bench_ids")


def _build_index(con: duckdb.DuckDBPyConnection) -> None:
    """One key-sorted run per UTC day, as ``PlateIndexer.merge_day`` leaves them."""
    sql = key_rows_sql("sightings", "captured_at >= ? AND captured_at < ?")
    for d in range(DAYS + 1):
        day = START + timedelta(days=d)
        con.execute(
            f"INSERT INTO plate_index SELECT * FROM ({sql}) ORDER BY k, captured_at",
            [day, day + timedelta(days=1)],
        )
    end = START + timedelta(days=DAYS + 1)
    con.execute("UPDATE plate_index_state SET watermark = ?, merged_through = ?", [end, end])


def _sample_plates(db: Database, n: int, seed: int) -> list[str]:
    with db.reader() as con:
        rows = con.execute(  # n and seed are ints of this module, not user input
            f"SELECT plate FROM sightings USING SAMPLE reservoir({int(n)} ROWS) "
            f"REPEATABLE ({int(seed)})"
        ).fetchall()
    return [r[0] for r in rows]


def _confuse(plate: str, rng: random.Random) -> str:
    """One OCR confusion and, half the time, one dropped character."""
    swaps = {"0": "O", "O": "0", "B": "8", "8": "B", "I": "1", "1": "I", "5": "S", "2": "Z"}
    spots = [i for i, c in enumerate(plate) if c in swaps]
    out = plate
    if spots:
        i = rng.choice(spots)
        out = out[:i] + swaps[out[i]] + out[i + 1 :]
    if rng.random() < 0.5:
        i = rng.randrange(len(out))
        out = out[:i] + out[i + 1 :]
    return out


def query_mix(
    plate: str, camera: str, window: datetime, rng: random.Random
) -> list[tuple[str, SearchQuery | JourneyQuery]]:
    """An investigator's queries about one plate, named: exact, a prefix and a contains
    wildcard, a fuzzy search of a misread, the journey, and ``camera`` over the 20 minutes
    from ``window``. Regional and national benches time the same mix."""
    return [
        ("exact", SearchQuery(plate=PlateQuery.parse(plate, "exact"))),
        ("prefix", SearchQuery(plate=PlateQuery.parse(plate[:4] + "??" + plate[6] + "?", None))),
        ("contains", SearchQuery(plate=PlateQuery.parse(f"*{plate[2:6]}*", None))),
        ("fuzzy", SearchQuery(plate=PlateQuery.parse(_confuse(plate, rng), "fuzzy"))),
        ("journey", JourneyQuery(PlateQuery.parse(plate, "exact"))),
        (
            "camera_window",
            SearchQuery(
                camera_ids=(camera,), start=window, end=window + timedelta(minutes=20), limit=200
            ),
        ),
    ]


def _queries(
    plates: list[str], rng: random.Random
) -> list[tuple[str, Callable[[SearchService], int]]]:
    reason = "bench"

    def call(q: SearchQuery | JourneyQuery) -> Callable[[SearchService], int]:
        if isinstance(q, JourneyQuery):
            return lambda s: len(s.journey(q, "bench", reason).stops)
        return lambda s: len(s.search(q, "bench", reason).items)

    out: list[tuple[str, Callable[[SearchService], int]]] = []
    for p in plates:
        camera = f"cam-{rng.randrange(CAMERAS)}"
        window = START + timedelta(days=rng.randrange(DAYS), hours=14)
        out += [(name, call(q)) for name, q in query_mix(p, camera, window, rng)]
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4)


def run(
    rows: int, queries: int = 10, with_pk: bool = False, seed: int = 1, keep: Path | None = None
) -> dict[str, Any]:
    """Generate, index, query; return the report.

    Args:
        rows: Sightings to generate.
        queries: Sample plates; each gives one query of every kind.
        with_pk: Keep the production PRIMARY KEY on ``event_id``.
        seed: Plate sample and query mix.
        keep: Folder to keep the DuckDB file in; a file of ``rows`` rows found there is
            reused (queries only).
    """
    with tempfile.TemporaryDirectory(prefix="varta-bench-search-") as tmp:
        folder = keep or Path(tmp)
        path = folder / f"search-{rows}.duckdb"
        reuse = path.exists()
        db = Database(path)
        hours = 6 * 3600.0  # bulk loads run as the writer's own jobs, however long
        db.writer.call(
            lambda con: con.execute(f"SET temp_directory = '{folder / 'spill'}'"), alone=True
        )
        started = time.perf_counter()
        if not reuse:
            db.writer.call(lambda con: _generate(con, rows, with_pk), alone=True, timeout=hours)
        generated = time.perf_counter()
        if not reuse:
            db.writer.call(_build_index, alone=True, timeout=hours)
            db.writer.call(lambda con: con.execute("CHECKPOINT"), alone=True, timeout=hours)
        indexed = time.perf_counter()
        with db.reader() as con:
            index_rows = first_row(con.execute("SELECT count(*) FROM plate_index"))
        end = (START + timedelta(days=DAYS)).timestamp()  # "now" is the end of the data
        service = SearchService(db, AuditLog(db), clock=lambda: end)
        rng = random.Random(seed)
        plan = _queries(_sample_plates(db, queries, seed), rng)
        plan[0][1](service)  # warm the caches once
        times: dict[str, list[float]] = {}
        results: dict[str, list[int]] = {}
        for kind, call in plan:
            t0 = time.perf_counter()
            found = call(service)
            times.setdefault(kind, []).append(time.perf_counter() - t0)
            results.setdefault(kind, []).append(found)
        plate_times = [t for k, ts in times.items() if k != "camera_window" for t in ts]
        size = sum(f.stat().st_size for f in folder.glob(f"{path.name}*"))
        db.close()
    return {
        "rows": rows,
        "index_rows": int(index_rows[0]) if index_rows else 0,
        "with_primary_key": with_pk,
        "generate_s": None if reuse else round(generated - started, 1),
        "index_build_s": None if reuse else round(indexed - generated, 1),
        "file_bytes": size,
        "queries": len(plate_times),
        "search_p50_s": _pct(plate_times, 0.5),
        "search_p95_s": _pct(plate_times, 0.95),
        "search_max_s": round(max(plate_times), 4),
        "per_kind": {
            k: {
                "p50_s": _pct(ts, 0.5),
                "p95_s": _pct(ts, 0.95),
                "max_s": round(max(ts), 4),
                "mean_results": round(statistics.fmean(results[k]), 1),
            }
            for k, ts in times.items()
        },
        "threads": os.cpu_count(),
        "note": "bench table differs from production: sightings has no ART primary key on "
        "event_id unless with_primary_key; plate index built as per-day sorted runs (the "
        "state after the nightly merge); query clock = end of the data; see bench/search.py",
    }
