"""Ingest never dies and never stalls: per-item checks, frame bounds, schema strings,
camera ownership, a full disk on a real small file system, memory under a flood, health.

Real CURVE ZeroMQ sockets on loopback, real DuckDB files, real processes.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgpack
import msgspec
import pytest
import zmq

from bench.loadgen import make_sighting
from central.app import Central
from central.config import CentralConfig
from shared import wire
from tests.harness import (
    KeyRing,
    agent_config_file,
    central_config,
    central_yaml,
    curve_dealer,
    make_keyring,
    send_hello,
    spawn_central,
    spawn_loadgen,
    start_central,
    stored_ids,
    wait_for,
)

DAY = 86_400.0


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return make_keyring(tmp_path / "keys", ["a1", "a2"])


def _start(ring: KeyRing, data_dir: Path, **ingest: object) -> Central:
    config = central_config(ring, data_dir)
    config = config.model_copy(update={"ingest": config.ingest.model_copy(update=ingest)})
    return start_central(config)


@pytest.fixture
def central(tmp_path: Path, ring: KeyRing) -> Iterator[Central]:
    c = _start(ring, tmp_path / "central", max_frames=40)
    yield c
    c.stop()


@pytest.fixture
def sock(central: Central, ring: KeyRing) -> Iterator[zmq.Socket[Any]]:
    ctx: zmq.Context[Any] = zmq.Context()
    s = curve_dealer(
        ctx, central.ingest.bound_endpoint, ring, ring.root / "agents" / "a1.key_secret"
    )
    assert send_hello(s, "a1", ["cam-1"])["kind"] == "ack"
    yield s
    s.close()
    ctx.term()


def _answer(sock: zmq.Socket[Any], frames: list[bytes], timeout_ms: int = 5000) -> dict[str, Any]:
    sock.send_multipart(frames)
    assert sock.poll(timeout_ms), "central did not answer"
    answer: dict[str, Any] = msgpack.unpackb(sock.recv_multipart()[0])
    return answer


def _batch(batch_id: int, sightings: list[tuple[wire.Sighting, list[bytes]]]) -> list[bytes]:
    header = wire.SightingBatch(agent_id="a1", batch_id=batch_id, items=[s for s, _ in sightings])
    return [wire.encode(header), *(f for _, frames in sightings for f in frames)]


def _ids(central: Central) -> set[str]:
    with central.db.reader() as con:
        return {r[0] for r in con.execute("SELECT event_id::VARCHAR FROM sightings").fetchall()}


def test_bad_items_are_refused_one_by_one_and_the_rest_stored(
    central: Central, sock: zmq.Socket[Any]
) -> None:
    rng = random.Random(1)
    now = time.time()
    good, frames = make_sighting(rng, camera_id="cam-1")
    other = [make_sighting(rng, camera_id="cam-1") for _ in range(5)]
    bad = [
        (msgspec.structs.replace(other[0][0], event_id="-" * 36), other[0][1]),
        (msgspec.structs.replace(other[1][0], captured_at=now + 3600), other[1][1]),
        (msgspec.structs.replace(other[2][0], captured_at=now - 40 * DAY), other[2][1]),
        (msgspec.structs.replace(other[3][0], camera_id="cam-of-a2"), other[3][1]),
        (msgspec.structs.replace(other[4][0], captured_at=float("inf")), other[4][1]),
    ]
    ack = _answer(sock, _batch(7, [(good, frames), *bad]))
    assert ack["ref"] == 7 and ack["stored"] == 1 and ack["duplicates"] == 0
    reasons = {index: reason for index, reason in ack["rejected"]}
    assert sorted(reasons) == [1, 2, 3, 4, 5]
    assert "not a UUID" in reasons[1]
    assert "outside the accepted window" in reasons[2] and "clock" in reasons[2]
    assert "outside the accepted window" in reasons[3]
    assert "was not announced by this agent" in reasons[4]
    assert reasons[5]  # inf: refused by the wire bounds or as not finite
    assert _ids(central) == {good.event_id}
    by_reason = central.ingest.stats.items_rejected_by_reason
    assert by_reason["event id not a UUID"] == 1
    assert by_reason["capture time out of window"] >= 2
    assert by_reason["camera not announced"] == 1


def test_an_event_id_resent_in_another_spelling_is_stored_once(
    central: Central, sock: zmq.Socket[Any]
) -> None:
    """The wire allows upper case and no hyphens; the id is the same, so is the sighting."""
    rng = random.Random(2)
    first, frames = make_sighting(rng, camera_id="cam-1")
    again, more = make_sighting(rng, camera_id="cam-1")
    ack = _answer(sock, _batch(1, [(first, frames)]))
    assert ack["stored"] == 1 and ack["duplicates"] == 0
    shouted = msgspec.structs.replace(first, event_id=first.event_id.upper())
    bare = msgspec.structs.replace(again, event_id=again.event_id.replace("-", ""))
    repeat = [(shouted, frames), (bare, more), (again, more)]  # again: a repeat in the batch
    ack = _answer(sock, _batch(2, repeat))
    assert ack["stored"] == 1 and ack["duplicates"] == 2 and not ack.get("rejected")
    new, frames3 = make_sighting(rng, camera_id="cam-1")
    ack = _answer(
        sock, _batch(3, [(msgspec.structs.replace(new, event_id=new.event_id.upper()), frames3)])
    )
    assert ack["stored"] == 1 and ack["duplicates"] == 0  # new, though not spelled as stored
    assert _ids(central) == {first.event_id, again.event_id, new.event_id}
    assert central.ingest.stats.sightings_stored == 3 and central.ingest.stats.duplicates == 2


@pytest.mark.parametrize("schema", ["².0", "1.x", "", "1", "١.0", "1.0.0"])
def test_odd_schema_strings_are_refused_without_raising(
    central: Central, sock: zmq.Socket[Any], schema: str
) -> None:
    header = msgpack.packb(
        {"kind": "batch", "schema": schema, "agent_id": "a1", "batch_id": 3, "items": []}
    )
    ack = _answer(sock, [header])
    assert ack["status"] == "rejected" and ack["ref"] == 3
    assert central.ingest.stats.messages_rejected["unsupported version"] == 1
    good = make_sighting(random.Random(2), camera_id="cam-1")
    assert _answer(sock, _batch(4, [good]))["stored"] == 1  # and ingest goes on


def test_too_many_frames_are_refused_without_being_kept(
    central: Central, sock: zmq.Socket[Any]
) -> None:
    header = wire.encode(wire.SightingBatch(agent_id="a1", batch_id=5, items=[]))
    sock.send_multipart([header, *([b"\xff\xd8" + b"x" * 100] * 200)])  # max_frames is 40
    assert wait_for(lambda: central.ingest.stats.messages_rejected["too many frames"] == 1, 10)
    good = make_sighting(random.Random(3), camera_id="cam-1")
    assert _answer(sock, _batch(6, [good]))["stored"] == 1


def test_a_foreign_camera_in_a_heartbeat_is_dropped_and_counted(
    central: Central, sock: zmq.Socket[Any]
) -> None:
    beat = wire.Heartbeat(
        agent_id="a1",
        sent_at=time.time(),
        cameras=[
            wire.CameraStats(camera_id="cam-1", online=True),
            wire.CameraStats(camera_id="cam-of-a2", online=False),
        ],
    )
    sock.send_multipart([wire.encode(beat)])
    counted = central.ingest.stats.messages_rejected
    assert wait_for(lambda: counted["camera not announced by agent"] == 1, 10)
    with central.db.reader() as con:
        cams = con.execute("SELECT camera_id FROM cameras WHERE agent_id = 'a1'").fetchall()
    assert cams == [("cam-1",)]


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_oversized_and_flooding_messages_cannot_grow_central_memory(
    tmp_path: Path, ring: KeyRing
) -> None:
    """An allow-listed agent sends frames over the 1 MiB bound and then floods central
    with 8 MiB messages as fast as it can; central's RSS stays within the stated bound
    (ZeroMQ queues at most rcv_hwm whole messages per connection: 16 x 8 MiB = 128 MiB,
    plus the turn in hand) and it keeps storing a real agent's sightings."""
    config = central_config(ring, tmp_path / "central")
    config = config.model_copy(update={"ingest": config.ingest.model_copy(update={"rcv_hwm": 16})})
    cfile = central_yaml(tmp_path / "central.yaml", config)
    server = spawn_central(cfile)
    try:
        health = f"http://127.0.0.1:{config.http.port}/api/v1/health"
        assert wait_for(lambda: _up(health), 60)
        base = _rss_kib(server.pid)
        ctx: zmq.Context[Any] = zmq.Context()
        secret = ring.root / "agents" / "a1.key_secret"
        big = os.urandom(2 << 20)  # 2 MiB: over max_frame_bytes, the link is dropped
        for _ in range(20):
            s = curve_dealer(ctx, config.ingest.bind, ring, secret)
            s.setsockopt(zmq.SNDTIMEO, 2000)
            with contextlib.suppress(zmq.Again):
                s.send_multipart([b"x", big])
            s.close()
        flood = curve_dealer(ctx, config.ingest.bind, ring, secret)
        flood.setsockopt(zmq.SNDHWM, 4)
        flood.setsockopt(zmq.SNDTIMEO, 100)
        chunk = os.urandom((1 << 20) - 1024)
        header = wire.encode(wire.SightingBatch(agent_id="a1", batch_id=1, items=[]))
        peak, sent = base, 0
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            try:
                flood.send_multipart([header, *([chunk] * 8)])  # 8 MiB, malformed
                sent += 1
            except zmq.Again:
                pass
            peak = max(peak, _rss_kib(server.pid))
        flood.close()
        ctx.term()
        grown_mib = (peak - base) / 1024
        print(f"flood: {sent} messages of 8 MiB, RSS {base / 1024:.0f} -> {peak / 1024:.0f} MiB")
        assert sent > 20  # the flood was real
        assert grown_mib < 16 * 8 + 64 + 64  # HWM bound + one turn of 8 messages + slack
        agent_cfg = agent_config_file(
            tmp_path / "a2.yaml", ring, "a2", config.ingest.bind, tmp_path / "spool"
        )
        log = tmp_path / "accepted.txt"
        assert spawn_loadgen(agent_cfg, count=200, log_accepted=log).wait(timeout=120) == 0
    finally:
        server.terminate()
        assert server.wait(timeout=30) == 0
    assert set(stored_ids(tmp_path / "central" / "varta.duckdb")) == set(log.read_text().split())


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code in (200, 503)
    except httpx.HTTPError:
        return False


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 48 MiB file system (tmpfs), mounted for the test and removed after."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root (CI runs as root)")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path, leave_bytes: int) -> Path:
    """Fill a file system until about ``leave_bytes`` are free; the filler file."""
    filler = folder / "filler"
    st = os.statvfs(folder)
    size = max(0, st.f_bavail * st.f_frsize - leave_bytes)
    with filler.open("wb", buffering=0) as fh:  # unbuffered: ENOSPC comes from write()
        block = b"\0" * (1 << 20)
        try:
            while size > 0:
                fh.write(block[: min(size, len(block))])
                size -= len(block)
        except OSError:
            pass  # full: that is the point
    return filler


