"""Export closed days of sightings to the archive, once, and purge the archive's old days.

A partition is one UTC day of one camera (``central/archive/schema.py``). A day is
*closed* ``archive.grace_s`` seconds after it ends. Each run:

1. finds, per closed partition, the sightings received since its last part (or all of
   them) and before ``now - lag`` (an ingest transaction still open when the run reads
   cannot be skipped: its rows are received later than that);
2. writes them, sorted by ``captured_at, event_id``, as the partition's next
   ``part-<n>.parquet`` (zstd), visible whole or not at all (``ArchiveTarget.put``);
3. records the part in ``archive_parts`` (rows, bytes, sha256, ``received_before``).

Idempotent and resumable: a recorded part is never written again, and the next part only
takes rows received at or after the last part's ``received_before``, so no ``event_id`` is
in two parts. A crash between writing a file and recording it leaves a file that no row
names; the next run writes the same part number again with the same rows (and any that
arrived since), replacing it. Sightings that arrive for a closed day after its export
(agents catching up after an outage) go into ``part-1``, ``part-2`` ... with only those
rows: files are never rewritten.

Days older than ``archive.retention_days`` are not exported; ``purge`` deletes them from
the archive (whole ``date=`` directories) and marks their parts purged.
"""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from central.archive.schema import FILE_SCHEMA, SIGHTINGS_DIR, partition_dir
from central.archive.target import ArchiveTarget, ArchiveUnavailable, open_target
from central.config import CentralConfig
from central.search.index import PLATE_TEXTS_SQL, canon_sql, first_row
from central.store.db import Database

log = logging.getLogger(__name__)

DAY: Final = timedelta(days=1)
ZSTD_LEVEL: Final = 3  # levels 1-9 gave the same size within 0.5% here; 3 writes fastest

# The rows of some partitions of one day: cameras and their lower receive bounds as two
# parallel list parameters.
_BATCH_ROWS = f"""
WITH want AS (
    SELECT unnest(?::VARCHAR[]) AS camera_id, unnest(?::TIMESTAMPTZ[]) AS received_from
)
SELECT camera_id, ? AS region, event_id::VARCHAR AS event_id, agent_id, captured_at,
       received_at, plate, plate_raw, plate_confidence, plate_candidates,
       plate_char_confidences, plate_format, plate_region, plate_box::FLOAT[] AS plate_box,
       vehicle_box::FLOAT[] AS vehicle_box, vehicle_type, vehicle_type_confidence, colour,
       colour_confidence, track_frames, track_seconds, texts AS plate_texts,
       list_transform(texts, lambda t: {canon_sql("t")}) AS plate_keys
FROM (
    SELECT s.*, {PLATE_TEXTS_SQL} AS texts FROM sightings s JOIN want w USING (camera_id)
    WHERE s.captured_at >= ? AND s.captured_at < ?
      AND s.received_at >= w.received_from AND s.received_at < ?
)
ORDER BY camera_id, captured_at, event_id
"""

_PENDING = """
WITH done AS (
    SELECT day, camera_id, count(*) AS parts, max(received_before) AS hi
    FROM archive_parts GROUP BY day, camera_id
), rows AS (
    SELECT (captured_at AT TIME ZONE 'UTC')::DATE AS day, camera_id, received_at
    FROM sightings WHERE captured_at >= ? AND captured_at < ? AND received_at < ?
)
SELECT r.day, r.camera_id, coalesce(any_value(d.parts), 0), any_value(d.hi), count(*)
FROM rows r LEFT JOIN done d ON d.day = r.day AND d.camera_id = r.camera_id
WHERE d.hi IS NULL OR r.received_at >= d.hi
GROUP BY r.day, r.camera_id ORDER BY r.day, r.camera_id
"""


