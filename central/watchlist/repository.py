"""DuckDB storage of wanted-vehicle lists, their entries and their sync history.

All times are stored as ``TIMESTAMP`` in UTC. Entries are loaded in bulk from Arrow tables
(see ``importer.SCHEMA``); a load computes the difference against the stored list in SQL
and writes only what changed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

import duckdb
import pyarrow as pa

from central.store.db import Database
from central.watchlist import loading
from central.watchlist.importer import SCHEMA
from central.watchlist.loading import Counts, utcnow
from central.watchlist.model import ImportProgress, ListSettings, ListSync, Validity
from shared.errors import NotFound

log = logging.getLogger(__name__)


class WatchlistRepository:
    """Lists, entries and sync history in DuckDB.

    Reads use the database's read-only cursors; writes are jobs on its writer. The tables
    come from migration 3 in ``central/store/db.py``.

    Args:
        db: Central's database.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._applying = threading.RLock()  # held while a staged load writes a list

    def finish_interrupted_imports(self) -> list[str]:
        """Complete or drop imports a stop cut short (``loading.finish_interrupted``)."""
        with self._applying:
            return loading.finish_interrupted(self._db)

    def save_list(self, settings: ListSettings) -> None:
        """Create or replace a list's settings."""
        values = [
            settings.name,
            settings.strict,
            settings.retention_days,
            settings.default_priority,
            settings.source,
            utcnow(),
        ]
        self._db.writer.call(
            lambda con: con.execute(
                "INSERT OR REPLACE INTO watchlist_lists VALUES (?, ?, ?, ?, ?, ?)", values
            )
        )

    def delete_list(self, name: str) -> int:
        """Remove a list and its entries; how many entries went.

        Raises:
            NotFound: No list has that name.
        """

        def delete(con: duckdb.DuckDBPyConnection) -> int:
            _settings(con, name)
            gone = _scalar(
                con, "SELECT count(*) FROM watchlist_entries WHERE list_name = ?", [name]
            )
            con.execute("DELETE FROM watchlist_entries WHERE list_name = ?", [name])
            con.execute("DELETE FROM watchlist_lists WHERE name = ?", [name])
            return gone

        return self._db.writer.call(delete)

    def lists(self) -> list[ListSettings]:
        """All lists, by name."""
        with self._db.reader() as con:
            return _lists(con)

    def get_list(self, name: str) -> ListSettings:
        """One list's settings.

        Raises:
            NotFound: No list has that name.
        """
        with self._db.reader() as con:
            return _settings(con, name)

    def load(
        self,
        list_name: str,
        table: pa.Table,
        *,
        full: bool,
        max_removed: int | None = None,
        keep: Sequence[str] = (),
    ) -> Counts:
        """Bring a list up to date with an export (see ``loading``: in one transaction, or
        staged and applied in key ranges when large).

        Args:
            list_name: The list (must exist).
            table: Entries as ``importer.SCHEMA``; ``entry_key`` unique.
            full: The table is the whole list: stored entries missing from it are removed.
                Otherwise entries are only added or updated.
            max_removed: Refuse (and change nothing) when a full load would remove more
                entries than this: a truncated export must not empty a wanted list.
            keep: Keys a full load must not remove although the table lacks them (rows
                the export holds but that were rejected as malformed).

        Returns:
            Counts of added, updated, removed and unchanged entries, and the keys of the
            entries added or changed (to match them against past sightings).

        Raises:
            NotFound: The list does not exist.
            InvalidRequest: More than ``max_removed`` entries would be removed.
        """
        counts = loading.load(
            self._db,
            list_name,
            table,
            full=full,
            max_removed=max_removed,
            keep=keep,
            applying=lambda: self._applying,
            check=lambda con: _settings(con, list_name),
        )
        log.info("list %s: %s", list_name, counts[:4])
        return counts

    def remove_entries(self, list_name: str, keys: Sequence[str]) -> int:
        """Delete entries by key; how many were there."""
        wanted = list(keys)

        def remove(con: duckdb.DuckDBPyConnection) -> int:
            _settings(con, list_name)
            where = "list_name = ? AND entry_key IN (SELECT unnest(?::VARCHAR[]))"
            gone = _scalar(
                con, f"SELECT count(*) FROM watchlist_entries WHERE {where}", [list_name, wanted]
            )
            con.execute(f"DELETE FROM watchlist_entries WHERE {where}", [list_name, wanted])
            return gone

        return self._db.writer.call(remove)

    def count(self, list_name: str) -> int:
        """Number of entries stored for a list."""
        with self._db.reader() as con:
            return _scalar(
                con, "SELECT count(*) FROM watchlist_entries WHERE list_name = ?", [list_name]
            )

    def entries(
        self,
        list_name: str,
        *,
        plate: str | None = None,
        category: str | None = None,
        after: str = "",
        limit: int = 100,
        validity: Validity | None = None,
        now: datetime | None = None,
    ) -> list[dict[str, object]]:
        """A page of a list's entries by key (``after``: the last key of the page before).

        ``plate`` filters by a substring of the folded plate; ``validity`` keeps the entries
        valid at ``now`` (``active``), not yet valid (``pending``) or ended (``expired``).
        Times are UNIX seconds.
        """
        cols = ", ".join(
            f"epoch({c}) AS {c}" if c in _TIMES else c for c in ["list_name", *SCHEMA.names]
        )
        when = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
        params = [list_name, after, plate, plate, category, category, validity, validity]
        with self._db.reader() as con:
            cur = con.execute(
                f"SELECT {cols}, epoch(listed_at) AS listed_at, epoch(updated_at) AS updated_at "
                "FROM watchlist_entries WHERE list_name = ? AND entry_key > ? "
                "AND (? IS NULL OR contains(plate, ?)) AND (? IS NULL OR category = ?) "
                f"AND {_VALIDITY} ORDER BY entry_key LIMIT ?",
                [*params, when, when, when, when, limit],
            )
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def entry(self, list_name: str, key: str) -> dict[str, object]:
        """One entry, as ``entries`` gives it.

        Raises:
            NotFound: No entry of that list has that key.
        """
        cols = ", ".join(
            f"epoch({c}) AS {c}" if c in _TIMES else c for c in ["list_name", *SCHEMA.names]
        )
        with self._db.reader() as con:
            cur = con.execute(
                f"SELECT {cols}, epoch(listed_at) AS listed_at, epoch(updated_at) AS updated_at "
                "FROM watchlist_entries WHERE list_name = ? AND entry_key = ?",
                [list_name, key],
            )
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
        if not rows:
            raise NotFound(f"expected an entry of list {list_name!r}, got unknown key {key!r}")
        return dict(zip(names, rows[0], strict=True))

    def active_entries(
        self,
        now: datetime | None = None,
        list_name: str | None = None,
        keys: Sequence[str] | None = None,
    ) -> pa.Table:
        """Entries not expired at ``now`` (UTC) as an Arrow table: of every list, or of
        ``list_name`` only, and only those ``keys`` when given.

        Columns are ``list_name`` plus ``importer.SCHEMA``, with ``valid_from`` and
        ``valid_until`` as float seconds since the epoch (NULL when open).
        """
        cols = ", ".join(
            f"epoch({c}) AS {c}" if c in _TIMES else c for c in ["list_name", *SCHEMA.names]
        )
        when = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
        wanted = None if keys is None else list(keys)
        with self._applying, self._db.reader() as con:  # never a half-applied import
            rel = con.sql(
                f"SELECT {cols} FROM watchlist_entries WHERE (valid_until IS NULL OR "
                "valid_until > ?) AND (?::VARCHAR IS NULL OR list_name = ?) AND "
                "(?::VARCHAR[] IS NULL OR entry_key IN (SELECT unnest(?::VARCHAR[])))",
                params=[when, list_name, list_name, wanted, wanted],
            )
            assert rel is not None  # a SELECT always gives a relation
            return rel.to_arrow_table()

    def record_sync(
        self,
        list_name: str,
        source: str,
        fingerprint: str,
        *,
        counts: tuple[int, int, int, int, int, int],
        etag: str = "",
        last_modified: str = "",
    ) -> None:
        """Remember one sync: counts are (rows, added, updated, removed, unchanged, rejected)."""
        row = [list_name, source, fingerprint, etag, last_modified, utcnow(), *counts]
        self._db.writer.call(
            lambda con: con.execute(
                "INSERT INTO watchlist_syncs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row
            )
        )

    def seen_fingerprints(self, list_name: str, source: str) -> set[str]:
        """Fingerprints of what was already synced from ``source`` into a list."""
        with self._db.reader() as con:
            rows = con.execute(
                "SELECT DISTINCT fingerprint FROM watchlist_syncs "
                "WHERE list_name = ? AND source = ?",
                [list_name, source],
            ).fetchall()
        return {r[0] for r in rows}

    def http_validators(self, list_name: str, source: str) -> tuple[str, str]:
        """``(etag, last_modified)`` of the last sync from a URL, empty when none."""
        with self._db.reader() as con:
            row = con.execute(
                "SELECT etag, last_modified FROM watchlist_syncs WHERE list_name = ? "
                "AND source = ? ORDER BY finished_at DESC LIMIT 1",
                [list_name, source],
            ).fetchall()
        return (str(row[0][0]), str(row[0][1])) if row else ("", "")

    def last_syncs(self) -> dict[str, ListSync]:
        """The latest import or sync of each list that had one, by list name."""
        with self._db.reader() as con:
            rows = con.execute(
                "SELECT list_name, source, epoch(finished_at), rows, added, updated, removed, "
                "rejected FROM watchlist_syncs QUALIFY row_number() OVER "
                "(PARTITION BY list_name ORDER BY finished_at DESC) = 1"
            ).fetchall()
        return {r[0]: ListSync(*r) for r in rows}

    def imports_running(self, list_name: str) -> list[ImportProgress]:
        """The staged imports of a list under way (``loading``), oldest first.

        While staging, ``staged`` grows and the total is not known yet; while applying,
        ``applied`` counts the staged entries whose key range is written.
        """
        with self._db.reader() as con:
            rows = con.execute(
                "SELECT i.import_id, i.state, epoch(i.started_at), count(r.entry_key), "
                "count(r.entry_key) FILTER (WHERE r.entry_key < i.applied_to) "
                "FROM watchlist_imports i LEFT JOIN watchlist_import_rows r "
                "ON r.import_id = i.import_id WHERE i.list_name = ? "
                "GROUP BY ALL ORDER BY i.import_id",
                [list_name],
            ).fetchall()
        return [ImportProgress(list_name, *r) for r in rows]


_TIMES: Final = ("valid_from", "valid_until")
_VALIDITY: Final = (
    "(? IS NULL OR CASE ? WHEN 'active' THEN (valid_from IS NULL OR valid_from <= ?) "
    "AND (valid_until IS NULL OR valid_until > ?) WHEN 'pending' THEN valid_from > ? "
    "ELSE valid_until <= ? END)"
)


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[object]) -> int:
    rows = con.execute(sql, params).fetchall()  # fetch all: the result must end
    return int(rows[0][0]) if rows else 0


def _lists(con: duckdb.DuckDBPyConnection) -> list[ListSettings]:
    rows = con.execute(
        "SELECT name, strict, retention_days, default_priority, source "
        "FROM watchlist_lists ORDER BY name"
    ).fetchall()
    return [
        ListSettings(
            name=r[0], strict=r[1], retention_days=r[2], default_priority=r[3], source=r[4]
        )
        for r in rows
    ]


def _settings(con: duckdb.DuckDBPyConnection, name: str) -> ListSettings:
    for settings in _lists(con):
        if settings.name == name:
            return settings
    raise NotFound(f"expected an existing watchlist, got unknown name {name!r}")
