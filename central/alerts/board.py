"""The operator's alert board: alerts newest first with filters, counts per state, and the
facts an alert's detail page adds (the latest sighting's plate candidates).

Reads only (reader cursors); every change still goes through ``AlertService``. The board is
redrawn when the alert change feed moves (``AlertService.wait_for_change``), never on a
timer, so an idle board costs no query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import duckdb
import msgspec

from central.alerts.model import STATES, Alert
from central.store.db import Database
from central.store.sightings import SIGHTING_COLUMNS
from shared.errors import InvalidRequest

MAX_ROWS: Final = 200
_ALERT: Final = msgspec.json.Decoder(Alert)
_LIST: Final = "json_extract_string(body, '$.details.list_name')"
_CAMERA: Final = "json_extract_string(body, '$.latest.camera_id')"


@dataclass(frozen=True)
class BoardFilter:
    """What the operator narrowed the board to (empty: everything).

    Attributes:
        list_name: Alerts of this wanted list only.
        camera_id: Alerts whose latest sighting is from this camera.
        state: Alerts in this state only.
        limit: Rows at most.
    """

    list_name: str = ""
    camera_id: str = ""
    state: str = ""
    limit: int = 100

    def __post_init__(self) -> None:
        if self.state and self.state not in STATES:
            raise InvalidRequest(f"expected a state in {list(STATES)}, got {self.state!r}")
        if not 1 <= self.limit <= MAX_ROWS:
            raise InvalidRequest(f"expected limit between 1 and {MAX_ROWS}, got {self.limit}")


@dataclass(frozen=True)
class Board:
    """One drawing of the board.

    Attributes:
        alerts: Matching alerts, newest first.
        counts: Alerts per state under the list and camera filters (every state present).
        head: The change feed's head this drawing reflects at least.
        max_id: The highest alert id on the board (the page cues when it grows).
        confidence: Plate read confidence of each alert's latest sighting, by alert id
            (absent when the sighting was purged or the alert has none).
    """

    alerts: list[Alert]
    counts: dict[str, int]
    head: int
    max_id: int = 0
    confidence: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class BoardOptions:
    """The choices of the board's filters."""

    lists: list[str] = field(default_factory=list)
    cameras: list[str] = field(default_factory=list)
    states: tuple[str, ...] = STATES


class BoardRepository:
    """SQL of the board; each method takes a reader cursor."""

    def alerts(self, con: duckdb.DuckDBPyConnection, f: BoardFilter) -> list[Alert]:
        """Alerts matching ``f``, newest first."""
        where, args = self._where(f, with_state=True)
        rows = con.execute(
            f"SELECT body FROM alerts WHERE {where} ORDER BY alert_id DESC LIMIT ?",
            [*args, f.limit],
        ).fetchall()
        return [_ALERT.decode(r[0]) for r in rows]

    def confidences(self, con: duckdb.DuckDBPyConnection, alerts: list[Alert]) -> dict[int, float]:
        """The plate read confidence of each alert's latest sighting, by alert id.

        The capture-time range lets DuckDB skip the row groups of other times (sightings
        arrive roughly in capture order), so a board costs no scan of every sighting.
        """
        latest = {a.latest.event_id: a.alert_id for a in alerts if a.latest is not None}
        if not latest:
            return {}
        times = [a.latest.captured_at for a in alerts if a.latest is not None]
        rows = con.execute(
            "SELECT event_id::VARCHAR, plate_confidence FROM sightings "
            "WHERE captured_at BETWEEN to_timestamp(?) AND to_timestamp(?) "
            "AND event_id IN (SELECT TRY_CAST(unnest(?::VARCHAR[]) AS UUID))",
            [min(times) - 1, max(times) + 1, list(latest)],
        ).fetchall()
        return {latest[r[0]]: float(r[1]) for r in rows if r[1] is not None and r[0] in latest}

    def counts(self, con: duckdb.DuckDBPyConnection, f: BoardFilter) -> dict[str, int]:
        """Alerts per state under ``f``'s list and camera filters."""
        where, args = self._where(f, with_state=False)
        rows = con.execute(
            f"SELECT state, count(*) FROM alerts WHERE {where} GROUP BY state", args
        ).fetchall()
        found = {str(r[0]): int(r[1]) for r in rows}
        return {s: found.get(s, 0) for s in STATES}

    def options(self, con: duckdb.DuckDBPyConnection) -> BoardOptions:
        """Wanted lists and cameras known to central."""
        lists = con.execute("SELECT name FROM watchlist_lists ORDER BY name").fetchall()
        cameras = con.execute(
            "SELECT DISTINCT camera_id FROM cameras ORDER BY camera_id"
        ).fetchall()
        return BoardOptions(lists=[r[0] for r in lists], cameras=[r[0] for r in cameras])

    def sighting(self, con: duckdb.DuckDBPyConnection, event_id: str) -> dict[str, Any] | None:
        """One stored sighting (plate read, candidates, vehicle), or None when purged."""
        try:
            cur = con.execute(
                f"SELECT {SIGHTING_COLUMNS} FROM sightings WHERE event_id = ?::UUID", [event_id]
            )
        except duckdb.ConversionException:
            return None
        row = cur.fetchone()
        if row is None:
            return None
        names = [d[0] for d in cur.description]
        return dict(zip(names, row, strict=True))

    @staticmethod
    def _where(f: BoardFilter, with_state: bool) -> tuple[str, list[object]]:
        where: list[str] = ["TRUE"]
        args: list[object] = []
        if f.list_name:
            where.append(f"{_LIST} = ?")
            args.append(f.list_name)
        if f.camera_id:
            where.append(f"{_CAMERA} = ?")
            args.append(f.camera_id)
        if with_state and f.state:
            where.append("state = ?")
            args.append(f.state)
        return " AND ".join(where), args


class BoardService:
    """The board and the detail page's extra facts.

    Args:
        db: Central's database.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._repo = BoardRepository()

    def board(self, f: BoardFilter, head: int) -> Board:
        """The board under ``f``; ``head`` is the change feed's head read before this."""
        with self._db.reader() as con:
            alerts = self._repo.alerts(con, f)
            counts = self._repo.counts(con, f)
            confidence = self._repo.confidences(con, alerts)
        max_id = max((a.alert_id for a in alerts), default=0)
        return Board(alerts, counts, head, max_id, confidence)

    def options(self) -> BoardOptions:
        """The filters' choices."""
        with self._db.reader() as con:
            return self._repo.options(con)

    def sighting(self, event_id: str) -> dict[str, Any] | None:
        """A stored sighting by event id (None when unknown or purged)."""
        with self._db.reader() as con:
            return self._repo.sighting(con, event_id)
