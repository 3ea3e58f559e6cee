"""The alert engine: turns matches and health problems into alerts, on central's writer.

Ingest asks ``after_store`` for the follow-up of each turn: matching runs right there on
the ingest thread (tens of microseconds per sighting, against the matcher in use, which a
watchlist change swaps whole), and the returned job runs on the database writer right after
the turn's own job, usually in the same transaction. It creates or extends alerts for the
newly stored sightings and moves the *match watermark* (``match_state``): every sighting
received before it has been matched. At start, and whenever a follow-up failed,
``catch_up`` matches again every stored sighting received since the watermark. Creation is
idempotent - a sighting already on the trail of an alert for the same wanted entry is
skipped - so a crash between the ingest ack and the alert commit, or a sighting matched
twice, gives each alert exactly once.

Operator and police actions (transitions, acknowledgements) are jobs on the same writer,
so there is one order of changes. After a rollback the engine reloads its counters and
open alerts from storage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import msgspec

from central.alerts.builders import system_alert, trail_item, watchlist_alert, watchlist_key
from central.alerts.feed import ChangeFeed
from central.alerts.model import (
    SYSTEM_ACTOR,
    Alert,
    Change,
    HistoryItem,
    TrailItem,
    WebhookFilter,
    check_transition,
)
from central.alerts.repository import AlertRepository
from central.store.db import Database
from central.store.sightings import FollowUp, IncomingSighting, SightingRepository
from central.watchlist.model import Match
from central.watchlist.service import WatchlistService
from shared.errors import NotFound
from shared.plates import STRICT_MIN_CONFIDENCE

log = logging.getLogger(__name__)

Hits = list[tuple[IncomingSighting, list[Match]]]

# The watermark is written at most this often while nothing matches (it only bounds the
# work of a catch-up after a crash; alerts are idempotent either way).
_WATERMARK_EVERY_S = 1.0
_CATCH_UP_ROWS = 5_000


@dataclass
class EngineStats:
    """Counters since start."""

    sightings_checked: int = 0
    sightings_matched: int = 0
    alerts_created: int = 0
    alerts_updated: int = 0
    duplicates_skipped: int = 0
    rematched: int = 0
    historical_alerts: int = 0
    commits: int = 0
    store_errors: int = 0
    match_errors: int = 0
    last_error: str = ""


class AlertEngine:
    """Owns alert storage, writing through the database's writer.

    Args:
        db: Central's database.
        watchlists: The watchlist service whose current matcher is used.
        min_score: Matches scoring below this raise no alert.
        strict_min_confidence: Plate texts read less confidently than this do not match
            strict lists (see ``Matcher.match``).
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
        strict_min_confidence: float = STRICT_MIN_CONFIDENCE,
        dedup_window_s: float = 600.0,
        webhooks: Sequence[WebhookFilter] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.stats = EngineStats()
        self._db = db
        self._watchlists = watchlists
        self._min_score = min_score
        self.strict_min_confidence = strict_min_confidence
        self._window = dedup_window_s
        self._webhooks = list(webhooks)
        self._clock = clock
        self._repo = AlertRepository()
        self.feed = ChangeFeed()
        self._behind = threading.Event()  # a follow-up failed: the watermark must wait
        self._watermark_written = 0.0
        with db.reader() as con:
            self._load(con)
        db.writer.on_rollback(self._load)
        db.writer.on_commit(lambda: self.feed.publish(self._seq))

    def _load(self, con: duckdb.DuckDBPyConnection) -> None:
        """Counters and open alerts from storage (at start and after a rollback)."""
        self._seq, self._last_id, self._last_delivery = self._repo.heads(con)
        self.feed.publish(self._seq)
        self._open = {a.alert_id: a for a in self._repo.open_alerts(con)}
        self._by_key = {a.dedup_key: a.alert_id for a in self._open.values()}

    @property
    def repository(self) -> AlertRepository:
        """The SQL of alerts (for readers)."""
        return self._repo

    def start(self) -> None:
        """Match what was stored after the watermark (a crash may have left some)."""
        self.catch_up()

    def stop(self) -> None:
        """Nothing of its own to stop: jobs finish with the database writer."""

    # -- matching (ingest thread) ---------------------------------------------------------

    def match(self, items: Iterable[IncomingSighting]) -> Hits:
        """Sightings that match the wanted lists now, with their matches."""
        if self._watchlists is None:
            return []
        matcher = self._watchlists.matcher
        hits: Hits = []
        checked = 0
        if len(matcher) == 0:  # no list entries: nothing can match (and it costs no time)
            self.stats.sightings_checked += sum(1 for _ in items)
            return hits
        for inc in items:
            checked += 1
            try:
                found = matcher.match(
                    inc.sighting,
                    min_score=self._min_score,
                    strict_min_confidence=self.strict_min_confidence,
                )
            except Exception as err:  # one odd sighting must not cost the others their match
                self.stats.match_errors += 1
                self.stats.last_error = f"match failed: {err}"
                log.exception("matching sighting %s failed", inc.sighting.event_id)
                continue
            if found:
                hits.append((inc, found))
        self.stats.sightings_checked += checked
        self.stats.sightings_matched += len(hits)
        return hits

    def after_store(self, items: list[IncomingSighting]) -> FollowUp | None:
        """Match a turn's sightings; the writer job that records their alerts, or None
        when nothing matched and the watermark was written less than a second ago (an
        empty job would cost the writer a transaction for nothing).

        The job takes the event ids the turn stored (duplicates were matched when first
        stored) and the turn's ``received_at``, which the watermark moves to.
        """
        hits = self.match(items)
        if not hits and time.monotonic() - self._watermark_written < _WATERMARK_EVERY_S:
            return None

        def follow_up(con: duckdb.DuckDBPyConnection, new: set[str], received: float) -> None:
            fresh = [(inc, m) for inc, m in hits if inc.sighting.event_id in new]
            try:
                if fresh:
                    self._apply_hits(con, fresh, historical=False)
                self._advance(con, received, force=bool(fresh))
            except Exception:
                self._behind.set()  # the rollback reloads state; catch_up redoes the match
                raise

        return follow_up

    def on_commit(self, items: list[IncomingSighting]) -> Future[None]:
        """Match sightings stored outside ingest's turns and record their alerts (async)."""
        hits = self.match(items)
        return self._db.writer.submit(lambda con: self._apply_hits(con, hits, historical=False))

    def _advance(self, con: duckdb.DuckDBPyConnection, received: float, force: bool) -> None:
        """Move the match watermark to ``received`` (all before it is matched)."""
        now = time.monotonic()
        if self._behind.is_set() or not (
            force or now - self._watermark_written >= _WATERMARK_EVERY_S
        ):
            return
        con.execute(
            "UPDATE match_state SET watermark = greatest(watermark, to_timestamp(?)) WHERE id = 1",
            [received],
        )
        self._watermark_written = now

    def catch_up(self) -> int:
        """Match every sighting received since the watermark again (idempotently).

        Returns:
            Sightings matched again.
        """
        self._behind.clear()
        sightings = SightingRepository()
        with self._db.reader() as con:
            rows = con.execute("SELECT watermark FROM match_state WHERE id = 1").fetchall()
            since: datetime = rows[0][0] if rows else datetime.fromtimestamp(0, UTC)
        done, after = 0, ""
        while True:
            with self._db.reader() as con:
                batch = sightings.received_since(con, since, after, _CATCH_UP_ROWS)
            if not batch:
                break
            hits = self.match(inc for inc, _ in batch)
            high = max(received for _, received in batch)

            def job(con: duckdb.DuckDBPyConnection, h: Hits = hits, t: float = high) -> None:
                self._catch_up_job(con, h, t)

            self._db.writer.call(job)
            done += len(batch)
            if len(batch) < _CATCH_UP_ROWS:
                break
            last = batch[-1]
            since, after = datetime.fromtimestamp(last[1], UTC), last[0].sighting.event_id
        self.stats.rematched += done
        if done:
            log.info("alerts: matched %d sightings again after the watermark", done)
        return done

    def _catch_up_job(self, con: duckdb.DuckDBPyConnection, hits: Hits, high: float) -> None:
        if hits:
            self._apply_hits(con, hits, historical=False)
        if not self._behind.is_set():
            con.execute(
                "UPDATE match_state SET watermark = greatest(watermark, to_timestamp(?)) "
                "WHERE id = 1",
                [high],
            )

    def raise_historical(self, hits: Hits) -> int:
        """Alerts for stored sightings that match entries added since they were seen.

        Each is marked historical and dated by the sighting's capture time; a sighting
        already on an alert for the same entry is skipped. The sightings of one entry and
        plate join one alert (the open one, or a new one) in a single change, so a car's
        past week is one alert with a trail, not one change per sighting. Returns alerts
        created or extended.
        """
        if not hits:
            return 0
        before = self.stats.alerts_created + self.stats.alerts_updated
        self._db.writer.call(lambda con: self._apply_historical(con, hits))
        return self.stats.alerts_created + self.stats.alerts_updated - before

    # -- producers (any thread) -------------------------------------------------------

    def raise_system(
        self, kind: str, subject: str, title: str, details: dict[str, Any], priority: int = 2
    ) -> None:
        """Raise a system alert unless one for ``kind`` and ``subject`` is open (async)."""
        self._db.writer.submit(
            lambda con: self._apply_system(con, kind, subject, title, details, priority)
        )

    def raise_face(
        self,
        con: duckdb.DuckDBPyConnection,
        subject: str,
        title: str,
        details: dict[str, Any],
        seen_at: float,
        actor: str,
        priority: int = 1,
    ) -> Alert:
        """Create a ``face`` alert inside the caller's writer job, so it commits with the
        confirmation that raised it (writer thread only; the two-person rule is checked by
        ``central.faces.candidates`` before this is called)."""
        self._last_id += 1
        now = self._clock()
        alert = Alert(
            alert_id=self._last_id,
            kind="face",
            state="new",
            priority=priority,
            category="face",
            title=title,
            subject=subject,
            dedup_key=f"face:{subject}",
            details=details,
            created_at=now,
            updated_at=now,
            first_seen=seen_at,
            last_seen=seen_at,
        )
        self._history(con, alert, "created", "", "new", "confirmed by two users", actor)
        self.stats.alerts_created += 1
        return self._record(con, alert, "created", created=True)

    def close_system(self, kind: str, subject: str, reason: str) -> None:
        """Resolve the open system alert for ``kind`` and ``subject``, if any (async)."""
        self._db.writer.submit(lambda con: self._apply_close(con, f"{kind}:{subject}", reason))

    def transition(self, alert_id: int, to: str, reason: str, actor: str) -> Alert:
        """Move an alert to state ``to``; waits for the commit and returns the alert.

        Raises:
            NotFound: No such alert.
            InvalidRequest: Bad target state or a rejection without reason.
            IllegalTransition: The lifecycle does not allow it.
        """
        return self._db.writer.call(
            lambda con: self._apply_transition(con, alert_id, to, reason, actor)
        )

    def police_ack(self, alert_id: int, actor: str) -> Alert:
        """Record that police client ``actor`` received the alert (idempotent per actor)."""
        return self._db.writer.call(lambda con: self._apply_police_ack(con, alert_id, actor))

    @property
    def open_alerts(self) -> list[Alert]:
        """Alerts not resolved or rejected (a snapshot)."""
        return list(self._open.values())

    def has_open(self, kind: str, subject: str) -> bool:
        """Whether an open alert of ``kind`` about ``subject`` exists."""
        return f"{kind}:{subject}" in self._by_key

    def protected_sightings(self, older_than: datetime) -> list[str]:
        """Event ids captured before ``older_than`` that are evidence retention must keep
        (see ``AlertRepository.protected``; list policies come from the watchlists)."""
        days = self._watchlists.retention_days() if self._watchlists is not None else {}
        with self._db.reader() as con:
            return self._repo.protected(con, older_than.timestamp(), self._clock(), days)

    @property
    def queued(self) -> int:
        """Jobs waiting for the database writer (alert jobs among them)."""
        return self._db.writer.queued

    @property
    def behind(self) -> bool:
        """Whether a follow-up failed and a catch-up is due."""
        return self._behind.is_set()

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

    def _apply_hits(self, con: duckdb.DuckDBPyConnection, hits: Hits, *, historical: bool) -> None:
        """Create or extend alerts for matched sightings, skipping those already alerted.

        Historical hits (past reads) join any open alert of their entry and plate whatever
        its time, so a car's past week becomes one alert with a trail, not one per sighting.
        """
        now = self._clock()
        done = self._repo.alerted(con, [inc.sighting.event_id for inc, _ in hits])
        ordered = sorted(hits, key=lambda h: h[0].sighting.captured_at) if historical else hits
        for inc, matches in ordered:
            event_id = inc.sighting.event_id
            for match in matches:
                key = watchlist_key(match)
                if (event_id, key) in done:
                    self.stats.duplicates_skipped += 1
                    continue
                done.add((event_id, key))
                item = trail_item(inc, match, historical=historical)
                current = self._open.get(self._by_key.get(key, -1))
                joins = current is not None and (
                    historical or item.captured_at - current.last_seen <= self._window
                )
                if current is not None and joins:
                    alert = msgspec.structs.replace(
                        current,
                        updated_at=now,
                        first_seen=min(current.first_seen, item.captured_at),
                        last_seen=max(current.last_seen, item.captured_at),
                        sightings=current.sightings + 1,
                        latest=item if item.captured_at >= current.last_seen else current.latest,
                    )
                    self._repo.add_trail(con, alert.alert_id, item)
                    self._record(con, alert, "sighted", created=False)
                    self.stats.alerts_updated += 1
                    continue
                self._last_id += 1
                alert = watchlist_alert(self._last_id, key, match, item, now)
                self._repo.add_trail(con, alert.alert_id, item)
                why = f"past read: {match.reason}" if historical else match.reason
                self._history(con, alert, "created", "", "new", why)
                self._record(con, alert, "created", created=True)
                self.stats.alerts_created += 1
                self.stats.historical_alerts += historical

    def _apply_historical(self, con: duckdb.DuckDBPyConnection, hits: Hits) -> None:
        """Past-read hits grouped by dedup key: one alert change per key (writer thread)."""
        now = self._clock()
        done = self._repo.alerted(con, [inc.sighting.event_id for inc, _ in hits])
        groups: dict[str, list[tuple[TrailItem, Match]]] = {}
        for inc, matches in sorted(hits, key=lambda h: h[0].sighting.captured_at):
            for match in matches:
                key = watchlist_key(match)
                if (inc.sighting.event_id, key) in done:
                    self.stats.duplicates_skipped += 1
                    continue
                done.add((inc.sighting.event_id, key))
                groups.setdefault(key, []).append((trail_item(inc, match, historical=True), match))
        for key, found in groups.items():
            items = [item for item, _ in found]
            current = self._open.get(self._by_key.get(key, -1))
            if current is None:
                self._last_id += 1
                current = watchlist_alert(self._last_id, key, found[0][1], items[0], now)
                current = msgspec.structs.replace(current, sightings=0)
                why = f"past read: {found[0][1].reason}"
                self._history(con, current, "created", "", "new", why)
            latest = max(items, key=lambda i: i.captured_at)
            alert = msgspec.structs.replace(
                current,
                updated_at=now,
                first_seen=min(current.first_seen, items[0].captured_at),
                last_seen=max(current.last_seen, latest.captured_at),
                sightings=current.sightings + len(items),
                latest=latest if latest.captured_at >= current.last_seen else current.latest,
            )
            self._repo.add_trails(con, alert.alert_id, items)
            created = current.sightings == 0
            self._record(con, alert, "created" if created else "sighted", created=created)
            self.stats.alerts_created += created
            self.stats.alerts_updated += not created
            self.stats.historical_alerts += created

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
