"""Open the DuckDB database, bring its schema up to date, and own its one writer.

Every table is created here, by the numbered ``MIGRATIONS`` (append, never edit; the
``schema_migrations`` table records what ran). Every write goes through ``Database.writer``
(``central/store/writer.py``: one connection on one thread fed by a queue); readers get
cursors in read-only transactions from ``Database.reader()``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from central.store.writer import Writer

log = logging.getLogger(__name__)

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
    # 3: audit, accounts, watchlists and alerts (created by their modules before v3,
    # hence IF NOT EXISTS: older files already have them).
    """
CREATE TABLE IF NOT EXISTS audit_log (
    id BIGINT PRIMARY KEY,
    "at" TIMESTAMPTZ NOT NULL,
    actor VARCHAR NOT NULL,
    action VARCHAR NOT NULL,
    target VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    details JSON NOT NULL,
    prev_hash VARCHAR NOT NULL,
    hash VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    username VARCHAR PRIMARY KEY,
    role VARCHAR NOT NULL,
    password_hash VARCHAR NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL,
    created_by VARCHAR NOT NULL,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until TIMESTAMPTZ,
    last_login_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS credentials (
    token_id VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,
    token_hash VARCHAR NOT NULL UNIQUE,
    username VARCHAR NOT NULL,
    label VARCHAR NOT NULL,
    scopes VARCHAR[],
    created_at TIMESTAMPTZ NOT NULL,
    created_by VARCHAR NOT NULL,
    expires_at TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ,
    revoked_by VARCHAR
);
CREATE TABLE IF NOT EXISTS watchlist_lists (
    name VARCHAR PRIMARY KEY,
    strict BOOLEAN NOT NULL,
    retention_days INTEGER NOT NULL,
    default_priority SMALLINT NOT NULL,
    source VARCHAR NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS watchlist_entries (
    list_name VARCHAR NOT NULL,
    entry_key VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    plate VARCHAR NOT NULL,
    plate_raw VARCHAR NOT NULL,
    category VARCHAR NOT NULL,
    priority SMALLINT NOT NULL,
    reason VARCHAR NOT NULL,
    case_ref VARCHAR NOT NULL,
    valid_from TIMESTAMP,
    valid_until TIMESTAMP,
    source VARCHAR NOT NULL,
    vehicle_type VARCHAR NOT NULL,
    colour VARCHAR NOT NULL,
    listed_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS watchlist_syncs (
    list_name VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    fingerprint VARCHAR NOT NULL,
    etag VARCHAR NOT NULL,
    last_modified VARCHAR NOT NULL,
    finished_at TIMESTAMP NOT NULL,
    rows INTEGER NOT NULL,
    added INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    removed INTEGER NOT NULL,
    unchanged INTEGER NOT NULL,
    rejected INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
    alert_id BIGINT NOT NULL,
    kind VARCHAR NOT NULL,
    state VARCHAR NOT NULL,
    open BOOLEAN NOT NULL,
    dedup_key VARCHAR NOT NULL,
    seq BIGINT NOT NULL,
    updated_at DOUBLE NOT NULL,
    body VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_trail (
    alert_id BIGINT NOT NULL,
    event_id VARCHAR NOT NULL,
    captured_at DOUBLE NOT NULL,
    body VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_history (
    alert_id BIGINT NOT NULL,
    changed_at DOUBLE NOT NULL,
    actor VARCHAR NOT NULL,
    action VARCHAR NOT NULL,
    from_state VARCHAR NOT NULL,
    to_state VARCHAR NOT NULL,
    reason VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_changes (
    seq BIGINT NOT NULL,
    alert_id BIGINT NOT NULL,
    change VARCHAR NOT NULL,
    changed_at DOUBLE NOT NULL,
    body VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_queue (
    delivery_id BIGINT NOT NULL,
    endpoint VARCHAR NOT NULL,
    seq BIGINT NOT NULL,
    body VARCHAR NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error VARCHAR NOT NULL DEFAULT '',
    delivered_at DOUBLE
);
    """,
    # 4: the watermark of sightings matched against the wanted lists (alerts/engine.py).
    # Sightings stored before this migration count as matched.
    """
    CREATE TABLE match_state (
        id INTEGER PRIMARY KEY,
        watermark TIMESTAMPTZ NOT NULL
    );
    INSERT INTO match_state VALUES (1, now());
    CREATE TABLE probe (id INTEGER PRIMARY KEY, probed_at TIMESTAMPTZ NOT NULL);
    """,
    # 5: large wanted-list imports, staged and applied in key ranges (watchlist/loading.py).
    """
    CREATE TABLE watchlist_imports (
        import_id BIGINT PRIMARY KEY,
        list_name VARCHAR NOT NULL,
        full_load BOOLEAN NOT NULL,
        state VARCHAR NOT NULL,
        keep VARCHAR[] NOT NULL,
        started_at TIMESTAMP NOT NULL,
        applied_at TIMESTAMP NOT NULL,
        applied_to VARCHAR
    );
    CREATE TABLE watchlist_import_rows (
        import_id BIGINT NOT NULL,
        entry_key VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        plate VARCHAR NOT NULL,
        plate_raw VARCHAR NOT NULL,
        category VARCHAR NOT NULL,
        priority SMALLINT NOT NULL,
        reason VARCHAR NOT NULL,
        case_ref VARCHAR NOT NULL,
        valid_from TIMESTAMP,
        valid_until TIMESTAMP,
        source VARCHAR NOT NULL,
        vehicle_type VARCHAR NOT NULL,
        colour VARCHAR NOT NULL
    );
    """,
    # 6: console preferences per user (central/accounts/prefs.py): language, sound muted.
    """
    CREATE TABLE user_prefs (
        username VARCHAR PRIMARY KEY,
        locale VARCHAR NOT NULL,
        muted BOOLEAN NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL
    );
    """,
    # 7: per-minute camera health and sightings (central/store/camera_history.py), the
    # console's health plots; bounded by retention.health_history_days.
    """
    CREATE TABLE camera_minutes (
        agent_id VARCHAR NOT NULL,
        camera_id VARCHAR NOT NULL,
        minute TIMESTAMPTZ NOT NULL,
        beats INTEGER NOT NULL,
        online_beats INTEGER NOT NULL,
        fps_in_sum DOUBLE NOT NULL,
        fps_out_sum DOUBLE NOT NULL,
        frames_dropped BIGINT NOT NULL,
        sightings BIGINT NOT NULL,
        PRIMARY KEY (agent_id, camera_id, minute)
    );
    """,
    # 8: the persons watchlist of face matching and its candidates (central/faces/store.py).
    # Photos keep the enrolled JPEG and its float32 embedding; removing a person deletes
    # them and keeps the person's row as a tombstone. A candidate is keyed on the face
    # observation id (so batch dedupe covers it) and holds that observation's embedding only.
    """
    CREATE TABLE face_watchlist (id INTEGER PRIMARY KEY, version BIGINT NOT NULL);
    INSERT INTO face_watchlist VALUES (1, 0);
    CREATE TABLE face_persons (
        person_id VARCHAR PRIMARY KEY,
        name VARCHAR NOT NULL,
        legal_basis VARCHAR NOT NULL,
        reason VARCHAR NOT NULL,
        enrolled_by VARCHAR NOT NULL,
        enrolled_at TIMESTAMPTZ NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL,
        expiry_recorded BOOLEAN NOT NULL DEFAULT false,
        removed_at TIMESTAMPTZ,
        removed_by VARCHAR NOT NULL DEFAULT '',
        removed_reason VARCHAR NOT NULL DEFAULT ''
    );
    CREATE TABLE face_photos (
        photo_id VARCHAR PRIMARY KEY,
        person_id VARCHAR NOT NULL,
        file_name VARCHAR NOT NULL,
        jpeg BLOB NOT NULL,
        embedding BLOB NOT NULL,
        quality FLOAT NOT NULL,
        box FLOAT[4] NOT NULL,
        added_at TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE face_candidates (
        candidate_id VARCHAR PRIMARY KEY,
        agent_id VARCHAR NOT NULL,
        camera_id VARCHAR NOT NULL,
        captured_at TIMESTAMPTZ NOT NULL,
        received_at TIMESTAMPTZ NOT NULL,
        box FLOAT[4] NOT NULL,
        quality FLOAT NOT NULL,
        person_id VARCHAR NOT NULL,
        score FLOAT NOT NULL,
        watchlist_version BIGINT NOT NULL,
        embedding BLOB NOT NULL,
        model VARCHAR NOT NULL,
        state VARCHAR NOT NULL,
        crop_status VARCHAR NOT NULL,
        crop_jpeg BLOB,
        crop_at TIMESTAMPTZ,
        alert_id BIGINT,
        reject_reason VARCHAR NOT NULL DEFAULT '',
        decided_at TIMESTAMPTZ
    );
    CREATE TABLE face_decisions (
        candidate_id VARCHAR NOT NULL,
        actor VARCHAR NOT NULL,
        decision VARCHAR NOT NULL,
        reason VARCHAR NOT NULL,
        "at" TIMESTAMPTZ NOT NULL
    );
    """,
    # 9: the agent's link and clock health from heartbeats of schema 1.2 (NULL: an older
    # agent, or none yet); clock_skew_s is measured by central on every heartbeat.
    """
    ALTER TABLE agents ADD COLUMN reconnects BIGINT;
    ALTER TABLE agents ADD COLUMN last_ack_age_s DOUBLE;
    ALTER TABLE agents ADD COLUMN spool_peak BIGINT;
    ALTER TABLE agents ADD COLUMN in_flight BIGINT;
    ALTER TABLE agents ADD COLUMN clock_skew_s DOUBLE;
    ALTER TABLE agents ADD COLUMN clock_offset_s DOUBLE;
    ALTER TABLE agents ADD COLUMN clock_pending BOOLEAN;
    ALTER TABLE agents ADD COLUMN clock_steps BIGINT;
    ALTER TABLE agents ADD COLUMN clock_steps_confirmed BIGINT;
    ALTER TABLE agents ADD COLUMN clock_steps_reverted BIGINT;
    ALTER TABLE agents ADD COLUMN clock_last_step_s DOUBLE;
    ALTER TABLE agents ADD COLUMN hb_started_at DOUBLE;
    ALTER TABLE agents ADD COLUMN hb_seq BIGINT;
    """,
    # 10: the sighting archive's parts (central/archive/export.py): one row per Parquet file
    # written, kept (purged_at set) after the archive's retention deletes the file.
    """
    CREATE TABLE archive_parts (
        day DATE NOT NULL,
        camera_id VARCHAR NOT NULL,
        part INTEGER NOT NULL,
        path VARCHAR NOT NULL,
        rows BIGINT NOT NULL,
        bytes BIGINT NOT NULL,
        sha256 VARCHAR NOT NULL,
        received_before TIMESTAMPTZ NOT NULL,
        written_at TIMESTAMPTZ NOT NULL,
        purged_at TIMESTAMPTZ,
        PRIMARY KEY (day, camera_id, part)
    );
    """,
    # 11: a national hub's copy of the alerts regions forwarded (central/national/store.py):
    # one row per (region, alert id), replaced by a newer change of that alert only (a
    # repeat is counted, never stored twice); hub_seq orders the rows for police paging.
    """
    CREATE TABLE national_alerts (
        region VARCHAR NOT NULL,
        alert_id BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        hub_seq BIGINT NOT NULL,
        list_name VARCHAR NOT NULL,
        state VARCHAR NOT NULL,
        priority SMALLINT NOT NULL,
        plate VARCHAR NOT NULL,
        created_at DOUBLE NOT NULL,
        received_at DOUBLE NOT NULL,
        body VARCHAR NOT NULL,
        PRIMARY KEY (region, alert_id)
    );
    CREATE TABLE national_regions (
        region VARCHAR PRIMARY KEY,
        first_seen DOUBLE NOT NULL,
        last_seen DOUBLE NOT NULL,
        requests BIGINT NOT NULL,
        changes BIGINT NOT NULL,
        duplicates BIGINT NOT NULL
    );
    """,
)


class Database:
    """One DuckDB file: its writer (``writer.call``/``submit``) and read-only cursors.

    The writer thread starts with ``start()`` (``central.app.Central.start`` does it); jobs
    submitted before wait in its queue. ``close()`` runs what is queued, checkpoints and
    closes the file.
    """

    def __init__(self, path: Path | str, memory_limit_mb: int | None = None) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # DuckDB keeps table blocks it wrote or read in its buffer pool until memory_limit
        # (by default 80% of RAM) and only then evicts: without a limit central's RSS grows
        # with the data for a long time, which is neither a leak nor what a shared box wants.
        config: dict[str, str | bool | int | float | list[str]] = (
            {} if memory_limit_mb is None else {"memory_limit": f"{memory_limit_mb}MB"}
        )
        self._con = duckdb.connect(str(path), config=config)
        # A long write (a checkpoint, a big import step) would draw a progress bar on
        # central's stdout; cursors have none already.
        self._con.execute("SET enable_progress_bar = false")
        self._reader_lock = threading.Lock()
        self._migrate()
        self.writer = Writer(self._con)
        self.writer.start()

    def _migrate(self) -> None:
        con = self._con
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ DEFAULT now())"
        )
        row = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        current = int(row[0]) if row else 0
        if current > len(MIGRATIONS):
            raise RuntimeError(
                f"{self.path}: schema version {current} is newer than this build knows "
                f"({len(MIGRATIONS)}); upgrade Varta"
            )
        for version, sql in enumerate(MIGRATIONS[current:], start=current + 1):
            log.info("applying schema migration %d", version)
            con.execute("BEGIN")
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations (version) VALUES (?)", [version])
            con.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        """The number of migrations applied."""
        with self.reader() as con:
            row = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchall()
        return int(row[0][0])

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A fresh cursor in a read-only transaction, for one read (any thread).

        Everything read through it is one consistent snapshot; a write through it fails.
        """
        with self._reader_lock:
            cur = self._con.cursor()
        try:
            cur.execute("BEGIN TRANSACTION READ ONLY")
            yield cur
        finally:
            try:
                cur.execute("ROLLBACK")
            except duckdb.Error:
                log.debug("reader transaction already ended")
            cur.close()

    def writable(self, timeout: float = 5.0) -> bool:
        """Whether a write commits now (a one-row probe through the writer)."""
        try:
            self.writer.call(
                lambda con: con.execute("INSERT OR REPLACE INTO probe VALUES (1, now())"),
                timeout=timeout,
            )
        except Exception as err:  # any failure means: not writable now
            log.warning("database write probe failed: %s", err)
            return False
        return True

    def close(self) -> None:
        """Run the queued writes, checkpoint and close."""
        self.writer.stop()
        try:
            self._con.execute("CHECKPOINT")
        finally:
            self._con.close()