@dataclass(frozen=True)
class Partition:
    """A closed partition with rows not yet archived.

    Attributes:
        day: The UTC day.
        camera_id: The camera.
        parts: Parts already recorded (the next one is ``part-<parts>``).
        received_from: The rows to export were received at or after this (None: all).
        rows: How many rows are waiting.
    """

    day: date
    camera_id: str
    parts: int
    received_from: datetime | None
    rows: int


@dataclass(frozen=True)
class PartWritten:
    """One part file in the archive (what ``archive_parts`` records)."""

    day: date
    camera_id: str
    part: int
    path: str
    rows: int
    bytes: int
    sha256: str
    received_before: datetime


@dataclass(frozen=True)
class ExportReport:
    """What one export run did."""

    partitions: int
    parts: int
    rows: int
    bytes: int
    closed_before: str
    seconds: float


@dataclass(frozen=True)
class PurgeReport:
    """What one purge of the archive did."""

    cutoff: str
    days: int
    parts: int
    rows: int
    bytes: int


@dataclass
class ArchiveStats:
    """Counters for metrics (written by the one thread that exports)."""

    runs: int = 0
    failures: int = 0
    parts_written: int = 0
    rows_exported: int = 0
    bytes_written: int = 0
    parts_purged: int = 0
    last_success: float = 0.0
    last_error: str = ""
    pending_partitions: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class ArchiveExporter:
    """Writes closed partitions to the archive and purges its expired days.

    Args:
        db: The central database (reads through reader cursors; records on its writer).
        target: The archive.
        region: Written in every row's ``region`` column.
        grace_s: A day is closed this long after it ends.
        retention_days: Days that ended longer ago than this are purged, not exported.
        lag_s: Only rows received at least this long ago are exported.
        clock: UNIX time source (tests inject one).
        stop: When set, a run ends after the batch in hand (shutdown).
        max_rows: Sightings read per batch of a day's partitions (bounds memory).
    """

    def __init__(
        self,
        db: Database,
        target: ArchiveTarget,
        region: str,
        grace_s: float,
        retention_days: float,
        lag_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        stop: threading.Event | None = None,
        max_rows: int = 200_000,
    ) -> None:
        self._db = db
        self._max_rows = max_rows
        self.target = target
        self._region = region
        self._grace = timedelta(seconds=grace_s)
        self._retention = timedelta(days=retention_days)
        self._lag = timedelta(seconds=lag_s)
        self._clock = clock
        self._stop = stop or threading.Event()
        self.stats = ArchiveStats()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def closed_before(self, now: datetime) -> datetime:
        """Days starting before this are closed (they ended at least ``grace`` ago)."""
        return _day_start(now - self._grace)

    def oldest_kept(self, now: datetime) -> datetime:
        """Days starting before this are past the archive's retention."""
        return _day_start(now - self._retention)

    def pending(self, now: datetime | None = None) -> list[Partition]:
        """Closed partitions with rows not yet archived, oldest day first."""
        now = now or self._now()
        params = [self.oldest_kept(now), self.closed_before(now), now - self._lag]
        with self._db.reader() as con:
            rows = con.execute(_PENDING, params).fetchall()
        return [Partition(d, cam, int(parts), hi, int(n)) for d, cam, parts, hi, n in rows]

    def export(self) -> ExportReport:
        """Archive every pending partition (one file each) and record it.

        A day's partitions are read in batches of about ``max_rows`` sightings (one scan
        of the day per batch), written one file each, and the batch recorded in one job.

        Raises:
            ArchiveUnavailable: The archive failed; what was recorded before stays.
        """
        started = time.perf_counter()
        now = self._now()
        high = now - self._lag
        parts = rows = size = 0
        todo = self.pending(now)
        try:
            for batch in _batches(todo, self._max_rows):
                if self._stop.is_set():
                    break
                self.stats.pending_partitions = len(todo) - parts
                tables = self._read(batch, high)
                written = [self._write(p, tables[p.camera_id], high) for p in batch]
                self._db.writer.call(functools.partial(_record, written, self._now()))
                parts += len(written)
                rows += sum(w.rows for w in written)
                size += sum(w.bytes for w in written)
        except ArchiveUnavailable as err:
            self._count(failed=str(err))
            raise
        self.stats.pending_partitions = len(todo) - parts
        self._count()
        report = ExportReport(
            partitions=len(todo),
            parts=parts,
            rows=rows,
            bytes=size,
            closed_before=self.closed_before(now).date().isoformat(),
            seconds=round(time.perf_counter() - started, 3),
        )
        log.info("archive export: %s", report)
        return report

    def _count(self, failed: str = "") -> None:
        with self.stats.lock:
            self.stats.runs += 1
            if failed:
                self.stats.failures += 1
                self.stats.last_error = failed
            else:
                self.stats.last_success = self._clock()
                self.stats.last_error = ""

    def write_part(self, partition: Partition, high: datetime) -> PartWritten:
        """Write the partition's rows received in ``[received_from, high)`` as its next part
        file, not yet recorded (``record`` does that; ``export`` does both).

        Raises:
            ArchiveUnavailable: The archive refused the write.
        """
        return self._write(partition, self._read([partition], high)[partition.camera_id], high)

    def record(self, written: PartWritten) -> None:
        """Record a written part (one writer job).

        Raises:
            RuntimeError: Another exporter recorded this part number meanwhile.
        """
        self._db.writer.call(functools.partial(_record, [written], self._now()))

    def _read(self, batch: list[Partition], high: datetime) -> dict[str, pa.Table]:
        """The rows to archive of partitions of one day, per camera, in file order."""
        start = datetime.combine(batch[0].day, datetime.min.time(), UTC)
        epoch = datetime.fromtimestamp(0, UTC)
        params = [
            [p.camera_id for p in batch],
            [p.received_from or epoch for p in batch],
            self._region,
            start,
            start + DAY,
            high,
        ]
        with self._db.reader() as con:
            rel = con.sql(_BATCH_ROWS, params=params)
            assert rel is not None  # a SELECT always gives a relation
            table = rel.to_arrow_table()
        cameras = table.column("camera_id").to_pylist()
        files = table.drop_columns(["camera_id"]).cast(FILE_SCHEMA)
        out: dict[str, pa.Table] = {p.camera_id: files.slice(0, 0) for p in batch}
        offset = 0
        for camera, run in itertools.groupby(cameras):
            length = sum(1 for _ in run)
            out[camera] = files.slice(offset, length)
            offset += length
        return out

    def _write(self, partition: Partition, table: pa.Table, high: datetime) -> PartWritten:
        data = parquet_bytes(table)
        path = f"{partition_dir(partition.day.isoformat(), partition.camera_id)}/"
        path += f"part-{partition.parts}.parquet"
        self.target.put(path, data)
        with self.stats.lock:
            self.stats.parts_written += 1
            self.stats.rows_exported += table.num_rows
            self.stats.bytes_written += len(data)
        return PartWritten(
            partition.day,
            partition.camera_id,
            partition.parts,
            path,
            table.num_rows,
            len(data),
            hashlib.sha256(data).hexdigest(),
            high,
        )

    def purge(self) -> PurgeReport:
        """Delete the archive's days that ended more than ``retention_days`` ago.

        Raises:
            ArchiveUnavailable: The archive failed; days deleted before stay marked.
        """
        now = self._now()
        cutoff = self.oldest_kept(now)
        with self._db.reader() as con:
            days = con.execute(
                "SELECT day, count(*), sum(rows), sum(bytes) FROM archive_parts "
                "WHERE purged_at IS NULL AND day < ? GROUP BY day ORDER BY day",
                [cutoff.date()],
            ).fetchall()
        parts = rows = size = 0
        for day, n, day_rows, day_bytes in days:
            if self._stop.is_set():
                break
            self.target.delete_dir(f"{SIGHTINGS_DIR}/date={day.isoformat()}")
            self._db.writer.call(functools.partial(_mark_purged, day, now))
            parts, rows, size = parts + int(n), rows + int(day_rows), size + int(day_bytes)
        with self.stats.lock:
            self.stats.parts_purged += parts
        report = PurgeReport(cutoff.date().isoformat(), len(days), parts, rows, size)
        log.info("archive purge: %s", report)
        return report

    def status(self) -> dict[str, Any]:
        """What the archive holds and what waits (for ``varta central archive status``)."""
        now = self._now()
        with self._db.reader() as con:
            row = first_row(
                con.execute(
                    "SELECT count(*), coalesce(sum(rows), 0), coalesce(sum(bytes), 0), "
                    "count(DISTINCT day), min(day), max(day), max(written_at) "
                    "FROM archive_parts WHERE purged_at IS NULL"
                )
            )
        assert row is not None  # an aggregate always gives a row
        pending = self.pending(now)
        return {
            "root": self.target.url,
            "parts": int(row[0]),
            "rows": int(row[1]),
            "bytes": int(row[2]),
            "days": int(row[3]),
            "oldest_day": row[4].isoformat() if row[4] else None,
            "newest_day": row[5].isoformat() if row[5] else None,
            "last_written_at": row[6].isoformat() if row[6] else None,
            "closed_before": self.closed_before(now).date().isoformat(),
            "pending_partitions": len(pending),
            "pending_rows": sum(p.rows for p in pending),
        }


