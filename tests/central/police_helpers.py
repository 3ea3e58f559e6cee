"""A real central (ingest + uvicorn HTTP) and a real in-process edge agent for API tests."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from bench.loadgen import make_sighting
from central.app import Central, build, create_app
from central.config import AlertsConfig, CentralConfig
from edge_agent.app import EdgeAgent
from edge_agent.config import AgentConfig
from shared import wire
from shared.config import load
from tests.harness import KeyRing, agent_config_file, central_config, role_token


def police_config(ring: KeyRing, data_dir: Path) -> CentralConfig:
    """Central config with fast offline detection (agents heartbeat every 0.5 s)."""
    cfg = central_config(ring, data_dir)
    return cfg.model_copy(
        update={
            "agent_offline_after_s": 2.0,
            "alerts": AlertsConfig(offline_check_interval_s=0.2),
        }
    )


class Server:
    """Central built from config and served by a real uvicorn on 127.0.0.1."""

    def __init__(self, config: CentralConfig) -> None:
        self.config = config
        self._police: str | None = None
        self._operator: str | None = None
        self.central: Central = build(config)
        uv = uvicorn.Config(
            create_app(self.central),
            host="127.0.0.1",
            port=config.http.port,
            log_level="warning",
            lifespan="on",
        )
        self._server = uvicorn.Server(uv)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{config.http.port}"

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTP client of this server, with a bearer token (default: a police client's)."""
        token = token or self.police_token
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.Client(base_url=self.url, timeout=40, headers=headers)

    @property
    def police_token(self) -> str:
        """The API token of a police client (alerts:read, alerts:ack), made once."""
        if self._police is None:
            self._police = role_token(self.central, "police-api", ["alerts:read", "alerts:ack"])
        return self._police

    @property
    def operator_token(self) -> str:
        """The API token of an operator (every scope), made once."""
        if self._operator is None:
            self._operator = role_token(self.central, "operator")
        return self._operator

    def stop(self) -> None:
        """Graceful stop: the lifespan's shutdown stops ingest and alerting, closes the DB."""
        self._server.should_exit = True
        self._thread.join(30)


class Agent:
    """A real edge agent (spool + CURVE ZeroMQ publisher) in this process."""

    def __init__(self, tmp: Path, ring: KeyRing, endpoint: str, agent_id: str = "a1") -> None:
        cfg = agent_config_file(
            tmp / f"{agent_id}.yaml", ring, agent_id, endpoint, tmp / f"spool-{agent_id}"
        )
        self.agent = EdgeAgent(
            load(cfg, AgentConfig),
            cameras=[wire.CameraInfo(camera_id=f"cam-{i}") for i in (1, 2, 3)],
        )
        self.agent.start()
        self._rng = random.Random(5)

    def sight(self, plate: str, camera: str = "cam-1") -> wire.Sighting:
        """Publish one sighting of ``plate``; returns it."""
        sighting, frames = make_sighting(self._rng, camera_id=camera, plate=plate)
        self.agent.submit([(sighting, frames)])
        return sighting

    def stop(self) -> None:
        """Stop publishing and heartbeating."""
        self.agent.stop()


def page(client: httpx.Client, **params: Any) -> dict[str, Any]:
    """GET /api/v1/alerts with params; asserts 200."""
    resp = client.get("/api/v1/alerts", params=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body