@pytest.mark.parametrize(
    ("min_free_mb", "leave"),
    [(8, 4 << 20), (0, 0)],
    ids=["below-the-free-space-floor", "truly-full-enospc"],
)
def test_full_disk_stops_acks_then_resumes_losing_nothing(
    tmp_path: Path, ring: KeyRing, small_fs: Path, min_free_mb: int, leave: int
) -> None:
    config: CentralConfig = central_config(ring, small_fs / "central")
    config = config.model_copy(
        update={"ingest": config.ingest.model_copy(update={"min_free_mb": min_free_mb})}
    )
    cfile = central_yaml(tmp_path / "central.yaml", config)
    server = spawn_central(cfile)
    health = f"http://127.0.0.1:{config.http.port}/api/v1/health"
    try:
        assert wait_for(lambda: _up(health), 60)
        agent_cfg = agent_config_file(
            tmp_path / "a1.yaml", ring, "a1", config.ingest.bind, tmp_path / "spool"
        )
        log = tmp_path / "accepted.txt"
        agent = spawn_loadgen(agent_cfg, count=3000, rate=300, log_accepted=log, wait_acked=120)
        time.sleep(2)  # sightings flow
        filler = _fill(small_fs, leave)
        failing = wait_for(lambda: httpx.get(health, timeout=10).status_code == 503, 30)
        body = httpx.get(health, timeout=10).json()
        time.sleep(3)  # the agent keeps producing into its spool; central refuses to ack
        filler.unlink()  # space returns
        assert failing, body
        assert body["status"] == "failing"
        assert agent.wait(timeout=180) == 0
        assert wait_for(lambda: httpx.get(health, timeout=10).status_code == 200, 30)
        status = httpx.get(health, timeout=10).json()
        assert status["status"] == "ok", status
    finally:
        server.terminate()
        assert server.wait(timeout=30) == 0
    ids = stored_ids(small_fs / "central" / "varta.duckdb")
    accepted = log.read_text().split()
    assert len(accepted) == 3000
    assert len(ids) == len(set(ids)) == 3000  # nothing lost, nothing twice
    assert set(ids) == set(accepted)
    packs = sum(p.stat().st_size for p in (small_fs / "central" / "thumbs").rglob("*.pack"))
    # every thumbnail byte on disk belongs to a stored row: reclaimed when a write failed
    with_thumbs = 3000 * (6000 + 2000)
    assert packs == with_thumbs
    shutil.rmtree(small_fs / "central", ignore_errors=True)


