"""The health page in a real browser: a real edge agent heartbeats over CURVE ZeroMQ to a
real `varta central serve`; the page shows it online with its cameras, counters, models and
plots (axe-checked, Ukrainian and English), and the live part turns it offline when it stops.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.loadgen import make_sighting
from edge_agent.app import EdgeAgent
from edge_agent.config import AgentConfig
from shared import wire
from shared.config import load
from tests.harness import agent_config_file, wait_for
from tests.web.conftest import Site
from tests.web.console_helpers import check_page, sign_in

MODELS = {"detector": "vehicle-detection-0201", "plates": "lpr-ua-1.4"}


def _stats() -> list[wire.CameraStats]:
    return [
        wire.CameraStats(
            camera_id="cam-1", online=True, fps_in=12.5, fps_out=6.0, frames_dropped=7
        ),
        wire.CameraStats(camera_id="cam-2", online=False, error="no frames for 30 s"),
    ]


@pytest.fixture
def edge(tmp_path: Path, site: Site) -> Iterator[EdgeAgent]:
    """A real edge agent with two cameras, heartbeating every 0.5 s with their stats."""
    cfg = agent_config_file(
        tmp_path / "a1.yaml", site.ring, "a1", site.config.ingest.bind, tmp_path / "spool"
    )
    agent = EdgeAgent(
        load(cfg, AgentConfig),
        cameras=[
            wire.CameraInfo(camera_id="cam-1", name="Halytska"),
            wire.CameraInfo(camera_id="cam-2"),
        ],
        camera_stats=_stats,
        model_versions=MODELS,
    )
    agent.start()
    yield agent
    agent.stop()


def _agent_online(site: Site) -> bool:
    with site.api() as api:
        agents = api.get("/api/v1/agents").json()
    listed = agents if isinstance(agents, list) else agents.get("agents", [])
    return any(a["agent_id"] == "a1" and a["online"] and a["cameras"] and
               a["cameras"][0]["online"] for a in listed)  # fmt: skip


def test_agent_online_with_plots_then_offline_live(page: Any, site: Site, edge: EdgeAgent) -> None:
    rng = random.Random(3)
    edge.submit([make_sighting(rng, camera_id="cam-1") for _ in range(4)])
    assert wait_for(lambda: _agent_online(site), 30), "the agent never showed online"
    time.sleep(1.0)  # a heartbeat after the sightings writes their minute counts

    sign_in(page, site, "ivan", "uk")
    page.click("a[data-nav=health]")
    page.wait_for_selector("section.agent[data-agent=a1][data-online=true]")
    assert page.locator("html").get_attribute("lang") == "uk"
    assert page.locator("tr[data-camera=cam-1]").get_attribute("data-online") == "true"
    assert page.locator("tr[data-camera=cam-2]").get_attribute("data-online") == "false"
    assert "no frames for 30 s" in page.locator("tr[data-camera=cam-2]").inner_text()
    assert "12,5" in page.locator("tr[data-camera=cam-1]").inner_text()
    facts = page.locator("section.agent[data-agent=a1] dl.facts").inner_text()
    assert "vehicle-detection-0201" in facts and "lpr-ua-1.4" in facts
    plots = page.locator("section.camera-plots[data-camera='a1/cam-1']")
    assert plots.locator("polyline.fps_in").count() >= 1
    assert plots.locator("polyline.sightings").count() >= 1
    plots.locator("summary").click()
    counted = plots.locator("td[data-field=sightings]").all_inner_texts()
    assert sum(int(n) for n in counted) == 4
    check_page(page, "health-uk")

    edge.stop()  # silent for longer than agent_offline_after_s: the polled part says so
    page.wait_for_selector("section.agent[data-agent=a1][data-online=false]", timeout=30_000)
    assert page.locator("section.agent[data-agent=a1] .health-offline").is_visible()


def test_health_page_in_english_for_a_supervisor(page: Any, site: Site, edge: EdgeAgent) -> None:
    assert wait_for(lambda: _agent_online(site), 30), "the agent never showed online"
    sign_in(page, site, "petro", "en")
    page.goto(f"{site.url}/console/health")
    page.select_option("#pref-locale", "en")
    page.click("form:has(#pref-locale) button[type=submit]")
    page.wait_for_selector("html[lang=en] section.agent[data-agent=a1][data-online=true]")
    assert page.locator("h1").inner_text() == "Agents and cameras"
    assert page.locator("a[data-nav=health]").get_attribute("aria-current") == "page"
    assert page.locator("svg.plot[role=img] title").count() >= 2
    check_page(page, "health-en")
    page.select_option("#pref-locale", "uk")  # leave petro as he was
    page.click("form:has(#pref-locale) button[type=submit]")
    page.wait_for_selector("html[lang=uk]")


def test_operator_has_no_health_page(page: Any, site: Site) -> None:
    sign_in(page, site, "olena")
    assert page.locator("a[data-nav=health]").count() == 0
    response = page.goto(f"{site.url}/console/health")
    assert response is not None and response.status == 403
