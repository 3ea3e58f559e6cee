"""Crop on match only: central fetches a face crop from the agent over the real CURVE link.

Real central (ingest thread, ROUTER, DuckDB), real edge agents (spool + publisher DEALER)
and raw CURVE DEALER sockets playing broken or old agents; nothing of ours is mocked.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import msgpack
import numpy as np
import pytest
import zmq
from prometheus_client import CollectorRegistry

from bench.loadgen import make_sighting
from central.app import Central, build
from central.faces.crops import CropFetcher, CropResult, jpeg_problem, jpeg_size
from central.metrics import CentralCollector
from edge_agent.app import EdgeAgent
from edge_agent.config import AgentConfig
from edge_agent.face_crops import FaceCropStore
from shared import wire
from shared.config import load
from tests.harness import (
    KeyRing,
    agent_config_file,
    central_config,
    curve_dealer,
    make_keyring,
    send_hello,
    start_central,
    wait_for,
)

TIMEOUT = 2.0
AGENTS = ["a1", "a2", "a3"]


def _jpeg(seed: int, width: int = 96, height: int = 112) -> bytes:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return bytes(data)


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return make_keyring(tmp_path / "keys", AGENTS)


@pytest.fixture
def central(tmp_path: Path, ring: KeyRing) -> Iterator[Central]:
    config = central_config(ring, tmp_path / "central")
    ingest = config.ingest.model_copy(update={"crop_timeout_s": TIMEOUT})
    c = start_central(config.model_copy(update={"ingest": ingest}))
    yield c
    c.stop()


def _edge_agent(
    tmp_path: Path, ring: KeyRing, endpoint: str, agent_id: str, crops: FaceCropStore | None
) -> EdgeAgent:
    """A started, connected edge agent answering from ``crops`` (None: no face camera)."""
    path = agent_config_file(
        tmp_path / f"{agent_id}.yaml", ring, agent_id, endpoint, tmp_path / f"spool-{agent_id}"
    )

    def lookup(observation_id: str) -> bytes | None:
        crop = crops.get(observation_id) if crops is not None else None
        return crop.jpeg if crop is not None else None

    agent = EdgeAgent(
        load(path, AgentConfig),
        [wire.CameraInfo(camera_id="cam-1")],
        crops=lookup if crops is not None else None,
    )
    agent.start()
    assert wait_for(lambda: agent.publisher.stats.connected, 10)
    return agent


@pytest.fixture
def start_agent(
    tmp_path: Path, ring: KeyRing, central: Central
) -> Iterator[Callable[..., EdgeAgent]]:
    started: list[EdgeAgent] = []

    def start(agent_id: str = "a1", crops: FaceCropStore | None = None) -> EdgeAgent:
        agent = _edge_agent(tmp_path, ring, central.ingest.bound_endpoint, agent_id, crops)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()


@pytest.fixture
def raw(central: Central, ring: KeyRing) -> Iterator[Callable[..., zmq.Socket[Any]]]:
    """A raw CURVE DEALER of a1 that said hello with the given features."""
    ctx: zmq.Context[Any] = zmq.Context()
    socks: list[zmq.Socket[Any]] = []

    def connect(features: list[str]) -> zmq.Socket[Any]:
        s = curve_dealer(
            ctx, central.ingest.bound_endpoint, ring, ring.root / "agents" / "a1.key_secret"
        )
        hello = wire.AgentHello(agent_id="a1", software_version="t", msg_id=1, features=features)
        s.send_multipart([wire.encode(hello)])
        assert s.poll(5000) and msgpack.unpackb(s.recv_multipart()[0])["kind"] == "ack"
        socks.append(s)
        return s

    yield connect
    for s in socks:
        s.close()
    ctx.term()


def _request(sock: zmq.Socket[Any]) -> wire.CropRequest:
    assert sock.poll(5000), "no crop request came"
    msg = wire.decode(sock.recv_multipart()[0])
    assert isinstance(msg, wire.CropRequest)
    return msg


def _reply(request: wire.CropRequest, status: str = "ok", **fields: Any) -> bytes:
    body = {
        "kind": "crop_reply",
        "schema": wire.SCHEMA,
        "agent_id": "a1",
        "request_id": request.request_id,
        "observation_id": request.observation_id,
        "status": status,
        **fields,
    }
    return bytes(msgpack.packb(body))


def test_a_held_crop_comes_back_byte_for_byte_and_a_gone_one_expired(
    central: Central, start_agent: Callable[..., EdgeAgent]
) -> None:
    now = [1000.0]
    store = FaceCropStore(max_count=2, max_age_s=60.0, clock=lambda: now[0])
    ids = [wire.new_event_id() for _ in range(4)]
    crops = [_jpeg(i) for i in range(4)]
    for oid, jpeg in zip(ids[:3], crops, strict=False):
        store.put(oid, jpeg, "cam-1")  # the first is evicted by count
    agent = start_agent("a1", store)
    fetch = central.ingest.crops.fetch
    took = []
    for _ in range(20):
        t0 = time.perf_counter()
        result = fetch("a1", ids[2])
        took.append(time.perf_counter() - t0)
        assert result.status == "ok" and result.jpeg == crops[2]
    assert fetch("a1", ids[1]).jpeg == crops[1]
    assert fetch("a1", ids[0]).status == "expired"  # evicted by count
    assert fetch("a1", ids[3]).status == "expired"  # never held
    now[0] += 61.0
    gone = fetch("a1", ids[2])
    assert gone.status == "expired" and gone.jpeg is None  # aged out
    stats = central.ingest.stats.as_dict()["crops"]
    assert stats["requests"] == 24 and stats["ok"] == 21 and stats["expired"] == 3
    assert stats["unreachable"] == stats["replies_malformed"] == 0
    p = agent.publisher.stats  # counted just after its reply went out
    assert wait_for(lambda: (p.crop_requests, p.crops_served, p.crops_expired) == (24, 21, 3), 2)
    took.sort()
    print(f"crop round trip p50 {took[10] * 1000:.1f} ms, max {took[-1] * 1000:.1f} ms")
    assert took[10] < 0.25  # an idle agent answers within its idle wait


def test_an_agent_without_face_cameras_answers_expired(
    central: Central, start_agent: Callable[..., EdgeAgent]
) -> None:
    agent = start_agent("a2")  # no crop lookup: no face camera
    result = central.ingest.crops.fetch("a2", wire.new_event_id())
    assert result.status == "expired" and result.jpeg is None
    assert wait_for(lambda: agent.publisher.stats.crops_expired == 1, 2)


def test_a_disconnected_or_unknown_agent_is_unreachable_without_waiting(
    central: Central, start_agent: Callable[..., EdgeAgent]
) -> None:
    store = FaceCropStore(max_count=4, max_age_s=60.0)
    oid = wire.new_event_id()
    store.put(oid, _jpeg(1), "cam-1")
    agent = start_agent("a1", store)
    fetch = central.ingest.crops.fetch
    assert fetch("a1", oid).status == "ok"
    agent.stop()
    time.sleep(0.3)  # the TCP close reaches central
    t0 = time.monotonic()
    assert fetch("a1", oid).status == "unreachable"
    assert fetch("a1", oid).status == "unreachable"
    assert fetch("nobody", oid).status == "unreachable"
    assert time.monotonic() - t0 < TIMEOUT  # none of them waited for the timeout
    stats = central.ingest.stats.crops
    assert stats.not_connected == 3 and stats.timeouts == 0


def test_an_old_agent_gets_no_request_and_a_silent_one_times_out(
    central: Central, raw: Callable[..., zmq.Socket[Any]]
) -> None:
    fetch = central.ingest.crops.fetch
    old = raw([])  # a schema 1.0 agent: no "crops" feature
    t0 = time.monotonic()
    assert fetch("a1", wire.new_event_id()).status == "unreachable"
    assert time.monotonic() - t0 < 0.5
    assert not old.poll(300), "an agent without crop support was sent a request"
    silent = raw([wire.FEATURE_CROPS])  # announces crops, never answers
    oid = wire.new_event_id()
    t0 = time.monotonic()
    assert fetch("a1", oid, timeout=1.0).status == "unreachable"
    waited = time.monotonic() - t0
    assert 0.9 <= waited < 1.6
    assert _request(silent).observation_id == oid
    stats = central.ingest.stats.crops
    assert stats.timeouts == 1 and stats.not_connected == 1 and stats.unreachable == 2


def _huge_dims(jpeg: bytes) -> bytes:
    """``jpeg`` with its frame header claiming 60000x60000 pixels."""
    data = bytearray(jpeg)
    pos = data.index(b"\xff\xc0")
    data[pos + 5 : pos + 9] = (60000).to_bytes(2, "big") * 2
    return bytes(data)


BAD_REPLIES: list[tuple[str, Callable[[wire.CropRequest], list[bytes]]]] = [
    ("no frame", lambda r: [_reply(r)]),
    ("two frames", lambda r: [_reply(r), _jpeg(1), _jpeg(2)]),
    ("not a jpeg", lambda r: [_reply(r), b"\x89PNG\r\n\x1a\n" + b"\0" * 50]),
    ("too big", lambda r: [_reply(r), _jpeg(3, 1000, 1000)[:2] + b"\0" * (300 << 10)]),
    ("huge dimensions", lambda r: [_reply(r), _huge_dims(_jpeg(4))]),
    ("no frame header", lambda r: [_reply(r), b"\xff\xd8\xff\xda\x00\x02" + b"\0" * 40]),
    ("expired with a frame", lambda r: [_reply(r, "expired"), _jpeg(5)]),
    ("unknown status", lambda r: [_reply(r, "maybe")]),
    ("field of the wrong type", lambda r: [_reply(r, request_id="seven")]),
    ("another agent's id", lambda r: [_reply(r, agent_id="a2"), _jpeg(6)]),
]


def test_malformed_replies_are_counted_and_ingest_keeps_going(
    central: Central, raw: Callable[..., zmq.Socket[Any]]
) -> None:
    sock = raw([wire.FEATURE_CROPS])
    crops = central.ingest.crops
    for n, (name, make) in enumerate(BAD_REPLIES, start=1):
        future = crops.submit("a1", wire.new_event_id())
        request = _request(sock)
        t0 = time.monotonic()
        sock.send_multipart(make(request))
        assert future.result(TIMEOUT + 1).status == "unreachable", name
        assert crops.stats.replies_malformed == n, name
        # A reply the ingest could tie to its request ends it at once; others time out.
        if name not in {"field of the wrong type", "unknown status", "another agent's id"}:
            assert time.monotonic() - t0 < TIMEOUT / 2, name
    # Replies nobody waits for: counted, dropped.
    future = crops.submit("a1", wire.new_event_id())
    request = _request(sock)
    stray = wire.CropRequest(request_id=request.request_id + 1000, observation_id="0" * 32)
    sock.send_multipart([_reply(stray), _jpeg(7)])
    sock.send_multipart([_reply(request, observation_id="f" * 32), _jpeg(7)])
    good = _jpeg(8)
    sock.send_multipart([_reply(request), good])
    assert future.result(TIMEOUT) == CropResult("ok", good)
    sock.send_multipart([_reply(request), good])  # a duplicate of an answered reply
    assert wait_for(lambda: crops.stats.replies_unknown == 3, 2)
    assert central.ingest.alive
    assert send_hello(sock, "a1", ["cam-1"])["kind"] == "ack"
    registry = CollectorRegistry()
    registry.register(CentralCollector(central))

    def metric(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(f"varta_face_crop_{name}_total", labels)

    assert metric("requests") == len(BAD_REPLIES) + 1
    assert metric("results", status="ok") == 1
    assert metric("results", status="unreachable_timeout") == 3
    assert metric("results", status="unreachable_bad_reply") == len(BAD_REPLIES) - 3
    assert metric("replies_refused", reason="malformed") == len(BAD_REPLIES)
    assert metric("replies_refused", reason="unknown_request") == 3


def test_concurrent_fetches_from_many_threads_reach_the_right_agent(
    central: Central, start_agent: Callable[..., EdgeAgent]
) -> None:
    held: dict[str, dict[str, bytes]] = {}
    for n, agent_id in enumerate(AGENTS):
        store = FaceCropStore(max_count=50, max_age_s=600.0)
        held[agent_id] = {}
        for i in range(10):
            oid, jpeg = wire.new_event_id(), _jpeg(100 * n + i)
            store.put(oid, jpeg, "cam-1")
            held[agent_id][oid] = jpeg
        start_agent(agent_id, store)
    asks = [(a, oid) for a in AGENTS for oid in held[a]] * 4
    random.Random(2).shuffle(asks)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(lambda ask: central.ingest.crops.fetch(*ask), asks))
    print(f"{len(asks)} fetches from 12 threads in {time.perf_counter() - t0:.3f} s")
    assert all(r.status == "ok" for r in results)
    assert [r.jpeg for r in results] == [held[a][oid] for a, oid in asks]
    # An agent holds only its own observations.
    other = next(iter(held["a1"]))
    assert central.ingest.crops.fetch("a2", other).status == "expired"
    assert central.ingest.stats.crops.replies_unknown == 0


def test_batches_still_arrive_exactly_once_while_crops_are_fetched(
    central: Central, start_agent: Callable[..., EdgeAgent], tmp_path: Path
) -> None:
    store = FaceCropStore(max_count=10, max_age_s=600.0)
    oid, jpeg = wire.new_event_id(), _jpeg(9)
    store.put(oid, jpeg, "cam-1")
    agent = start_agent("a1", store)
    done = threading.Event()
    fetched: list[bytes | None] = []

    def fetch_loop() -> None:
        while not done.is_set():
            fetched.append(central.ingest.crops.fetch("a1", oid).jpeg)

    fetcher = threading.Thread(target=fetch_loop)
    fetcher.start()
    rng = random.Random(3)
    sent: list[str] = []
    try:
        for _ in range(40):
            chunk = [make_sighting(rng, camera_id="cam-1") for _ in range(50)]
            agent.submit(chunk)
            sent += [s.event_id for s, _ in chunk]
            time.sleep(0.02)
        assert wait_for(lambda: agent.publisher.stats.records_acked >= len(sent), 60)
    finally:
        done.set()
        fetcher.join(10)
    with central.db.reader() as con:
        rows = [r[0] for r in con.execute("SELECT event_id::VARCHAR FROM sightings").fetchall()]
    assert len(rows) == len(set(rows)) == len(sent) == 2000
    assert set(rows) == set(sent)
    assert len(fetched) >= 10 and all(f == jpeg for f in fetched)
    assert central.ingest.stats.messages_rejected_total() == 0


@pytest.mark.parametrize(
    ("data", "max_bytes", "expected"),
    [
        (_jpeg(1, 40, 30), 1 << 20, ""),
        (b"GIF89a" + b"\0" * 20, 1 << 20, "not a JPEG"),
        (b"\xff\xd8" + b"\0" * 20, 1 << 20, "no JPEG frame header"),
        (_huge_dims(_jpeg(2)), 1 << 20, "60000x60000 pixels"),
        (_jpeg(3, 300, 300), 1 << 20, "300x300 pixels"),
        (_jpeg(4, 40, 30), 100, "bytes, at most 100 accepted"),
        (_jpeg(5, 40, 30)[:200], 1 << 20, "does not decode"),
    ],
)
def test_jpeg_checks(data: bytes, max_bytes: int, expected: str) -> None:
    problem = jpeg_problem(data, max_bytes=max_bytes, max_side=256)
    assert (expected in problem) if expected else problem == "", problem


def test_jpeg_size_reads_the_frame_header() -> None:
    assert jpeg_size(_jpeg(1, 123, 45)) == (123, 45)


def test_fetcher_refuses_a_bad_observation_id_and_bad_bounds() -> None:
    fetcher = CropFetcher()
    try:
        with pytest.raises(ValueError, match="observation id"):
            fetcher.submit("a1", "../../etc/passwd")
    finally:
        fetcher.close()
    with pytest.raises(ValueError, match="max_bytes"):
        CropFetcher(max_bytes=wire.MAX_CROP_BYTES + 1)


def test_an_on_faces_hook_on_the_ingest_thread_cannot_block_it_but_can_submit(
    tmp_path: Path, ring: KeyRing
) -> None:
    """``on_faces`` runs on the ingest thread: fetch() there would wait for itself."""
    store = FaceCropStore(max_count=4, max_age_s=60.0)
    oid, jpeg = wire.new_event_id(), _jpeg(11)
    store.put(oid, jpeg, "cam-1")
    refused: list[RuntimeError] = []
    futures: list[Future[CropResult]] = []

    def hook(agent_id: str, faces: list[wire.FaceObservation]) -> None:
        try:
            server.ingest.crops.fetch(agent_id, oid)
        except RuntimeError as err:
            refused.append(err)
        futures.append(server.ingest.crops.submit(agent_id, oid))

    server = build(central_config(ring, tmp_path / "central"), on_faces=hook)
    server.start()
    agent = _edge_agent(tmp_path, ring, server.ingest.bound_endpoint, "a1", store)
    face = wire.FaceObservation(
        event_id=wire.new_event_id(),
        camera_id="cam-1",
        captured_at=time.time(),
        box=(0.0, 0.0, 10.0, 10.0),
        quality=0.9,
        embedding=b"\0" * 512,
        dim=256,
    )
    try:
        agent.submit([(face, ())])
        assert wait_for(lambda: futures, 10)
        assert "use submit()" in str(refused[0])
        assert futures[0].result(TIMEOUT) == CropResult("ok", jpeg)
    finally:
        agent.stop()
        server.stop()
