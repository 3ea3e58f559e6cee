"""Retention on real DuckDB files and pack folders, and alongside a running ingest."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import duckdb
import pytest

from central.alerts.engine import AlertEngine
from central.alerts.model import TrailItem
from central.alerts.repository import AlertRepository
from central.audit import AuditLog
from central.retention import Retention, RetentionPolicy
from central.search import PlateQuery, SearchQuery, SearchService
from central.search.index import PlateIndexer
from central.services import SightingService
from central.store.db import Database
from central.store.thumbs import ThumbStore
from central.watchlist.model import ListSettings
from central.watchlist.repository import WatchlistRepository
from central.watchlist.service import WatchlistService
from shared.errors import NotFound
from tests.central.search_helpers import T0, Spec, store, write_pack
from tests.harness import (
    agent_config_file,
    central_config,
    make_keyring,
    read_result,
    spawn_loadgen,
    start_central,
    wait_for,
)

DAY = 86_400.0
NOW = T0 + 20 * DAY  # T0 is 2026-09-21 00:53 UTC; the cutoff (14 days) is T0 + 6 days


def _hit(db: Database, event_id: str, at: float) -> None:
    """Put a sighting on an alert's trail, as the alert engine does."""
    _trail(db, 1, event_id, at)


def _ids(db: Database, table: str = "sightings") -> set[str]:
    with db.reader() as con:
        rows = con.execute(f"SELECT DISTINCT event_id::VARCHAR FROM {table}").fetchall()
    return {r[0] for r in rows}


def test_purge_removes_exactly_old_non_hits_and_their_day_packs(tmp_path: Path) -> None:
    db = Database(tmp_path / "r.duckdb")
    root = tmp_path / "thumbs"
    old_specs = [Spec(f"AT{i:04d}BO", dt=i * 60.0) for i in range(30)]
    old_blobs = [f"old-{i}-{j}".encode() for i in range(30) for j in range(2)]
    old = store(db, old_specs, refs=write_pack(root, "20260921", old_blobs))
    late = T0 + 17 * DAY  # 2026-10-08: within the period
    recent_blobs = [f"new-{i}-{j}".encode() for i in range(5) for j in range(2)]
    recent = store(
        db,
        [Spec(f"KA{i:04d}CC") for i in range(5)],
        base=late,
        refs=write_pack(root, "20261008", recent_blobs),
    )
    edge = store(db, [Spec("BC0000XX", dt=6 * DAY + 60)], refs=[("20260927/000009", 0, 1)] * 2)
    hits = {old[3], old[17]}
    for event_id in hits:
        _hit(db, event_id, T0)
    PlateIndexer(db, lag_s=0, clock=lambda: NOW).compact()
    audit = AuditLog(db, clock=lambda: NOW)
    retention = Retention(
        db,
        root,
        _evidence(db, NOW),
        audit,
        RetentionPolicy(non_hit_days=14, chunk_rows=7),
        clock=lambda: NOW,
    )
    report = retention.run()

    assert _ids(db) == hits | set(recent) | set(edge)
    assert _ids(db, "plate_index") == hits | set(recent) | set(edge)
    assert report.deleted == 28 and report.chunks >= 3 and report.hits_kept == 2
    assert report.index_rows_deleted == 28 * 2  # forward and reversed key rows
    assert report.day_folders_deleted == 1 and report.evidence_copied == 4
    assert not (root / "20260921").exists()
    assert (root / "20261008").is_dir() and (root / "120260921").is_dir()
    sightings = SightingService(db, ThumbStore(root), audit)
    for i in (3, 17):
        assert sightings.thumbnail(old[i], 0) == f"old-{i}-0".encode()
        assert sightings.thumbnail(old[i], 1) == f"old-{i}-1".encode()
    assert sightings.thumbnail(recent[4], 1) == b"new-4-1"
    with pytest.raises(NotFound):
        sightings.thumbnail(old[5], 0)
    found = SearchService(db, audit).search(
        SearchQuery(plate=PlateQuery.parse("AT00??BO", None), limit=100), "u", "case 1"
    )
    assert {r["event_id"] for r in found.items} == hits
    purge = audit.query(action="retention.purge")
    assert len(purge) == 1 and purge[0].actor == "system"
    assert purge[0].details["deleted"] == 28
    again = retention.run()
    assert (again.deleted, again.day_folders_deleted) == (0, 0)
    db.close()


