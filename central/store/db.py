"""Open the DuckDB database and bring its schema up to date.

Central owns one writer connection (the ingest thread's); HTTP handlers read through their
own cursors made from it (``Database.reader()``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)

# Each entry is one migration; append, never edit. Later modules add their own tables
# through ``ensure_schema`` functions of their repositories.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE sightings (
        event_id UUID PRIMARY KEY,
        agent_id VARCHAR NOT NULL,
        camera_id VARCHAR NOT NULL,
        captured_at TIMESTAMPTZ NOT NULL,
        received_at TIMESTAMPTZ NOT NULL,
        plate VARCHAR,
        plate_raw VARCHAR,
        plate_confidence FLOAT,
        plate_candidates STRUCT(text VARCHAR, confidence FLOAT)[],
        plate_char_confidences FLOAT[],
        plate_format VARCHAR,
        plate_region VARCHAR,
        plate_box FLOAT[4],
        vehicle_box FLOAT[4],
        vehicle_type VARCHAR,
        vehicle_type_confidence FLOAT,
        colour VARCHAR,
        colour_confidence FLOAT,
        track_frames INTEGER,
        track_seconds FLOAT,
        thumbnails STRUCT(role VARCHAR, width INTEGER, height INTEGER,
                          pack VARCHAR, "offset" BIGINT, length INTEGER)[]
    );
    CREATE TABLE agents (
        agent_id VARCHAR PRIMARY KEY,
        software_version VARCHAR,
        models JSON,
        first_seen TIMESTAMPTZ NOT NULL,
        last_seen TIMESTAMPTZ NOT NULL,
        last_hello TIMESTAMPTZ,
        started_at TIMESTAMPTZ,
        spool_depth BIGINT DEFAULT 0,
        spool_bytes BIGINT DEFAULT 0,
        spool_evictions BIGINT DEFAULT 0,
        dead_letters BIGINT DEFAULT 0,
        sightings_received BIGINT DEFAULT 0
    );
    CREATE TABLE cameras (
        agent_id VARCHAR NOT NULL,
        camera_id VARCHAR NOT NULL,
        name VARCHAR,
        source_kind VARCHAR,
        online BOOLEAN,
        fps_in FLOAT,
        fps_out FLOAT,
        frames_dropped BIGINT,
        error VARCHAR,
        last_seen TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (agent_id, camera_id)
    );
    """,
    # 2: the plate index of sighting search (central/search/index.py explains it).
    """
    CREATE TABLE plate_index (
        k VARCHAR NOT NULL,
        rev BOOLEAN NOT NULL,
        text VARCHAR NOT NULL,
        captured_at TIMESTAMPTZ NOT NULL,
        event_id UUID NOT NULL,
        camera_id VARCHAR NOT NULL,
        agent_id VARCHAR NOT NULL,
        vehicle_type VARCHAR,
        colour VARCHAR
    );
    CREATE TABLE plate_index_state (
        id INTEGER PRIMARY KEY,
        watermark TIMESTAMPTZ NOT NULL,
        merged_through TIMESTAMPTZ NOT NULL
    );
    INSERT INTO plate_index_state VALUES
        (1, TIMESTAMPTZ '1970-01-01 00:00:00+00', TIMESTAMPTZ '1970-01-01 00:00:00+00');
    """,
)


class Database:
    """One DuckDB file: the writer connection plus reader cursors."""

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.writer = duckdb.connect(str(path))
        self._reader_lock = threading.Lock()
        self._migrate()

    def _migrate(self) -> None:
        con = self.writer
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ DEFAULT now())"
        )
        row = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        current = int(row[0]) if row else 0
        for version, sql in enumerate(MIGRATIONS[current:], start=current + 1):
            log.info("applying schema migration %d", version)
            con.execute("BEGIN")
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations (version) VALUES (?)", [version])
            con.execute("COMMIT")

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A fresh cursor for one read (safe to use from any thread)."""
        with self._reader_lock:
            cur = self.writer.cursor()
        try:
            yield cur
        finally:
            cur.close()

    def close(self) -> None:
        """Checkpoint and close."""
        try:
            self.writer.execute("CHECKPOINT")
        finally:
            self.writer.close()
