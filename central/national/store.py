"""A national hub's copy of the alerts regions forward, and what it knows of each region.

Regions deliver at least once (``central/national/forward.py``): a request the hub stored
may be sent again when its answer was lost. So a forwarded change is keyed by (region,
alert id) and kept only when its ``seq`` is newer than the stored one: a repeat is counted
as a duplicate and changes nothing, a later change of the same alert (more sightings, a
new state) replaces the row. ``hub_seq`` grows with every stored row, so police clients
page through new and changed alerts with ``after``. Each request is one job on the
database writer, the answer is sent after its commit. Tables: migration 9.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import duckdb
import msgspec

from central.alerts.model import Alert, Change
from central.store.db import Database

_ENC: Final = msgspec.json.Encoder()
_CHANGE: Final = msgspec.json.Decoder(Change)


class NationalAlert(msgspec.Struct, frozen=True, kw_only=True):
    """An alert as a region last forwarded it.

    Attributes:
        region: The region that raised it.
        hub_seq: The hub's order of stored changes (page with ``after``).
        received_at: When the hub stored this version (UNIX seconds).
        change: The region's change: kind of change, its seq and the alert.
    """

    region: str
    hub_seq: int
    received_at: float
    change: Change


class AlertPage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of forwarded alerts; pass ``next`` as ``after`` to continue."""

    items: list[NationalAlert]
    next: int


class RegionStatus(msgspec.Struct, frozen=True, kw_only=True):
    """What the hub knows of one region.

    Attributes:
        region: Its name (the hub user its token belongs to).
        first_seen: First request (UNIX seconds).
        last_seen: Latest request.
        requests: Forwarding requests received.
        changes: Alert changes received, repeats included.
        duplicates: Changes received again or out of date (stored nothing).
        alerts: Alerts stored.
        open_alerts: Of those, not yet resolved or rejected in the region.
    """

    region: str
    first_seen: float
    last_seen: float
    requests: int
    changes: int
    duplicates: int
    alerts: int
    open_alerts: int


@dataclass(frozen=True)
class Receipt:
    """What one forwarding request did: changes stored and repeats ignored."""

    stored: int
    duplicates: int


_OPEN_STATES: Final = ["new", "acknowledged", "dispatched"]


