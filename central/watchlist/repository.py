"""DuckDB storage of wanted-vehicle lists, their entries and their sync history.

All times are stored as ``TIMESTAMP`` in UTC. Entries are loaded in bulk from Arrow tables
(see ``importer.SCHEMA``); a load computes the difference against the stored list in SQL
and writes only what changed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final, NamedTuple

import duckdb
import pyarrow as pa

from central.watchlist.importer import SCHEMA
from central.watchlist.model import ListSettings
from shared.errors import InvalidRequest, NotFound

log = logging.getLogger(__name__)

_DDL: Final = """
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
"""
_CONTENT: Final = [name for name in SCHEMA.names if name != "entry_key"]
_CHANGED: Final = " OR ".join(f"i.{c} IS DISTINCT FROM e.{c}" for c in _CONTENT)
_INCOMING: Final = "wl_incoming"
_KEEP: Final = "wl_keep"


def utcnow() -> datetime:
    """Now, UTC, without tzinfo (how the tables store times)."""
    return datetime.now(UTC).replace(tzinfo=None)


class Counts(NamedTuple):
    """What one load did to a list."""

    added: int
    updated: int
    removed: int
    unchanged: int


class WatchlistRepository:
    """Lists, entries and sync history in DuckDB (the caller owns the connection).

    Args:
        conn: The writer connection (or a cursor of it for reads).
    """

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self._conn = conn

    def ensure_schema(self) -> None:
        """Create the watchlist tables if they do not exist."""
        self._conn.execute(_DDL)

    def save_list(self, settings: ListSettings) -> None:
        """Create or replace a list's settings."""
        self._conn.execute(
            "INSERT OR REPLACE INTO watchlist_lists VALUES (?, ?, ?, ?, ?, ?)",
            [
                settings.name,
                settings.strict,
                settings.retention_days,
                settings.default_priority,
                settings.source,
                utcnow(),
            ],
        )

    def lists(self) -> list[ListSettings]:
        """All lists, by name."""
        rows = self._conn.execute(
            "SELECT name, strict, retention_days, default_priority, source "
            "FROM watchlist_lists ORDER BY name"
        ).fetchall()
        return [
            ListSettings(
                name=r[0], strict=r[1], retention_days=r[2], default_priority=r[3], source=r[4]
            )
            for r in rows
        ]

    def get_list(self, name: str) -> ListSettings:
        """One list's settings.

        Raises:
            NotFound: No list has that name.
        """
        for settings in self.lists():
            if settings.name == name:
                return settings
        raise NotFound(f"expected an existing watchlist, got unknown name {name!r}")

    def load(
        self,
        list_name: str,
        table: pa.Table,
        *,
        full: bool,
        max_removed: int | None = None,
        keep: Sequence[str] = (),
    ) -> Counts:
        """Bring a list up to date with an export, in one transaction.

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
            Counts of added, updated, removed and unchanged entries.

        Raises:
            NotFound: The list does not exist.
            InvalidRequest: More than ``max_removed`` entries would be removed.
        """
        self.get_list(list_name)
        conn = self._conn
        conn.register(_INCOMING, table)
        conn.register(_KEEP, pa.table({"entry_key": pa.array(list(keep), pa.string())}))
        conn.execute("BEGIN TRANSACTION")
        try:
            counts = self._apply(list_name, full=full)
            if max_removed is not None and counts.removed > max_removed:
                raise InvalidRequest(
                    f"list {list_name}: the export would remove {counts.removed} entries, "
                    f"at most {max_removed} allowed; check the export or allow mass removal"
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            conn.execute("DROP TABLE IF EXISTS wl_change")
            conn.unregister(_INCOMING)
            conn.unregister(_KEEP)
        log.info("list %s: %s", list_name, counts)
        return counts

    def _apply(self, list_name: str, *, full: bool) -> Counts:
        conn, now = self._conn, utcnow()
        conn.execute(
            "CREATE OR REPLACE TEMP TABLE wl_change AS "
            "SELECT i.entry_key, CASE WHEN e.entry_key IS NULL THEN 'added' "
            f"WHEN {_CHANGED} THEN 'updated' ELSE 'unchanged' END AS change "
            f"FROM {_INCOMING} i LEFT JOIN "
            "(SELECT * FROM watchlist_entries WHERE list_name = ?) e USING (entry_key)",
            [list_name],
        )
        tally = dict(
            conn.execute("SELECT change, count(*) FROM wl_change GROUP BY change").fetchall()
        )
        removed = 0
        if full:
            removed = self._scalar(
                "SELECT count(*) FROM watchlist_entries e WHERE list_name = ? AND NOT EXISTS "
                "(SELECT 1 FROM wl_change c WHERE c.entry_key = e.entry_key) AND NOT EXISTS "
                f"(SELECT 1 FROM {_KEEP} k WHERE k.entry_key = e.entry_key)",
                [list_name],
            )
            conn.execute(
                "DELETE FROM watchlist_entries WHERE list_name = ? AND entry_key NOT IN "
                f"(SELECT entry_key FROM wl_change UNION ALL SELECT entry_key FROM {_KEEP})",
                [list_name],
            )
        columns = ", ".join(_CONTENT)
        if tally.get("updated"):
            assignments = ", ".join(f"{c} = i.{c}" for c in _CONTENT)
            conn.execute(
                f"UPDATE watchlist_entries e SET {assignments}, updated_at = ? "
                f"FROM {_INCOMING} i, wl_change c WHERE e.list_name = ? "
                "AND e.entry_key = i.entry_key AND c.entry_key = i.entry_key "
                "AND c.change = 'updated'",
                [now, list_name],
            )
        if tally.get("added"):
            conn.execute(
                f"INSERT INTO watchlist_entries (list_name, entry_key, {columns}, listed_at, "
                f"updated_at) SELECT ?, i.entry_key, {', '.join('i.' + c for c in _CONTENT)}, "
                f"?, ? FROM {_INCOMING} i JOIN wl_change c USING (entry_key) "
                "WHERE c.change = 'added'",
                [list_name, now, now],
            )
        return Counts(
            tally.get("added", 0), tally.get("updated", 0), removed, tally.get("unchanged", 0)
        )

    def _scalar(self, sql: str, params: list[object]) -> int:
        rows = self._conn.execute(sql, params).fetchall()  # fetch all: the result must end
        return int(rows[0][0]) if rows else 0

    def count(self, list_name: str) -> int:
        """Number of entries stored for a list."""
        return self._scalar(
            "SELECT count(*) FROM watchlist_entries WHERE list_name = ?", [list_name]
        )

    def active_entries(self, now: datetime | None = None) -> pa.Table:
        """Entries of all lists not expired at ``now`` (UTC), as an Arrow table.

        Columns are ``list_name`` plus ``importer.SCHEMA``, with ``valid_from`` and
        ``valid_until`` as float seconds since the epoch (NULL when open).
        """
        cols = ", ".join(
            f"epoch({c}) AS {c}" if c in ("valid_from", "valid_until") else c
            for c in ["list_name", *SCHEMA.names]
        )
        rel = self._conn.sql(
            f"SELECT {cols} FROM watchlist_entries WHERE valid_until IS NULL OR valid_until > ?",
            params=[(now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)],
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
        self._conn.execute(
            "INSERT INTO watchlist_syncs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [list_name, source, fingerprint, etag, last_modified, utcnow(), *counts],
        )

    def seen_fingerprints(self, list_name: str, source: str) -> set[str]:
        """Fingerprints of what was already synced from ``source`` into a list."""
        rows = self._conn.execute(
            "SELECT DISTINCT fingerprint FROM watchlist_syncs WHERE list_name = ? AND source = ?",
            [list_name, source],
        ).fetchall()
        return {r[0] for r in rows}

    def http_validators(self, list_name: str, source: str) -> tuple[str, str]:
        """``(etag, last_modified)`` of the last sync from a URL, empty when none."""
        row = self._conn.execute(
            "SELECT etag, last_modified FROM watchlist_syncs WHERE list_name = ? AND source = ? "
            "ORDER BY finished_at DESC LIMIT 1",
            [list_name, source],
        ).fetchall()
        return (str(row[0][0]), str(row[0][1])) if row else ("", "")
