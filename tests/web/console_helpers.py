"""Small steps the browser tests share: sign in, check accessibility, take a screenshot."""

from __future__ import annotations

from typing import Any

from tests.web.conftest import AXE, PASSWORD, SCREENSHOTS, Site

SERIOUS = ("serious", "critical")


def sign_in(page: Any, site: Site, user: str, lang: str = "uk") -> None:
    """Open the login page in ``lang`` and sign in as ``user``; lands on the console."""
    page.goto(f"{site.url}/console/login?lang={lang}")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("form[action='/console/login'] button[type=submit]")
    page.wait_for_url(f"{site.url}/console/**")


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    return [v for v in result if v["impact"] in SERIOUS]


def check_page(page: Any, name: str) -> None:
    """Assert no serious accessibility violation, then save ``docs/screenshots/<name>.png``."""
    violations = axe_violations(page)
    assert violations == [], f"{name}: {violations}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)