class NationalAlertStore:
    """Forwarded alerts in DuckDB, written through the database's writer.

    Args:
        db: The hub's database.
        clock: UNIX time source.
    """

    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock

    def receive(self, region: str, changes: Sequence[Change]) -> Receipt:
        """Store the changes newer than what is stored for their alerts, in one commit."""
        return self._db.writer.call(lambda con: self._receive(con, region, changes))

    def _receive(
        self, con: duckdb.DuckDBPyConnection, region: str, changes: Sequence[Change]
    ) -> Receipt:
        now = self._clock()
        newest: dict[int, Change] = {}
        for change in changes:
            held = newest.get(change.alert.alert_id)
            if held is None or change.seq > held.seq:
                newest[change.alert.alert_id] = change
        ids = list(newest)
        stored = dict(
            con.execute(
                "SELECT alert_id, seq FROM national_alerts WHERE region = ? "
                "AND alert_id IN (SELECT unnest(?::BIGINT[]))",
                [region, ids],
            ).fetchall()
        )
        fresh = sorted(
            (c for i, c in newest.items() if c.seq > stored.get(i, -1)), key=lambda c: c.seq
        )
        if fresh:
            self._upsert(con, region, fresh, now)
        duplicates = len(changes) - len(fresh)
        con.execute(
            "INSERT INTO national_regions VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT (region) DO "
            "UPDATE SET last_seen = excluded.last_seen, "
            "requests = national_regions.requests + 1, "
            "changes = national_regions.changes + excluded.changes, "
            "duplicates = national_regions.duplicates + excluded.duplicates",
            [region, now, now, len(changes), duplicates],
        )
        return Receipt(stored=len(fresh), duplicates=duplicates)

    def _upsert(
        self, con: duckdb.DuckDBPyConnection, region: str, fresh: list[Change], now: float
    ) -> None:
        row = con.execute("SELECT coalesce(max(hub_seq), 0) FROM national_alerts").fetchone()
        first = int(row[0]) + 1 if row else 1
        alerts = [c.alert for c in fresh]
        con.execute(
            "INSERT INTO national_alerts SELECT ?, unnest(?::BIGINT[]), unnest(?::BIGINT[]), "
            "unnest(?::BIGINT[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
            "unnest(?::SMALLINT[]), unnest(?::VARCHAR[]), unnest(?::DOUBLE[]), ?, "
            "unnest(?::VARCHAR[]) "
            "ON CONFLICT (region, alert_id) DO UPDATE SET seq = excluded.seq, "
            "hub_seq = excluded.hub_seq, list_name = excluded.list_name, "
            "state = excluded.state, priority = excluded.priority, plate = excluded.plate, "
            "received_at = excluded.received_at, body = excluded.body",
            [
                region,
                [a.alert_id for a in alerts],
                [c.seq for c in fresh],
                list(range(first, first + len(fresh))),
                [str(a.details.get("list_name", "")) for a in alerts],
                [a.state for a in alerts],
                [a.priority for a in alerts],
                [a.subject for a in alerts],
                [a.created_at for a in alerts],
                now,
                [_ENC.encode(c).decode() for c in fresh],
            ],
        )

    def page(
        self,
        after: int = 0,
        limit: int = 100,
        region: str | None = None,
        state: str | None = None,
    ) -> AlertPage:
        """Alerts stored or changed after ``after`` (a ``hub_seq``), oldest change first."""
        with self._db.reader() as con:
            rows = con.execute(
                "SELECT region, hub_seq, received_at, body FROM national_alerts "
                "WHERE hub_seq > ? AND (?::VARCHAR IS NULL OR region = ?) "
                "AND (?::VARCHAR IS NULL OR state = ?) ORDER BY hub_seq LIMIT ?",
                [after, region, region, state, state, limit],
            ).fetchall()
        items = [
            NationalAlert(region=r[0], hub_seq=r[1], received_at=r[2], change=_CHANGE.decode(r[3]))
            for r in rows
        ]
        return AlertPage(items=items, next=items[-1].hub_seq if items else after)

    def get(self, region: str, alert_id: int) -> Alert | None:
        """One region's alert as last forwarded, or None."""
        with self._db.reader() as con:
            row = con.execute(
                "SELECT body FROM national_alerts WHERE region = ? AND alert_id = ?",
                [region, alert_id],
            ).fetchone()
        return _CHANGE.decode(row[0]).alert if row else None

    def purge(self, older_than: float) -> int:
        """Delete alerts last received before ``older_than`` (UNIX seconds); how many."""

        def job(con: duckdb.DuckDBPyConnection) -> int:
            row = con.execute(
                "SELECT count(*) FROM national_alerts WHERE received_at < ?", [older_than]
            ).fetchone()
            con.execute("DELETE FROM national_alerts WHERE received_at < ?", [older_than])
            return int(row[0]) if row else 0

        return self._db.writer.call(job)

    def regions(self) -> list[RegionStatus]:
        """Every region that forwarded anything, by name."""
        with self._db.reader() as con:
            rows = con.execute(
                "SELECT r.region, r.first_seen, r.last_seen, r.requests, r.changes, "
                "r.duplicates, count(a.alert_id), count(a.alert_id) FILTER "
                "(WHERE a.state IN (SELECT unnest(?::VARCHAR[]))) FROM national_regions r "
                "LEFT JOIN national_alerts a USING (region) GROUP BY ALL ORDER BY r.region",
                [_OPEN_STATES],
            ).fetchall()
        return [_region(r) for r in rows]


def _region(row: tuple[Any, ...]) -> RegionStatus:
    return RegionStatus(
        region=row[0],
        first_seen=row[1],
        last_seen=row[2],
        requests=int(row[3]),
        changes=int(row[4]),
        duplicates=int(row[5]),
        alerts=int(row[6]),
        open_alerts=int(row[7]),
    )
