"""Plain service classes the HTTP layer calls (no Litestar imports here)."""

from __future__ import annotations

import time
from collections.abc import Callable
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


class StatusService:
    """Ingest counters for operations."""

    def __init__(self, stats: IngestStats) -> None:
        self._stats = stats

    def ingest(self) -> dict[str, Any]:
        """Counters since start."""
        return self._stats.as_dict()
