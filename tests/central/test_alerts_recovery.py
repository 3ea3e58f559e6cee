"""Alerts are at-least-once and never doubled, with real `varta central serve` processes.

Central keeps a durable watermark of matched sightings and matches again, at start,
everything stored after it; creating an alert is idempotent per sighting and wanted entry.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx
import msgpack
import zmq

from bench.loadgen import make_sighting
from central.store.db import Database
from central.store.sightings import SightingRepository
from shared import wire
from tests.central.alerts_helpers import incoming, write_wanted_list
from tests.harness import (
    central_config,
    central_yaml,
    curve_dealer,
    make_keyring,
    send_hello,
    spawn_central,
    wait_for,
)

PLATES = ["AA7681TE", "BC1234HH", "KA0001AB"]  # the wanted list, folded to Latin


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _start(cfile: Path, port: int) -> subprocess.Popen[bytes]:
    server = spawn_central(cfile)
    assert wait_for(lambda: _up(f"http://127.0.0.1:{port}/api/v1/health"), 60)
    return server


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=30) == 0


def _trails(db_file: Path) -> list[tuple[str, str]]:
    """``(event_id, dedup_key)`` of every trail row, with repeats if there were any."""
    con = duckdb.connect(str(db_file), read_only=True)
    try:
        rows = con.execute(
            "SELECT t.event_id, a.dedup_key FROM alert_trail t JOIN alerts a USING (alert_id)"
        ).fetchall()
    finally:
        con.close()
    return [(str(r[0]), str(r[1])) for r in rows]


def test_sightings_stored_after_the_watermark_are_matched_once_at_start(
    tmp_path: Path,
) -> None:
    ring = make_keyring(tmp_path / "keys", ["a1"])
    config = central_config(ring, tmp_path / "central")
    db_file = tmp_path / "central" / "varta.duckdb"
    write_wanted_list(db_file)
    # Sightings stored but never matched, as a crash after the ingest commit would leave
    # them (the follow-up that records their alerts did not commit).
    db = Database(db_file)
    now = time.time()
    stored = [incoming(p, at=now + i, seed=i) for i, p in enumerate([*PLATES, "XX0000XX"])]
    db.writer.call(lambda con: SightingRepository().insert(con, stored, now + 10))
    db.close()
    cfile = central_yaml(tmp_path / "central.yaml", config)
    for _ in range(2):  # the second start finds them matched already
        _stop(_start(cfile, config.http.port))
        trails = _trails(db_file)
        assert sorted(e for e, _ in trails) == sorted(s.sighting.event_id for s in stored[:3])
        assert len(trails) == len(set(trails)) == 3


def _batch(batch_id: int, rng: random.Random) -> tuple[list[bytes], list[str]]:
    items = [make_sighting(rng, plate=rng.choice(PLATES)) for _ in range(5)]
    header = wire.SightingBatch(agent_id="a1", batch_id=batch_id, items=[s for s, _ in items])
    return [wire.encode(header), *(f for _, fs in items for f in fs)], [
        s.event_id for s, _ in items
    ]


def test_central_sigkilled_mid_stream_gives_each_alert_once(tmp_path: Path) -> None:
    """Central is SIGKILLed while wanted cars stream in (the kill can land between a
    commit, its ack and the alerts); the sender resends what was not acked, central
    restarts, and every stored sighting of a wanted car is on an alert trail exactly once."""
    ring = make_keyring(tmp_path / "keys", ["a1"])
    config = central_config(ring, tmp_path / "central")
    db_file = tmp_path / "central" / "varta.duckdb"
    write_wanted_list(db_file)
    cfile = central_yaml(tmp_path / "central.yaml", config)
    rng = random.Random(4)
    batches, ids = [], []
    for b in range(400):
        frames, event_ids = _batch(b + 1, rng)
        batches.append(frames)
        ids += event_ids
    for kill_after in (0.3, 0.6):
        server = _start(cfile, config.http.port)
        ctx: zmq.Context[Any] = zmq.Context()
        sock = curve_dealer(ctx, config.ingest.bind, ring, ring.root / "agents" / "a1.key_secret")
        assert send_hello(sock, "a1", ["cam-1"])["kind"] == "ack"
        for frames in batches:
            sock.send_multipart(frames)  # a stream, not waiting for acks
        time.sleep(kill_after)
        os.kill(server.pid, signal.SIGKILL)
        server.wait()
        sock.close()
        ctx.term()
    server = _start(cfile, config.http.port)
    try:
        ctx = zmq.Context()
        sock = curve_dealer(ctx, config.ingest.bind, ring, ring.root / "agents" / "a1.key_secret")
        assert send_hello(sock, "a1", ["cam-1"])["kind"] == "ack"
        for frames in batches:  # resend everything; stored ones count as duplicates
            sock.send_multipart(frames)
            assert sock.poll(10_000)
            assert msgpack.unpackb(sock.recv_multipart()[0])["status"] == "ok"
        sock.close()
        ctx.term()
        time.sleep(0.5)  # the alert follow-up of the last turn
    finally:
        _stop(server)
    trails = _trails(db_file)
    con = duckdb.connect(str(db_file), read_only=True)
    stored = {str(r[0]) for r in con.execute("SELECT event_id FROM sightings").fetchall()}
    con.close()
    assert stored == set(ids)
    assert len(trails) == len(set(trails))  # never doubled
    assert sorted(e for e, _ in trails) == sorted(ids)  # every wanted sighting, once
