"""Past-read matching: newly listed entries against the sightings of the last days.

When entries are added or changed (one by hand or a whole import), a car reported stolen
this morning should be found where the cameras saw it last night. ``PastReads.run`` takes
the keys of the changed entries and:

1. builds a small ``Matcher`` of only those entries;
2. finds candidate sightings in SQL on the plate index (``central/search/index.py``; rows
   newer than its watermark are keyed from ``sightings`` by the same SQL). Every plate text
   of a sighting is indexed by its canonical key (OCR classes collapsed). A read the
   matcher can match to a listed plate is the listed key itself, the key with one
   character deleted, or with one character inserted: those variants (a few hundred per
   key, made in SQL) are joined to the index rows of the window by one hash semi-join on
   the key, so the scan does no string work per row. Patterns are checked with ``LIKE``;
3. rebuilds the candidates as ``IncomingSighting`` (``central.store.sightings.incoming``),
   runs the small matcher on them (validity at the capture time, as live matching does),
   and hands the hits to ``AlertEngine.raise_historical``: alerts marked historical,
   dated by the sighting, once per sighting and entry however often an import repeats.

Attribute entries without a plate condition (any white van) are not matched against the
past: they would flood the operators with old sightings.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import duckdb
import pyarrow as pa

from central.alerts.engine import AlertEngine, Hits
from central.search.index import key_rows_sql, watermark
from central.store.db import Database
from central.store.sightings import MATCH_COLUMNS_SQL, incoming
from central.watchlist.index import MIN_EDIT_LENGTH, canonical
from central.watchlist.matcher import Matcher
from central.watchlist.repository import WatchlistRepository

log = logging.getLogger(__name__)

_CHUNK: Final = 5_000  # keys per pass: bounds the SQL's variant table (~250 per key)
_KEYS: Final = "pr_keys"
_VARIANTS: Final = "pr_variants"


@dataclass(frozen=True)
class PastReadReport:
    """What one past-read pass found.

    Attributes:
        entries: Changed entries matched against the past (attribute-only ones excluded).
        candidates: Sightings the SQL pre-filter returned.
        hits: Sightings that matched at least one entry.
        alerts: Alerts created or extended (a repeated pass creates none).
        find_seconds: Wall time to find the hits (matcher build, SQL, matching).
        seconds: Wall time of the pass, writing the alerts included.
    """

    entries: int = 0
    candidates: int = 0
    hits: int = 0
    alerts: int = 0
    find_seconds: float = 0.0
    seconds: float = 0.0


@dataclass(frozen=True)
class Probe:
    """What the SQL pre-filter looks for: listed keys (with or without edits), key patterns.

    Attributes:
        keys: Canonical keys of plate entries.
        edits: Per key, whether a read with one character more or less matches too
            (non-strict lists, keys of at least ``MIN_EDIT_LENGTH``), as in the matcher.
        patterns: Wildcard patterns as LIKE patterns on canonical keys.
    """

    keys: list[str]
    edits: list[bool]
    patterns: list[str]

    @classmethod
    def of(cls, table: pa.Table, strict_lists: set[str]) -> Probe:
        """The probe of entries as ``WatchlistRepository.active_entries`` returns them."""
        keys: dict[str, bool] = {}
        patterns: list[str] = []
        for kind, plate, list_name in zip(
            table.column("kind").to_pylist(),
            table.column("plate").to_pylist(),
            table.column("list_name").to_pylist(),
            strict=True,
        ):
            if not plate:
                continue  # attribute-only entry: not matched against the past
            if kind != "plate":
                patterns.append(_like(plate))
                continue
            key = canonical(plate).decode("ascii")
            edits = list_name not in strict_lists and len(key) >= MIN_EDIT_LENGTH
            keys[key] = keys.get(key, False) or edits
        return cls(list(keys), list(keys.values()), patterns)

    @property
    def empty(self) -> bool:
        """Nothing to look for."""
        return not (self.keys or self.patterns)

    def where(self) -> tuple[str, list[object]]:
        """The condition on column ``k`` of index rows, and its parameters.

        Every read the matcher could match to a listed key is the key itself, the key
        with one character deleted, or the key with one character of the canonical
        alphabet inserted: those variants are generated in SQL (a few hundred per key)
        and the index rows are kept by one hash semi-join on ``k``.
        """
        terms: list[str] = []
        params: list[object] = []
        if self.keys:
            terms.append(f"k IN (SELECT k FROM {_VARIANTS})")
        for pattern in self.patterns:
            terms.append("k LIKE ? ESCAPE '\\'")
            params.append(pattern)
        return "(" + " OR ".join(terms) + ")", params

    def variants_sql(self) -> tuple[str, list[object]]:
        """The CTE defining ``pr_variants(k)`` from the registered keys table."""
        sql = f"""{_VARIANTS} AS MATERIALIZED (
            SELECT key AS k FROM {_KEYS}
            UNION SELECT left(key, i) || substr(key, i + 2) FROM {_KEYS}, range(0, ?) r(i)
                WHERE edits AND i < length(key)
            UNION SELECT left(key, i) || c || substr(key, i + 1)
                FROM {_KEYS}, range(0, ?) r(i), unnest(?::VARCHAR[]) a(c)
                WHERE edits AND i <= length(key)
        )"""
        longest = max((len(k) for k in self.keys), default=0)
        return sql, [longest, longest + 1, list(ALPHABET)]

    def table(self) -> pa.Table:
        """The keys as an Arrow table ``(key, edits)`` to register."""
        return pa.table(
            {"key": pa.array(self.keys, pa.string()), "edits": pa.array(self.edits, pa.bool_())}
        )


ALPHABET: Final = "".join(sorted(set(canonical("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789").decode())))
"""Characters of canonical keys (each OCR confusion class collapsed to one)."""


def _like(pattern: str) -> str:
    """A folded wildcard pattern as a LIKE pattern on canonical keys."""
    out = []
    for piece in re.split(r"([?*])", pattern):
        if piece == "?":
            out.append("_")
        elif piece == "*":
            out.append("%")
        else:
            out.append(canonical(piece).decode("ascii"))
    return "".join(out)


class PastReads:
    """Matches changed entries against the sightings of the last ``days``.

    ``run`` does one pass on the caller's thread. ``submit`` queues the keys for the
    background thread (``start``/``stop``), which runs them in passes of at most 5,000
    keys, in order: an import answers at once and its past reads follow.

    Args:
        db: Central's database (reads through cursors).
        repo: The watchlist repository (the changed entries and the lists' strictness).
        engine: Raises the historical alerts (on the database writer).
        days: How far back to look.
        min_score: Matches scoring below this raise no alert (as for live sightings).
        lookups: Up to this many candidates, rows are fetched by primary key, else by a
            scan (see ``_rows``).
        clock: UNIX time source (tests inject one).
    """

    def __init__(
        self,
        db: Database,
        repo: WatchlistRepository,
        engine: AlertEngine,
        *,
        days: float = 7.0,
        min_score: float = 0.6,
        lookups: int = 200,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._lookups = lookups
        self._db = db
        self._repo = repo
        self._engine = engine
        self._days = days
        self._min_score = min_score
        self._clock = clock
        self._jobs: queue.Queue[tuple[str, tuple[str, ...]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._pending = 0
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self.last: PastReadReport | None = None

    def start(self) -> None:
        """Start the background thread that runs submitted passes."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="past-reads", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the pass in hand and stop; passes still queued are dropped (logged)."""
        if self._thread is not None:
            dropped = 0
            while True:
                try:
                    self._jobs.get_nowait()
                except queue.Empty:
                    break
                dropped += 1
            if dropped:
                log.warning("past reads: %d queued passes dropped at shutdown", dropped)
                with self._lock:
                    self._pending -= dropped
                    if not self._pending:
                        self._idle.set()
            self._jobs.put(None)
            self._thread.join(timeout)
            self._thread = None

    @property
    def alive(self) -> bool:
        """Whether the background thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def submit(self, list_name: str, keys: Sequence[str]) -> None:
        """Queue a pass over the entries ``keys`` of ``list_name`` (any thread)."""
        chunks = [tuple(keys[at : at + _CHUNK]) for at in range(0, len(keys), _CHUNK)]
        with self._lock:
            self._pending += len(chunks)
            if self._pending:
                self._idle.clear()
        for chunk in chunks:
            self._jobs.put((list_name, chunk))

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every submitted pass ran; False on timeout."""
        return self._idle.wait(timeout)

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                self.last = self.run(*job)
            except Exception:  # a failed pass must not stop the later ones
                log.exception("past reads of list %s failed", job[0])
            with self._lock:
                self._pending -= 1
                if not self._pending:
                    self._idle.set()

    def run(self, list_name: str, keys: Sequence[str]) -> PastReadReport:
        """Match the entries ``keys`` of ``list_name`` against past sightings; raise alerts."""
        started = time.perf_counter()
        if not keys or self._days <= 0:
            return PastReadReport()
        now = datetime.fromtimestamp(self._clock(), UTC)
        table = self._repo.active_entries(now, list_name=list_name, keys=keys)
        strict = {s.name for s in self._repo.lists() if s.strict}
        probe = Probe.of(table, strict)
        if probe.empty:
            return PastReadReport(seconds=round(time.perf_counter() - started, 3))
        matcher = Matcher.build(table, self._repo.lists())
        since = now - timedelta(days=self._days)
        with self._db.reader() as con:
            rows = self._candidates(con, probe, since)
        hits: Hits = []
        for row in rows:
            inc = incoming(row)
            found = matcher.match(
                inc.sighting,
                min_score=self._min_score,
                strict_min_confidence=self._engine.strict_min_confidence,
            )
            if found:
                hits.append((inc, found))
        found_at = time.perf_counter()
        alerts = self._engine.raise_historical(hits)
        report = PastReadReport(
            entries=table.num_rows,
            candidates=len(rows),
            hits=len(hits),
            alerts=alerts,
            find_seconds=round(found_at - started, 3),
            seconds=round(time.perf_counter() - started, 3),
        )
        log.info("past reads of list %s: %s", list_name, report)
        return report

    def _candidates(
        self, con: duckdb.DuckDBPyConnection, probe: Probe, since: datetime
    ) -> list[tuple[object, ...]]:
        """Rows (``MATCH_COLUMNS_SQL``) of sightings captured since ``since`` whose plate
        index keys pass the probe."""
        cond, cond_params = probe.where()
        variants, variant_params = probe.variants_sql()
        tail = key_rows_sql("sightings", "received_at >= ? AND captured_at >= ?")
        con.register(_KEYS, probe.table())
        try:
            mark = watermark(con)
            ids = (
                f"SELECT event_id, captured_at FROM plate_index "
                f"WHERE NOT rev AND captured_at >= ? AND {cond} "
                f"UNION SELECT event_id, captured_at FROM ({tail}) WHERE NOT rev AND {cond}"
            )
            params: list[object] = [*variant_params, since, *cond_params, mark, since, *cond_params]
            found = con.execute(
                f"WITH {variants} SELECT event_id::VARCHAR, captured_at FROM ({ids})", params
            ).fetchall()
            events, times = [str(r[0]) for r in found], [r[1] for r in found]
            return _rows(con, events, times, lookups=self._lookups)
        finally:
            con.unregister(_KEYS)


def _rows(
    con: duckdb.DuckDBPyConnection, ids: list[str], times: list[datetime], *, lookups: int
) -> list[tuple[object, ...]]:
    """The ``MATCH_COLUMNS_SQL`` rows of sightings by event id, oldest first.

    A few hits are fetched through the primary key (a constant IN list becomes index
    lookups, ~4 ms each); more are found by one scan of the capture-time range, which
    reads every column of the row groups it passes but costs the same for 200 or 20,000.
    """
    if not ids:
        return []
    if len(ids) <= lookups:
        marks = ", ".join(["?::UUID"] * len(ids))  # placeholders only, no values in the SQL
        sql = f"SELECT {MATCH_COLUMNS_SQL} FROM sightings WHERE event_id IN ({marks})"
        params: list[object] = list(ids)
    else:
        sql = (
            f"SELECT {MATCH_COLUMNS_SQL} FROM sightings WHERE captured_at BETWEEN ? AND ? "
            "AND event_id IN (SELECT unnest(?::UUID[]))"
        )
        params = [min(times), max(times), ids]
    rows = con.execute(f"{sql} ORDER BY captured_at", params).fetchall()
    return [tuple(r) for r in rows]
