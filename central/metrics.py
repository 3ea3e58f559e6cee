"""Central's Prometheus metrics, read at scrape time from counters and the database.

Ingest counts as it always did (``IngestStats``, one writer: the ingest thread); this
collector copies those counters when Prometheus scrapes, so ingest pays nothing and
nothing is counted twice. Alert states, the webhook queue and the agents' and cameras'
health live in DuckDB (written by heartbeats and the alert writer); each scrape reads them
in one read-only snapshot, a handful of small grouped queries.

The archive's exporter counts its runs, parts, rows and bytes (``ArchiveStats``); what the
archive holds is read from ``archive_parts`` in the same snapshot.

Labels stay low in cardinality: ``reason`` (a fixed set of refusal kinds), ``state`` and
``kind`` of alerts, ``endpoint`` (configured webhooks), ``agent`` and ``camera`` (the
deployment's own, some hundreds at most).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from central.alerts.model import STATES
from central.alerts.repository import AlertRepository
from central.archive.export import ArchiveStats
from central.store.agents import AgentRepository
from shared.metrics import gauge, histogram_family

if TYPE_CHECKING:
    from central.app import Central

_INGEST_COUNTERS = (
    ("messages", "messages_received", "Messages received from agents."),
    ("batches", "batches", "Sighting batches received."),
    ("turns", "turns", "Ingest turns (drain, store, ack)."),
    ("sightings_stored", "sightings_stored", "Sightings stored (new to the database)."),
    ("duplicates", "duplicates", "Sightings received again (already stored, acked)."),
    ("faces_received", "faces_received", "Face observations received (only matches stored)."),
    ("faces_matched", "faces_matched", "Face observations that matched the persons watchlist."),
    ("auth_denied", "auth_denied", "CURVE handshakes refused: key not allow-listed."),
    ("store_errors", "store_errors", "Storage transactions that failed and rolled back."),
    ("storage_unavailable", "storage_unavailable", "Turns not acked: storage unavailable."),
)


class CentralCollector(Collector):
    """Ingest, alerts, webhook queue, agents and cameras of one central."""

    def __init__(self, central: Central, clock: Callable[[], float] = time.time) -> None:
        self._central = central
        self._clock = clock
        self._agents = AgentRepository()
        self._alerts = AlertRepository()

    def collect(self) -> Iterator[Metric]:
        """Metric families from the ingest counters and one database snapshot."""
        yield from self._ingest()
        yield from self._crops()
        yield from self._writer()
        yield from self._syncs()
        yield from self._national()
        with self._central.db.reader() as con:
            alerts = con.execute(
                "SELECT kind, state, count(*) FROM alerts GROUP BY kind, state"
            ).fetchall()
            queue = self._alerts.queue_depth(con)
            agents = self._agents.list(
                con, self._clock(), self._central.config.agent_offline_after_s
            )
            held = con.execute(
                "SELECT count(*), coalesce(sum(rows), 0), coalesce(sum(bytes), 0) "
                "FROM archive_parts WHERE purged_at IS NULL"
            ).fetchall()[0]
        yield _alerts(alerts)
        yield from self._webhooks(queue)
        yield from _agents(agents)
        yield from _cameras(agents)
        if self._central.archive is not None:
            yield from _archive(self._central.archive.stats, held)

    def _ingest(self) -> Iterator[Metric]:
        stats = self._central.ingest.stats
        for attr, name, doc in _INGEST_COUNTERS:
            yield CounterMetricFamily(f"varta_ingest_{name}", doc, value=getattr(stats, attr))
        items = CounterMetricFamily(
            "varta_ingest_items_refused",
            "Sightings refused for good (in the batch's ack), by reason.",
            labels=["reason"],
        )
        for reason, n in sorted(dict(stats.items_rejected_by_reason).items()):
            items.add_metric([reason], n)
        yield items
        messages = CounterMetricFamily(
            "varta_ingest_messages_refused", "Whole messages refused, by reason.", labels=["reason"]
        )
        for reason, n in sorted(dict(stats.messages_rejected).items()):
            messages.add_metric([reason], n)
        yield messages
        yield histogram_family(
            "varta_ingest_turn_duration",
            "Seconds per ingest turn: receive, validate, store, commit, ack.",
            [],
            [([], stats.turn_seconds)],
        )
        ingest = self._central.ingest
        yield gauge("varta_ingest_up", "1 while the ingest thread runs.", ingest.alive)
        yield gauge(
            "varta_ingest_storage_ok",
            "0 while storage refuses writes (disk full, database failing): nothing is acked.",
            not ingest.problem,
        )

    def _crops(self) -> Iterator[Metric]:
        """Face crop requests (crop on match only): how each ended, and refused replies."""
        stats = self._central.ingest.stats.crops
        yield CounterMetricFamily(
            "varta_face_crop_requests", "Face crop requests to agents.", value=stats.requests
        )
        results = CounterMetricFamily(
            "varta_face_crop_results",
            "Face crop requests by result; unreachable split by why.",
            labels=["status"],
        )
        results.add_metric(["ok"], stats.ok)
        results.add_metric(["expired"], stats.expired)
        results.add_metric(["unreachable_not_connected"], stats.not_connected)
        results.add_metric(["unreachable_timeout"], stats.timeouts)
        results.add_metric(
            ["unreachable_bad_reply"], stats.unreachable - stats.not_connected - stats.timeouts
        )
        yield results
        replies = CounterMetricFamily(
            "varta_face_crop_replies_refused",
            "Crop replies dropped: malformed, or to no pending request.",
            labels=["reason"],
        )
        replies.add_metric(["malformed"], stats.replies_malformed)
        replies.add_metric(["unknown_request"], stats.replies_unknown)
        yield replies

    def _writer(self) -> Iterator[Metric]:
        writer = self._central.db.writer
        stats = writer.stats
        yield gauge("varta_database_writer_up", "1 while the database writer runs.", writer.alive)
        yield gauge(
            "varta_database_writer_queued", "Write jobs waiting for the writer.", writer.queued
        )
        yield CounterMetricFamily(
            "varta_database_commits", "Write transactions committed.", value=stats.commits
        )
        yield CounterMetricFamily(
            "varta_database_rollbacks", "Write transactions rolled back.", value=stats.rollbacks
        )

    def _syncs(self) -> Iterator[Metric]:
        """Scheduled list syncs: failures, signature refusals and the last good check."""
        syncs = self._central.syncs
        stats = syncs.stats if syncs is not None else {}
        label = ["list"]
        failures = CounterMetricFamily(
            "varta_watchlist_sync_failures", "Scheduled syncs that failed.", labels=label
        )
        refused = CounterMetricFamily(
            "varta_watchlist_sync_signature_rejected",
            "Exports refused: the national hub's signature did not verify (list kept).",
            labels=label,
        )
        last = GaugeMetricFamily(
            "varta_watchlist_sync_last_ok_timestamp_seconds",
            "When the list's source was last checked without error (0: never).",
            labels=label,
        )
        for name, s in sorted(stats.items()):
            failures.add_metric([name], s.failures)
            refused.add_metric([name], s.rejected_signature)
            last.add_metric([name], s.last_ok_at)
        yield from (failures, refused, last)

    def _national(self) -> Iterator[Metric]:
        """A national hub's forwarded changes, by what became of them."""
        hub = self._central.national
        if hub is None:
            return
        stats = hub.stats
        yield CounterMetricFamily(
            "varta_national_forward_requests",
            "Forwarding requests from regions.",
            value=stats.requests,
        )
        changes = CounterMetricFamily(
            "varta_national_forward_changes",
            "Alert changes regions forwarded, by result.",
            labels=["result"],
        )
        changes.add_metric(["stored"], stats.stored)
        changes.add_metric(["duplicate"], stats.duplicates)
        changes.add_metric(["refused"], stats.refused)
        yield changes

    def _webhooks(self, queue: dict[str, int]) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "varta_webhook_queue_depth",
            "Alert changes not yet delivered, per webhook endpoint.",
            labels=["endpoint"],
        )
        up = GaugeMetricFamily(
            "varta_webhook_sender_up", "1 while the endpoint's sender runs.", labels=["endpoint"]
        )
        alerting = self._central.alerting
        for sender in alerting.senders if alerting is not None else []:
            name = sender.endpoint.name
            depth.add_metric([name], queue.get(name, 0))
            up.add_metric([name], 1.0 if sender.alive else 0.0)
        yield depth
        yield up


