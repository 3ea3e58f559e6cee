"""DuckDB storage of alerts, their trails and history, the change feed and webhook queue.

The tables come from migration 3 in ``central/store/db.py``. Writes run as jobs on the
database writer (``AlertEngine``); readers pass their own cursors. Times are UNIX seconds
(DOUBLE). Alerts carry no primary key constraint: ids come from the single writer, and
DuckDB indexes make repeated updates of one row within a transaction costly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import duckdb
import msgspec

from central.alerts.model import Alert, Change, HistoryItem, TrailItem

_ENC: Final = msgspec.json.Encoder()
_ALERT: Final = msgspec.json.Decoder(Alert)
_TRAIL: Final = msgspec.json.Decoder(TrailItem)
_CHANGE: Final = msgspec.json.Decoder(Change)


class Delivery(msgspec.Struct, frozen=True):
    """One queued webhook delivery."""

    delivery_id: int
    endpoint: str
    seq: int
    body: bytes
    attempts: int


class AlertRepository:
    """SQL for alerts; every method takes the connection (writer or a reader cursor)."""

    def heads(self, con: duckdb.DuckDBPyConnection) -> tuple[int, int, int]:
        """Highest change seq, alert id and delivery id stored (0 when none)."""
        row = con.execute(
            "SELECT (SELECT coalesce(max(seq), 0) FROM alert_changes), "
            "(SELECT coalesce(max(alert_id), 0) FROM alerts), "
            "(SELECT coalesce(max(delivery_id), 0) FROM webhook_queue)"
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2])

    def open_alerts(self, con: duckdb.DuckDBPyConnection) -> list[Alert]:
        """Every alert not yet resolved or rejected."""
        rows = con.execute("SELECT body FROM alerts WHERE open ORDER BY alert_id").fetchall()
        return [_ALERT.decode(r[0]) for r in rows]

    def get(self, con: duckdb.DuckDBPyConnection, alert_id: int) -> Alert | None:
        """One alert or None."""
        row = con.execute("SELECT body FROM alerts WHERE alert_id = ?", [alert_id]).fetchone()
        return _ALERT.decode(row[0]) if row else None

    def save(self, con: duckdb.DuckDBPyConnection, alert: Alert, created: bool) -> None:
        """Insert a new alert or replace the stored row of an existing one."""
        values = [alert.kind, alert.state, alert.open, alert.dedup_key, alert.seq]
        body = _ENC.encode(alert).decode()
        if created:
            con.execute(
                "INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [alert.alert_id, *values, alert.updated_at, body],
            )
        else:
            con.execute(
                "UPDATE alerts SET kind = ?, state = ?, open = ?, dedup_key = ?, seq = ?, "
                "updated_at = ?, body = ? WHERE alert_id = ?",
                [*values, alert.updated_at, body, alert.alert_id],
            )

    def add_trail(self, con: duckdb.DuckDBPyConnection, alert_id: int, item: TrailItem) -> None:
        """Append a sighting to an alert's trail."""
        con.execute(
            "INSERT INTO alert_trail VALUES (?, ?, ?, ?)",
            [alert_id, item.event_id, item.captured_at, _ENC.encode(item).decode()],
        )

    def add_trails(
        self, con: duckdb.DuckDBPyConnection, alert_id: int, items: Sequence[TrailItem]
    ) -> None:
        """Append sightings to an alert's trail in one statement."""
        con.execute(
            "INSERT INTO alert_trail SELECT ?, unnest(?::VARCHAR[]), unnest(?::DOUBLE[]), "
            "unnest(?::VARCHAR[])",
            [
                alert_id,
                [i.event_id for i in items],
                [i.captured_at for i in items],
                [_ENC.encode(i).decode() for i in items],
            ],
        )

    def add_history(self, con: duckdb.DuckDBPyConnection, alert_id: int, item: HistoryItem) -> None:
        """Record who changed an alert, when and why."""
        con.execute(
            "INSERT INTO alert_history VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                alert_id,
                item.at,
                item.actor,
                item.action,
                item.from_state,
                item.to_state,
                item.reason,
            ],
        )

    def add_change(self, con: duckdb.DuckDBPyConnection, change: Change) -> bytes:
        """Append a change to the feed; returns its JSON (what webhooks receive)."""
        body = _ENC.encode(change)
        con.execute(
            "INSERT INTO alert_changes VALUES (?, ?, ?, ?, ?)",
            [change.seq, change.alert.alert_id, change.change, change.at, body.decode()],
        )
        return body

    def changes(self, con: duckdb.DuckDBPyConnection, after: int, limit: int) -> list[Change]:
        """Changes with seq greater than ``after``, in order."""
        rows = con.execute(
            "SELECT body FROM alert_changes WHERE seq > ? ORDER BY seq LIMIT ?", [after, limit]
        ).fetchall()
        return [_CHANGE.decode(r[0]) for r in rows]

    def alerted(self, con: duckdb.DuckDBPyConnection, event_ids: list[str]) -> set[tuple[str, str]]:
        """``(event_id, dedup_key)`` for each alert whose trail holds one of the sightings."""
        if not event_ids:
            return set()
        rows = con.execute(
            "SELECT t.event_id, a.dedup_key FROM alert_trail t JOIN alerts a USING (alert_id) "
            "WHERE t.event_id IN (SELECT unnest(?::VARCHAR[]))",
            [event_ids],
        ).fetchall()
        return {(str(r[0]), str(r[1])) for r in rows}

    def protected(
        self,
        con: duckdb.DuckDBPyConnection,
        older_than: float,
        now: float,
        retention_days: dict[str, int],
    ) -> list[str]:
        """Sightings captured before ``older_than`` that alerts still need as evidence.

        A sighting on an alert's trail is kept while the alert is open and, once it closed
        (resolved or rejected), for its list's ``retention_days`` counted from the close.
        A trail whose alert, list or close time cannot be found is kept (the safe side).
        """
        names, days = list(retention_days), list(retention_days.values())
        rows = con.execute(
            """
            WITH lists AS (
                SELECT unnest(?::VARCHAR[]) AS name, unnest(?::INTEGER[]) AS days
            ), closed AS (
                SELECT alert_id, max(changed_at) AS closed_at FROM alert_history
                WHERE to_state IN ('resolved', 'rejected') GROUP BY alert_id
            )
            SELECT DISTINCT t.event_id FROM alert_trail t
            LEFT JOIN alerts a ON a.alert_id = t.alert_id
            LEFT JOIN closed c ON c.alert_id = t.alert_id
            LEFT JOIN lists l ON l.name = json_extract_string(a.body, '$.details.list_name')
            WHERE t.captured_at < ?
              AND (a.alert_id IS NULL OR a.open OR l.days IS NULL OR c.closed_at IS NULL
                   OR c.closed_at + l.days * 86400.0 > ?)
            """,
            [names, days, older_than, now],
        ).fetchall()
        return [str(r[0]) for r in rows]

    def on_trail(self, con: duckdb.DuckDBPyConnection, event_id: str) -> bool:
        """Whether a sighting is evidence of any alert."""
        row = con.execute(
            "SELECT 1 FROM alert_trail WHERE event_id = ? LIMIT 1", [event_id]
        ).fetchone()
        return row is not None

    def trail(self, con: duckdb.DuckDBPyConnection, alert_id: int) -> list[TrailItem]:
        """An alert's sightings, oldest first."""
        rows = con.execute(
            "SELECT body FROM alert_trail WHERE alert_id = ? ORDER BY captured_at, event_id",
            [alert_id],
        ).fetchall()
        return [_TRAIL.decode(r[0]) for r in rows]

    def history(self, con: duckdb.DuckDBPyConnection, alert_id: int) -> list[HistoryItem]:
        """An alert's recorded steps, oldest first."""
        rows = con.execute(
            "SELECT changed_at, actor, action, from_state, to_state, reason FROM alert_history "
            "WHERE alert_id = ? ORDER BY changed_at, rowid",
            [alert_id],
        ).fetchall()
        return [
            HistoryItem(
                at=r[0], actor=r[1], action=r[2], from_state=r[3], to_state=r[4], reason=r[5]
            )
            for r in rows
        ]

    def enqueue(
        self, con: duckdb.DuckDBPyConnection, rows: list[tuple[int, str, int, bytes]]
    ) -> None:
        """Queue webhook deliveries ``(delivery_id, endpoint, seq, body)``."""
        if rows:
            con.executemany(
                "INSERT INTO webhook_queue (delivery_id, endpoint, seq, body) VALUES (?, ?, ?, ?)",
                [[d, e, s, b.decode()] for d, e, s, b in rows],
            )

    def pending(self, con: duckdb.DuckDBPyConnection, endpoint: str, limit: int) -> list[Delivery]:
        """The oldest undelivered deliveries of one endpoint, in order."""
        rows = con.execute(
            "SELECT delivery_id, endpoint, seq, body, attempts FROM webhook_queue "
            "WHERE endpoint = ? AND delivered_at IS NULL ORDER BY delivery_id LIMIT ?",
            [endpoint, limit],
        ).fetchall()
        return [Delivery(r[0], r[1], r[2], r[3].encode(), r[4]) for r in rows]

    def delivered(
        self, con: duckdb.DuckDBPyConnection, delivery_ids: Sequence[int], at: float
    ) -> None:
        """Mark deliveries done."""
        con.execute(
            "UPDATE webhook_queue SET delivered_at = ?, attempts = attempts + 1 "
            "WHERE delivery_id IN (SELECT unnest(?::BIGINT[]))",
            [at, list(delivery_ids)],
        )

    def failed(
        self, con: duckdb.DuckDBPyConnection, delivery_ids: Sequence[int], error: str
    ) -> None:
        """Count a failed attempt of deliveries sent together."""
        con.execute(
            "UPDATE webhook_queue SET attempts = attempts + 1, last_error = ? "
            "WHERE delivery_id IN (SELECT unnest(?::BIGINT[]))",
            [error[:500], list(delivery_ids)],
        )

    def queue_depth(self, con: duckdb.DuckDBPyConnection) -> dict[str, int]:
        """Undelivered deliveries per endpoint."""
        rows = con.execute(
            "SELECT endpoint, count(*) FROM webhook_queue WHERE delivered_at IS NULL "
            "GROUP BY endpoint"
        ).fetchall()
        return {r[0]: int(r[1]) for r in rows}
