"""Search, the journey map and evidence export end to end in headless Chromium against a real
`varta central serve` with camera positions configured, fed by a real edge agent.

As in ``conftest.py``, the browser reaches nothing but localhost: every other request is
aborted and fails the test (no tiles are configured here, so the map is the plain plan).
"""

from __future__ import annotations

import io
import json
import signal
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from central.cli import app as central_cli
from central.config import CameraPlaceConfig
from central.evidence import verify_package
from tests.central.alerts_helpers import write_wanted_list
from tests.central.police_helpers import Agent, police_config
from tests.harness import central_yaml, make_keyring, spawn_central, wait_for
from tests.web.conftest import CHROMIUM, PASSWORD, USERS, WANTED, Site, _up
from tests.web.console_helpers import check_page, photo, sight_photo, sign_in

pytestmark = pytest.mark.slow

PLACES = [
    CameraPlaceConfig(id="cam-1", lat=50.4501, lon=30.5234, heading=90, label="Хрещатик"),
    CameraPlaceConfig(id="cam-2", lat=50.4547, lon=30.5166, heading=200, label="Володимирська"),
    CameraPlaceConfig(id="cam-3", lat=50.4590, lon=30.5120),
    CameraPlaceConfig(id="cam-9", lat=50.4420, lon=30.5300, label="Либідська"),
]
ROUTE = ["cam-1", "cam-2", "cam-3"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """`varta central serve` with the wanted list, the users and the cameras' positions."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install the Debian package chromium (./run does)")
    root = tmp_path_factory.mktemp("search-console")
    ring = make_keyring(root / "keys", ["a1"])
    config = police_config(ring, root / "central").model_copy(update={"cameras": PLACES})
    write_wanted_list(Path(config.storage.data_dir) / config.storage.duckdb_file, WANTED)
    process = spawn_central(central_yaml(root / "central.yaml", config))
    url = f"http://127.0.0.1:{config.http.port}"
    try:
        assert wait_for(lambda: _up(url), 60), "central did not start"
        s = Site(url, config, ring, process)
        with s.api() as api:
            for name, role in USERS.items():
                body = {"username": name, "role": role, "password": PASSWORD}
                assert api.post("/api/v1/users", json=body).status_code == 201
        yield s
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def journey_seen(site: Site, tmp_path_factory: pytest.TempPathFactory) -> None:
    """АО1467ВН (wanted: an alert too) seen by the real agent on cam-1, cam-2 and cam-3."""
    agent = Agent(tmp_path_factory.mktemp("agent"), site.ring, site.config.ingest.bind)
    try:
        # A car driving the route: 5 min 20 s from cam-1 to cam-2, then 40 s to cam-3.
        for camera, ago in zip(ROUTE, (360.0, 40.0, 0.0), strict=True):
            sight_photo(agent, "AO1467BH", photo("AO1467BH.jpeg"), camera=camera, ago=ago)

        def stored() -> bool:
            with site.api() as api:
                params = {"plate": "AO1467BH", "reason": "test set-up"}
                return len(api.get("/api/v1/sightings/search", params=params).json()["items"]) == 3

        assert wait_for(stored, 30, 0.3), "the sightings did not arrive"
    finally:
        agent.stop()


def _verify_with_cli(path: Path) -> str:
    result = CliRunner().invoke(central_cli, ["evidence", "verify", str(path)])
    assert result.exit_code == 0, result.output
    return result.output


def test_search_a_plate_with_a_reason_and_open_its_journey_map(
    page: Any, site: Site, journey_seen: None
) -> None:
    sign_in(page, site, "olena")
    page.click("a[data-nav=search]")
    page.wait_for_url("**/console/search")
    assert page.locator("h1").inner_text() == "Пошук проїздів"
    page.fill("#s-plate", "АО1467ВН")  # as the registry writes it
    page.fill("#s-reason", "справа 12025000000")
    page.click("#search-go")
    page.wait_for_selector("#results")
    rows = page.locator("#results tbody tr")
    assert rows.count() == 3
    assert set(page.locator("#results tbody .plate").all_inner_texts()) == {"АО1467ВН"}
    assert all(c.endswith("%") for c in page.locator("#results tbody .conf").all_inner_texts())
    cameras = page.locator("#results tbody td:nth-child(3)").all_inner_texts()
    assert cameras == list(reversed(ROUTE))  # newest first
    check_page(page, "search")

    page.locator("a.journey-link").first.click()
    page.wait_for_url("**/console/journey?*")
    page.wait_for_selector("#journey-map[data-drawn=true]")
    assert page.locator("#timeline li").evaluate_all("l => l.map(i => i.dataset.camera)") == ROUTE
    assert page.locator("#journey-map").get_attribute("data-mode") == "plan"
    # every configured camera is drawn, and the route through the three passed, in order
    assert page.locator("#journey-map path.cam-marker").count() == len(PLACES)
    assert page.locator("#journey-map path.cam-marker.seen").count() == 3
    assert page.locator("#journey-map path.journey-route").count() == 1
    assert page.locator("#journey-map").get_attribute("data-route-points") == "3"
    assert page.locator("#journey-map path.cam-heading").count() == 2
    assert page.locator("#journey-map path.grid").count() >= 4  # the plain plan's grid
    tooltips = page.locator("#journey-map .leaflet-tooltip").all_inner_texts()
    assert {"Хрещатик", "Володимирська", "cam-3", "Либідська"} == set(tooltips)
    assert page.locator("#journey-map img").count() == 0  # no tiles: nothing to fetch
    check_page(page, "journey")
    with site.api() as api:
        audit = api.get("/api/v1/audit", params={"actor": "olena"}).json()
    reasons = {(r["action"], r["reason"]) for r in audit}
    assert {("search", "справа 12025000000"), ("search.journey", "справа 12025000000")} <= reasons


def test_export_evidence_packages_in_english_and_verify_them(
    page: Any, site: Site, journey_seen: None, tmp_path: Path
) -> None:
    sign_in(page, site, "petro", lang="en")
    page.select_option("#pref-locale", "en")
    page.click("form:has(#pref-locale) button[type=submit]")
    page.wait_for_selector("html[lang=en]")
    page.goto(f"{site.url}/console/journey?plate=AO1467BH&reason=case+12025000000")
    page.wait_for_selector("#journey-map[data-drawn=true]")
    assert page.locator("h2#h-export").inner_text() == "Evidence package"
    page.fill("#export-reason", "court request 7/2026")
    with page.expect_download() as info:
        page.click("#export-journey")
    journey_zip = tmp_path / info.value.suggested_filename
    info.value.save_as(journey_zip)
    assert journey_zip.name == "evidence-journey-AO1467BH.zip"
    assert _verify_with_cli(journey_zip).startswith("OK: ")
    with zipfile.ZipFile(journey_zip) as zf:
        assert json.loads(zf.read("journey.json"))["cameras"] == ROUTE
        assert len([n for n in zf.namelist() if n.startswith("thumbs/")]) == 6  # 2 crops each

    page.click("a[data-nav=board]")
    row = page.locator("#board tr[data-alert-id]", has_text="АО1467ВН").first
    alert_id = row.get_attribute("data-alert-id")
    page.goto(f"{site.url}/console/alerts/{alert_id}")
    page.wait_for_selector("body[data-ready=true]")
    page.fill("#export-reason", "court request 7/2026")
    check_page(page, "alert-export-en")
    with page.expect_download() as info:
        page.click("#export-alert")
    data = Path(info.value.path()).read_bytes()
    verdict = verify_package(data)
    assert verdict.ok, verdict.problems
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        audit = json.loads(zf.read("audit.json"))
    assert (manifest["kind"], manifest["exported_by"]) == ("alert", "petro")
    steps = {(r["action"], r["reason"]) for r in audit}
    assert ("evidence.export", "court request 7/2026") in steps
    page.select_option("#pref-locale", "uk")  # leave petro as he was
    page.click("form:has(#pref-locale) button[type=submit]")
    page.wait_for_selector("html[lang=uk]")


def test_engineer_has_no_search(page: Any, site: Site) -> None:
    sign_in(page, site, "ivan")
    assert page.locator("a[data-nav=search]").count() == 0
    response = page.goto(f"{site.url}/console/search?plate=AO1467BH&reason=curious")
    assert response is not None and response.status == 403
