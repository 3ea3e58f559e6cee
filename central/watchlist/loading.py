"""Loading an export into a stored list: the difference in SQL, written in bounded jobs.

A load compares the incoming entries (``importer.SCHEMA``) with the stored list and writes
only what changed. Up to ``CHUNK_ROWS`` entries that is one writer job. A larger load
would hold the one database writer for a second or more (1M new entries: ~0.9 s), and
every ingest turn and alert would wait behind it, so it is staged instead:

Every step is a background job of the writer (it runs when no ingest or alert job waits).

1. the entries are copied into ``watchlist_import_rows`` in key order, ``CHUNK_ROWS`` a job,
   under a ``watchlist_imports`` row in state ``staging``;
2. one job counts the difference (refusing a mass removal before anything changed) and
   moves the import to ``applying``;
3. one job per key range of about ``CHUNK_ROWS`` entries, in key order, writes that
   range's additions, updates and removals and records how far the import got; the last
   one removes the import row. The staged rows are deleted after, in jobs of the same size.

Matching never sees a half-applied list: ``WatchlistRepository.active_entries`` (what
matchers are built from) waits while step 3 runs, and a central that stops during step 3
finishes the import from where it got before it builds its matcher
(``finish_interrupted``). An import cut short before step 3 changed nothing and is
dropped. Other readers (entry pages, search) may see a list half-way through step 3.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from functools import partial
from typing import Final, NamedTuple

import duckdb
import pyarrow as pa

from central.store.db import Database
from central.watchlist.importer import SCHEMA
from shared.errors import InvalidRequest

log = logging.getLogger(__name__)

CHUNK_ROWS: Final = 20_000
"""Entries per writer job of a staged load (tens of milliseconds of writer time each)."""

_CONTENT: Final = [name for name in SCHEMA.names if name != "entry_key"]
_CHANGED: Final = " OR ".join(f"i.{c} IS DISTINCT FROM e.{c}" for c in _CONTENT)
_INCOMING: Final = "wl_incoming"
_KEEP: Final = "wl_keep"
_IN_RANGE: Final = "(?::VARCHAR IS NULL OR {k} >= ?) AND (?::VARCHAR IS NULL OR {k} < ?)"

KeyRange = tuple[str | None, str | None]
"""Entry keys from the first (inclusive) to the second (exclusive); None: open."""


class Counts(NamedTuple):
    """What one load did to a list (``changed``: keys of the entries added or updated)."""

    added: int
    updated: int
    removed: int
    unchanged: int
    changed: tuple[str, ...] = ()


def utcnow() -> datetime:
    """Now, UTC, without tzinfo (how the tables store times)."""
    return datetime.now(UTC).replace(tzinfo=None)


def load(
    db: Database,
    list_name: str,
    table: pa.Table,
    *,
    full: bool,
    max_removed: int | None,
    keep: Sequence[str],
    applying: Callable[[], AbstractContextManager[object]],
    check: Callable[[duckdb.DuckDBPyConnection], object],
) -> Counts:
    """Bring a stored list up to date with ``table`` (see ``WatchlistRepository.load``).

    ``applying`` gives the context manager held while a staged load writes the list;
    ``check`` runs first in every job that writes (it raises when the list is gone).
    """
    keep_table = pa.table({"entry_key": pa.array(list(keep), pa.string())})
    if table.num_rows <= CHUNK_ROWS:

        def whole(con: duckdb.DuckDBPyConnection) -> tuple[Counts, pa.Table]:
            check(con)
            return _in_place(con, list_name, table, keep_table, full, max_removed)

        counts, changed = db.writer.call(whole, timeout=600.0)
    else:
        counts, changed = _staged(
            db, list_name, table, keep_table, full, max_removed, applying, check
        )
    return counts._replace(changed=tuple(changed.to_pylist()))


def finish_interrupted(db: Database) -> list[str]:
    """Complete imports a stop cut short while applying; drop those cut short before.

    Returns the names of the lists whose import was completed.
    """
    with db.reader() as con:
        pending = con.execute(
            "SELECT import_id, list_name, full_load, state, keep, applied_at, applied_to "
            "FROM watchlist_imports ORDER BY import_id"
        ).fetchall()
    finished = []
    for import_id, list_name, full, state, keep, now, applied_to in pending:
        if state == "applying":
            keep_table = pa.table({"entry_key": pa.array(list(keep), pa.string())})
            rest: KeyRange = (applied_to, None)
            apply = partial(_apply_range, import_id=import_id, list_name=list_name, full=full,
                            keep=keep_table, keys=rest, now=now)  # fmt: skip
            db.writer.call(apply, timeout=600.0)
            finished.append(list_name)
            log.warning("list %s: finished an import interrupted by a stop", list_name)
        else:
            db.writer.call(partial(_forget, import_id=import_id))
            log.warning("list %s: dropped an import cut short before it changed the list",
                        list_name)  # fmt: skip
    db.writer.call(
        lambda con: con.execute(
            "DELETE FROM watchlist_import_rows WHERE import_id NOT IN "
            "(SELECT import_id FROM watchlist_imports)"
        )
    )
    return finished


# -- one job ----------------------------------------------------------------------------


def _in_place(
    con: duckdb.DuckDBPyConnection,
    list_name: str,
    table: pa.Table,
    keep: pa.Table,
    full: bool,
    max_removed: int | None,
) -> tuple[Counts, pa.Array]:
    con.register(_INCOMING, table)
    con.register(_KEEP, keep)
    try:
        counts = _diff(con, list_name, _INCOMING, (None, None), full)
        _refuse_mass_removal(list_name, counts.removed, max_removed)
        return counts, _write(con, list_name, _INCOMING, (None, None), counts, utcnow())
    finally:
        con.execute("DROP TABLE IF EXISTS wl_change")
        con.unregister(_INCOMING)
        con.unregister(_KEEP)


def _diff(
    con: duckdb.DuckDBPyConnection, list_name: str, incoming: str, keys: KeyRange, full: bool
) -> Counts:
    """Classify ``incoming`` against the stored entries in ``keys`` (into ``wl_change``)."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE wl_change AS "
        "SELECT i.entry_key, CASE WHEN e.entry_key IS NULL THEN 'added' "
        f"WHEN {_CHANGED} THEN 'updated' ELSE 'unchanged' END AS change "
        f"FROM {incoming} i LEFT JOIN "
        "(SELECT * FROM watchlist_entries WHERE list_name = ? AND "
        f"{_IN_RANGE.format(k='entry_key')}) e USING (entry_key)",
        [list_name, *_range_params(keys)],
    )
    tally = dict(con.execute("SELECT change, count(*) FROM wl_change GROUP BY change").fetchall())
    removed = 0
    if full:
        removed = _scalar(
            con,
            "SELECT count(*) FROM watchlist_entries e WHERE list_name = ? AND "
            f"{_IN_RANGE.format(k='e.entry_key')} AND NOT EXISTS "
            "(SELECT 1 FROM wl_change c WHERE c.entry_key = e.entry_key) AND NOT EXISTS "
            f"(SELECT 1 FROM {_KEEP} k WHERE k.entry_key = e.entry_key)",
            [list_name, *_range_params(keys)],
        )
    return Counts(
        tally.get("added", 0), tally.get("updated", 0), removed, tally.get("unchanged", 0)
    )


