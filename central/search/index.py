"""The plate index: every plate text of every sighting, keyed for fast lookups.

``sightings`` is stored in arrival order (about capture-time order), so DuckDB's zone
maps (min/max per row group) make time ranges cheap but a plate lookup would read the
whole plate column. ``plate_index`` holds one row per distinct plate text of a sighting
(the read, the raw OCR text and each candidate) with its canonical key - each OCR
confusion class collapsed to one character, as the watchlist matcher does - twice:
forwards (``rev = false``) and reversed (``rev = true``). Rows are appended in batches
sorted by key, so within each batch a key lookup touches one row group:

* exact: ``k = canonical(plate)`` then ``text = plate``;
* wildcard: the literal prefix's key range, then ``text LIKE pattern``;
* fuzzy (OCR-equivalent plus one edit): a single edit leaves either the first half of the
  key intact (forward rows, prefix range) or the second half (reversed rows), then
  ``levenshtein(k, key) <= 1`` confirms.

The filter columns (camera, agent, type, colour, capture time) are copied along, so a
search reads only the index until it fetches the rows of one page from ``sightings``.

The tables come from migration 2 in ``central/store/db.py``. ``PlateIndexer.compact``
(run by the maintenance thread every ``search.index_interval_s``, default hourly) appends
the sightings received up to a watermark some seconds in the past as one key-sorted run;
searches read the rows newer than the watermark straight from ``sightings`` through the
same SQL (:func:`key_rows_sql`), so nothing stored is ever missing from a result. Many
small runs would each cover the whole key range and defeat the zone maps, so once a UTC
day is over its runs are merged into one (``merge_day``): a lookup then touches about one
row group per stored day.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import duckdb
import pyarrow as pa

from central.store.db import Database
from shared.plates import CONFUSION_CLASSES

log = logging.getLogger(__name__)

# Constant translate() arguments derived from the shared look-alike classes (no user input).
CANON_FROM: Final = "".join(cls[1:] for cls in CONFUSION_CLASSES)
CANON_TO: Final = "".join(cls[0] * (len(cls) - 1) for cls in CONFUSION_CLASSES)
if not (CANON_FROM + CANON_TO).isalnum():  # pragma: no cover - guards the SQL literal below
    raise RuntimeError("confusion classes must be letters and digits")

INDEX_COLUMNS: Final = (
    "k, rev, text, captured_at, event_id, camera_id, agent_id, vehicle_type, colour"
)


def first_row(cur: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """The first row of a result, reading it to the end.

    ``fetchone`` leaves the result open, and with it the statement's transaction, which
    on a long-lived cursor then blocks the CHECKPOINT at shutdown.
    """
    rows = cur.fetchall()
    return tuple(rows[0]) if rows else None


# The distinct plate texts of a sighting row: the read, the folded raw OCR text and every
# candidate (a fixed SQL expression over ``sightings`` columns; the archive stores its
# result as ``plate_texts``).
PLATE_TEXTS_SQL: Final = (
    "list_distinct(list_filter([plate, regexp_replace(upper(plate_raw), '[^A-Z0-9]', '', 'g')]"
    " || coalesce(list_transform(plate_candidates, lambda c: c.text), []),"
    "lambda x: x IS NOT NULL AND x <> ''))"
)


def canon_sql(expr: str) -> str:
    """SQL of the canonical (OCR-class) key of the text ``expr`` (a fixed SQL fragment)."""
    return f"translate({expr}, '{CANON_FROM}', '{CANON_TO}')"


def keyed_rows_sql(keyed: str) -> str:
    """Index rows (``INDEX_COLUMNS``): forwards and reversed, from the SQL ``keyed``, which
    gives ``k, text`` and the copied filter columns (a fixed SQL fragment of this project)."""
    return f"""
        WITH keyed AS ({keyed})
        SELECT k, false AS rev, text, captured_at, event_id, camera_id, agent_id,
               vehicle_type, colour FROM keyed
        UNION ALL
        SELECT reverse(k), true, text, captured_at, event_id, camera_id, agent_id,
               vehicle_type, colour FROM keyed
    """


def key_rows_sql(source: str, where: str) -> str:
    """SQL producing index rows (``INDEX_COLUMNS``) for the rows of ``source`` passing ``where``.

    ``source`` and ``where`` are fixed SQL fragments of this package (parameters go in as
    ``?``); never pass user text here.
    """
    return keyed_rows_sql(
        f"""
        SELECT {canon_sql("text")} AS k, * FROM (
            SELECT unnest({PLATE_TEXTS_SQL}) AS text, captured_at, event_id, camera_id,
                   agent_id, vehicle_type, colour
            FROM {source} WHERE {where}
        )"""
    )


def watermark(con: duckdb.DuckDBPyConnection) -> datetime:
    """Sightings received before this are in ``plate_index``."""
    row = first_row(con.execute("SELECT watermark FROM plate_index_state WHERE id = 1"))
    if row is None:
        return datetime.fromtimestamp(0, UTC)
    value: datetime = row[0]
    return value


class PlateIndexer:
    """Moves newly received sightings into ``plate_index`` in key-sorted batches.

    The work is cut so that no single job holds the database writer for long (ingest's
    jobs wait behind it): the rows are sorted by a read-only cursor off the writer, and
    each writer job only appends (or, merging, replaces) a bounded slice.

    * ``compact`` indexes the sightings received since the watermark in slices of at most
      ``max_rows`` sightings: one job appends a slice's key-sorted rows and moves the
      watermark past it, so a search never sees a sighting both in the index and among
      the rows not yet indexed.
    * ``merge_day`` rewrites a finished day's runs as one key-sorted run in key ranges of
      about ``max_rows`` index rows, each range deleted and appended again, sorted, in one
      job; appended in key order, the ranges make one sorted run.

    Args:
        db: The central database.
        lag_s: Index only rows received at least this long ago, so that an ingest
            transaction still open when the batch is cut cannot be skipped.
        clock: UNIX time source (tests inject one).
        stop: When set, work stops after the job in hand (shutdown).
        max_rows: Sightings per compaction slice, index rows per merge range.
    """

    def __init__(
        self,
        db: Database,
        lag_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        stop: threading.Event | None = None,
        max_rows: int = 200_000,
    ) -> None:
        self._db = db
        self._lag = lag_s
        self._clock = clock
        self._stop = stop or threading.Event()
        self._max_rows = max_rows

    def compact(self) -> int:
        """Index the sightings received since the watermark (up to ``now - lag``).

        Returns:
            Index rows added.
        """
        started = time.perf_counter()
        high = datetime.fromtimestamp(self._clock(), UTC) - timedelta(seconds=self._lag)
        added = 0
        while not self._stop.is_set():
            with self._db.reader() as con:
                low = watermark(con)
                if high <= low:
                    break
                upto = self._slice_end(con, low, high)
                sql = key_rows_sql("sightings", "received_at >= ? AND received_at < ?")
                rows = _arrow(con, f"SELECT * FROM ({sql}) ORDER BY k, captured_at", [low, upto])
            self._db.writer.call(functools.partial(_append_slice, rows, low, upto))
            added += rows.num_rows
            if upto >= high:
                break
        log.info("plate index: %s rows added in %.2fs", added, time.perf_counter() - started)
        self._merge_finished_days(high)
        return added

    def _slice_end(self, con: duckdb.DuckDBPyConnection, low: datetime, high: datetime) -> datetime:
        """Where a slice starting at ``low`` ends: ``high``, or earlier so that it holds
        about ``max_rows`` sightings (whole receive times: a turn is never split)."""
        row = first_row(
            con.execute(
                "SELECT received_at FROM sightings WHERE received_at >= ? AND received_at < ? "
                "ORDER BY received_at LIMIT 1 OFFSET ?",
                [low, high, self._max_rows],
            )
        )
        if row is None:
            return high
        end: datetime = row[0]
        return end if end > low else high

    def _merge_finished_days(self, high: datetime) -> None:
        """Merge the runs of every finished UTC day that got index rows since the last merge."""
        today = high.replace(hour=0, minute=0, second=0, microsecond=0)
        with self._db.reader() as con:
            row = first_row(con.execute("SELECT merged_through FROM plate_index_state"))
            since: datetime = row[0] if row else today
            days = con.execute(
                "SELECT DISTINCT time_bucket(INTERVAL 1 DAY, captured_at, "
                "TIMESTAMPTZ '2000-01-01') AS day FROM plate_index "
                "WHERE captured_at >= ? AND captured_at < ? ORDER BY day",
                [since, today],
            ).fetchall()
        for (day,) in days:
            if self._stop.is_set():
                return
            self.merge_day(day.astimezone(UTC))
        if since < today and not self._stop.is_set():
            self._db.writer.call(
                lambda con: con.execute(
                    "UPDATE plate_index_state SET merged_through = ? WHERE id = 1", [today]
                )
            )

    def merge_day(self, day: datetime) -> int:
        """Rewrite the index rows captured on one UTC day as one key-sorted run.

        Returns:
            Rows rewritten.
        """
        end = day + timedelta(days=1)
        started = time.perf_counter()
        where = "captured_at >= ? AND captured_at < ?"
        with self._db.reader() as con:
            total = first_row(
                con.execute(f"SELECT count(*) FROM plate_index WHERE {where}", [day, end])
            )
            parts = max(1, int(total[0] if total else 0) // self._max_rows)
            bounds: list[str] = []
            if parts > 1:
                cuts = first_row(
                    con.execute(
                        f"SELECT quantile_disc(k, ?) FROM plate_index WHERE {where}",
                        [[i / parts for i in range(1, parts)], day, end],
                    )
                )
                bounds = sorted(set(cuts[0])) if cuts and cuts[0] else []
        edges: list[str | None] = [None, *bounds, None]
        rows = 0
        for lo, hi in itertools.pairwise(edges):
            if self._stop.is_set():
                break
            keys = "(?::VARCHAR IS NULL OR k >= ?) AND (?::VARCHAR IS NULL OR k < ?)"
            params = [day, end, lo, lo, hi, hi]
            with self._db.reader() as con:
                sorted_rows = _arrow(
                    con,
                    f"SELECT * FROM plate_index WHERE {where} AND {keys} ORDER BY k, captured_at",
                    params,
                )
            self._db.writer.call(
                functools.partial(_replace_range, sorted_rows, f"{where} AND {keys}", params)
            )
            rows += sorted_rows.num_rows
        log.info(
            "plate index: merged %s rows of %s in %d ranges in %.2fs",
            rows,
            day.date(),
            len(edges) - 1,
            time.perf_counter() - started,
        )
        return rows


def _arrow(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> pa.Table:
    rel = con.sql(sql, params=params)
    assert rel is not None  # a SELECT always gives a relation
    return rel.to_arrow_table()


def _append_slice(
    rows: pa.Table, low: datetime, upto: datetime, con: duckdb.DuckDBPyConnection
) -> None:
    """Writer job: append a sorted slice and move the watermark past it (if still at
    ``low``: a slice is appended once)."""
    if watermark(con) != low:
        return
    con.register("index_slice", rows)
    try:
        con.execute(f"INSERT INTO plate_index SELECT {INDEX_COLUMNS} FROM index_slice")
    finally:
        con.unregister("index_slice")
    con.execute("UPDATE plate_index_state SET watermark = ? WHERE id = 1", [upto])


def _replace_range(
    rows: pa.Table, where: str, params: list[Any], con: duckdb.DuckDBPyConnection
) -> None:
    """Writer job: replace one key range of a day's index rows by the same rows sorted.

    Should the range have changed since it was read (it cannot while one maintenance thread
    runs compaction and merges in turn), it is sorted here instead: nothing is lost."""
    now = first_row(con.execute(f"SELECT count(*) FROM plate_index WHERE {where}", params))
    if now is None or int(now[0]) != rows.num_rows:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE index_range AS SELECT {INDEX_COLUMNS} "
            f"FROM plate_index WHERE {where} ORDER BY k, captured_at",
            params,
        )
        source = "temp.index_range"
    else:
        con.register("index_range", rows)
        source = "index_range"
    try:
        con.execute(f"DELETE FROM plate_index WHERE {where}", params)
        con.execute(f"INSERT INTO plate_index SELECT {INDEX_COLUMNS} FROM {source}")
    finally:
        if source == "index_range":
            con.unregister("index_range")
        else:
            con.execute("DROP TABLE IF EXISTS temp.index_range")