def _archive(stats: ArchiveStats, held: tuple[Any, ...]) -> Iterator[Metric]:
    """The archive's export counters and what it holds."""
    with stats.lock:
        yield gauge(
            "varta_archive_up", "1 when the last archive run succeeded.", not stats.last_error
        )
        yield gauge(
            "varta_archive_last_success_timestamp_seconds",
            "When an export run last succeeded (0: never since start).",
            stats.last_success,
        )
        yield gauge(
            "varta_archive_pending_partitions",
            "Closed partitions the running or last export still had to write.",
            stats.pending_partitions,
        )
        for name, doc, value in (
            ("runs", "Export runs.", stats.runs),
            ("failures", "Export runs that failed (archive unreachable).", stats.failures),
            ("parts_written", "Part files written.", stats.parts_written),
            ("rows_exported", "Sightings written to part files.", stats.rows_exported),
            ("bytes_written", "Bytes of part files written.", stats.bytes_written),
            ("parts_purged", "Part files deleted by the archive's retention.", stats.parts_purged),
        ):
            yield CounterMetricFamily(f"varta_archive_{name}", doc, value=value)
    parts, rows, size = (int(v) for v in held)
    yield gauge("varta_archive_parts", "Part files the archive holds.", parts)
    yield gauge("varta_archive_rows", "Sightings the archive holds.", rows)
    yield gauge("varta_archive_bytes", "Bytes the archive holds.", size)


