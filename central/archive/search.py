"""Regional search over archived days that the database no longer holds.

Days that start before the *boundary* (the end of the UTC day holding ``now -
retention.non_hit_days``) may have been purged from the database, so search reads them
from the archive too; ``SearchService`` merges both, drops archived copies of rows the
database still has (its hits and sightings retention holds), and keeps the order.

The archive's part files are named by ``archive_parts`` (no listing of the bucket). They
are read with pyarrow (local or S3, hive partition keys as strings, as
``central/archive/schema.py`` says) and queried with DuckDB through views that give them
the ``sightings`` and ``plate_index`` shapes: the production search SQL
(``SearchRepository``) runs on them unchanged, with the archive's ``plate_texts`` and
``plate_keys`` as the index rows. So results are exactly what the database gave before
the purge, minus thumbnails, marked ``archived: true``.

Newest-first searches read days in growing windows (1, 3, 9 ... days with files) from the
newest, and stop once a page is full; journeys read from the oldest.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from central.archive.schema import FILE_SCHEMA, PARTITION_KEYS, SIGHTINGS_DIR
from central.archive.target import ArchiveTarget, ArchiveUnavailable
from central.search.index import keyed_rows_sql
from central.search.query import JourneyQuery, SearchQuery
from central.search.repository import SearchRepository
from central.store.db import Database
from central.store.sightings import THUMBS_SQL_TYPE

log = logging.getLogger(__name__)

DAY: Final = timedelta(days=1)
_PARTITIONING: Final = pa.schema([(key, pa.string()) for key in PARTITION_KEYS])
_SCHEMA: Final = pa.schema([*FILE_SCHEMA, *_PARTITIONING])
_VIEWS: Final = f"""
CREATE VIEW sightings AS
SELECT event_id::UUID AS event_id, agent_id, camera_id, captured_at, received_at, plate,
       plate_raw, plate_confidence, plate_candidates, plate_char_confidences, plate_format,
       plate_region, plate_box::FLOAT[4] AS plate_box, vehicle_box::FLOAT[4] AS vehicle_box,
       vehicle_type, vehicle_type_confidence, colour, colour_confidence, track_frames,
       track_seconds, []::{THUMBS_SQL_TYPE} AS thumbnails, plate_texts, plate_keys
FROM archive_files;
CREATE VIEW plate_index AS {
    keyed_rows_sql(
        "SELECT unnest(plate_keys) AS k, unnest(plate_texts) AS text, captured_at, event_id, "
        "camera_id, agent_id, vehicle_type, colour FROM sightings"
    )
};
CREATE TABLE plate_index_state AS
SELECT 1 AS id, 'infinity'::TIMESTAMPTZ AS watermark, 'infinity'::TIMESTAMPTZ AS merged_through;
"""
Q = TypeVar("Q", SearchQuery, JourneyQuery)


class ArchiveSearch:
    """Search and journeys over the archived days before the boundary.

    Args:
        db: The central database (``archive_parts`` names the files).
        target: The archive.
        keep_days: ``retention.non_hit_days``: how long the database keeps every sighting.
        clock: UNIX time source (tests inject one).
    """

    def __init__(
        self,
        db: Database,
        target: ArchiveTarget,
        keep_days: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._target = target
        self._keep = timedelta(days=keep_days)
        self._clock = clock
        self._repo = SearchRepository(clock, clustered=False)  # one scan of the files

    def boundary(self) -> datetime:
        """Days starting before this are read from the archive as well."""
        edge = datetime.fromtimestamp(self._clock(), UTC) - self._keep
        return edge.replace(hour=0, minute=0, second=0, microsecond=0) + DAY

    def search(self, query: SearchQuery) -> list[dict[str, Any]]:
        """Archived sightings matching ``query`` (at most ``limit``), newest first.

        Raises:
            ArchiveUnavailable: The archive does not answer.
        """
        end = min(t for t in (query.end, self.boundary()) if t is not None)
        if query.cursor is not None:
            end = min(end, query.cursor.captured_at + timedelta(microseconds=1))
        rows: list[dict[str, Any]] = []
        for lo, hi, paths in self._windows(query.start, end, query.camera_ids, newest=True):
            want = query.limit - len(rows)
            part = _narrow(query, lo, hi, want)
            rows += self._run(paths, functools.partial(self._repo.search, query=part))
            if len(rows) >= query.limit:
                break
        return rows

    def journey(self, query: JourneyQuery) -> list[dict[str, Any]]:
        """Archived sightings of one plate (at most ``limit``), oldest first.

        Raises:
            ArchiveUnavailable: The archive does not answer.
        """
        end = min(t for t in (query.end, self.boundary()) if t is not None)
        rows: list[dict[str, Any]] = []
        for lo, hi, paths in self._windows(query.start, end, (), newest=False):
            part = _narrow(query, lo, hi, query.limit - len(rows))
            rows += self._run(paths, functools.partial(self._repo.journey, query=part))
            if len(rows) >= query.limit:
                break
        return rows

    def _windows(
        self, start: datetime | None, end: datetime, cameras: tuple[str, ...], newest: bool
    ) -> Iterator[tuple[datetime, datetime, list[str]]]:
        """``(from, to, part paths)`` of growing runs of archived days in ``[start, end)``."""
        if start is not None and start >= end:
            return
        first = start.astimezone(UTC).date() if start is not None else date.min
        last = (end - timedelta(microseconds=1)).astimezone(UTC).date()
        where = "purged_at IS NULL AND day >= ? AND day <= ?"
        params: list[object] = [first, last]
        if cameras:
            where += " AND camera_id IN (" + ", ".join("?" * len(cameras)) + ")"
            params += list(cameras)
        with self._db.reader() as con:
            days = con.execute(
                f"SELECT day, list(path ORDER BY camera_id, part) FROM archive_parts "
                f"WHERE {where} GROUP BY day ORDER BY day",
                params,
            ).fetchall()
        if not days:
            return
        self._target.check()
        if newest:
            days.reverse()
        size = 1
        while days:
            group, days = days[:size], days[size:]
            lo_day, hi_day = sorted((group[0][0], group[-1][0]))
            lo = datetime.combine(lo_day, datetime.min.time(), UTC)
            hi = datetime.combine(hi_day, datetime.min.time(), UTC) + DAY
            paths = [p for _, day_paths in group for p in day_paths]
            yield max(lo, start) if start else lo, min(hi, end), paths
            size *= 3

    def _run(
        self, paths: list[str], read: Callable[[duckdb.DuckDBPyConnection], list[dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        """``read`` on a connection whose ``sightings`` and ``plate_index`` are these files."""
        fs = self._target.fs
        con = duckdb.connect()
        try:
            dataset = ds.dataset(
                [self._target.path(p) for p in paths],
                schema=_SCHEMA,
                format="parquet",
                filesystem=fs,
                partitioning=ds.partitioning(_PARTITIONING, flavor="hive"),
                partition_base_dir=self._target.path(SIGHTINGS_DIR),
            )
            con.register("archive_files", dataset)
            con.execute(_VIEWS)
            rows = read(con)
        except (
            OSError,
            pa.ArrowException,
            duckdb.IOException,
            duckdb.InvalidInputException,
        ) as err:
            raise ArchiveUnavailable(f"archive {self._target.url}: reading failed: {err}") from err
        finally:
            con.close()
        for row in rows:
            row["archived"] = True
        return rows


def _narrow(query: Q, lo: datetime, hi: datetime, limit: int) -> Q:
    """``query`` limited to ``[lo, hi)`` and ``limit`` rows."""
    return dataclasses.replace(query, start=lo, end=hi, limit=limit)