def test_ingest_keeps_storing_while_a_purge_runs(tmp_path: Path) -> None:
    ring = make_keyring(tmp_path / "keys", ["a1"])
    config = central_config(ring, tmp_path / "central")
    off = config.retention.model_copy(update={"enabled": False})  # the test drives the purge
    config = config.model_copy(update={"retention": off})
    central = start_central(config)
    try:
        old = 60_000
        central.db.writer.call(
            lambda con: con.execute(
                "INSERT INTO sightings (event_id, agent_id, camera_id, captured_at, received_at, "
                "plate, track_frames, track_seconds, thumbnails) "
                "SELECT uuid(), 'a0', 'cam-' || (i % 50), to_timestamp(? + i), "
                "to_timestamp(? + i), 'AT' || lpad((i % 10000)::VARCHAR, 4, '0') || 'BO', 1, 0.5, "
                "[] FROM range(?) t(i)",
                [T0, T0, old],
            )
        )
        cfg = agent_config_file(
            tmp_path / "a1.yaml", ring, "a1", central.ingest.bound_endpoint, tmp_path / "spool"
        )
        proc = spawn_loadgen(cfg, count=6000, rate=1500, result=tmp_path / "r.json")
        assert central.alerting is not None
        retention = Retention(
            central.db,
            tmp_path / "central" / "thumbs",
            central.alerting.engine,
            central.audit,  # type: ignore[arg-type]
            RetentionPolicy(non_hit_days=14, chunk_rows=500),
        )
        stats = central.ingest.stats
        assert wait_for(lambda: stats.sightings_stored > 0, 60)
        before = stats.sightings_stored
        reports = []
        runner = threading.Thread(target=lambda: reports.append(retention.run()))
        runner.start()
        runner.join(120)
        during = stats.sightings_stored - before
        print("purge", reports, "stored before", before, "during", during)
        assert before < 6000 and during > 0  # the purge really overlapped ingest
        assert proc.wait(timeout=120) == 0
        assert reports and reports[0].deleted == old
        report = read_result(tmp_path / "r.json")
        assert report["acked"] == 6000 and report["spool_depth"] == 0
        assert central.ingest.stats.store_errors == 0
        assert central.ingest.stats.sightings_stored == 6000
        with central.db.reader() as con:
            left = con.execute("SELECT count(*) FROM sightings").fetchone()
        assert left is not None and left[0] == 6000
    finally:
        central.stop()


def _evidence(db: Database, now: float) -> AlertEngine:
    """What retention asks which sightings are evidence: the alert engine."""
    return AlertEngine(db, WatchlistService(WatchlistRepository(db)), clock=lambda: now)


def _alert(db: Database, alert_id: int, list_name: str, closed_at: float | None) -> None:
    """An alert row as the alert engine stores it (its body names the list), closed at
    ``closed_at`` (None: still open)."""
    body = json.dumps({"details": {"list_name": list_name}})
    state = "new" if closed_at is None else "resolved"

    def insert(con: duckdb.DuckDBPyConnection) -> None:
        con.execute(
            "INSERT INTO alerts VALUES (?, 'watchlist', ?, ?, ?, 1, 0, ?)",
            [alert_id, state, closed_at is None, f"k{alert_id}", body],
        )
        if closed_at is not None:
            con.execute(
                "INSERT INTO alert_history VALUES (?, ?, 'olena', 'transition', 'dispatched', "
                "'resolved', 'found')",
                [alert_id, closed_at],
            )

    db.writer.call(insert)


def _trail(db: Database, alert_id: int, event_id: str, at: float) -> None:
    item = TrailItem(
        event_id=event_id,
        agent_id="a1",
        camera_id="cam-1",
        captured_at=at,
        plate="AT1234BO",
        score=1.0,
        match_kind="exact",
        reason="listed",
    )
    db.writer.call(lambda con: AlertRepository().add_trail(con, alert_id, item))


def test_hit_evidence_is_kept_per_list_policy_from_the_alert_close(tmp_path: Path) -> None:
    """A closed alert's evidence is kept for its list's retention_days counted from the
    moment the alert closed, not from capture time; an open alert's evidence is kept."""
    db = Database(tmp_path / "r.duckdb")
    lists = WatchlistRepository(db)
    lists.save_list(ListSettings(name="stolen-30", retention_days=30))
    now = T0 + 60 * DAY
    evidence = _evidence(db, now)  # before the hand-made alert rows below (not full alerts)
    ids = store(db, [Spec(f"AT{i:04d}BO", dt=10 * DAY) for i in range(4)])  # 50 days old
    _alert(db, 1, "stolen-30", closed_at=T0 + 25 * DAY)  # closed 35 days ago: past 30 days
    _alert(db, 2, "stolen-30", closed_at=None)  # open: kept whatever its age
    _alert(db, 3, "stolen-30", closed_at=T0 + 40 * DAY)  # closed 20 days ago: within 30
    _trail(db, 1, ids[0], T0 + 10 * DAY)
    _trail(db, 2, ids[1], T0 + 10 * DAY)
    _trail(db, 3, ids[2], T0 + 10 * DAY)  # captured 50 days ago, yet kept: the close counts
    _trail(db, 9, ids[3], T0 + 10 * DAY)  # its alert is unknown: kept, the safe side
    retention = Retention(
        db,
        tmp_path / "thumbs",
        evidence,
        AuditLog(db, clock=lambda: now),
        RetentionPolicy(non_hit_days=14),
        clock=lambda: now,
    )
    report = retention.run()
    assert _ids(db) == {ids[1], ids[2], ids[3]}
    assert report.deleted == 1 and report.hits_kept == 3  # all older than the 14-day cutoff
    db.close()
