"""Central accepts face observations over the real CURVE link, counts them and stores
nothing of them: no row, no embedding, no image (real ZeroMQ, real DuckDB, real central)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
import zmq

from central.app import Central
from shared import wire
from tests.harness import (
    KeyRing,
    central_config,
    curve_dealer,
    make_keyring,
    send_hello,
    start_central,
)

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60 + b"\xff\xd9"


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return make_keyring(tmp_path / "keys", ["a1"])


@pytest.fixture
def central(tmp_path: Path, ring: KeyRing) -> Iterator[Central]:
    c = start_central(central_config(ring, tmp_path / "central"))
    yield c
    c.stop()


@pytest.fixture
def sock(central: Central, ring: KeyRing) -> Iterator[zmq.Socket[Any]]:
    ctx: zmq.Context[Any] = zmq.Context()
    s = curve_dealer(
        ctx, central.ingest.bound_endpoint, ring, ring.root / "agents" / "a1.key_secret"
    )
    assert send_hello(s, "a1", ["door-1"])["kind"] == "ack"
    yield s
    s.close()
    ctx.term()


def _face(vector: np.ndarray, **extra: Any) -> wire.FaceObservation:
    emb = np.asarray(vector, dtype="<f2")
    return wire.FaceObservation(
        event_id=wire.new_event_id(),
        camera_id="door-1",
        captured_at=time.time(),
        box=(10.0, 20.0, 90.0, 120.0),
        quality=0.8,
        embedding=emb.tobytes(),
        dim=len(emb),
        model="face-reidentification-retail-0095",
        **extra,
    )


def _answer(sock: zmq.Socket[Any], frames: list[bytes]) -> dict[str, Any]:
    sock.send_multipart(frames)
    assert sock.poll(5000), "central did not answer"
    answer: dict[str, Any] = msgpack.unpackb(sock.recv_multipart()[0])
    return answer


def _all_blobs(central: Central) -> list[bytes]:
    """Every BLOB value in every table of central's database."""
    found: list[bytes] = []
    with central.db.reader() as con:
        columns = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE data_type = 'BLOB'"
        ).fetchall()
        for table, column in columns:
            found += [r[0] for r in con.execute(f'SELECT "{column}" FROM "{table}"').fetchall()]
    return [bytes(b) for b in found if b is not None]


def test_face_observations_are_acked_counted_and_not_stored(
    central: Central, sock: zmq.Socket[Any], tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    faces = [_face(rng.standard_normal(256)) for _ in range(3)]
    header = wire.SightingBatch(agent_id="a1", batch_id=11, items=list(faces))
    ack = _answer(sock, [wire.encode(header)])
    assert ack["kind"] == "ack" and ack["ref"] == 11 and ack["status"] == "ok"
    assert ack["rejected"] == [] and ack["stored"] == 0
    assert central.ingest.stats.faces_received == 3
    assert central.ingest.stats.sightings_stored == 0
    with central.db.reader() as con:
        assert con.execute("SELECT count(*) FROM sightings").fetchone() == (0,)
    blobs = _all_blobs(central)
    assert not any(f.embedding in b for f in faces for b in blobs)
    # Nor anywhere on central's disk (thumbnail store, database file, logs).
    for path in (tmp_path / "central").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(f.embedding[:64] in data for f in faces), path


def test_a_face_observation_with_an_image_is_refused_and_the_rest_of_the_batch_kept(
    central: Central, sock: zmq.Socket[Any]
) -> None:
    rng = np.random.default_rng(4)
    clean = _face(rng.standard_normal(256))
    leaky = _face(
        rng.standard_normal(256), thumbnails=[wire.Thumbnail(role="face", width=8, height=8)]
    )
    header = wire.SightingBatch(agent_id="a1", batch_id=12, items=[clean, leaky])
    ack = _answer(sock, [wire.encode(header), JPEG])
    assert ack["ref"] == 12
    reasons = {index: reason for index, reason in ack["rejected"]}
    assert list(reasons) == [1] and "stay on the edge" in reasons[1]
    assert central.ingest.stats.faces_received == 1
    assert central.ingest.stats.items_rejected_by_reason["face image refused"] == 1
    assert JPEG not in b"".join(_all_blobs(central))
