"""The alert service the HTTP layer calls: the change feed, one alert, actions (audited)."""

from __future__ import annotations

import asyncio
from typing import Final

from central.alerts.engine import AlertEngine
from central.alerts.feed import decode_cursor, encode_cursor
from central.alerts.model import Alert, AlertDetail, ChangePage
from central.audit.sink import AuditSink
from central.store.db import Database
from shared.errors import InvalidRequest, NotFound

MAX_WAIT_S: Final = 30.0
MAX_LIMIT: Final = 1000


class AlertService:
    """Police and operator use of alerts.

    Args:
        engine: The alert engine (writer and change feed).
        db: Central's database (reads through cursors).
        audit: Where views and actions are recorded; None records nothing.
    """

    def __init__(self, engine: AlertEngine, db: Database, audit: AuditSink | None = None) -> None:
        self._engine = engine
        self._db = db
        self._audit = audit
        self._repo = engine.repository

    async def changes(self, after: str | None, limit: int, wait: float) -> ChangePage:
        """Changes after a cursor; with ``wait`` > 0, waits up to that long for one.

        Raises:
            InvalidRequest: Bad cursor, limit or wait.
        """
        seq = decode_cursor(after)
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidRequest(f"expected limit between 1 and {MAX_LIMIT}, got {limit}")
        if not 0 <= wait <= MAX_WAIT_S:
            raise InvalidRequest(f"expected wait between 0 and {MAX_WAIT_S:g} s, got {wait:g}")
        feed = self._engine.feed
        if wait > 0 and feed.head <= seq:
            await feed.wait_async(seq, wait)
        if feed.head <= seq:
            return ChangePage(items=[], next=encode_cursor(seq))
        return await asyncio.to_thread(self._page, seq, limit)

    @property
    def head(self) -> int:
        """The change feed's committed head (the seq of the latest change)."""
        return self._engine.feed.head

    async def wait_for_change(self, after: int, wait: float) -> int:
        """Await a change after seq ``after`` (at most ``wait`` s); return the head.

        The same wait as ``changes`` long-polls on: resolved by the writer after a commit,
        so a waiting console costs no query.
        """
        return await self._engine.feed.wait_async(after, wait)

    def _page(self, seq: int, limit: int) -> ChangePage:
        with self._db.reader() as con:
            items = self._repo.changes(con, seq, limit)
        return ChangePage(items=items, next=encode_cursor(items[-1].seq if items else seq))

    def get(self, alert_id: int, actor: str) -> AlertDetail:
        """One alert with its trail and history (the view is audited).

        Raises:
            NotFound: No such alert.
        """
        with self._db.reader() as con:
            alert = self._repo.get(con, alert_id) if 0 < alert_id < 2**63 else None
            if alert is None:
                raise NotFound(f"no alert with id {alert_id}")
            detail = AlertDetail(
                alert=alert,
                trail=self._repo.trail(con, alert_id),
                history=self._repo.history(con, alert_id),
            )
        self._record(actor, "alert.view", alert_id)
        return detail

    def is_evidence(self, event_id: str) -> bool:
        """Whether a sighting is on some alert's trail (police see only such evidence)."""
        with self._db.reader() as con:
            return self._repo.on_trail(con, event_id)

    def transition(self, alert_id: int, to: str, reason: str, actor: str) -> Alert:
        """Move an alert through its lifecycle (see ``model.check_transition``)."""
        alert = self._engine.transition(alert_id, to, reason, actor)
        self._record(actor, f"alert.{to}", alert_id, reason)
        return alert

    def police_ack(self, alert_id: int, actor: str) -> Alert:
        """Record that a police client received an alert."""
        alert = self._engine.police_ack(alert_id, actor)
        self._record(actor, "alert.police_ack", alert_id)
        return alert

    def _record(self, actor: str, action: str, alert_id: int, reason: str = "") -> None:
        if self._audit is not None:
            self._audit.record(actor, action, target=f"alert:{alert_id}", reason=reason)
