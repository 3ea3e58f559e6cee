"""Plain service classes the HTTP layer calls (no Litestar imports here)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from central.ingest import IngestStats
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
    """Recent sightings and their thumbnails."""

    def __init__(self, db: Database, thumbs: ThumbStore) -> None:
        self._db = db
        self._thumbs = thumbs
        self._repo = SightingRepository()

    def recent(
        self, limit: int, camera_id: str | None, agent_id: str | None, before: float | None
    ) -> list[dict[str, Any]]:
        """Newest first."""
        if not 1 <= limit <= 1000:
            raise InvalidRequest(f"limit must be between 1 and 1000, got {limit}")
        with self._db.reader() as con:
            return self._repo.recent(con, limit, camera_id, agent_id, before)

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
