"""Retention: delete sightings that hit nothing after ``retention.non_hit_days``.

A *hit* is a sighting some alert refers to. Retention asks the alert engine which hits are
still protected (``ProtectedSightings``): while the alert is open, and after it closed for its
list's ``retention_days``, counted from the close. One run:

1. deletes non-hit sightings captured before the cutoff, with their plate index rows, in
   chunks of ``chunk_rows``, each one job on the database writer, so ingest's jobs run in
   between and never wait for a whole purge;
2. for every thumbnail day folder (``thumbs/YYYYMMDD``) wholly before the cutoff, copies the
   thumbnails still referenced (hits) into an evidence pack ``thumbs/1YYYYMMDD/NNNNNN.pack``
   (nine digits, so ``ThumbStore.read`` serves it unchanged and no purge ever matches it),
   points the rows at the copies, and then deletes the day folder;
3. deletes the per-minute camera health history (``camera_minutes``) older than
   ``retention.health_history_days``;
4. records the counts in the audit log as actor ``system``;
5. with the archive enabled, deletes the archive's days older than
   ``archive.retention_days`` (audited as ``retention.archive_purge``).

With the archive enabled, step 1 deletes only sightings whose partition is archived
(``archive_parts`` covers their receive time): a sighting is *held* until then, so an
archive that is down or behind never loses a day.

The same thread rejects, as ``system``, face candidates that nobody decided within
``retention.face_pending_days`` (``FaceCandidates.lapse``): the rejection deletes the
matched face's embedding and crop, as a user's would.

``Scheduler`` runs this (and the plate indexer) on a thread of its own in ``central serve``.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from central.archive.export import ArchiveExporter
from central.audit.sink import AuditSink
from central.config import CentralConfig
from central.search.index import PlateIndexer, first_row
from central.store.camera_history import CameraHistory
from central.store.db import Database
from central.store.sightings import THUMBS_SQL_TYPE
from shared.errors import VartaError

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system"
# A sighting is archived when a part of its partition covers its receive time.
_ARCHIVED = (
    "EXISTS (SELECT 1 FROM archive_parts p WHERE p.camera_id = sightings.camera_id "
    "AND p.day = (sightings.captured_at AT TIME ZONE 'UTC')::DATE "
    "AND sightings.received_at < p.received_before)"
)


class ProtectedSightings(Protocol):
    """Which sightings are evidence and so must survive the purge (the alert engine
    answers, with the lists' policies from the watchlist service)."""

    def protected_sightings(self, older_than: datetime) -> list[str]:
        """Event ids of protected sightings captured before ``older_than``."""


@dataclass(frozen=True)
class RetentionReport:
    """What one run did."""

    cutoff: str
    deleted: int
    index_rows_deleted: int
    hits_kept: int
    chunks: int
    conflicts: int
    day_folders_deleted: int
    evidence_copied: int
    health_minutes_deleted: int
    seconds: float
    held_for_archive: int = 0


class ArchivePurge(Protocol):
    """The archive's own retention (``central.archive.export.ArchiveExporter``)."""

    def purge(self) -> Any:
        """Delete the expired days; a dataclass report of what went."""

    def oldest_kept(self, now: datetime) -> datetime:
        """Days starting before this are past the archive's retention (never exported)."""


@dataclass(frozen=True)
class RetentionPolicy:
    """How a run behaves (from ``RetentionConfig``)."""

    non_hit_days: float = 14.0
    chunk_rows: int = 20_000
    health_history_days: float = 7.0
    archive_hold: bool = False


class Retention:
    """The purge of non-hit sightings and of old thumbnail day folders.

    Args:
        db: The central database (chunks are jobs on its writer).
        thumbs_root: The ``ThumbStore`` root (day folders live here).
        hits: Which sightings are protected evidence.
        audit: Where runs are recorded.
        policy: Period and chunking.
        clock: UNIX time source (tests inject one).
        stop: When set, a run ends after the chunk in hand (shutdown).
        archive: The archive to purge after the database (None: no archive).
    """

    def __init__(
        self,
        db: Database,
        thumbs_root: Path,
        hits: ProtectedSightings,
        audit: AuditSink,
        policy: RetentionPolicy,
        clock: Callable[[], float] = time.time,
        stop: threading.Event | None = None,
        archive: ArchivePurge | None = None,
    ) -> None:
        self._archive = archive
        self._db = db
        self._stop = stop or threading.Event()
        self._root = thumbs_root
        self._hits = hits
        self._audit = audit
        self._policy = policy
        self._clock = clock

    def run(self, actor: str = SYSTEM_ACTOR) -> RetentionReport:
        """Purge once and audit the counts."""
        started = time.perf_counter()
        now = datetime.fromtimestamp(self._clock(), UTC)
        cutoff = now - timedelta(days=self._policy.non_hit_days)
        hit_ids = self._hits.protected_sightings(cutoff)
        hold_from = self._hold_from(now)
        deleted, index_rows, chunks, conflicts = self._purge_rows(cutoff, hit_ids, hold_from)
        folders, copied = (0, 0) if self._stop.is_set() else self._purge_days(cutoff)
        history_cutoff = now - timedelta(days=self._policy.health_history_days)
        minutes = self._db.writer.call(
            functools.partial(CameraHistory().purge, before=history_cutoff)
        )
        report = RetentionReport(
            cutoff=cutoff.isoformat(),
            deleted=deleted,
            index_rows_deleted=index_rows,
            hits_kept=len(hit_ids),
            chunks=chunks,
            conflicts=conflicts,
            day_folders_deleted=folders,
            evidence_copied=copied,
            health_minutes_deleted=minutes,
            seconds=round(time.perf_counter() - started, 3),
            held_for_archive=0 if hold_from is None else self._held(cutoff, hold_from),
        )
        self._audit.record(
            actor,
            "retention.purge",
            target="sightings",
            reason=f"non-hit sightings older than {self._policy.non_hit_days:g} days",
            details=asdict(report),
        )
        log.info("retention: %s", report)
        if self._archive is not None and not self._stop.is_set():
            purged = self._archive.purge()
            self._audit.record(
                actor,
                "retention.archive_purge",
                target="archive",
                reason="archived days past archive.retention_days",
                details=asdict(purged),
            )
        return report

    def _hold_from(self, now: datetime) -> datetime | None:
        """With the hold, sightings captured from this time on wait for the archive (older
        ones are past its retention: it never takes them); None: no hold."""
        if not self._policy.archive_hold:
            return None
        if self._archive is None:
            return datetime.fromtimestamp(0, UTC)
        return self._archive.oldest_kept(now)

    def _held(self, cutoff: datetime, hold_from: datetime) -> int:
        """Sightings past the cutoff whose partition is not archived yet (hits among them)."""
        with self._db.reader() as con:
            row = first_row(
                con.execute(
                    "SELECT count(*) FROM sightings WHERE captured_at < ? AND captured_at >= ? "
                    f"AND NOT {_ARCHIVED}",
                    [cutoff, hold_from],
                )
            )
        return int(row[0]) if row else 0

    # -- rows -----------------------------------------------------------------------

    def _purge_rows(
        self, cutoff: datetime, hit_ids: list[str], hold_from: datetime | None
    ) -> tuple[int, int, int, int]:
        """Delete old non-hits window by window of capture time, oldest first.

        Each window is one transaction; its width adapts so that a window holds about
        ``chunk_rows`` sightings, and the zone maps of the time-ordered tables keep every
        chunk to its own row groups.
        """
        hits = pa.table({"event_id": pa.array(hit_ids, pa.string())})
        deleted = index_rows = chunks = 0
        with self._db.reader() as con:
            oldest = first_row(
                con.execute(
                    "SELECT min(captured_at) FROM sightings WHERE captured_at < ?", [cutoff]
                )
            )
        low: datetime | None = oldest[0] if oldest else None
        width = timedelta(minutes=10)
        while low is not None and low < cutoff and not self._stop.is_set():
            high = min(low + width, cutoff)
            job = functools.partial(self._chunk, hits, low, high, hold_from)
            done, rows = self._db.writer.call(job)
            deleted, index_rows = deleted + done, index_rows + rows
            chunks += 1 if done else 0
            scale = self._policy.chunk_rows / max(done, 1)
            width = max(timedelta(seconds=1), width * min(max(scale, 0.5), 4.0))
            low = high
        return deleted, index_rows, chunks, 0

    @staticmethod
    def _chunk(
        hits: pa.Table,
        low: datetime,
        high: datetime,
        hold_from: datetime | None,
        con: duckdb.DuckDBPyConnection,
    ) -> tuple[int, int]:
        """Delete the non-hits captured in ``[low, high)`` (those captured from
        ``hold_from`` on only once archived) and the index rows left without their
        sighting (one writer job); ``(sightings, index rows)`` deleted."""
        where = (
            "WHERE captured_at >= ? AND captured_at < ? "
            "AND event_id NOT IN (SELECT event_id::UUID FROM retention_hits)"
        )
        params: list[object] = [low, high]
        if hold_from is not None:
            where += f" AND (captured_at < ? OR {_ARCHIVED})"
            params.append(hold_from)
        orphans = (
            "WHERE captured_at >= ? AND captured_at < ? AND event_id NOT IN "
            "(SELECT event_id FROM sightings WHERE captured_at >= ? AND captured_at < ?)"
        )
        con.register("retention_hits", hits)
        try:
            rows = first_row(con.execute(f"DELETE FROM sightings {where}", params))
            index = first_row(
                con.execute(f"DELETE FROM plate_index {orphans}", [low, high, low, high])
            )
        finally:
            con.unregister("retention_hits")
        return (int(rows[0]) if rows else 0), (int(index[0]) if index else 0)

    # -- thumbnail day folders ------------------------------------------------------------

    def _purge_days(self, cutoff: datetime) -> tuple[int, int]:
        folders = copied = 0
        if not self._root.is_dir():
            return 0, 0
        for folder in sorted(self._root.iterdir()):
            day = _day(folder.name)
            if day is None or day + timedelta(days=1) > cutoff:
                continue
            copied += self._evacuate(folder.name, day + timedelta(days=2))
            shutil.rmtree(folder)
            folders += 1
            log.info("retention: deleted thumbnail day folder %s", folder.name)
        return folders, copied

    def _evacuate(self, day: str, received_before: datetime) -> int:
        """Copy the thumbnails in day folder ``day`` that rows still use; repoint the rows."""
        with self._db.reader() as con:
            rows = con.execute(
                "SELECT event_id::VARCHAR, thumbnails FROM sightings WHERE received_at < ? "
                "AND len(list_filter(thumbnails, lambda t: starts_with(t.pack, ?))) > 0",
                [received_before, f"{day}/"],
            ).fetchall()
        if not rows:
            return 0
        writer = _EvidenceWriter(self._root, day)
        updates: list[list[Any]] = []
        copied = 0
        try:
            for event_id, thumbs in rows:
                here = [str(t["pack"]).startswith(f"{day}/") for t in thumbs]
                new = [writer.copy(dict(t)) if h else t for t, h in zip(thumbs, here, strict=True)]
                copied += sum(here)
                updates.append([new, event_id])
        finally:
            writer.close()
        self._db.writer.call(
            lambda con: con.executemany(
                f"UPDATE sightings SET thumbnails = ?::{THUMBS_SQL_TYPE} WHERE event_id = ?::UUID",
                updates,
            )
        )
        return copied


class _EvidenceWriter:
    """Appends copies of thumbnails to ``1YYYYMMDD/NNNNNN.pack`` (same pack number)."""

    def __init__(self, root: Path, day: str) -> None:
        self._root = root
        self._day = day
        self._folder = root / f"1{day}"
        self._folder.mkdir(parents=True, exist_ok=True)
        self._fds: dict[str, int] = {}

    def copy(self, thumb: dict[str, Any]) -> dict[str, Any]:
        _, _, name = str(thumb["pack"]).partition("/")
        with open(self._root / self._day / f"{name}.pack", "rb") as fh:
            fh.seek(int(thumb["offset"]))
            data = fh.read(int(thumb["length"]))
        fd = self._fds.get(name)
        if fd is None:
            path = self._folder / f"{name}.pack"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
            self._fds[name] = fd
        offset = os.lseek(fd, 0, os.SEEK_END)
        if os.write(fd, data) != len(data):
            raise OSError(f"evidence pack 1{self._day}/{name}: short write")
        return {**thumb, "pack": f"1{self._day}/{name}", "offset": offset}

    def close(self) -> None:
        """Make the copies durable before any row points at them."""
        for fd in self._fds.values():
            os.fsync(fd)
            os.close(fd)
        self._fds.clear()


def _day(name: str) -> datetime | None:
    if len(name) != 8 or not name.isdigit():
        return None
    try:
        return datetime.strptime(name, "%Y%m%d").replace(tzinfo=UTC)
    except ValueError:
        return None


class Scheduler:
    """Runs maintenance tasks on one thread, each every ``interval`` seconds.

    A failing task is logged and tried again at its next turn; it never stops the others.

    Args:
        tasks: ``(name, interval_s, first_delay_s, task)`` per task.
    """

    def __init__(
        self,
        tasks: Sequence[tuple[str, float, float, Callable[[], object]]],
        stop: threading.Event | None = None,
    ) -> None:
        self._tasks = list(tasks)
        self._stop = stop or threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread; each task first runs after its ``first_delay_s``."""
        self._thread = threading.Thread(target=self._run, name="maintenance", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to finish and wait for it (tasks stop after the chunk or day in
        hand), so that storage is never closed under a running task."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        started = time.monotonic()
        due = [started + t[2] for t in self._tasks]
        while not self._stop.is_set():
            now = time.monotonic()
            for i, (name, interval, _, task) in enumerate(self._tasks):
                if now >= due[i] and not self._stop.is_set():
                    try:
                        task()
                    except (duckdb.Error, OSError, RuntimeError, VartaError) as err:
                        log.error("maintenance task %s failed: %s", name, err)
                    due[i] = time.monotonic() + interval
            self._stop.wait(max(0.05, min(due) - time.monotonic()))


class LapsingCandidates(Protocol):
    """Face candidates that nobody decided in time are rejected (``FaceCandidates``)."""

    def lapse(self, days: float, actor: str = SYSTEM_ACTOR) -> int:
        """Reject the candidates undecided for ``days``; how many."""


class ForwardedAlerts(Protocol):
    """A national hub's forwarded alerts (``NationalHub``)."""

    def purge(self, days: float) -> int:
        """Delete the alerts unchanged for ``days``; how many."""


def build_maintenance(
    config: CentralConfig,
    db: Database,
    thumbs_root: Path,
    audit: AuditSink,
    protected: ProtectedSightings,
    face_candidates: LapsingCandidates | None = None,
    archive: ArchiveExporter | None = None,
    stop: threading.Event | None = None,
    national: ForwardedAlerts | None = None,
) -> Scheduler:
    """The plate indexer, the archive export and (when enabled) the retention purge on one
    scheduler thread (with a national hub's purge of forwarded alerts).

    The first purge runs ``min(interval_s, 600)`` seconds after start, so a restart loop
    cannot skip it forever and a short-lived process (a test) does not purge at once. The
    archive's own purge runs with the database's; with retention off, after each export.
    ``stop`` (shared with ``archive``) ends the tasks at shutdown.
    """
    stop = stop or threading.Event()
    indexer = PlateIndexer(
        db, lag_s=config.search.index_lag_s, stop=stop, max_rows=config.search.index_max_rows
    )
    tasks: list[tuple[str, float, float, Callable[[], object]]] = [
        ("plate-index", config.search.index_interval_s, 0.0, indexer.compact)
    ]
    cfg = config.retention
    if archive is not None:
        interval = config.archive.interval_s
        run = archive.export if cfg.enabled else functools.partial(_export_and_purge, archive)
        tasks.append(("archive-export", interval, min(interval, 300.0), run))
    if cfg.enabled:
        policy = RetentionPolicy(
            cfg.non_hit_days, cfg.chunk_rows, cfg.health_history_days, archive is not None
        )
        retention = Retention(db, thumbs_root, protected, audit, policy, stop=stop, archive=archive)
        tasks.append(("retention", cfg.interval_s, min(cfg.interval_s, 600.0), retention.run))
        if face_candidates is not None:
            days = cfg.face_pending_days
            lapse = functools.partial(face_candidates.lapse, days)
            tasks.append(("face-lapse", cfg.interval_s, min(cfg.interval_s, 600.0), lapse))
        if national is not None:
            purge = functools.partial(national.purge, config.national.alert_retention_days)
            tasks.append(("national-purge", cfg.interval_s, min(cfg.interval_s, 600.0), purge))
    return Scheduler(tasks, stop)


def _export_and_purge(archive: ArchiveExporter) -> None:
    archive.export()
    archive.purge()