def _alerts(rows: list[Any]) -> Metric:
    family = GaugeMetricFamily(
        "varta_alerts", "Alerts by kind and state (open and closed).", labels=["kind", "state"]
    )
    counts = {(kind, state): int(n) for kind, state, n in rows}
    for kind in sorted({k for k, _ in counts}):
        for state in STATES:  # every state, zero included, so rates and sums line up
            family.add_metric([kind, state], counts.get((kind, state), 0))
    return family


def _agents(agents: list[dict[str, Any]]) -> Iterator[Metric]:
    label = ["agent"]
    up = GaugeMetricFamily("varta_agent_up", "1 while the agent is heard from.", labels=label)
    healthy = GaugeMetricFamily(
        "varta_agent_healthy", "1 when online with no camera offline and no eviction.", labels=label
    )
    seen = GaugeMetricFamily(
        "varta_agent_last_seen_timestamp_seconds", "When the agent was last heard.", labels=label
    )
    depth = GaugeMetricFamily(
        "varta_agent_spool_depth", "Sightings in the agent's spool (last heartbeat).", labels=label
    )
    evicted = CounterMetricFamily(
        "varta_agent_spool_evictions", "Unsent sightings the agent's spool evicted.", labels=label
    )
    dead = CounterMetricFamily(
        "varta_agent_dead_letters", "Sightings central refused for good.", labels=label
    )
    received = CounterMetricFamily(
        "varta_agent_sightings_received", "Sightings received from the agent.", labels=label
    )
    yield from _agent_link_clock(agents)
    for a in agents:
        name = [a["agent_id"]]
        up.add_metric(name, 1.0 if a["online"] else 0.0)
        healthy.add_metric(name, 1.0 if a["health"] == "ok" else 0.0)
        seen.add_metric(name, a["last_seen"] or 0.0)
        depth.add_metric(name, a["spool_depth"] or 0)
        evicted.add_metric(name, a["spool_evictions"] or 0)
        dead.add_metric(name, a["dead_letters"] or 0)
        received.add_metric(name, a["sightings_received"] or 0)
    yield from (up, healthy, seen, depth, evicted, dead, received)


def _agent_link_clock(agents: list[dict[str, Any]]) -> Iterator[Metric]:
    """Link and clock state of agents of wire schema 1.2 (older agents report none)."""
    label = ["agent"]
    reconnects = CounterMetricFamily(
        "varta_agent_reconnects",
        "Connections to central the agent lost and made again.",
        labels=label,
    )
    skew = GaugeMetricFamily(
        "varta_agent_clock_skew_seconds", "Agent wall clock minus central's, seconds.", labels=label
    )
    steps = CounterMetricFamily(
        "varta_agent_clock_steps", "Wall clock steps the agent detected.", labels=label
    )
    pending = GaugeMetricFamily(
        "varta_agent_clock_step_pending",
        "1 while a detected clock step is unconfirmed.",
        labels=label,
    )
    for a in agents:
        name = [a["agent_id"]]
        if a["clock_skew_s"] is not None:
            skew.add_metric(name, a["clock_skew_s"])
        if a["link"] is not None:
            reconnects.add_metric(name, a["link"]["reconnects"])
        if a["clock"] is not None:
            steps.add_metric(name, a["clock"]["steps"])
            pending.add_metric(name, 1.0 if a["clock"]["pending"] else 0.0)
    yield from (reconnects, skew, steps, pending)


def _cameras(agents: list[dict[str, Any]]) -> Iterator[Metric]:
    labels = ["agent", "camera"]
    up = GaugeMetricFamily(
        "varta_camera_up", "1 while the camera delivers frames (last heartbeat).", labels=labels
    )
    fps_in = GaugeMetricFamily("varta_camera_fps_in", "Frames decoded per second.", labels=labels)
    fps_out = GaugeMetricFamily(
        "varta_camera_fps_out", "Frames analysed per second.", labels=labels
    )
    dropped = CounterMetricFamily(
        "varta_camera_frames_dropped", "Frames the agent dropped (too slow).", labels=labels
    )
    for a in agents:
        for c in a["cameras"]:
            key = [a["agent_id"], c["camera_id"]]
            up.add_metric(key, 1.0 if c["online"] else 0.0)
            fps_in.add_metric(key, c["fps_in"])
            fps_out.add_metric(key, c["fps_out"])
            dropped.add_metric(key, c["frames_dropped"])
    yield from (up, fps_in, fps_out, dropped)
