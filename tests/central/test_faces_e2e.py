"""The whole face path with real parts: a running edge agent whose face stage (real models)
sees a photo of an enrolled person and one of somebody else, a real central (uvicorn,
DuckDB, CURVE ingest) that matches the first, fetches its crop from the agent over the
CURVE link and shows it with the candidate; the other face's crop never leaves the edge."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from central.config import FacesConfig
from edge_agent.app import EdgeAgent
from edge_agent.config import AgentConfig
from edge_agent.face_analysis import FaceAnalyser
from edge_agent.face_config import FacesConfig as EdgeFacesConfig
from edge_agent.face_crops import FaceCropStore
from edge_agent.face_models import FaceModels
from edge_agent.faces import FaceStage
from models.store import ModelStore
from shared import wire
from shared.config import load
from tests.central.face_helpers import CLAPTON, OBAMA, OBAMA_2, photo_bytes
from tests.central.police_helpers import Server
from tests.harness import (
    KeyRing,
    agent_config_file,
    central_config,
    make_keyring,
    role_token,
    wait_for,
)


@pytest.fixture(scope="module")
def analyser(model_store: ModelStore) -> FaceAnalyser:
    return FaceAnalyser(FaceModels.load(model_store))


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return make_keyring(tmp_path / "keys", ["a1"])


@pytest.fixture
def server(tmp_path: Path, ring: KeyRing, model_store: ModelStore) -> Iterator[Server]:
    cfg = central_config(ring, tmp_path / "central")
    s = Server(cfg.model_copy(update={"faces": FacesConfig(models_dir=model_store.root)}))
    yield s
    s.stop()


def _frame(shared_data: Path, rel: str, x: int) -> np.ndarray:
    """The photo on a grey 1280x720 frame at ``x``, as a camera would deliver it."""
    image = cv2.imread(str(shared_data / rel))
    assert image is not None, rel
    scale = 420 / max(image.shape[:2])
    face = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)))
    frame = np.full((720, 1280, 3), 90, np.uint8)
    frame[100 : 100 + face.shape[0], x : x + face.shape[1]] = face
    return frame


def test_a_running_agent_sees_a_wanted_person_and_central_fetches_the_crop(
    tmp_path: Path,
    ring: KeyRing,
    server: Server,
    analyser: FaceAnalyser,
    shared_data: Path,
) -> None:
    sup = server.client(role_token(server.central, "supervisor"))
    op = server.client(role_token(server.central, "operator"))
    files = [("photo", ("obama.jpg", photo_bytes(shared_data, OBAMA), "image/jpeg"))]
    fields = {
        "name": "Barack O.",
        "legal_basis": "order 1",
        "reason": "wanted",
        "expires": "2099-01-01",
    }
    assert sup.post("/api/v1/persons", data=fields, files=files).status_code == 201

    # The edge: a face stage on camera cam-1 keeping its crops, and the agent answering
    # crop requests from them.
    crops = FaceCropStore(max_count=10, max_age_s=600.0)
    stage = FaceStage(
        {"cam-1": (analyser, EdgeFacesConfig(enabled=True, detect_fps=0, track_timeout_s=0.5))},
        crops,
    )
    path = agent_config_file(
        tmp_path / "a1.yaml", ring, "a1", server.central.ingest.bound_endpoint, tmp_path / "spool"
    )
    agent = EdgeAgent(
        load(path, AgentConfig), [wire.CameraInfo(camera_id="cam-1")], crops=stage.crop_jpeg
    )
    agent.start()
    try:
        now = time.time()
        seen = stage.process_image("cam-1", _frame(shared_data, OBAMA_2, 60), now)
        seen += stage.process_image("cam-1", _frame(shared_data, CLAPTON, 760), now + 1.0)
        seen += stage.flush()
        assert len(seen) == 2
        wanted, other = seen
        agent.submit([(obs, []) for obs in seen])
        assert wait_for(lambda: server.central.ingest.stats.faces_received == 2, 20)

        def crop_status() -> str:
            found = op.get(f"/api/v1/face-candidates/{wanted.event_id}")
            return str(found.json()["crop_status"]) if found.status_code == 200 else ""

        assert wait_for(lambda: crop_status() == "ok", 20)
        (cand,) = op.get("/api/v1/face-candidates").json()
        assert cand["person_name"] == "Barack O." and cand["score"] >= 0.5
        crop = op.get(cand["crop_url"])
        held = crops.get(wanted.event_id)
        assert crop.status_code == 200 and held is not None and crop.content == held.jpeg
        # Only the match's crop was asked for; the other face's crop stayed on the edge.
        assert agent.publisher.stats.crop_requests == 1
        assert agent.publisher.stats.crops_served == 1
        other_crop = crops.get(other.event_id)
        assert other_crop is not None
        with server.central.db.reader() as con:
            blobs = [
                bytes(r[0])
                for table, column in con.execute(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE data_type = 'BLOB'"
                ).fetchall()
                for r in con.execute(f'SELECT "{column}" FROM "{table}"').fetchall()
                if r[0] is not None
            ]
        assert not any(other_crop.jpeg in b or other.embedding in b for b in blobs)
        assert any(held.jpeg in b for b in blobs)
    finally:
        agent.stop()
