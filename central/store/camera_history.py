"""Per-minute history of each camera's health and sightings (the console's health plots).

One row per ``(agent_id, camera_id, minute)`` in ``camera_minutes`` (migration 7):

- every heartbeat adds one *beat* to its minute: the fps in and out are summed (the plot
  shows ``sum / beats``, the minute's mean), ``online_beats`` counts beats that reported the
  camera online and ``frames_dropped`` keeps the largest cumulative counter of the minute;
- every stored sighting adds one to ``sightings`` of its camera and *capture* minute (a
  spool replayed late lands in the minute it was seen, not the minute it arrived).

Writes run inside the caller's writer job (ingest's); reads take a read-only cursor. The
table is bounded by :meth:`CameraHistory.purge`, which the retention job calls with
``retention.health_history_days``.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import duckdb

from shared import wire

MINUTE: Final = 60

# Each upsert is one statement over list parameters, whatever the number of rows: DuckDB
# runs ``executemany`` as one statement per row (milliseconds each), and a city's 10,000
# cameras in heartbeats of 250 kept the writer busy for seconds per turn.
_UPSERT_BEATS: Final = """
    INSERT INTO camera_minutes (agent_id, camera_id, minute, beats, online_beats, fps_in_sum,
                                fps_out_sum, frames_dropped, sightings)
    SELECT ?, camera_id, to_timestamp(?), 1, online, fps_in, fps_out, dropped, 0
    FROM (SELECT unnest(?::VARCHAR[]) AS camera_id, unnest(?::INTEGER[]) AS online,
                 unnest(?::DOUBLE[]) AS fps_in, unnest(?::DOUBLE[]) AS fps_out,
                 unnest(?::BIGINT[]) AS dropped)
    ON CONFLICT (agent_id, camera_id, minute) DO UPDATE SET
        beats = camera_minutes.beats + 1,
        online_beats = camera_minutes.online_beats + excluded.online_beats,
        fps_in_sum = camera_minutes.fps_in_sum + excluded.fps_in_sum,
        fps_out_sum = camera_minutes.fps_out_sum + excluded.fps_out_sum,
        frames_dropped = greatest(camera_minutes.frames_dropped, excluded.frames_dropped)
"""

_UPSERT_SIGHTINGS: Final = """
    INSERT INTO camera_minutes (agent_id, camera_id, minute, beats, online_beats, fps_in_sum,
                                fps_out_sum, frames_dropped, sightings)
    SELECT agent_id, camera_id, to_timestamp(minute), 0, 0, 0, 0, 0, n
    FROM (SELECT unnest(?::VARCHAR[]) AS agent_id, unnest(?::VARCHAR[]) AS camera_id,
                 unnest(?::DOUBLE[]) AS minute, unnest(?::BIGINT[]) AS n)
    ON CONFLICT (agent_id, camera_id, minute) DO UPDATE SET
        sightings = camera_minutes.sightings + excluded.sightings
"""


def minute_of(seconds: float) -> int:
    """The UNIX time of the start of the minute holding ``seconds``."""
    return int(seconds // MINUTE) * MINUTE


@dataclass
class CameraSeries:
    """One camera's minutes, oldest first (only minutes with data).

    Attributes:
        agent_id: The agent.
        camera_id: The camera.
        minutes: UNIX time of each minute's start.
        fps_in: Mean fps in of each minute (``None``: no heartbeat that minute).
        fps_out: Mean fps out of each minute (``None``: no heartbeat that minute).
        sightings: Sightings captured in each minute.
    """

    agent_id: str
    camera_id: str
    minutes: list[int] = field(default_factory=list)
    fps_in: list[float | None] = field(default_factory=list)
    fps_out: list[float | None] = field(default_factory=list)
    sightings: list[int] = field(default_factory=list)


class SightingMinutes:
    """Sightings counted per camera and capture minute, waiting to be written (ingest
    writes them with heartbeats or every few seconds, never an upsert per turn)."""

    def __init__(self) -> None:
        self._counts: collections.Counter[tuple[str, str, int]] = collections.Counter()

    def add(self, agent_id: str, sightings: Iterable[wire.Sighting]) -> None:
        """Count ``sightings`` of ``agent_id``."""
        for s in sightings:
            self._counts[(agent_id, s.camera_id, minute_of(s.captured_at))] += 1

    def take(self) -> dict[tuple[str, str, int], int]:
        """The counts so far; the counter starts again from zero."""
        out = dict(self._counts)
        self._counts.clear()
        return out

    def __bool__(self) -> bool:
        return bool(self._counts)


class CameraHistory:
    """Writes, reads and purges ``camera_minutes``."""

    def beat(self, con: duckdb.DuckDBPyConnection, msg: wire.Heartbeat, now: float) -> None:
        """Add heartbeat ``msg`` (received at ``now``) to its cameras' minute."""
        cams = list({c.camera_id: c for c in msg.cameras}.values())  # a key once a statement
        if cams:
            con.execute(
                _UPSERT_BEATS,
                [
                    msg.agent_id,
                    minute_of(now),
                    [c.camera_id for c in cams],
                    [int(c.online) for c in cams],
                    [c.fps_in for c in cams],
                    [c.fps_out for c in cams],
                    [c.frames_dropped for c in cams],
                ],
            )

    def add_sightings(
        self, con: duckdb.DuckDBPyConnection, counts: dict[tuple[str, str, int], int]
    ) -> None:
        """Add sighting ``counts`` keyed by ``(agent_id, camera_id, minute)``."""
        rows = [(a, c, m, n) for (a, c, m), n in counts.items() if n > 0]
        if rows:
            agents, cameras, minutes, ns = zip(*rows, strict=True)
            con.execute(_UPSERT_SIGHTINGS, [list(agents), list(cameras), list(minutes), list(ns)])

    def purge(self, con: duckdb.DuckDBPyConnection, before: datetime) -> int:
        """Delete the minutes older than ``before``; how many rows went."""
        row = con.execute("DELETE FROM camera_minutes WHERE minute < ?", [before]).fetchone()
        return int(row[0]) if row else 0

    def series(
        self, con: duckdb.DuckDBPyConnection, agent_id: str, since: float, until: float
    ) -> list[CameraSeries]:
        """The minutes in ``[since, until)`` of each camera of ``agent_id``, by camera id."""
        rows = con.execute(
            """
            SELECT agent_id, camera_id, epoch(minute)::BIGINT, beats,
                   fps_in_sum / nullif(beats, 0), fps_out_sum / nullif(beats, 0), sightings
            FROM camera_minutes
            WHERE agent_id = ? AND minute >= to_timestamp(?) AND minute < to_timestamp(?)
            ORDER BY camera_id, minute
            """,
            [agent_id, since, until],
        ).fetchall()
        out: dict[str, CameraSeries] = {}
        for _agent, camera_id, minute, _beats, fps_in, fps_out, sightings in rows:
            s = out.setdefault(camera_id, CameraSeries(agent_id, camera_id))
            s.minutes.append(int(minute))
            s.fps_in.append(None if fps_in is None else float(fps_in))
            s.fps_out.append(None if fps_out is None else float(fps_out))
            s.sightings.append(int(sightings))
        return list(out.values())
