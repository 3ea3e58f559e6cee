"""Small steps the browser tests share: sign in, check accessibility, take a screenshot."""

from __future__ import annotations

import datetime as dt
import io
import random
import time
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


def sight_photo(
    agent: Agent, plate: str, picture: Path, camera: str = "cam-1", ago: float = 0.0
) -> wire.Sighting:
    """Publish a sighting of ``plate``, captured ``ago`` seconds before now, through the real
    agent with thumbnails of ``picture`` (the vehicle view and a crop of its lower middle,
    where the plate is)."""
    sighting, _ = make_sighting(
        random.Random(plate), camera_id=camera, plate=plate, now=time.time() - ago
    )
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
    """Shift every time on the page by one offset so that the latest shows one fixed moment
    (in the page's language and the console's zone, formatted by the console's own
    ``Translator`` in the format each time was shown in): the differences between times
    survive. Durations, session ids and temporary folders are fixed too. Call after the
    assertions on what is shown."""
    lang = page.locator("html").get_attribute("lang") or "uk"
    translator = CATALOGUES.get(lang)
    times: list[list[str]] = page.evaluate(
        "() => Array.from(document.querySelectorAll('time'))"
        ".map(t => [t.getAttribute('datetime') || '', t.textContent])"
    )
    moments = [_epoch(iso) for iso, _ in times]
    # The latest time that has happened sets the shift (an expiry years ahead must not).
    known = [m for m in moments if m is not None]
    past = [m for m in known if m <= time.time() + 60] or known
    offset = FROZEN_AT - max(past) if past else 0.0
    shown: list[str | None] = []
    for (_, text), moment in zip(times, moments, strict=True):
        if moment is None:
            shown.append(translator.datetime(FROZEN_AT))
            continue
        fmt = next(
            (f for f in ("short", "long") if text.strip() == translator.datetime(moment, f)),
            "medium",
        )
        shown.append(translator.datetime(moment + offset, fmt))
    page.evaluate(
        r"""([shown]) => {
            document.querySelectorAll("time").forEach((t, i) => {
                if (shown[i] !== undefined && shown[i] !== null) { t.textContent = shown[i]; }
            });
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


def _epoch(iso: str) -> float | None:
    """A ``<time datetime>`` value as UNIX seconds (None when it is not a date and time)."""
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.timestamp()


def check_page(page: Any, name: str) -> None:
    """Assert no serious accessibility violation, then save ``<name>.png`` in ``SCREENSHOTS``
    with the times shifted to one moment, animations finished and no caret."""
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
