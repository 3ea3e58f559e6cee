"""Search and journey use cases: validate, query, audit (no Litestar here)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from central.audit.sink import AuditSink
from central.search.query import Cursor, JourneyQuery, SearchQuery, require_reason
from central.search.repository import SearchRepository
from central.store.db import Database

log = logging.getLogger(__name__)


class ArchivedSightings(Protocol):
    """Sightings of archived days the database may no longer hold
    (``central.archive.search.ArchiveSearch``); rows carry ``archived: True``."""

    def search(self, query: SearchQuery) -> list[dict[str, Any]]:
        """At most ``query.limit`` archived rows matching ``query``, newest first."""

    def journey(self, query: JourneyQuery) -> list[dict[str, Any]]:
        """At most ``query.limit`` archived rows of the plate, oldest first."""


def merge_rows(
    stored: list[dict[str, Any]], archived: list[dict[str, Any]], limit: int, newest: bool
) -> list[dict[str, Any]]:
    """The first ``limit`` rows of both, in search order, each event once (the database's
    row wins: it has the thumbnails).

    Each list holds its own first ``limit`` rows, so the first ``limit`` of the union are
    among them: keyset pages stay exact across the two sources.
    """
    seen = {row["event_id"] for row in stored}
    rows = [{**row, "archived": False} for row in stored]
    rows += [row for row in archived if row["event_id"] not in seen]
    rows.sort(key=lambda r: (r["captured_us"], r["event_id"]), reverse=newest)
    return rows[:limit]


@dataclass(frozen=True)
class SearchPage:
    """One page of results; ``next`` continues after the last row (None at the end)."""

    items: list[dict[str, Any]]
    next: str | None


@dataclass(frozen=True)
class Stop:
    """One sighting on a journey, with the time since the previous one."""

    sighting: dict[str, Any]
    gap_s: float | None
    camera_changed: bool


@dataclass(frozen=True)
class Journey:
    """A vehicle's sightings in time order and the cameras it passed, in that order."""

    plate: str
    stops: list[Stop]
    cameras: list[str]
    truncated: bool


def journey_of(plate: str, rows: list[dict[str, Any]], limit: int) -> Journey:
    """A journey from sightings in time order: gaps, camera changes, the cameras passed.

    ``limit`` is the most rows the query could return: a full result may be cut short.
    """
    stops: list[Stop] = []
    cameras: list[str] = []
    for row in rows:
        prev = stops[-1].sighting if stops else None
        gap = None if prev is None else row["captured_at"] - prev["captured_at"]
        changed = prev is None or prev["camera_id"] != row["camera_id"]
        if changed:
            cameras.append(row["camera_id"])
        stops.append(Stop(row, gap, changed))
    return Journey(plate, stops, cameras, len(rows) == limit)


class SearchService:
    """Sighting search and vehicle journeys; every call is audited with its reason.

    Args:
        db: The central database (reads through its reader cursors).
        audit: Where searches are recorded.
        clock: UNIX time source (tests inject one).
        archive: Archived days, when the archive is enabled (None: the database only).
    """

    def __init__(
        self,
        db: Database,
        audit: AuditSink,
        clock: Callable[[], float] = time.time,
        archive: ArchivedSightings | None = None,
    ) -> None:
        self._db = db
        self._audit = audit
        self._repo = SearchRepository(clock)
        self._archive = archive

    def search(self, query: SearchQuery, actor: str, reason: str | None) -> SearchPage:
        """A page of sightings matching ``query``, newest first.

        Raises:
            InvalidRequest: No reason given (nothing is searched then).
            SourceUnavailable: The archive is enabled but does not answer.
        """
        why = require_reason(reason)
        with self._db.reader() as con:  # one snapshot: index and recent rows agree
            rows = self._repo.search(con, query)
        if self._archive is not None:
            rows = merge_rows(rows, self._archive.search(query), query.limit, newest=True)
        micros = [row.pop("captured_us") for row in rows]
        nxt = None
        if len(rows) == query.limit:
            nxt = Cursor.at_us(micros[-1], rows[-1]["event_id"]).encode()
        self._audit.record(
            actor,
            "search",
            target=f"plate:{query.plate.text}" if query.plate else "sightings",
            reason=why,
            details={
                **query.describe(),
                "results": len(rows),
                "archived": sum(1 for r in rows if r.get("archived")),
                "more": nxt is not None,
            },
        )
        return SearchPage(rows, nxt)

    def journey(self, query: JourneyQuery, actor: str, reason: str | None) -> Journey:
        """The sightings of one plate in time order, with gaps and camera changes.

        Raises:
            InvalidRequest: No reason given.
            SourceUnavailable: The archive is enabled but does not answer.
        """
        why = require_reason(reason)
        with self._db.reader() as con:  # one snapshot: index and recent rows agree
            rows = self._repo.journey(con, query)
        if self._archive is not None:
            rows = merge_rows(rows, self._archive.journey(query), query.limit, newest=False)
        for row in rows:
            row.pop("captured_us")
        trip = journey_of(query.plate.text, rows, query.limit)
        self._audit.record(
            actor,
            "search.journey",
            target=f"plate:{query.plate.text}",
            reason=why,
            details={**query.describe(), "results": len(rows)},
        )
        return trip