def _write(
    con: duckdb.DuckDBPyConnection,
    list_name: str,
    incoming: str,
    keys: KeyRange,
    counts: Counts,
    now: datetime,
) -> pa.Array:
    """Write the difference ``_diff`` left in ``wl_change``; the keys added or updated."""
    changed = con.sql(  # Arrow: made Python strings off the writer thread
        "SELECT entry_key FROM wl_change WHERE change IN ('added', 'updated')"
    ).to_arrow_table()
    if counts.removed:
        con.execute(
            "DELETE FROM watchlist_entries WHERE list_name = ? AND "
            f"{_IN_RANGE.format(k='entry_key')} AND entry_key NOT IN "
            f"(SELECT entry_key FROM wl_change UNION ALL SELECT entry_key FROM {_KEEP})",
            [list_name, *_range_params(keys)],
        )
    if counts.updated:
        assignments = ", ".join(f"{c} = i.{c}" for c in _CONTENT)
        con.execute(
            f"UPDATE watchlist_entries e SET {assignments}, updated_at = ? "
            f"FROM {incoming} i, wl_change c WHERE e.list_name = ? "
            "AND e.entry_key = i.entry_key AND c.entry_key = i.entry_key "
            "AND c.change = 'updated'",
            [now, list_name],
        )
    if counts.added:
        con.execute(
            f"INSERT INTO watchlist_entries (list_name, entry_key, {', '.join(_CONTENT)}, "
            f"listed_at, updated_at) SELECT ?, i.entry_key, "
            f"{', '.join('i.' + c for c in _CONTENT)}, ?, ? FROM {incoming} i "
            "JOIN wl_change c USING (entry_key) WHERE c.change = 'added'",
            [list_name, now, now],
        )
    return changed.column(0).combine_chunks()


def _refuse_mass_removal(list_name: str, removed: int, max_removed: int | None) -> None:
    if max_removed is not None and removed > max_removed:  # refused before any write
        raise InvalidRequest(
            f"list {list_name}: the export would remove {removed} entries, "
            f"at most {max_removed} allowed; check the export or allow mass removal"
        )


# -- staged -----------------------------------------------------------------------------


