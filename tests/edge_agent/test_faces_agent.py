"""A running edge agent with a face camera sends face observations, embeddings only, to a
real central over CURVE ZeroMQ; central counts them and stores nothing of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config import AgentConfig
from edge_agent.run import run_agent
from models.store import ModelStore
from tests.harness import central_config, make_keyring, start_central

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
