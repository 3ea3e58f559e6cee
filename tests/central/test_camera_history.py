"""The per-minute camera history behind the health page: heartbeats and sightings over real
CURVE ZeroMQ into a real ingest server on a test clock, real DuckDB, the real writer; and
its bound, enforced by the retention run."""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import msgpack
import msgspec
import pytest
import zmq

from bench.loadgen import make_sighting
from central.audit import AuditLog
from central.camera_health import CameraHealthService
from central.ingest import IngestServer
from central.retention import Retention, RetentionPolicy
from central.store.camera_history import CameraHistory, minute_of
from central.store.db import Database
from central.store.thumbs import ThumbStore
from shared import keys, wire
from tests.harness import central_config, curve_dealer, make_keyring, send_hello, wait_for

DAY = 86_400
M0 = minute_of(time.time()) - 3600  # a whole minute, an hour ago (inside ingest's window)


class Clock:
    """The ingest server's time, moved by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class NoHits:
    """No sighting is evidence (retention deletes by age only)."""

    def protected_sightings(self, older_than: datetime) -> list[str]:
        return []


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[IngestServer, Database, zmq.Socket[Any], Clock]]:
    ring = make_keyring(tmp_path / "keys", ["a1"])
    config = central_config(ring, tmp_path / "central")
    db = Database(tmp_path / "central" / "h.duckdb")
    thumbs = ThumbStore(tmp_path / "central" / "thumbs")
    clock = Clock(M0 + 5)
    server = IngestServer(
        config.ingest.bind,
        keys.load_pair(config.ingest.server_secret_key),
        keys.load_allow_list(config.ingest.allowed_agents_dir),
        db,
        thumbs,
        clock=clock,
    )
    server.start()
    ctx: zmq.Context[Any] = zmq.Context()
    sock = curve_dealer(ctx, server.bound_endpoint, ring, ring.root / "agents" / "a1.key_secret")
    assert send_hello(sock, "a1", ["cam-1", "cam-2"])["kind"] == "ack"
    yield server, db, sock, clock
    sock.close()
    ctx.term()
    server.stop()
    thumbs.close()
    db.close()


def _beats(db: Database) -> int:
    with db.reader() as con:
        row = con.execute("SELECT coalesce(sum(beats), 0) FROM camera_minutes").fetchone()
    return int(row[0]) if row else 0


def _beat(sock: zmq.Socket[Any], db: Database, cams: list[wire.CameraStats]) -> None:
    before = _beats(db)
    sock.send_multipart([wire.encode(wire.Heartbeat(agent_id="a1", sent_at=0.0, cameras=cams))])
    assert wait_for(lambda: _beats(db) == before + len(cams), 10), "heartbeat not stored"


def _send(
    sock: zmq.Socket[Any], batch_id: int, items: list[tuple[wire.Sighting, list[bytes]]]
) -> dict[str, Any]:
    header = wire.SightingBatch(agent_id="a1", batch_id=batch_id, items=[s for s, _ in items])
    sock.send_multipart([wire.encode(header), *(f for _, fs in items for f in fs)])
    assert sock.poll(5000), "central did not answer"
    answer: dict[str, Any] = msgpack.unpackb(sock.recv_multipart()[0])
    return answer


def test_heartbeats_and_sightings_aggregate_per_camera_minute(rig: Any) -> None:
    _server, db, sock, clock = rig
    cam = wire.CameraStats
    _beat(sock, db, [cam(camera_id="cam-1", online=True, fps_in=10, fps_out=8, frames_dropped=3),
                     cam(camera_id="cam-2", online=False)])  # fmt: skip
    clock.now = M0 + 35
    _beat(sock, db, [cam(camera_id="cam-1", online=True, fps_in=12, fps_out=6, frames_dropped=5)])
    rng = random.Random(9)
    seen = [
        msgspec.structs.replace(s, captured_at=float(at))
        for s, at in (
            (make_sighting(rng, camera_id="cam-1")[0], M0 + 10),
            (make_sighting(rng, camera_id="cam-1")[0], M0 + 20),
            (make_sighting(rng, camera_id="cam-1")[0], M0 + 59),
            (make_sighting(rng, camera_id="cam-1")[0], M0 + 61),
            (make_sighting(rng, camera_id="cam-2")[0], M0 + 70),
        )
    ]
    items = [(s, make_sighting(rng)[1]) for s in seen]
    clock.now = M0 + 75
    assert _send(sock, 1, items)["stored"] == 5
    assert _send(sock, 2, items[:2])["duplicates"] == 2  # a resend counts nothing twice
    _beat(sock, db, [cam(camera_id="cam-1", online=False, fps_in=9, fps_out=5, frames_dropped=4)])

    with db.reader() as con:
        rows = con.execute(
            "SELECT camera_id, epoch(minute)::BIGINT - ?, beats, online_beats, frames_dropped, "
            "sightings FROM camera_minutes ORDER BY camera_id, minute",
            [M0],
        ).fetchall()
    assert rows == [
        ("cam-1", 0, 2, 2, 5, 3),
        ("cam-1", 60, 1, 0, 4, 1),
        ("cam-2", 0, 1, 0, 0, 0),
        ("cam-2", 60, 0, 0, 0, 1),
    ]
    history = CameraHealthService(db, 20.0, clock=lambda: M0 + 90).history("a1")
    assert history.end == M0 + 120 and history.start == M0 + 120 - 24 * 3600
    by_cam = {s.camera_id: s for s in history.cameras}
    assert by_cam["cam-1"].minutes == [M0, M0 + 60]
    assert by_cam["cam-1"].fps_in == [11.0, 9.0] and by_cam["cam-1"].fps_out == [7.0, 5.0]
    assert by_cam["cam-1"].sightings == [3, 1]
    assert by_cam["cam-2"].fps_in == [0.0, None] and by_cam["cam-2"].sightings == [0, 1]


def _beat_at(
    history: CameraHistory, beat: wire.Heartbeat, at: float, con: duckdb.DuckDBPyConnection
) -> None:
    history.beat(con, beat, at)


def test_retention_drops_history_older_than_the_configured_days(tmp_path: Path) -> None:
    db = Database(tmp_path / "r.duckdb")
    now = float(M0)
    history = CameraHistory()
    beat = wire.Heartbeat(
        agent_id="a1", sent_at=now, cameras=[wire.CameraStats(camera_id="c", online=True)]
    )
    for age_days in (9.0, 7.01, 6.99, 0.0):
        db.writer.call(functools.partial(_beat_at, history, beat, now - age_days * DAY))
    db.writer.call(lambda con: history.add_sightings(con, {("a1", "c", M0 - 8 * DAY): 4}))
    retention = Retention(
        db,
        tmp_path / "thumbs",
        NoHits(),
        AuditLog(db, clock=lambda: now),
        RetentionPolicy(health_history_days=7),
        clock=lambda: now,
    )
    report = retention.run()
    assert report.health_minutes_deleted == 3
    with db.reader() as con:
        left = con.execute(
            "SELECT (? - epoch(minute)) / 86400.0 FROM camera_minutes ORDER BY minute", [now]
        ).fetchall()
    assert [round(r[0], 2) for r in left] == [6.99, 0.0]
    db.close()
