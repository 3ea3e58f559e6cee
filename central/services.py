"""Plain service classes the HTTP layer calls (no Litestar imports here)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from central.audit.sink import AuditSink
from central.ingest import IngestStats
from central.search.query import require_reason
from central.store.agents import AgentRepository
from central.store.db import Database
from central.store.sightings import SightingRepository
from central.store.thumbs import ThumbStore
from shared.errors import InvalidRequest, NotFound


class AgentService:
    """Agents and cameras with health."""

    def __init__(
        self, db: Database, offline_after: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = db
        self._repo = AgentRepository()
        self._offline_after = offline_after
        self._clock = clock

    def list(self) -> list[dict[str, Any]]:
        """Every agent with cameras, last-seen and health."""
        with self._db.reader() as con:
            return self._repo.list(con, self._clock(), self._offline_after)


class SightingService:
    """Recent sightings and their thumbnails.

    Browsing is for the live picture: without a reason, only sightings captured within the
    last ``live_window_s`` are listed. Older ones are history, and reading history is an
    investigation: it needs a reason and is audited like a search.

    Args:
        db: The central database.
        thumbs: The thumbnail packs.
        audit: Where listings with a reason are recorded.
        live_window_s: How far back a listing without a reason reaches.
        clock: UNIX time source (tests inject one).
    """

    def __init__(
        self,
        db: Database,
        thumbs: ThumbStore,
        audit: AuditSink,
        live_window_s: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._thumbs = thumbs
        self._audit = audit
        self._live = live_window_s
        self._clock = clock
        self._repo = SightingRepository()

    def recent(
        self,
        limit: int,
        camera_id: str | None,
        agent_id: str | None,
        before: float | None,
        actor: str = "",
        reason: str | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first: the live window, or with ``reason`` any age (audited).

        Raises:
            InvalidRequest: Bad limit; ``before`` reaches past the live window without a
                reason; a reason that is too short or too long.
        """
        if not 1 <= limit <= 1000:
            raise InvalidRequest(f"limit must be between 1 and 1000, got {limit}")
        since = None
        if reason is None:
            since = self._clock() - self._live
            if before is not None and before <= since:
                raise InvalidRequest(
                    f"before: sightings captured more than {self._live:g} s ago need a "
                    "reason (a case number or purpose; it is audited)"
                )
        why = require_reason(reason) if reason is not None else None
        with self._db.reader() as con:
            rows = self._repo.recent(con, limit, camera_id, agent_id, before, since)
        if why is not None:
            details = {"camera_id": camera_id, "agent_id": agent_id, "before": before}
            self._audit.record(
                actor, "sightings.list", "sightings", why, {**details, "results": len(rows)}
            )
        return rows

    def count(self) -> int:
        """How many sightings are stored."""
        with self._db.reader() as con:
            return self._repo.count(con)

    def thumbnail(self, event_id: str, index: int) -> bytes:
        """The JPEG bytes of one thumbnail."""
        with self._db.reader() as con:
            ref = self._repo.thumbnail(con, event_id, index)
        if ref is None:
            raise NotFound(f"sighting {event_id} has no thumbnail {index}")
        try:
            return self._thumbs.read(ref["pack"], ref["offset"], ref["length"])
        except FileNotFoundError as err:
            raise NotFound(str(err)) from err


class HealthService:
    """Liveness of central's threads, database writability and free disk.

    Args:
        checks: ``name -> () -> problem``: each returns an empty string when healthy.
    """

    def __init__(self, checks: dict[str, Callable[[], str]]) -> None:
        self._checks = checks

    def report(self) -> tuple[bool, dict[str, Any]]:
        """``(healthy, body)``: every check with ``ok`` or its problem."""
        results: dict[str, str] = {}
        for name, check in self._checks.items():
            try:
                results[name] = check() or "ok"
            except Exception as err:  # a failing check is itself the problem to report
                results[name] = f"check failed: {err}"
        healthy = all(v == "ok" for v in results.values())
        return healthy, {"status": "ok" if healthy else "failing", "checks": results}


def free_disk_problem(path: Path, min_free_bytes: int) -> str:
    """Empty when ``path``'s file system has at least ``min_free_bytes`` free."""
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    if free < min_free_bytes:
        return f"{free >> 20} MiB free in {path}, at least {min_free_bytes >> 20} MiB needed"
    return ""


class StatusService:
    """Ingest counters for operations."""

    def __init__(self, stats: IngestStats) -> None:
        self._stats = stats

    def ingest(self) -> dict[str, Any]:
        """Counters since start."""
        return self._stats.as_dict()