def build_archive(
    config: CentralConfig, db: Database, stop: threading.Event | None = None
) -> ArchiveExporter | None:
    """The archive exporter when ``archive.enabled`` (nothing connects yet), else None.

    Raises:
        ConfigError: The S3 credentials file is unusable.
    """
    cfg = config.archive
    if not cfg.enabled:
        return None
    return ArchiveExporter(
        db,
        open_target(cfg),
        cfg.region,
        grace_s=cfg.grace_s,
        retention_days=cfg.retention_days,
        lag_s=config.search.index_lag_s,  # the plate indexer's reason holds here too
        stop=stop,
    )


def parquet_bytes(table: pa.Table) -> bytes:
    """A table as zstd Parquet file bytes (the archive's file format)."""
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        compression_level=ZSTD_LEVEL,
        row_group_size=64 * 1024,
    )
    return sink.getvalue()


def _record(written: list[PartWritten], now: datetime, con: duckdb.DuckDBPyConnection) -> None:
    """Writer job: record written parts, each the next of its partition."""
    for part in written:
        row = first_row(
            con.execute(
                "SELECT count(*) FROM archive_parts WHERE day = ? AND camera_id = ?",
                [part.day, part.camera_id],
            )
        )
        if row is None or int(row[0]) != part.part:
            raise RuntimeError(
                f"archive part {part.path}: expected part number {row[0] if row else 0}, "
                f"got {part.part} (another exporter ran at the same time)"
            )
    con.executemany(
        "INSERT INTO archive_parts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
        [
            [p.day, p.camera_id, p.part, p.path, p.rows, p.bytes, p.sha256, p.received_before, now]
            for p in written
        ],
    )


def _batches(todo: list[Partition], max_rows: int) -> Iterator[list[Partition]]:
    """Partitions of one day at a time, in groups of about ``max_rows`` rows."""
    for _, same_day in itertools.groupby(todo, key=lambda p: p.day):
        batch: list[Partition] = []
        rows = 0
        for partition in same_day:
            if batch and rows + partition.rows > max_rows:
                yield batch
                batch, rows = [], 0
            batch.append(partition)
            rows += partition.rows
        if batch:
            yield batch


def _mark_purged(day: date, now: datetime, con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "UPDATE archive_parts SET purged_at = ? WHERE day = ? AND purged_at IS NULL", [now, day]
    )


def _day_start(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
