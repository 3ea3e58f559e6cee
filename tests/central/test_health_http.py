"""The health page over HTTP in process (real DuckDB, Litestar's test client): who may see
it, what it shows after a hello and heartbeats, and the live part the page polls."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from central.app import create_app
from central.store.agents import AgentRepository
from central.store.camera_history import CameraHistory
from shared import wire
from tests.central.auth_helpers import PASSWORD, Rig, make_rig

TOKEN = re.compile(r'name="_csrf_token" value="([0-9a-f]+)"')


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = make_rig(tmp_path)
    for name, role in (("olena", "operator"), ("petro", "supervisor"), ("ivan", "engineer")):
        r.user(name, role)
    now = time.time()
    hello = wire.AgentHello(
        agent_id="edge-7",
        software_version="1.2.3",
        models={"detector": "vehicle-detection-0201"},
        cameras=[wire.CameraInfo(camera_id="cam-1", name="Halytska")],
        msg_id=1,
    )
    stats = [wire.CameraStats(camera_id="cam-1", online=True, fps_in=12.5, fps_out=6.0,
                              frames_dropped=42)]  # fmt: skip
    beat = wire.Heartbeat(agent_id="edge-7", sent_at=now, cameras=stats, spool_depth=17,
                          spool_evictions=3, link=wire.LinkHealth(reconnects=2, spool_peak=950),
                          clock=wire.ClockHealth(steps=2, steps_reverted=2))  # fmt: skip
    agents, history = AgentRepository(), CameraHistory()

    def write(con: object) -> None:
        agents.hello(con, hello, now)  # type: ignore[arg-type]
        for back in (120, 60, 0):
            agents.heartbeat(con, beat, now - back)  # type: ignore[arg-type]
            history.beat(con, beat, now - back)  # type: ignore[arg-type]
        history.add_sightings(con, {("edge-7", "cam-1", int(now // 60 * 60)): 5})  # type: ignore[arg-type]

    r.central.db.writer.call(write)
    yield r


@pytest.fixture
def client(rig: Rig) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(rig.central)) as c:
        yield c


def _sign_in(client: TestClient[Litestar], user: str) -> None:
    match = TOKEN.search(client.get("/console/login").text)
    assert match is not None
    body = {"username": user, "password": PASSWORD, "_csrf_token": match.group(1), "lang": "en"}
    resp = client.post("/console/login", data=body, follow_redirects=False)
    assert resp.status_code == 303, resp.text


@pytest.mark.parametrize(
    ("user", "status", "link"),
    [("olena", 403, False), ("petro", 200, True), ("ivan", 200, True)],
)
def test_who_may_see_the_health_page(
    client: TestClient[Litestar], user: str, status: int, link: bool
) -> None:
    _sign_in(client, user)
    for path in ("/console/health", "/console/health/agents"):
        assert client.get(path).status_code == status, path
    home = client.get("/console/health" if link else "/console/")
    assert ('data-nav="health"' in home.text) is link


def test_anonymous_goes_to_login(client: TestClient[Litestar]) -> None:
    resp = client.get("/console/health", follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"].startswith("/console/login")


def test_page_shows_the_agent_its_cameras_and_the_plots(client: TestClient[Litestar]) -> None:
    _sign_in(client, "ivan")
    page = client.get("/console/health").text
    assert 'data-agent="edge-7" data-online="true"' in page
    assert 'data-camera="cam-1" data-online="true"' in page
    assert "vehicle-detection-0201" in page and "1.2.3" in page
    assert '<dd data-field="spool_depth">17</dd>' in page
    assert '<dd data-field="spool_evictions">3</dd>' in page
    assert '<dd data-field="reconnects">2</dd>' in page
    assert '<dd data-field="spool_peak">950</dd>' in page
    assert '<dd data-field="clock_steps">2 (2)</dd>' in page
    assert (
        "<td>12,5</td>" in page
    )  # Ukrainian by default and "<td>6</td>" in page and "<td>42</td>" in page
    assert 'data-camera="edge-7/cam-1"' in page
    assert page.count('<polyline class="series fps_in"') == 1  # three minutes, one run
    assert page.count('<polyline class="series sightings"') == 1
    assert page.count('role="img"') == 2
    sightings = re.findall(r'<td data-field="sightings">(\d+)</td>', page)
    assert sum(int(n) for n in sightings) == 5
    live = client.get("/console/health/agents").text
    assert live.startswith('<div id="health-agents"') and 'hx-trigger="every 5s"' in live
