"""The alert engine: turns matches and health problems into alerts, on one writer thread.

Ingest calls ``on_commit`` with the sightings it just stored; matching runs right there
(tens of microseconds per sighting), and only sightings that hit something are handed to
the writer thread through a queue, so ingest never waits for alert storage. The writer
drains its queue, applies every job in one DuckDB transaction (alerts, trail, history,
change feed, webhook queue), commits, then publishes the new feed head, which wakes
long-polling police clients and webhook senders.

Operator and police actions (transitions, acknowledgements) run as jobs on the same
thread, so there is one writer and one order of changes.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import duckdb
import msgspec

from central.alerts.builders import system_alert, trail_item, watchlist_alert, watchlist_key
from central.alerts.feed import ChangeFeed
from central.alerts.model import (
    SYSTEM_ACTOR,
    Alert,
    Change,
    HistoryItem,
    WebhookFilter,
    check_transition,
)
from central.alerts.repository import AlertRepository
from central.store.db import Database
from central.store.sightings import IncomingSighting
from central.watchlist.model import Match
from central.watchlist.service import WatchlistService
from shared.errors import NotFound, VartaError

log = logging.getLogger(__name__)

T = TypeVar("T")
Hits = list[tuple[IncomingSighting, list[Match]]]


@dataclass
class EngineStats:
    """Counters since start."""

    sightings_checked: int = 0
    sightings_matched: int = 0
    alerts_created: int = 0
    alerts_updated: int = 0
    commits: int = 0
    store_errors: int = 0
    match_errors: int = 0
    last_error: str = ""


@dataclass
class _Job:
    run: Callable[[duckdb.DuckDBPyConnection], Any]
    future: Future[Any] = field(default_factory=Future)


class AlertEngine:
    """Owns alert storage: a writer thread fed by a queue.

    Args:
        db: Central's database; the engine makes its own writer cursor.
        watchlists: The watchlist service whose current matcher is used.
        min_score: Matches scoring below this raise no alert.
        dedup_window_s: Sightings of the same entry and plate within this window join the
            open alert instead of raising a new one.
        webhooks: Filters of the configured webhook endpoints (changes are queued for each
            endpoint whose filter accepts the alert).
        clock: UNIX time source (tests inject one).
    """

    def __init__(
        self,
        db: Database,
        watchlists: WatchlistService | None,
        *,
        min_score: float = 0.6,
        dedup_window_s: float = 600.0,
        webhooks: Sequence[WebhookFilter] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.stats = EngineStats()
        self._watchlists = watchlists
        self._min_score = min_score
        self._window = dedup_window_s
        self._webhooks = list(webhooks)
        self._clock = clock
        self._repo = AlertRepository()
        self._con = db.writer.cursor()  # a connection of its own: the alert writer
        self._repo.ensure_schema(self._con)
        self.feed = ChangeFeed()
        self._load()
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def _load(self) -> None:
        """Counters and open alerts from storage (at start and after a failed commit)."""
        self._seq, self._last_id, self._last_delivery = self._repo.heads(self._con)
        self.feed.publish(self._seq)
        self._open = {a.alert_id: a for a in self._repo.open_alerts(self._con)}
        self._by_key = {a.dedup_key: a.alert_id for a in self._open.values()}

    @property
    def repository(self) -> AlertRepository:
        """The SQL of alerts (for readers)."""
        return self._repo

    def start(self) -> None:
        """Start the writer thread."""
        self._thread = threading.Thread(target=self._run, name="alerts-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish queued jobs, then stop the writer thread and close its connection."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None
        self._con.close()

    # -- producers (any thread) -------------------------------------------------------

    def on_commit(self, items: list[IncomingSighting]) -> None:
        """Match newly stored sightings; queue the hits (called by ingest after a commit)."""
        if self._watchlists is None or not items:
            return
        matcher = self._watchlists.matcher
        hits: Hits = []
        for inc in items:
            try:
                found = matcher.match(inc.sighting, min_score=self._min_score)
            except Exception as err:  # one odd sighting must not cost the others their match
                self.stats.match_errors += 1
                self.stats.last_error = f"match failed: {err}"
                log.exception("matching sighting %s failed", inc.sighting.event_id)
                continue
            if found:
                hits.append((inc, found))
        self.stats.sightings_checked += len(items)
        if hits:
            self.stats.sightings_matched += len(hits)
            self._queue.put(_Job(lambda con: self._apply_hits(con, hits)))

    def raise_system(
        self, kind: str, subject: str, title: str, details: dict[str, Any], priority: int = 2
    ) -> None:
        """Raise a system alert unless one for ``kind`` and ``subject`` is open (async)."""
        self._queue.put(
            _Job(lambda con: self._apply_system(con, kind, subject, title, details, priority))
        )

    def close_system(self, kind: str, subject: str, reason: str) -> None:
        """Resolve the open system alert for ``kind`` and ``subject``, if any (async)."""
        self._queue.put(_Job(lambda con: self._apply_close(con, f"{kind}:{subject}", reason)))

    def transition(self, alert_id: int, to: str, reason: str, actor: str) -> Alert:
        """Move an alert to state ``to``; waits for the commit and returns the alert.

        Raises:
            NotFound: No such alert.
            InvalidRequest: Bad target state or a rejection without reason.
            IllegalTransition: The lifecycle does not allow it.
        """
        return self.call(lambda con: self._apply_transition(con, alert_id, to, reason, actor))

    def police_ack(self, alert_id: int, actor: str) -> Alert:
        """Record that police client ``actor`` received the alert (idempotent per actor)."""
        return self.call(lambda con: self._apply_police_ack(con, alert_id, actor))

    def call(self, run: Callable[[duckdb.DuckDBPyConnection], T], timeout: float = 30.0) -> T:
        """Run ``run(writer_connection)`` on the writer thread within its transaction."""
        job = _Job(run)
        self._queue.put(job)
        result: T = job.future.result(timeout)
        return result

    @property
    def open_alerts(self) -> list[Alert]:
        """Alerts not resolved or rejected (a snapshot)."""
        return list(self._open.values())

    def has_open(self, kind: str, subject: str) -> bool:
        """Whether an open alert of ``kind`` about ``subject`` exists."""
        return f"{kind}:{subject}" in self._by_key

    @property
    def queued(self) -> int:
        """Jobs waiting for the writer."""
        return self._queue.qsize()

    # -- the writer thread ------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            jobs: list[_Job] = []
            item: _Job | None = first
            while True:
                if item is None:
                    stopping = True
                else:
                    jobs.append(item)
                if len(jobs) >= 1000:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if jobs and not self._commit(jobs, last_try=len(jobs) == 1):
                for job in jobs:  # one job's failure must not cost the others: one by one
                    self._commit([job], last_try=True)

    def _commit(self, jobs: list[_Job], last_try: bool) -> bool:
        """Run jobs in one transaction; False if it failed and ``last_try`` is not set."""
        results: list[tuple[_Job, Any, BaseException | None]] = []
        try:
            self._con.execute("BEGIN")
            for job in jobs:
                try:
                    results.append((job, job.run(self._con), None))
                except VartaError as err:  # refused before writing anything
                    results.append((job, None, err))
            self._con.execute("COMMIT")
        except Exception as err:
            self._rollback()
            self.stats.store_errors += 1
            self.stats.last_error = f"store failed: {err}"
            log.error("storing %d alert jobs failed, rolled back: %s", len(jobs), err)
            self._load()
            if not last_try:
                return False
            for job in jobs:
                job.future.set_exception(err)
            return True
        self.stats.commits += 1
        self.feed.publish(self._seq)
        for job, value, error in results:
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(value)
        return True

    def _rollback(self) -> None:
        try:
            self._con.execute("ROLLBACK")
        except duckdb.Error:
            log.debug("rollback had no open transaction")

    # -- jobs (writer thread, inside the transaction) ---------------------------------

    def _record(
        self, con: duckdb.DuckDBPyConnection, alert: Alert, change: str, created: bool
    ) -> Alert:
        """Store an alert's new version with the next change seq; queue webhooks."""
        self._seq += 1
        alert = msgspec.structs.replace(alert, seq=self._seq)
        self._repo.save(con, alert, created)
        body = self._repo.add_change(
            con, Change(seq=self._seq, change=change, at=alert.updated_at, alert=alert)
        )
        rows = []
        for hook in self._webhooks:
            if hook.accepts(alert):
                self._last_delivery += 1
                rows.append((self._last_delivery, hook.name, self._seq, body))
        self._repo.enqueue(con, rows)
        if alert.open:
            self._open[alert.alert_id] = alert
            self._by_key[alert.dedup_key] = alert.alert_id
        else:
            self._open.pop(alert.alert_id, None)
            if self._by_key.get(alert.dedup_key) == alert.alert_id:
                del self._by_key[alert.dedup_key]
        return alert

    def _apply_hits(self, con: duckdb.DuckDBPyConnection, hits: Hits) -> None:
        now = self._clock()
        for inc, matches in hits:
            for match in matches:
                item = trail_item(inc, match)
                key = watchlist_key(match)
                current = self._open.get(self._by_key.get(key, -1))
                if current is not None and item.captured_at - current.last_seen <= self._window:
                    alert = msgspec.structs.replace(
                        current,
                        updated_at=now,
                        first_seen=min(current.first_seen, item.captured_at),
                        last_seen=max(current.last_seen, item.captured_at),
                        sightings=current.sightings + 1,
                        latest=item,
                    )
                    self._repo.add_trail(con, alert.alert_id, item)
                    self._record(con, alert, "sighted", created=False)
                    self.stats.alerts_updated += 1
                    continue
                self._last_id += 1
                alert = watchlist_alert(self._last_id, key, match, item, now)
                self._repo.add_trail(con, alert.alert_id, item)
                self._history(con, alert, "created", "", "new", match.reason)
                self._record(con, alert, "created", created=True)
                self.stats.alerts_created += 1

    def _apply_system(
        self,
        con: duckdb.DuckDBPyConnection,
        kind: str,
        subject: str,
        title: str,
        details: dict[str, Any],
        priority: int,
    ) -> Alert | None:
        key = f"{kind}:{subject}"
        if key in self._by_key:
            return None
        self._last_id += 1
        alert = system_alert(self._last_id, kind, subject, title, details, priority, self._clock())
        self._history(con, alert, "created", "", "new", title)
        self.stats.alerts_created += 1
        return self._record(con, alert, "created", created=True)

    def _apply_close(self, con: duckdb.DuckDBPyConnection, key: str, reason: str) -> Alert | None:
        alert_id = self._by_key.get(key)
        if alert_id is None:
            return None
        return self._apply_transition(con, alert_id, "resolved", reason, SYSTEM_ACTOR, force=True)

    def _apply_transition(
        self,
        con: duckdb.DuckDBPyConnection,
        alert_id: int,
        to: str,
        reason: str,
        actor: str,
        force: bool = False,
    ) -> Alert:
        current = self._find(con, alert_id)
        if not (force and current.open):
            check_transition(current.kind, current.state, to, reason)
        alert = msgspec.structs.replace(current, state=to, updated_at=self._clock())
        self._history(con, alert, "transition", current.state, to, reason, actor)
        return self._record(con, alert, "transition", created=False)

    def _apply_police_ack(self, con: duckdb.DuckDBPyConnection, alert_id: int, actor: str) -> Alert:
        current = self._find(con, alert_id)
        if current.police_ack_by == actor:
            return current
        now = self._clock()
        alert = msgspec.structs.replace(
            current, police_ack_by=actor, police_ack_at=now, updated_at=now
        )
        self._history(con, alert, "police_ack", current.state, current.state, "", actor)
        return self._record(con, alert, "police_ack", created=False)

    def _find(self, con: duckdb.DuckDBPyConnection, alert_id: int) -> Alert:
        if not 0 < alert_id < 2**63:  # not a BIGINT: no such alert (and no SQL error)
            raise NotFound(f"no alert with id {alert_id}")
        alert = self._open.get(alert_id) or self._repo.get(con, alert_id)
        if alert is None:
            raise NotFound(f"no alert with id {alert_id}")
        return alert

    def _history(
        self,
        con: duckdb.DuckDBPyConnection,
        alert: Alert,
        action: str,
        from_state: str,
        to_state: str,
        reason: str,
        actor: str = SYSTEM_ACTOR,
    ) -> None:
        item = HistoryItem(
            at=alert.updated_at,
            actor=actor,
            action=action,
            from_state=from_state,
            to_state=to_state,
            reason=reason,
        )
        self._repo.add_history(con, alert.alert_id, item)
