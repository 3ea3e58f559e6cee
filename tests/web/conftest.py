"""The console in a real browser: a real `varta central serve` process with a Cyrillic wanted
list, a real edge agent publishing over CURVE ZeroMQ, users made through the REST API, and
headless Debian Chromium driven by Playwright (the system browser; Playwright's own builds
are never downloaded).

The browser may reach nothing but the console: every request to any other host is aborted
and recorded by the ``page`` fixture, which fails the test if there was one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from central.config import CentralConfig
from tests.central.alerts_helpers import write_wanted_list
from tests.central.police_helpers import Agent, police_config
from tests.harness import (
    KeyRing,
    admin_headers,
    central_yaml,
    make_keyring,
    spawn_central,
    wait_for,
)

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
# The README's pictures are rewritten only on request (VARTA_SCREENSHOTS=update): the
# pages show live times, so every run's pictures differ a little and would dirty the tree.
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("VARTA_SCREENSHOTS") == "update"
    else Path(tempfile.gettempdir()) / "varta-screenshots"
)
PASSWORD = "correct horse battery"
USERS = {"olena": "operator", "petro": "supervisor", "ivan": "engineer"}
# (registry plate as written, category, priority): plates of photos in plates-ua-dev
WANTED = [("АО1467ВН", "stolen", 1), ("КА7777СА", "wanted", 2), ("ВА5486НЕ", "violation", 4)]
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})


@dataclass
class Site:
    """A running central with its console, and how to reach it."""

    url: str
    config: CentralConfig
    ring: KeyRing
    process: subprocess.Popen[bytes]

    def api(self) -> httpx.Client:
        """A REST client with the bootstrap admin's token."""
        return httpx.Client(base_url=self.url, headers=admin_headers(self.config), timeout=20)


@dataclass
class Outside:
    """Requests the browser tried to send anywhere but localhost (each one aborted), and
    script errors or console errors (a refused Content-Security-Policy shows there)."""

    attempts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def console(self, message: Any) -> None:
        # A refused request is logged as "Failed to load resource": tests ask for those.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/health", timeout=2).status_code in (200, 503)
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """`varta central serve` as a process, with a wanted list and three users."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install the Debian package chromium (./run does)")
    root = tmp_path_factory.mktemp("console")
    ring = make_keyring(root / "keys", ["a1"])
    config = police_config(ring, root / "central")
    write_wanted_list(Path(config.storage.data_dir) / config.storage.duckdb_file, WANTED)
    process = spawn_central(central_yaml(root / "central.yaml", config))
    url = f"http://127.0.0.1:{config.http.port}"
    try:
        assert wait_for(lambda: _up(url), 60), "central did not start"
        s = Site(url, config, ring, process)
        with s.api() as api:
            for name, role in USERS.items():
                body = {"username": name, "role": role, "password": PASSWORD}
                resp = api.post("/api/v1/users", json=body)
                assert resp.status_code == 201, resp.text
        yield s
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def agent(tmp_path: Path, site: Site) -> Iterator[Agent]:
    """A real edge agent publishing to the site's ingest over CURVE."""
    a = Agent(tmp_path, site.ring, site.config.ingest.bind)
    yield a
    a.stop()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright launches the system Chromium, sound allowed without a gesture."""
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": ["--autoplay-policy=no-user-gesture-required", "--mute-audio"],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    """A 1366x768 screen (the centre's smallest) and a Ukrainian locale, as a centre's
    browser would have (headless Chromium still draws native file and date controls in its
    own UI language, English; the console's language comes from the user's preferences,
    not the browser's); CSP bypassed only to inject axe-core."""
    return {
        **browser_context_args,
        "viewport": {"width": 1366, "height": 768},
        "locale": "uk-UA",
        "bypass_csp": True,
    }


@pytest.fixture
def outside() -> Outside:
    return Outside()


@pytest.fixture
def page(page: Any, outside: Outside) -> Iterator[Any]:
    """pytest-playwright's page, cut off from everything but localhost.

    Every request to another host is aborted and recorded; the test fails if there was any.
    """

    def only_local(route: Any) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOCAL_HOSTS:
            route.continue_()
        else:
            outside.attempts.append(route.request.url)
            route.abort()

    page.context.route("**/*", only_local)
    page.on("console", outside.console)
    page.on("pageerror", lambda err: outside.errors.append(str(err)))
    page.set_default_timeout(15_000)
    yield page
    assert outside.attempts == [], f"the browser tried to reach {outside.attempts}"
    assert outside.errors == [], f"errors in the page: {outside.errors}"
