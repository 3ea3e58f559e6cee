"""TEST-SIDE STAND-IN FOR THE ARCHIVE EXPORTER (central/archive/export.py, written apart).

``write_test_archive`` turns a real central DuckDB (filled through the ingest path's
``SightingRepository``, see tests/central/search_helpers.py) into the archive layout of
``central.archive.schema`` with pyarrow. Its plate texts and keys come from the regional
search's own SQL (``central.search.index.key_rows_sql``), so the archive matches exactly
what the regional search matches. Once the real exporter is merged, swap this function for
it: the tests only need "a central DuckDB in, an archive root out".
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from central.archive.schema import FILE_SCHEMA, partition_dir
from central.search.index import key_rows_sql
from central.store.db import Database


def write_test_archive(db: Database, root: Path, region: str) -> int:
    """Write every sighting of ``db`` under ``root`` as ``region``'s archive.

    Returns:
        Rows written.
    """
    keys = key_rows_sql("sightings", "TRUE")
    sql = f"""
        WITH keyed AS (
            SELECT event_id, list(text ORDER BY text) AS plate_texts,
                   list(k ORDER BY text) AS plate_keys
            FROM ({keys}) WHERE NOT rev GROUP BY event_id
        )
        SELECT ?::VARCHAR AS region, s.event_id::VARCHAR AS event_id, agent_id, captured_at,
               received_at, plate, plate_raw, plate_confidence, plate_candidates,
               plate_char_confidences, plate_format, plate_region, plate_box, vehicle_box,
               vehicle_type, vehicle_type_confidence, colour, colour_confidence,
               track_frames, track_seconds,
               coalesce(keyed.plate_texts, []::VARCHAR[]) AS plate_texts,
               coalesce(keyed.plate_keys, []::VARCHAR[]) AS plate_keys,
               strftime(timezone('UTC', captured_at), '%Y-%m-%d') AS day, camera_id
        FROM sightings s LEFT JOIN keyed USING (event_id)
        ORDER BY captured_at, s.event_id
    """
    with db.reader() as con:
        rel = con.sql(sql, params=[region])
        assert rel is not None
        table = rel.to_arrow_table()
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, (day, cam) in enumerate(
        zip(table.column("day").to_pylist(), table.column("camera_id").to_pylist(), strict=True)
    ):
        groups[(day, cam)].append(i)
    files = table.drop_columns(["day", "camera_id"])
    columns = [files.column(f.name).cast(f.type) for f in FILE_SCHEMA]
    files = pa.Table.from_arrays(columns, schema=FILE_SCHEMA)
    for (day, cam), rows in groups.items():
        folder = root / partition_dir(day, cam)
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(files.take(rows), folder / "part-0.parquet", compression="zstd")
    return int(table.num_rows)
