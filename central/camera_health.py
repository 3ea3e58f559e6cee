"""The health page's service: agents and cameras now, and each camera's last hours.

Reads only (read-only cursors): the registry kept by heartbeats (``central/store/agents.py``)
and the per-minute history (``central/store/camera_history.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from central.store.agents import AgentRepository
from central.store.camera_history import CameraHistory, CameraSeries, minute_of
from central.store.db import Database

HOUR = 3600


@dataclass(frozen=True)
class History:
    """Every camera's minutes over ``[start, end)``."""

    start: int
    end: int
    cameras: list[CameraSeries]


class CameraHealthService:
    """Agents, cameras and their recent history for the console.

    Args:
        db: The central database.
        offline_after: Seconds of silence after which an agent or camera is offline.
        hours: How far back the history reaches.
        clock: UNIX time source (tests inject one).
    """

    def __init__(
        self,
        db: Database,
        offline_after: float,
        hours: int = 24,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._agents = AgentRepository()
        self._history = CameraHistory()
        self._offline_after = offline_after
        self.hours = hours
        self._clock = clock

    def agents(self) -> list[dict[str, Any]]:
        """Every agent with its cameras, online state, counters and models."""
        with self._db.reader() as con:
            return self._agents.list(con, self._clock(), self._offline_after)

    def history(self, agent_id: str) -> History:
        """The fps and sightings per minute of each camera of ``agent_id`` over the last
        ``hours`` (one agent at a time: a city's 200 cameras would make one page of
        megabytes)."""
        end = minute_of(self._clock()) + 60
        start = end - self.hours * HOUR
        with self._db.reader() as con:
            cameras = self._history.series(con, agent_id, start, end)
        return History(start, end, cameras)
