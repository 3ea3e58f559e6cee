"""The edge agent on a full disk: sightings wait, nothing is lost, delivery resumes by itself.

A real central (CURVE ZeroMQ into DuckDB) and a real agent whose spool lives on a small
tmpfs that the test fills to the brim.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from bench.loadgen import make_sighting
from central.app import Central
from edge_agent.app import EdgeAgent
from edge_agent.config import AgentConfig
from edge_agent.publish import pack_record
from shared import wire
from shared.config import load
from tests.harness import (
    KeyRing,
    agent_config_file,
    central_config,
    make_keyring,
    start_central,
    wait_for,
)
from tests.small_fs import PAGE, Filler, small_filesystem


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return make_keyring(tmp_path / "keys", ["a1"])


@pytest.fixture
def central(tmp_path: Path, ring: KeyRing) -> Iterator[Central]:
    c = start_central(central_config(ring, tmp_path / "central"))
    yield c
    c.stop()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with small_filesystem(tmp_path / "fs", 128 * PAGE) as fs:
        yield fs


def _agent(
    tmp_path: Path, ring: KeyRing, endpoint: str, spool: Path, **spool_cfg: int
) -> EdgeAgent:
    path = agent_config_file(tmp_path / "a1.yaml", ring, "a1", endpoint, spool)
    config = load(path, AgentConfig, {"spool": {"dir": str(spool), **spool_cfg}})
    return EdgeAgent(config, [wire.CameraInfo(camera_id="cam-1")])  # make_sighting's camera


def _stored(central: Central) -> list[str]:
    with central.db.reader() as con:
        return [r[0] for r in con.execute("SELECT event_id::VARCHAR FROM sightings").fetchall()]


def test_full_disk_holds_sightings_and_delivers_each_once_when_space_returns(
    tmp_path: Path, ring: KeyRing, central: Central, small_disk: Path
) -> None:
    agent = _agent(tmp_path, ring, central.ingest.bound_endpoint, small_disk / "spool")
    agent.start()
    rng = random.Random(7)
    sent: list[str] = []

    def submit(n: int) -> list[int]:
        items = [make_sighting(rng) for _ in range(n)]
        sent.extend(s.event_id for s, _ in items)
        return agent.submit(items)

    try:
        assert submit(5) == [1, 2, 3, 4, 5]
        filler = Filler(small_disk / "fill")
        filler.fill()
        for _ in range(10):  # the pipeline keeps running and submitting
            assert submit(4) == []
        assert agent.submits.write_errors >= 1
        assert agent.submits.held == 40 and agent.submits.dropped == 0
        assert agent.spool.stats().write_errors >= 1
        filler.free()  # space returns; the idle loop's retry() writes the held ones
        assert wait_for(lambda: bool(agent.retry()) or agent.submits.held == 0, 10)
        assert submit(3) == [46, 47, 48]  # seqs without gaps: 5 + 40 held + 3
        assert wait_for(lambda: agent.spool.stats().depth == 0, 30)
    finally:
        agent.stop()
    stored = _stored(central)
    assert len(stored) == len(set(stored)) == 48
    assert set(stored) == set(sent)


def test_memory_bound_drops_the_oldest_held_and_counts_them(
    tmp_path: Path, ring: KeyRing, small_disk: Path
) -> None:
    agent = _agent(tmp_path, ring, "tcp://127.0.0.1:9", small_disk / "spool", held_max_bytes=50_000)
    try:
        Filler(small_disk / "fill").fill()
        rng = random.Random(3)
        for _ in range(20):
            agent.submit([make_sighting(rng)])  # about 8.5 KB each
        assert agent.submits.held == 5 and agent.submits.dropped == 15
    finally:
        agent.stop()


def test_refused_record_stays_spooled_until_its_dead_letter_fits_on_disk(
    tmp_path: Path, ring: KeyRing, central: Central, small_disk: Path
) -> None:
    agent = _agent(tmp_path, ring, central.ingest.bound_endpoint, small_disk / "spool")
    rng = random.Random(5)
    good, frames = make_sighting(rng)
    bad, _ = make_sighting(rng)
    bad = msgspec.structs.replace(bad, track_frames=-1, thumbnails=[])  # central refuses it
    seqs = agent.spool.append(
        [pack_record(wire.encode_item(bad), []), pack_record(wire.encode_item(good), frames)]
    )
    filler = Filler(small_disk / "fill")
    filler.fill()
    dead = small_disk / "spool" / "dead"
    agent.start()
    try:
        stats = agent.publisher.stats
        assert wait_for(lambda: stats.dead_letter_errors >= 1, 20)
        assert wait_for(lambda: stats.records_acked == 2, 5)
        assert agent.spool.read(0, 10, 1 << 20)[0][0] == seqs[0]  # kept, not dropped
        assert agent.spool.stats().depth == 1 and stats.dead_letters == 0
        assert not dead.exists() or list(dead.iterdir()) == []  # no half-written letter
        filler.free()
        assert wait_for(lambda: agent.spool.stats().depth == 0, 10)
        assert stats.dead_letters == 1
        assert sorted(p.suffix for p in dead.iterdir()) == [".rec", ".why"]
        assert "invalid item" in (dead / f"{seqs[0]:020d}.why").read_text()
    finally:
        agent.stop()
    assert _stored(central) == [good.event_id]
