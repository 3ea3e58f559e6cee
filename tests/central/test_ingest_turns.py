"""``ingest.min_turn_interval_ms`` and ``ingest.writer_duty``: batches arriving within the
interval share one storage transaction, and every sighting is still stored once and
acknowledged."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import zmq

from bench.loadgen import make_sighting
from central.app import Central
from shared import wire
from tests.harness import central_config, curve_dealer, make_keyring, send_hello, start_central

BATCHES, PER_BATCH, GAP_S = 10, 5, 0.05


@contextlib.contextmanager
def _linked(tmp_path: Path, **ingest: object) -> Iterator[tuple[Central, zmq.Socket[Any]]]:
    """A central with these ingest settings, and agent a1's socket after its hello."""
    ring = make_keyring(tmp_path / "keys", ["a1"])
    config = central_config(ring, tmp_path / "central")
    config = config.model_copy(update={"ingest": config.ingest.model_copy(update=ingest)})
    central = start_central(config)
    ctx: zmq.Context[Any] = zmq.Context()
    sock = curve_dealer(
        ctx, central.ingest.bound_endpoint, ring, ring.root / "agents" / "a1.key_secret"
    )
    try:
        assert send_hello(sock, "a1", ["cam-1"])["kind"] == "ack"
        yield central, sock
    finally:
        sock.close(0)
        ctx.term()
        central.stop()


def test_batches_within_the_interval_share_a_transaction(tmp_path: Path) -> None:
    with _linked(tmp_path, min_turn_interval_ms=400) as (central, sock):
        turns_before = central.ingest.stats.turns
        rng = random.Random(5)
        sent: set[str] = set()
        for batch_id in range(1, BATCHES + 1):  # spread over ~0.5 s: two or three turns
            items = [make_sighting(rng, thumb_bytes=(64, 32)) for _ in range(PER_BATCH)]
            sent |= {s.event_id for s, _ in items}
            header = wire.SightingBatch(
                agent_id="a1", batch_id=batch_id, items=[s for s, _ in items]
            )
            sock.send_multipart([wire.encode(header), *(f for _, fs in items for f in fs)])
            time.sleep(GAP_S)
        acks: dict[int, dict[str, Any]] = {}
        while len(acks) < BATCHES:
            assert sock.poll(10_000), f"only {len(acks)} of {BATCHES} batches were acked"
            ack = msgpack.unpackb(sock.recv_multipart()[0])
            acks[ack["ref"]] = ack
        turns = central.ingest.stats.turns - turns_before
        with central.db.reader() as con:
            rows = con.execute("SELECT event_id::VARCHAR FROM sightings").fetchall()
    assert sorted(acks) == list(range(1, BATCHES + 1))
    assert all(a["stored"] == PER_BATCH and a.get("rejected", []) == [] for a in acks.values())
    assert 1 <= turns <= 3 < BATCHES
    assert sorted(r[0] for r in rows) == sorted(sent)


def _turns_for(tmp_path: Path, duty: float, batches: int, gap_s: float) -> tuple[int, int]:
    """Send ``batches`` one-sighting batches ``gap_s`` apart; (turns taken, rows stored)."""
    with _linked(tmp_path, writer_duty=duty, min_turn_interval_ms=0) as (central, sock):
        turns_before = central.ingest.stats.turns
        rng = random.Random(7)
        acked = 0
        for batch_id in range(1, batches + 1):
            s, frames = make_sighting(rng, thumb_bytes=(64, 32))
            header = wire.SightingBatch(agent_id="a1", batch_id=batch_id, items=[s])
            sock.send_multipart([wire.encode(header), *frames])
            time.sleep(gap_s)
            while sock.poll(0):
                acked += msgpack.unpackb(sock.recv_multipart()[0])["stored"]
        while acked < batches:
            assert sock.poll(10_000), f"only {acked} of {batches} stored"
            acked += msgpack.unpackb(sock.recv_multipart()[0])["stored"]
        turns = central.ingest.stats.turns - turns_before
        with central.db.reader() as con:
            row = con.execute("SELECT count(*) FROM sightings").fetchone()
        assert row is not None
        return turns, row[0]


def test_writer_duty_gathers_a_trickle_into_fewer_transactions(tmp_path: Path) -> None:
    """Without a bound central commits every batch alone while batches trickle in; with
    ``writer_duty`` 0.1 a turn waits until storing the last took at most a tenth of the
    time since it began, so several batches share a transaction, and all are stored."""
    eager, eager_rows = _turns_for(tmp_path / "eager", 1.0, 60, 0.01)
    bounded, bounded_rows = _turns_for(tmp_path / "bounded", 0.1, 60, 0.01)
    assert eager_rows == bounded_rows == 60
    print("turns with duty 1:", eager, "with duty 0.1:", bounded)
    assert bounded * 2 < eager, (bounded, eager)
