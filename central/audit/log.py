"""The append-only, hash-chained audit log.

Every search, evidence view, export, confirmation, login and change is one row::

    id, at, actor, action, target, reason, details (JSON), prev_hash, hash

where ``hash = sha256(prev_hash + "\\n" + canonical(row))`` and ``canonical`` is compact,
key-sorted JSON of ``[id, at (epoch microseconds), actor, action, target, reason, details]``.
The first row's ``prev_hash`` is 64 zeros. Editing a row changes its hash; deleting one
leaves a gap in the ids and a ``prev_hash`` that points at nothing; reordering breaks both.
``AuditLog.verify`` walks the chain and names the first rows that do not fit.

Someone able to write the database file could rebuild the whole chain after an edit, or cut
rows off its end. Against that, note the head hash (``varta central audit verify`` prints it)
somewhere outside central - a ticket, a printed log book, a WORM store - and later pass it as
``--anchor``: verification then also proves that row still exists unchanged.

Rows are appended by jobs on central's one database writer (``Database.writer``), so the
chain is strictly serial; a rolled-back transaction makes the log reload its head.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import duckdb

from central.store.db import Database

log = logging.getLogger(__name__)

GENESIS: Final = "0" * 64
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_COLUMNS: Final = 'id, epoch_us("at"), actor, action, target, reason, details::VARCHAR'


@dataclass(frozen=True)
class AuditVerification:
    """The result of walking the chain.

    Attributes:
        ok: True when every row links to the one before and hashes to its stored hash.
        rows: How many rows were read.
        problems: One line per broken row, first ones first (empty when ``ok``).
        head: The last row's stored hash (note it outside central as an anchor).
        first_broken: Id of the first row that does not fit (None when every row does).
    """

    ok: bool
    rows: int
    problems: list[str] = field(default_factory=list)
    head: str = GENESIS
    first_broken: int | None = None


@dataclass(frozen=True)
class AuditEntry:
    """One audit row as read back."""

    id: int
    at: float
    actor: str
    action: str
    target: str
    reason: str
    details: dict[str, Any]
    hash: str


def canonical_details(details: dict[str, Any] | None) -> str:
    """The stored JSON text of ``details``: compact, keys sorted, UTF-8 kept.

    Values JSON cannot hold (datetimes, UUIDs, paths) are stored as their ``str``.
    """
    return json.dumps(
        details or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )


def row_hash(
    prev_hash: str,
    row_id: int,
    at_us: int,
    actor: str,
    action: str,
    target: str,
    reason: str,
    details_json: str,
) -> str:
    """The chain hash of one row given the previous row's hash."""
    body = json.dumps(
        [row_id, at_us, actor, action, target, reason, details_json],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


class AuditLog:
    """Append-only audit records with a verifiable hash chain (thread-safe).

    Args:
        db: The central database; the log uses its own cursors on it.
        clock: Seconds since the epoch (injectable for tests).
    """

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock
        self._lock = threading.Lock()  # guards the head for readers of ``head``
        with db.reader() as con:
            self._last_id, self._head = _head(con)
        db.writer.on_rollback(self._reload)
        # an anchor in the service log, outside the database, at every start
        log.info("audit log: %d rows, head %s", self._last_id, self._head)

    def _reload(self, con: duckdb.DuckDBPyConnection) -> None:
        with self._lock:
            self._last_id, self._head = _head(con)

    def record(
        self,
        actor: str,
        action: str,
        target: str = "",
        reason: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        """Append one row; returns once it is committed.

        Args:
            actor: Who did it (user name, ``"system"``, or ``"cli:<os user>"``).
            action: What, e.g. ``"search"``, ``"evidence.view"``, ``"login.failed"``.
            target: What it was done to, e.g. ``"sighting:<uuid>"``, ``"user:alice"``.
            reason: The reason or case number the user gave.
            details: Further facts (JSON-serialisable): filters, counts, client address.
        """
        details_json = canonical_details(details)
        at_us = round(self._clock() * 1_000_000)
        self._db.writer.call(
            lambda con: self.append(con, at_us, actor, action, target, reason, details_json)
        )
        log.debug("audit %s %s %s", actor, action, target)

    def append(
        self,
        con: duckdb.DuckDBPyConnection,
        at_us: int,
        actor: str,
        action: str,
        target: str,
        reason: str,
        details_json: str,
    ) -> None:
        """Append one row within the writer's transaction (writer thread only)."""
        at = _EPOCH + dt.timedelta(microseconds=at_us)
        with self._lock:
            row_id = self._last_id + 1
            digest = row_hash(
                self._head, row_id, at_us, actor, action, target, reason, details_json
            )
            con.execute(
                'INSERT INTO audit_log (id, "at", actor, action, target, reason, details, '
                "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [row_id, at, actor, action, target, reason, details_json, self._head, digest],
            )
            self._last_id, self._head = row_id, digest

    @property
    def head(self) -> tuple[int, str]:
        """The last row's id and hash (``(0, GENESIS)`` when empty)."""
        with self._lock:
            return self._last_id, self._head

    def verify(self, anchor: str | None = None, max_problems: int = 20) -> AuditVerification:
        """Walk the whole chain in id order and report every row that does not fit.

        Args:
            anchor: A head hash noted earlier; it must still be the hash of some row.
            max_problems: Stop listing after this many problems.

        Returns:
            Whether the chain holds, how many rows it has, and the problems found.
        """
        problems: list[str] = []
        rows, prev_id, prev_hash, seen_anchor = 0, 0, GENESIS, anchor is None
        first_broken: int | None = None
        last_id, _ = self.head  # rows appended while we read are left for the next run
        with self._db.reader() as con:
            for row in _rows(con, last_id):
                rows += 1
                wrong = _check_row(row, prev_id, prev_hash)
                if wrong and first_broken is None:
                    first_broken = int(row[0])
                problems += wrong
                seen_anchor = seen_anchor or row[8] == anchor
                prev_id, prev_hash = int(row[0]), str(row[8])
                if len(problems) >= max_problems:
                    problems.append(f"stopped after {max_problems} problems")
                    break
        if not seen_anchor:
            problems.append(f"anchor {anchor} is not the hash of any row (rows cut or rewritten)")
        return AuditVerification(not problems, rows, problems, prev_hash, first_broken)

    def query(
        self,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: float | None = None,
        limit: int = 100,
        until: float | None = None,
        before: int | None = None,
    ) -> list[AuditEntry]:
        """Rows matching every given filter, newest first.

        ``since`` and ``until`` bound the time (UNIX seconds, ``until`` exclusive);
        ``before`` keeps rows with a smaller id (the last id of the page before).
        """
        sql = (
            f"SELECT {_COLUMNS}, hash FROM audit_log WHERE (? IS NULL OR actor = ?) "
            "AND (? IS NULL OR action = ?) AND (? IS NULL OR target = ?) "
            'AND (? IS NULL OR "at" >= to_timestamp(?)) AND (? IS NULL OR "at" < to_timestamp(?)) '
            "AND (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?"
        )
        args = [actor, actor, action, action, target, target, since, since, until, until]
        args += [before, before, limit]
        with self._db.reader() as con:
            rows = con.execute(sql, args).fetchall()
        return [
            AuditEntry(int(r[0]), r[1] / 1e6, r[2], r[3], r[4], r[5], json.loads(r[6]), r[7])
            for r in rows
        ]


def _head(con: duckdb.DuckDBPyConnection) -> tuple[int, str]:
    rows = con.execute("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchall()
    return (int(rows[0][0]), str(rows[0][1])) if rows else (0, GENESIS)


def _rows(con: duckdb.DuckDBPyConnection, last_id: int, batch: int = 2048) -> Iterator[Any]:
    con.execute(
        f"SELECT {_COLUMNS}, prev_hash, hash FROM audit_log WHERE id <= ? ORDER BY id", [last_id]
    )
    while chunk := con.fetchmany(batch):
        yield from chunk


def _check_row(row: tuple[Any, ...], prev_id: int, prev_hash: str) -> list[str]:
    """What is wrong with one row given the row before it (empty when nothing)."""
    row_id, at_us, actor, action, target, reason, details, stored_prev, stored = row
    problems = []
    if row_id != prev_id + 1:
        missing = f"{prev_id + 1}" if row_id == prev_id + 2 else f"{prev_id + 1}..{row_id - 1}"
        if row_id > prev_id + 1:
            problems.append(f"row {missing} missing before row {row_id} (deleted?)")
        else:
            problems.append(f"row {row_id} out of order after row {prev_id}")
    if stored_prev != prev_hash and not problems:
        problems.append(f"row {row_id}: prev_hash does not match the hash of row {prev_id}")
    expected = row_hash(stored_prev, row_id, at_us, actor, action, target, reason, details)
    if expected != stored:
        problems.append(f"row {row_id}: content does not match its hash (edited?)")
    return problems
