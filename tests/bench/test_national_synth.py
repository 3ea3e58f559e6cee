"""The national benchmark's generator writes the archive contract: layout, file schema,
sorted rows, plate texts with their keys, vehicles seen across regions."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from bench.national_synth import SynthSpec, generate
from central.archive.schema import FILE_SCHEMA
from central.audit import AuditLog
from central.search import JourneyQuery, PlateQuery
from central.store.db import Database
from central.watchlist.index import canonical
from national.archive_io import duckdb_source, local_files
from national.query import NationalJourney
from national.search import DuckDbEngine, NationalSearch


def test_synthetic_archives_follow_the_archive_contract(tmp_path: Path) -> None:
    spec = SynthSpec(rows=6_000, regions=3, days=2, cameras=4)
    made = generate(spec, tmp_path / "a")
    archives: dict[str, str] = made["archives"]  # type: ignore[assignment]
    assert sorted(archives) == ["region-01", "region-02", "region-03"]
    files = [f for root in archives.values() for f in local_files(root)]
    assert made["files"] == len(files) == 3 * 2 * 4
    for f in files:
        table = pq.read_table(f)
        # DuckDB marks its constant columns NOT NULL; the types are the contract's
        nullable = pa.schema([f.with_nullable(True) for f in table.schema])
        assert nullable.equals(FILE_SCHEMA)
        times = table.column("captured_at").to_pylist()
        assert times == sorted(times)
        day, camera = f.parent.parent.name, f.parent.name
        assert {t.date().isoformat() for t in times} == {day.removeprefix("date=")}
        assert camera.startswith(f"camera_id={table.column('region')[0]}-cam-")
        for texts, keys in zip(
            table.column("plate_texts").to_pylist(),
            table.column("plate_keys").to_pylist(),
            strict=True,
        ):
            assert keys == [canonical(t).decode() for t in texts]
    with duckdb.connect() as con:
        total, ids, spread = con.execute(
            f"SELECT count(*), count(DISTINCT event_id), max(n) FROM {duckdb_source(archives)}, "
            f"(SELECT max(r) AS n FROM (SELECT plate, count(DISTINCT region) AS r "
            f"FROM {duckdb_source(archives)} GROUP BY plate))"
        ).fetchall()[0]
    assert total == ids == 6_000
    assert spread == 3  # some vehicles are seen in every region
    assert generate(spec, tmp_path / "a")["reused"] is True


def test_a_journey_over_synthetic_archives_crosses_regions(tmp_path: Path) -> None:
    made = generate(SynthSpec(rows=3_000, regions=3, days=1, cameras=2), tmp_path / "a")
    archives: dict[str, str] = made["archives"]  # type: ignore[assignment]
    with duckdb.connect() as con:
        [(plate,)] = con.execute(
            f"SELECT plate FROM {duckdb_source(archives)} GROUP BY plate "
            "ORDER BY count(DISTINCT region) DESC, count(*) DESC, plate LIMIT 1"
        ).fetchall()
    db = Database(tmp_path / "audit.duckdb")
    engine = DuckDbEngine(archives)
    trip = NationalSearch(engine, AuditLog(db)).journey(
        NationalJourney(JourneyQuery(PlateQuery.parse(plate, "exact"))), "bench", "test 1"
    )
    times = [s.sighting["captured_at"] for s in trip.stops]
    assert times == sorted(times) and len(times) >= 20
    assert {s.sighting["region"] for s in trip.stops} == set(archives)
    engine.close()
    db.close()
