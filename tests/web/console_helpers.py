"""Small steps the browser tests share: sign in, check accessibility, take a screenshot."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

from PIL import Image

from bench.loadgen import make_sighting
from central.web.i18n import Catalogues
from shared import wire
from shared.paths import data_dir
from tests.central.police_helpers import Agent
from tests.web.conftest import AXE, PASSWORD, SCREENSHOTS, Site

SERIOUS = ("serious", "critical")
FROZEN_AT = 1_796_464_800.0  # 2026-12-05 10:00 UTC: the time every screenshot shows
CATALOGUES = Catalogues("Europe/Kyiv")  # the console's default zone


def photo(name: str) -> Path:
    """A photo of a Ukrainian plate from the shared evaluation data."""
    path = data_dir() / "plates-ua-dev" / "images" / name
    assert path.is_file(), f"{path} is missing; set VARTA_SHARED to the shared folder"
    return path


def _jpeg(image: Image.Image, size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").resize(size).save(out, "JPEG", quality=85)
    return out.getvalue()


def sight_photo(agent: Agent, plate: str, picture: Path, camera: str = "cam-1") -> wire.Sighting:
    """Publish a sighting of ``plate`` through the real agent with thumbnails of ``picture``
    (the vehicle view and a crop of its lower middle, where the plate is)."""
    sighting, _ = make_sighting(random.Random(plate), camera_id=camera, plate=plate)
    with Image.open(picture) as image:
        w, h = image.size
        crop = image.crop((w // 4, h // 2, 3 * w // 4, h))
        frames = [_jpeg(image, (320, 240)), _jpeg(crop, (160, 40))]
    agent.agent.submit([(sighting, frames)])
    return sighting


def sign_in(page: Any, site: Site, user: str, lang: str = "uk") -> None:
    """Open the login page in ``lang`` and sign in as ``user``; lands on the console."""
    page.goto(f"{site.url}/console/login?lang={lang}")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("form[action='/console/login'] button[type=submit]")
    page.wait_for_url(f"{site.url}/console/**")
    page.wait_for_selector("body[data-ready=true]")


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    return [v for v in result if v["impact"] in SERIOUS]


def freeze_clock(page: Any) -> None:
    """Show every time on the page as one fixed moment, in the page's language and the
    console's zone (formatted by the console's own ``Translator``); durations, session ids
    and temporary folders fixed too: screenshots then do not change from run to run. Call
    after the assertions on what is shown."""
    lang = page.locator("html").get_attribute("lang") or "uk"
    shown = CATALOGUES.get(lang).datetime(FROZEN_AT)
    page.evaluate(
        r"""([shown]) => {
            document.querySelectorAll("time").forEach(t => { t.textContent = shown; });
            document.querySelectorAll("[data-volatile]").forEach(e => { e.textContent = "1"; });
            document.querySelectorAll(".sync-source").forEach(e => {  // temporary folders
                e.textContent = e.textContent.replace(/^\/.*\//, "…/");
            });
            document.querySelectorAll("td").forEach(td => {  // random or time-based ids
                const id = /^(session|token|sighting):[^/\s]+(\S*)$/.exec(td.textContent);
                if (id) { td.textContent = id[1] + ":…" + id[2]; }
            });
        }""",
        [shown],
    )


def check_page(page: Any, name: str) -> None:
    """Assert no serious accessibility violation, then save ``docs/screenshots/<name>.png``
    with the clock frozen, animations finished and no caret (the same bytes every run)."""
    violations = axe_violations(page)
    assert violations == [], f"{name}: {violations}"
    freeze_clock(page)
    page.mouse.move(0, 0)  # nothing hovered
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=str(SCREENSHOTS / f"{name}.png"), full_page=False, animations="disabled", caret="hide"
    )


def overflow(page: Any) -> int:
    """By how many pixels the page body is wider than the viewport (0: no side scrolling)."""
    width: int = page.evaluate(
        "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - document.documentElement.clientWidth"
    )
    return max(width, 0)
