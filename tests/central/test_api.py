"""Central's REST API for agents, sightings and ingest status, through a real uvicorn."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.loadgen import make_sighting
from tests.central.police_helpers import Agent, Server, police_config
from tests.harness import KeyRing, admin_headers, make_keyring, wait_for


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return make_keyring(tmp_path / "keys", ["a1"])


@pytest.fixture
def server(tmp_path: Path, ring: KeyRing) -> Iterator[Server]:
    s = Server(police_config(ring, tmp_path / "central"))
    yield s
    s.stop()


@pytest.fixture
def agent(tmp_path: Path, ring: KeyRing, server: Server) -> Iterator[Agent]:
    a = Agent(tmp_path, ring, server.central.ingest.bound_endpoint)
    yield a
    a.stop()


def test_agents_register_from_hello_and_heartbeats(server: Server, agent: Agent) -> None:
    agent.sight("AT1234BC")
    with server.client(server.operator_token) as http:
        assert wait_for(lambda: _agent(http).get("sightings_received") == 1, 20)
        info = _agent(http)
    assert info["online"] is True and info["health"] == "ok" and info["problems"] == []
    assert [c["camera_id"] for c in info["cameras"]] == ["cam-1", "cam-2", "cam-3"]
    assert info["spool_evictions"] == 0 and info["software_version"]
    assert info["last_seen"] >= info["first_seen"]


def _agent(http: httpx.Client) -> dict[str, Any]:
    agents = http.get("/api/v1/agents").json()
    return next((a for a in agents if a["agent_id"] == "a1"), {})


def test_sightings_listing_paging_and_thumbnails(server: Server, agent: Agent) -> None:
    rng = random.Random(9)
    sent = []
    for plate in ("AA1111AA", "BC2222HH", "KA3333TT"):
        sighting, frames = make_sighting(rng, plate=plate)
        agent.agent.submit([(sighting, frames)])
        sent.append((sighting, frames))
    with server.client(server.operator_token) as http:
        assert wait_for(lambda: len(http.get("/api/v1/sightings").json()["items"]) == 3, 20)
        first = http.get("/api/v1/sightings", params={"limit": 2}).json()
        rest = http.get(
            "/api/v1/sightings", params={"limit": 2, "before": first["next_before"]}
        ).json()
        items = first["items"] + rest["items"]
        assert [i["plate"] for i in items] == ["KA3333TT", "BC2222HH", "AA1111AA"]  # newest first
        assert rest["next_before"] is None
        s, frames = sent[1]
        assert s.vehicle is not None and s.plate is not None
        row = next(i for i in items if i["event_id"] == s.event_id)
        assert row["plate_region"] == "UA-BC" and row["camera_id"] == "cam-1"
        assert row["vehicle_type"] == s.vehicle.type and row["track_frames"] == s.track_frames
        assert [c["text"] for c in row["plate_candidates"]] == [c.text for c in s.plate.candidates]
        assert [t["role"] for t in row["thumbnails"]] == ["vehicle", "plate"]
        for thumb, jpeg in zip(row["thumbnails"], frames, strict=True):
            got = http.get(thumb["url"])
            assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
            assert got.content == jpeg


@pytest.mark.parametrize(
    ("path", "params", "status", "error"),
    [
        ("/api/v1/sightings", {"limit": 0}, 400, "limit"),
        ("/api/v1/sightings", {"limit": "many"}, 400, "limit"),
        ("/api/v1/sightings", {"before": "yesterday"}, 400, "before"),
        (
            "/api/v1/sightings/0195f000-0000-7000-8000-000000000000/thumbnails/0",
            {},
            404,
            "no thumbnail",
        ),
    ],
)
def test_bad_requests_get_4xx_with_the_error_body(
    server: Server, path: str, params: dict[str, str | int], status: int, error: str
) -> None:
    with server.client(server.operator_token) as http:
        resp = http.get(path, params=params)
    assert resp.status_code == status
    body = resp.json()
    assert set(body) == {"status", "error", "detail"} and body["status"] == status
    assert error in (body["error"] + str(body["detail"]))


def test_openapi_schema_and_ingest_status(server: Server, agent: Agent) -> None:
    agent.sight("AT0001AT")
    with server.client(admin_headers(server.config)["Authorization"].split()[1]) as http:
        schema = http.get("/schema/openapi.json").json()
        assert {"/api/v1/agents", "/api/v1/sightings", "/api/v1/status/ingest"} <= set(
            schema["paths"]
        )
        assert wait_for(
            lambda: http.get("/api/v1/status/ingest").json()["sightings_stored"] == 1, 20
        )
        status = http.get("/api/v1/status/ingest").json()
    assert status["messages_rejected_total"] == 0 and status["batches"] >= 1