def test_a_row_the_database_refuses_is_refused_alone(
    central: Central, ring: KeyRing, sock: zmq.Socket[Any]
) -> None:
    """A value that passes the wire's checks but not the table's column type (a frame
    count over INTEGER) fails the turn's commit; the turn is stored again batch by batch
    and item by item, so only that item is refused, for good, and another agent's batch in
    the same turn is stored."""
    ctx: zmq.Context[Any] = zmq.Context()
    other = curve_dealer(
        ctx, central.ingest.bound_endpoint, ring, ring.root / "agents" / "a2.key_secret"
    )
    assert send_hello(other, "a2", ["cam-2"])["kind"] == "ack"
    rng = random.Random(9)
    items = [make_sighting(rng, camera_id="cam-1") for _ in range(3)]
    items[1] = (msgspec.structs.replace(items[1][0], track_frames=3_000_000_000), items[1][1])
    theirs = make_sighting(rng, camera_id="cam-2")
    header = wire.SightingBatch(agent_id="a2", batch_id=1, items=[theirs[0]])
    other.send_multipart([wire.encode(header), *theirs[1]])
    ack = _answer(sock, _batch(8, items))
    assert other.poll(5000)
    their_ack = msgpack.unpackb(other.recv_multipart()[0])
    other.close()
    ctx.term()
    assert ack["stored"] == 2 and [r[0] for r in ack["rejected"]] == [1]
    assert ack["rejected"][0][1].startswith("store failed")
    assert their_ack["stored"] == 1
    assert _ids(central) == {items[0][0].event_id, items[2][0].event_id, theirs[0].event_id}
    assert central.ingest.stats.items_rejected_by_reason["store failed"] == 1
