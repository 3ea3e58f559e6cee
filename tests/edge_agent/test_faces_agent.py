"""A running edge agent with a face camera sends face observations, embeddings only, to a
real central over CURVE ZeroMQ; central counts them and stores nothing of them."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from central.app import build
from edge_agent.config import AgentConfig
from edge_agent.run import run_agent
from models.store import ModelStore
from shared import wire
from tests.harness import central_config, make_keyring, start_central, wait_for

CLIP = "faces-dev/videos/short_hamilton_clip.mp4"


@pytest.mark.slow
def test_an_agent_with_a_face_camera_sends_observations_central_does_not_keep(
    model_store: ModelStore, shared_data: Path, tmp_path: Path
) -> None:
    ring = make_keyring(tmp_path / "keys", ["a1"])
    central = start_central(central_config(ring, tmp_path / "central"))
    try:
        config = AgentConfig.model_validate(
            {
                "agent_id": "a1",
                "central": {
                    "endpoint": central.ingest.bound_endpoint,
                    "server_public_key": str(ring.central_public),
                    "agent_secret_key": str(ring.root / "agents" / "a1.key_secret"),
                    "heartbeat_interval_s": 0.5,
                    "backoff_max_s": 1.0,
                },
                "spool": {"dir": str(tmp_path / "spool")},
                "status_interval_s": 0,
                "cameras": [
                    {
                        "camera_id": "stage-door",
                        "kind": "file",
                        "source": str(shared_data / CLIP),
                        "realtime": False,
                        "faces": {"enabled": True, "detect_fps": 4.0},
                    }
                ],
            }
        )
        run_agent(config, model_store.root, seconds=20)
        faces = central.ingest.stats.faces_received
        assert faces >= 1
        # One observation per track, not one per detection (4/s over a 10 s clip).
        assert faces < 40
        assert central.ingest.stats.items_rejected == 0
        with central.db.reader() as con:
            rows = con.execute("SELECT count(*) FROM sightings").fetchone()
        # Only the vehicle sightings the clip yields are rows; no face became one.
        assert rows is not None and rows[0] == central.ingest.stats.sightings_stored
    finally:
        central.stop()


@pytest.mark.slow
def test_central_fetches_the_crop_of_an_observation_the_running_agent_sent(
    model_store: ModelStore, shared_data: Path, tmp_path: Path
) -> None:
    """The only path by which a face image leaves the edge: central asks for the crop of an
    observation it received (as it will on a watchlist match) and gets that face's JPEG."""
    ring = make_keyring(tmp_path / "keys", ["a1"])
    seen: list[tuple[str, wire.FaceObservation]] = []
    central = build(
        central_config(ring, tmp_path / "central"),
        on_faces=lambda agent, faces: seen.extend((agent, f) for f in faces),
    )
    central.start()
    stop = threading.Event()
    config = AgentConfig.model_validate(
        {
            "agent_id": "a1",
            "central": {
                "endpoint": central.ingest.bound_endpoint,
                "server_public_key": str(ring.central_public),
                "agent_secret_key": str(ring.root / "agents" / "a1.key_secret"),
                "heartbeat_interval_s": 0.5,
                "backoff_max_s": 1.0,
            },
            "spool": {"dir": str(tmp_path / "spool")},
            "status_interval_s": 0,
            "cameras": [
                {
                    "camera_id": "stage-door",
                    "kind": "file",
                    "source": str(shared_data / CLIP),
                    "realtime": False,
                    "faces": {"enabled": True, "detect_fps": 4.0, "crops": {"width": 128}},
                }
            ],
        }
    )
    agent = threading.Thread(target=run_agent, args=(config, model_store.root, stop))
    agent.start()
    try:
        assert wait_for(lambda: len(seen) >= 1, 120), "no face observation reached central"
        crops = central.ingest.crops
        received = list(seen)  # more may arrive while the crops are fetched
        for agent_id, observation in received:
            assert agent_id == "a1"
            result = crops.fetch(agent_id, observation.event_id)
            assert result.status == "ok" and result.jpeg is not None, observation.event_id
            image = cv2.imdecode(np.frombuffer(result.jpeg, np.uint8), cv2.IMREAD_COLOR)
            assert image is not None and image.shape[1] <= 128
        assert crops.fetch("a1", wire.new_event_id()).status == "expired"
        print(f"{len(received)} observations, every crop fetched")
        assert central.ingest.stats.crops.ok == len(received)
        # Nothing else carried a face image: no face observation came with a thumbnail.
        assert central.ingest.stats.items_rejected == 0
        stop.set()
        agent.join(60)
        assert not agent.is_alive()
        # The agent stopped: its crops went with it (memory only), central is told at once.
        assert crops.fetch("a1", seen[0][1].event_id, timeout=5.0).status == "unreachable"
        assert central.ingest.stats.crops.timeouts == 0
    finally:
        stop.set()
        agent.join(60)
        central.stop()