def _staged(
    db: Database,
    list_name: str,
    table: pa.Table,
    keep: pa.Table,
    full: bool,
    max_removed: int | None,
    applying: Callable[[], AbstractContextManager[object]],
    check: Callable[[duckdb.DuckDBPyConnection], object],
) -> tuple[Counts, pa.Array]:
    import_id, now, started = time.time_ns(), utcnow(), time.perf_counter()
    table = table.sort_by("entry_key")  # staged in key order: each range reads few blocks
    column = table.column("entry_key")
    bounds = [column[i].as_py() for i in range(CHUNK_ROWS, len(column), CHUNK_ROWS)]
    ranges: list[KeyRange] = list(zip([None, *bounds], [*bounds, None], strict=True))
    db.writer.call(
        lambda con: con.execute(
            "INSERT INTO watchlist_imports VALUES (?, ?, ?, 'staging', ?, ?, ?, NULL)",
            [import_id, list_name, full, keep.column(0).to_pylist(), utcnow(), now],
        )
    )
    try:
        for start in range(0, table.num_rows, CHUNK_ROWS):
            db.writer.call(
                partial(_stage, import_id=import_id, rows=table.slice(start, CHUNK_ROWS))
            )
        counts = db.writer.call(
            lambda con: _check_staged(con, import_id, list_name, keep, full, max_removed, check)
        )
    except BaseException:
        db.writer.call(lambda con: _forget(con, import_id))
        raise
    staged_s = time.perf_counter() - started
    changed: list[pa.Array] = []
    with applying():
        for key_range in ranges:
            apply = partial(_apply_range, import_id=import_id, list_name=list_name, full=full,
                            keep=keep, keys=key_range, now=now)  # fmt: skip
            changed.append(db.writer.call(apply, timeout=600.0, background=True))
    for key_range in ranges:  # the import row is gone: these are left-overs now
        db.writer.call(partial(_drop_staged, import_id=import_id, keys=key_range), background=True)
    log.info(
        "list %s: %s entries staged and checked in %.2fs, applied in %s key ranges in %.2fs",
        list_name,
        table.num_rows,
        staged_s,
        len(ranges),
        time.perf_counter() - started - staged_s,
    )
    return counts, pa.concat_arrays(changed)


def _stage(con: duckdb.DuckDBPyConnection, import_id: int, rows: pa.Table) -> None:
    con.register("wl_stage", rows)
    try:
        con.execute(
            f"INSERT INTO watchlist_import_rows SELECT ?, {', '.join(SCHEMA.names)} FROM wl_stage",
            [import_id],
        )
    finally:
        con.unregister("wl_stage")


def _check_staged(
    con: duckdb.DuckDBPyConnection,
    import_id: int,
    list_name: str,
    keep: pa.Table,
    full: bool,
    max_removed: int | None,
    check: Callable[[duckdb.DuckDBPyConnection], object],
) -> Counts:
    check(con)
    con.register(_KEEP, keep)
    try:
        counts = _diff(con, list_name, _staged_rows(import_id), (None, None), full)
    finally:
        con.execute("DROP TABLE IF EXISTS wl_change")
        con.unregister(_KEEP)
    _refuse_mass_removal(list_name, counts.removed, max_removed)
    con.execute("UPDATE watchlist_imports SET state = 'applying' WHERE import_id = ?", [import_id])
    return counts


def _apply_range(
    con: duckdb.DuckDBPyConnection,
    import_id: int,
    list_name: str,
    full: bool,
    keep: pa.Table,
    keys: KeyRange,
    now: datetime,
) -> pa.Array:
    con.execute(
        "CREATE OR REPLACE TEMP TABLE wl_slice AS SELECT * EXCLUDE (import_id) FROM "
        f"watchlist_import_rows WHERE import_id = ? AND {_IN_RANGE.format(k='entry_key')}",
        [import_id, *_range_params(keys)],
    )
    con.register(_KEEP, keep)
    try:
        counts = _diff(con, list_name, "wl_slice", keys, full)
        changed = _write(con, list_name, "wl_slice", keys, counts, now)
    finally:
        con.execute("DROP TABLE IF EXISTS wl_change")
        con.execute("DROP TABLE IF EXISTS wl_slice")
        con.unregister(_KEEP)
    if keys[1] is None:  # the last range: the import is complete
        con.execute("DELETE FROM watchlist_imports WHERE import_id = ?", [import_id])
    else:
        con.execute(
            "UPDATE watchlist_imports SET applied_to = ? WHERE import_id = ?", [keys[1], import_id]
        )
    return changed


def _drop_staged(con: duckdb.DuckDBPyConnection, import_id: int, keys: KeyRange) -> None:
    con.execute(
        "DELETE FROM watchlist_import_rows WHERE import_id = ? AND "
        f"{_IN_RANGE.format(k='entry_key')}",
        [import_id, *_range_params(keys)],
    )


def _forget(con: duckdb.DuckDBPyConnection, import_id: int) -> None:
    con.execute("DELETE FROM watchlist_import_rows WHERE import_id = ?", [import_id])
    con.execute("DELETE FROM watchlist_imports WHERE import_id = ?", [import_id])


def _staged_rows(import_id: int) -> str:
    return (
        f"(SELECT * EXCLUDE (import_id) FROM watchlist_import_rows WHERE import_id = {import_id})"
    )


def _range_params(keys: KeyRange) -> list[str | None]:
    lo, hi = keys
    return [lo, lo, hi, hi]


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[object]) -> int:
    rows = con.execute(sql, params).fetchall()  # all: no unfinished result on the connection
    return int(rows[0][0]) if rows else 0
