"""The journey map on an on-site tile server, in headless Chromium with the page's
Content-Security-Policy enforced (not bypassed, unlike the axe-checked tests).

The tile server is a real HTTP server on localhost (another origin than central), drawing
each tile it is asked for; the browser still reaches nothing but localhost.
"""

from __future__ import annotations

import io
import signal
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from PIL import Image, ImageDraw

from central.config import CameraPlaceConfig, ConsoleConfig
from tests.central.alerts_helpers import write_wanted_list
from tests.central.police_helpers import Agent, police_config
from tests.harness import central_yaml, make_keyring, spawn_central, wait_for
from tests.web.conftest import CHROMIUM, LOCAL_HOSTS, PASSWORD, WANTED, Site, _up
from tests.web.console_helpers import photo, sight_photo

pytestmark = pytest.mark.slow

PLACES = [
    CameraPlaceConfig(id="cam-1", lat=50.4501, lon=30.5234, heading=90),
    CameraPlaceConfig(id="cam-2", lat=50.4547, lon=30.5166),
]


def _tile_png() -> bytes:
    image = Image.new("RGB", (256, 256), (236, 240, 232))
    ImageDraw.Draw(image).rectangle((0, 0, 255, 255), outline=(160, 170, 150))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


class TileServer:
    """An on-site tile server: every ``/{z}/{x}/{y}.png`` is a drawn tile; paths are kept."""

    def __init__(self) -> None:
        png = _tile_png()
        asked: list[str] = []
        self.asked = asked

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                asked.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(png)))
                self.end_headers()
                self.wfile.write(png)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def tiles() -> Iterator[TileServer]:
    server = TileServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, tiles: TileServer) -> Iterator[Site]:
    """`varta central serve` whose map tiles come from ``tiles`` (origin localhost:<port>)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install the Debian package chromium (./run does)")
    root = tmp_path_factory.mktemp("tiles-console")
    ring = make_keyring(root / "keys", ["a1"])
    template = f"http://localhost:{tiles.port}/{{z}}/{{x}}/{{y}}.png"
    config = police_config(ring, root / "central").model_copy(
        update={"cameras": PLACES, "console": ConsoleConfig(map_tiles=template)}
    )
    write_wanted_list(Path(config.storage.data_dir) / config.storage.duckdb_file, WANTED)
    process = spawn_central(central_yaml(root / "central.yaml", config))
    url = f"http://127.0.0.1:{config.http.port}"
    try:
        assert wait_for(lambda: _up(url), 60), "central did not start"
        s = Site(url, config, ring, process)
        with s.api() as api:
            body = {"username": "olena", "role": "operator", "password": PASSWORD}
            assert api.post("/api/v1/users", json=body).status_code == 201
        yield s
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_journey_map_shows_the_tile_servers_tiles_under_a_strict_csp(
    browser: Any, site: Site, tiles: TileServer, tmp_path: Path
) -> None:
    agent = Agent(tmp_path, site.ring, site.config.ingest.bind)
    try:
        for camera in ("cam-1", "cam-2"):
            sight_photo(agent, "KA7777CA", photo("KA7777CA.jpg"), camera=camera)

        def stored() -> bool:
            with site.api() as api:
                params = {"plate": "KA7777CA", "reason": "test set-up"}
                return len(api.get("/api/v1/sightings/search", params=params).json()["items"]) == 2

        assert wait_for(stored, 30, 0.3), "the sightings did not arrive"
    finally:
        agent.stop()

    context = browser.new_context(viewport={"width": 1366, "height": 768})  # CSP enforced
    outside: list[str] = []
    errors: list[str] = []

    def only_local(route: Any) -> None:
        if (urlsplit(route.request.url).hostname or "") in LOCAL_HOSTS:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda err: errors.append(str(err)))
    try:
        page.goto(f"{site.url}/console/login?lang=en")
        page.fill("#username", "olena")
        page.fill("#password", PASSWORD)
        page.click("form[action='/console/login'] button[type=submit]")
        page.wait_for_url(f"{site.url}/console/**")
        response = page.goto(f"{site.url}/console/journey?plate=KA7777CA&reason=case+1")
        assert response is not None
        csp = response.headers["content-security-policy"]
        assert f"img-src 'self' data: http://localhost:{tiles.port};" in csp
        page.wait_for_selector("#journey-map[data-drawn=true][data-mode=tiles]")
        page.wait_for_function(
            "() => { const t = [...document.querySelectorAll('#journey-map img.leaflet-tile')];"
            " return t.length > 0 && t.every(i => i.complete && i.naturalWidth === 256); }"
        )
        sources = page.locator("#journey-map img.leaflet-tile").evaluate_all(
            "ts => ts.map(t => t.src)"
        )
        assert all(s.startswith(f"http://localhost:{tiles.port}/") for s in sources)
        assert len(tiles.asked) >= len(sources)
        assert page.locator("#journey-map path.journey-route").count() == 1
        assert page.locator("#journey-map path.cam-marker").count() == 2
    finally:
        context.close()
    assert outside == [] and errors == [], (outside, errors)
