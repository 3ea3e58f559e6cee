"""Face matching at ingest over real CURVE ZeroMQ into a real DuckDB: exactly one candidate
per observation however often its batch is delivered, nothing for non-matches, and the
crop request after the commit through the ``CropFetcher`` seam."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq
from prometheus_client import CollectorRegistry

from central.app import Central, build
from central.config import FacesConfig
from central.faces.crops import CropResult
from central.faces.model import PhotoInput
from central.metrics import CentralCollector
from edge_agent.face_analysis import FaceAnalyser
from edge_agent.face_models import FaceModels
from models.store import ModelStore
from shared import wire
from tests.central.face_helpers import BIDEN, CLAPTON, OBAMA, OBAMA_2, observation, photo_bytes
from tests.harness import KeyRing, central_config, curve_dealer, make_keyring, send_hello, wait_for

CROP = b"\xff\xd8\xff\xe0" + b"\x01" * 200 + b"\xff\xd9"


class EdgeCrops:
    """Stands in for the agent side of the crop link (branch croplink): holds the crop of
    some observations, answers "expired" for the others, and records every request."""

    def __init__(self, held: dict[str, bytes]) -> None:
        self.held = held
        self.asked: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def fetch(self, agent_id: str, observation_id: str) -> CropResult:
        with self.lock:
            self.asked.append((agent_id, observation_id))
        jpeg = self.held.get(observation_id)
        return CropResult("ok", jpeg) if jpeg is not None else CropResult("expired")


@pytest.fixture(scope="module")
def analyser(model_store: ModelStore) -> FaceAnalyser:
    return FaceAnalyser(FaceModels.load(model_store))


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return make_keyring(tmp_path / "keys", ["a1"])


@pytest.fixture
def crops() -> EdgeCrops:
    return EdgeCrops({})


@pytest.fixture
def central(
    tmp_path: Path, ring: KeyRing, model_store: ModelStore, crops: EdgeCrops
) -> Iterator[Central]:
    cfg = central_config(ring, tmp_path / "central")
    c = build(cfg.model_copy(update={"faces": FacesConfig(models_dir=model_store.root)}))
    assert c.face_candidates is not None
    c.face_candidates.set_fetcher(crops)
    c.start()
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


def _answer(sock: zmq.Socket[Any], frames: list[bytes]) -> dict[str, Any]:
    sock.send_multipart(frames)
    assert sock.poll(5000), "central did not answer"
    answer: dict[str, Any] = msgpack.unpackb(sock.recv_multipart()[0])
    return answer


def _count(central: Central, sql: str) -> int:
    with central.db.reader() as con:
        row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def test_a_batch_delivered_twice_stores_its_candidate_once_and_fetches_crops(
    central: Central,
    sock: zmq.Socket[Any],
    analyser: FaceAnalyser,
    shared_data: Path,
    crops: EdgeCrops,
) -> None:
    assert central.faces is not None and central.face_candidates is not None
    central.faces.enrol(
        "Barack O.",
        "court order 5",
        "wanted",
        4_000_000_000.0,
        [PhotoInput("o.jpg", photo_bytes(shared_data, OBAMA))],
        "sup1",
    )
    match = observation(analyser, shared_data, OBAMA_2)
    crops.held[match.event_id] = CROP
    misses = [observation(analyser, shared_data, rel) for rel in (CLAPTON, BIDEN)]
    header = wire.encode(wire.SightingBatch(agent_id="a1", batch_id=5, items=[match, *misses]))
    for _ in range(2):  # the agent resends when an ack is lost
        ack = _answer(sock, [header])
        assert ack["ref"] == 5 and ack["status"] == "ok" and ack["rejected"] == []
    assert central.ingest.stats.faces_received == 6
    assert central.ingest.stats.faces_matched == 1
    assert _count(central, "SELECT count(*) FROM face_candidates") == 1
    assert _count(central, "SELECT count(*) FROM audit_log WHERE action = 'faces.matched'") == 1
    # The crop is asked for once, after the commit, and stored with the candidate.
    assert wait_for(lambda: central.face_candidates.get(match.event_id).crop_status == "ok", 10)
    assert crops.asked == [("a1", match.event_id)]
    assert central.face_candidates.crop(match.event_id, "op1") == CROP
    assert central.ingest.stats.as_dict()["faces_matched"] == 1
    registry = CollectorRegistry()
    registry.register(CentralCollector(central))
    assert registry.get_sample_value("varta_ingest_faces_matched_total") == 1
    assert registry.get_sample_value("varta_ingest_faces_received_total") == 6
    assert _count(central, "SELECT count(*) FROM audit_log WHERE action = 'faces.crop.view'") == 1
    # No trace of the two non-matching faces anywhere on central's disk (database, WAL,
    # thumbnail packs).
    on_disk = b"".join(
        p.read_bytes() for p in Path(central.config.storage.data_dir).rglob("*") if p.is_file()
    )
    assert match.embedding[:64] in on_disk  # the scan does see what central stored
    assert not any(m.embedding[:64] in on_disk for m in misses)


def test_a_crop_the_edge_no_longer_holds_is_marked_expired(
    central: Central,
    sock: zmq.Socket[Any],
    analyser: FaceAnalyser,
    shared_data: Path,
    crops: EdgeCrops,
) -> None:
    assert central.faces is not None and central.face_candidates is not None
    central.faces.enrol(
        "Barack O.",
        "court order 5",
        "wanted",
        4_000_000_000.0,
        [PhotoInput("o.jpg", photo_bytes(shared_data, OBAMA))],
        "sup1",
    )
    match = observation(analyser, shared_data, OBAMA_2)
    ack = _answer(sock, [wire.encode(wire.SightingBatch(agent_id="a1", batch_id=6, items=[match]))])
    assert ack["status"] == "ok"
    candidates = central.face_candidates
    assert wait_for(lambda: candidates.get(match.event_id).crop_status == "expired", 10)
    assert candidates.crop(match.event_id, "op1") is None


def test_a_face_from_an_unannounced_camera_or_a_bad_embedding_is_refused(
    central: Central, sock: zmq.Socket[Any], analyser: FaceAnalyser, shared_data: Path
) -> None:
    assert central.faces is not None
    central.faces.enrol(
        "Barack O.",
        "court order 5",
        "wanted",
        4_000_000_000.0,
        [PhotoInput("o.jpg", photo_bytes(shared_data, OBAMA))],
        "sup1",
    )
    good = observation(analyser, shared_data, OBAMA_2)
    fields = {f: getattr(good, f) for f in good.__struct_fields__}
    foreign = wire.FaceObservation(**{**fields, "camera_id": "elsewhere"})
    short = wire.FaceObservation(
        **{**fields, "event_id": wire.new_event_id(), "embedding": good.embedding[:100]}
    )
    batch = wire.SightingBatch(agent_id="a1", batch_id=7, items=[foreign, short])
    ack = _answer(sock, [wire.encode(batch)])
    reasons = dict(ack["rejected"])
    assert "not announced" in reasons[0] and "face embedding" in reasons[1]
    assert _count(central, "SELECT count(*) FROM face_candidates") == 0


def test_a_match_of_a_person_expired_since_cannot_be_confirmed(
    central: Central, sock: zmq.Socket[Any], analyser: FaceAnalyser, shared_data: Path
) -> None:
    from central.faces.candidates import PersonNotActive

    assert central.faces is not None and central.face_candidates is not None
    person = central.faces.enrol(
        "Barack O.",
        "court order 5",
        "wanted",
        4_000_000_000.0,
        [PhotoInput("o.jpg", photo_bytes(shared_data, OBAMA))],
        "sup1",
    )
    match = observation(analyser, shared_data, OBAMA_2)
    ack = _answer(sock, [wire.encode(wire.SightingBatch(agent_id="a1", batch_id=8, items=[match]))])
    assert ack["status"] == "ok"
    candidates = central.face_candidates
    assert candidates.confirm(match.event_id, "op1").state == "pending"
    central.faces.expire(person.person_id, "sup1", "order lifted")
    with pytest.raises(PersonNotActive, match="expired on the watchlist"):
        candidates.confirm(match.event_id, "op2")
    rejected = candidates.reject(match.event_id, "op2", "order lifted before confirmation")
    assert rejected.state == "rejected" and rejected.alert_id is None


def test_a_crop_not_fetched_before_a_restart_is_fetched_after_it(
    tmp_path: Path,
    ring: KeyRing,
    model_store: ModelStore,
    analyser: FaceAnalyser,
    shared_data: Path,
) -> None:
    cfg = central_config(ring, tmp_path / "restart")
    cfg = cfg.model_copy(update={"faces": FacesConfig(models_dir=model_store.root)})
    first = build(cfg)
    assert first.faces is not None and first.face_candidates is not None
    first.face_candidates.set_fetcher(None)  # no crop requests in this run
    first.start()
    match = observation(analyser, shared_data, OBAMA_2)
    try:
        first.faces.enrol(
            "Barack O.",
            "court order 5",
            "wanted",
            4_000_000_000.0,
            [PhotoInput("o.jpg", photo_bytes(shared_data, OBAMA))],
            "sup1",
        )
        ctx: zmq.Context[Any] = zmq.Context()
        sock = curve_dealer(
            ctx, first.ingest.bound_endpoint, ring, ring.root / "agents" / "a1.key_secret"
        )
        assert send_hello(sock, "a1", ["door-1"])["kind"] == "ack"
        batch = wire.SightingBatch(agent_id="a1", batch_id=9, items=[match])
        assert _answer(sock, [wire.encode(batch)])["status"] == "ok"
        sock.close()
        ctx.term()
        assert first.face_candidates.get(match.event_id).crop_status == "pending"
    finally:
        first.stop()
    crops = EdgeCrops({match.event_id: CROP})
    second = build(cfg)
    assert second.face_candidates is not None
    second.face_candidates.set_fetcher(crops)
    second.start()
    try:
        candidates = second.face_candidates
        assert wait_for(lambda: candidates.get(match.event_id).crop_status == "ok", 10)
        assert crops.asked == [("a1", match.event_id)]
    finally:
        second.stop()


def test_a_match_the_database_cannot_store_is_refused_not_dropped(
    central: Central, sock: zmq.Socket[Any], analyser: FaceAnalyser, shared_data: Path
) -> None:
    """A matching observation whose values pass the wire but not the table (a box beyond
    FLOAT) fails the turn's commit; the turn is stored again apart, and the match that
    still fails is refused for good in the ack (the agent dead-letters it), never acked
    as stored and lost; the rest of the batch is kept."""
    assert central.faces is not None
    central.faces.enrol(
        "Barack O.",
        "court order 5",
        "wanted",
        4_000_000_000.0,
        [PhotoInput("o.jpg", photo_bytes(shared_data, OBAMA))],
        "sup1",
    )
    good = observation(analyser, shared_data, OBAMA_2)
    fields = {f: getattr(good, f) for f in good.__struct_fields__}
    huge = wire.FaceObservation(**{**fields, "box": (0.0, 0.0, 1e300, 1e300)})
    other = observation(analyser, shared_data, CLAPTON)
    batch = wire.SightingBatch(agent_id="a1", batch_id=9, items=[other, huge])
    ack = _answer(sock, [wire.encode(batch)])
    assert [r[0] for r in ack["rejected"]] == [1], ack
    assert ack["rejected"][0][1].startswith("store failed")
    assert central.ingest.stats.items_rejected_by_reason["store failed"] == 1
    assert _count(central, "SELECT count(*) FROM face_candidates") == 0
