"""``varta bench console``: the operator console's pages over a real server with a full store,
and the delay from an edge sighting to the alert drawn on the board in a real browser.

1. A fresh central DuckDB file gets a wanted list of ``entries`` plates (the real import,
   as ``bench.alerts`` does) and ``sightings`` rows generated inside DuckDB (the SQL of
   ``bench.search``: 30 days up to now over 200 cameras, never through the wire), their
   plate index as the nightly merge leaves it, and 24 hours of per-minute camera history
   for those cameras and the bench agent's.
2. ``varta central serve`` starts on it (uvicorn, ingest, alert engine); a supervisor is
   made over REST. A real ``EdgeAgent`` (spool, CURVE ZeroMQ) announces four cameras and
   heartbeats.
3. Headless Chromium (Playwright, the system ``/usr/bin/chromium``) signs in and opens the
   board. ``alerts`` times, one after the other: the agent submits a sighting of a wanted
   plate; a ``MutationObserver`` in the page stamps the moment a row with a new alert id
   appears (``performance.timeOrigin + now()``, the same machine clock as the send).
4. Each page of :data:`PAGES` is requested ``requests`` times over HTTP with the signed-in
   session; the time per request is the round trip on loopback (the server's time plus a
   socket hop), reported as median and p95.
"""

from __future__ import annotations

import logging
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import duckdb
import httpx
import yaml

from bench.alerts import _central, _wait_http, _wanted_db
from bench.loadgen import make_sighting
from bench.search import CAMERAS, DAYS, insert_sightings
from bench.stats import percentile
from central.search.index import key_rows_sql
from shared import wire
from shared.paths import REPO_ROOT
from shared.plates import parse, registry_form

CHROMIUM: Final = Path("/usr/bin/chromium")
USER: Final = "bench-supervisor"
PASSWORD: Final = "correct horse battery staple"
AGENT: Final = "bench-0"
AGENT_CAMERAS: Final = ("cam-0", "cam-1", "cam-2", "cam-3")
TOKEN: Final = re.compile(r'name="_csrf_token" value="([0-9a-f]+)"')
ALERT_ID: Final = re.compile(r'data-alert-id="(\d+)"')


@dataclass(frozen=True)
class Page:
    """One console page to time.

    Attributes:
        name: Key in the result (``<name>_p95_ms``).
        method: ``GET`` or ``POST``.
        path: Path; ``{alert}`` becomes an alert id from the board, ``{plate}`` (``{prefix}``,
            its first four characters) a stored sighting's plate.
        form: Form body of a POST (the CSRF token is added).
    """

    name: str
    method: str
    path: str
    form: dict[str, str] | None = None


# Add a page here (pages of other branches: search/journey, lists) and it is timed.
PAGES: Final[tuple[Page, ...]] = (
    Page("login", "GET", "/console/login"),
    Page("board", "GET", "/console/"),
    Page("board_rows", "GET", "/console/board/rows"),
    Page("alert", "GET", "/console/alerts/{alert}"),
    Page("audit", "GET", "/console/audit"),
    Page("prefs", "POST", "/console/prefs", {"muted": "false", "next": "/console/"}),
    Page("health", "GET", "/console/health"),
    Page("health_agents", "GET", "/console/health/agents"),
    Page("search", "GET", "/console/search?plate={plate}&match=exact&reason=bench"),
    Page("search_wildcard", "GET", "/console/search?plate={prefix}*&match=wildcard&reason=bench"),
    Page("journey", "GET", "/console/journey?plate={plate}&reason=bench"),
    Page("lists", "GET", "/console/lists"),
    Page("list", "GET", "/console/lists/national"),
    Page("list_filtered", "GET", "/console/lists/national?plate={prefix}*&validity=active"),
)

_OBSERVER: Final = """() => {
    window.__rows = {};
    const stamp = () => {
        for (const row of document.querySelectorAll('#board tr[data-alert-id]')) {
            const id = row.dataset.alertId;
            if (!(id in window.__rows)) {
                window.__rows[id] = {t: performance.timeOrigin + performance.now(),
                                     text: row.innerText};
            }
        }
    };
    stamp();
    for (const id in window.__rows) { window.__rows[id].t = 0; }
    new MutationObserver(stamp).observe(document.getElementById('main'),
                                        {childList: true, subtree: true});
}"""


def _generate(db_file: Path, rows: int, now: float) -> dict[str, float]:
    """Sightings, their plate index and camera history, straight into ``db_file``."""
    timings: dict[str, float] = {}
    con = duckdb.connect(str(db_file))
    try:
        started = time.perf_counter()
        start = now - DAYS * 86_400
        insert_sightings(con, rows, start, DAYS * 86_400)
        timings["generate_s"] = time.perf_counter() - started
        started = time.perf_counter()
        index = key_rows_sql(
            "sightings", "captured_at >= to_timestamp(?) AND captured_at < to_timestamp(?)"
        )
        for d in range(DAYS + 1):
            low = start + d * 86_400
            con.execute(
                f"INSERT INTO plate_index SELECT * FROM ({index}) ORDER BY k, captured_at",
                [low, low + 86_400],
            )
        con.execute(
            "UPDATE plate_index_state SET watermark = to_timestamp(?), merged_through = "
            "to_timestamp(?)",
            [now, now],
        )
        timings["index_s"] = time.perf_counter() - started
        _history(con, now)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return timings


def _history(con: duckdb.DuckDBPyConnection, now: float) -> None:
    """24 hours of per-minute history for the generated cameras and the bench agent's."""
    con.execute(
        """
        INSERT INTO camera_minutes
        SELECT agent, cam, to_timestamp(m), 12, 12,
               12 * (10 + 5 * sin(m / 5000.0 + h)), 12 * (6 + 3 * sin(m / 4000.0 + h)),
               (m - ?) // 60, (hash(cam, m) % 30)::BIGINT
        FROM (
            SELECT 'edge-' || (c // 4) AS agent, 'cam-' || c AS cam, c AS h FROM range(?) t(c)
            UNION ALL SELECT ?, unnest(?), 0
        ) cams, (SELECT ? + 60 * range AS m FROM range(1440)) minutes
        """,
        [now - 86_400, CAMERAS, AGENT, list(AGENT_CAMERAS), (now // 60) * 60 - 86_400],
    )


def _sign_in(http: httpx.Client) -> str:
    """Sign ``http`` in as the bench supervisor; the CSRF token for forms."""
    match = TOKEN.search(http.get("/console/login").text)
    if match is None:
        raise RuntimeError("the login page has no CSRF token")
    body = {"username": USER, "password": PASSWORD, "_csrf_token": match.group(1)}
    resp = http.post("/console/login", data=body)
    if resp.status_code != 303:
        raise RuntimeError(f"console sign-in answered {resp.status_code}: {resp.text[:200]}")
    page = TOKEN.search(http.get("/console/").text)
    if page is None:
        raise RuntimeError("the board has no CSRF token")
    return page.group(1)


def _time_pages(url: str, requests: int, plate: str) -> dict[str, Any]:
    """Median and p95 milliseconds of each page of :data:`PAGES` (``plate``: a stored
    sighting's, for the search and journey pages)."""
    out: dict[str, Any] = {}
    with httpx.Client(base_url=url, timeout=60, follow_redirects=False) as http:
        token = _sign_in(http)
        ids = ALERT_ID.findall(http.get("/console/").text)
        alert = ids[0] if ids else "1"
        for page in PAGES:
            path = page.path.format(alert=alert, plate=plate, prefix=plate[:4])
            times: list[float] = []
            for _ in range(requests):
                started = time.perf_counter()
                if page.method == "POST":
                    resp = http.post(path, data={**(page.form or {}), "_csrf_token": token})
                else:
                    resp = http.get(path)
                times.append((time.perf_counter() - started) * 1000)
                if resp.status_code not in (200, 303):
                    raise RuntimeError(f"{page.name} {path}: HTTP {resp.status_code}")
            out[f"{page.name}_median_ms"] = round(statistics.median(times), 1)
            out[f"{page.name}_p95_ms"] = round(percentile(times, 0.95), 1)
            out[f"{page.name}_bytes"] = len(resp.content)
    return out


def _alert_to_browser(url: str, agent: Any, wanted: list[str], alerts: int) -> list[float]:
    """Milliseconds from each wanted sighting's submit to its row drawn on the board."""
    from playwright.sync_api import sync_playwright

    rng = random.Random(11)
    delays: list[float] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page()
            page.goto(f"{url}/console/login")
            page.fill("#username", USER)
            page.fill("#password", PASSWORD)
            page.click("form[action='/console/login'] button[type=submit]")
            page.wait_for_url(f"{url}/console/")
            page.wait_for_selector("body[data-ready=true]")
            page.evaluate(_OBSERVER)
            for plate in wanted[:alerts]:
                known = page.evaluate("Object.keys(window.__rows).length")
                sent = time.time() * 1000
                item = make_sighting(rng, camera_id=AGENT_CAMERAS[0], plate=plate, now=sent / 1000)
                agent.submit([item])
                _wait_rows(page, known, 30.0)
                rows = page.evaluate("window.__rows")
                shown = registry_form(plate) if parse(plate).format.startswith("ua_") else plate
                drawn = [r["t"] for r in rows.values() if shown in r["text"] and r["t"] > 0]
                if drawn:
                    delays.append(max(drawn) - sent)
        finally:
            browser.close()
    return delays


def _wait_rows(page: Any, known: int, timeout: float) -> None:
    """Poll until the page stamped more than ``known`` rows (the stamp, not this poll, is
    the measurement; ``wait_for_function`` would evaluate a string, refused by the CSP)."""
    deadline = time.monotonic() + timeout
    while page.evaluate("Object.keys(window.__rows).length") <= known:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no new alert row on the board within {timeout:.0f} s")
        time.sleep(0.02)


def _agent(root: Path, config: dict[str, Any]) -> Any:
    from edge_agent.app import EdgeAgent
    from edge_agent.config import AgentConfig
    from shared.config import load

    stats = [wire.CameraStats(camera_id=c, online=True, fps_in=12.0, fps_out=6.0)
             for c in AGENT_CAMERAS]  # fmt: skip
    path = root / "agent.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "agent_id": AGENT,
                "central": {
                    "endpoint": config["ingest"]["bind"],
                    "server_public_key": str(root / "keys/central.key"),
                    "agent_secret_key": str(root / f"keys/{AGENT}.key_secret"),
                    "heartbeat_interval_s": 1.0,
                },
                "spool": {"dir": str(root / "spool")},
            }
        )
    )
    agent = EdgeAgent(
        load(path, AgentConfig),
        cameras=[wire.CameraInfo(camera_id=c) for c in AGENT_CAMERAS],
        camera_stats=lambda: stats,
        model_versions={"detector": "vehicle-detection-0201"},
    )
    agent.start()
    return agent


def run(
    sightings: int = 10_000_000,
    entries: int = 1_000_000,
    requests: int = 50,
    alerts: int = 20,
) -> dict[str, Any]:
    """Run the benchmark and return its result object."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: install the Debian package chromium")
    if entries < 5000:
        raise ValueError(f"entries must be 5000 or more (a sample of 5000 is drawn), got {entries}")
    rng = random.Random(5)
    result: dict[str, Any] = {"sightings": sightings, "wanted_entries": entries}
    with tempfile.TemporaryDirectory(prefix="varta-bench-console-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        db_file, sample = _wanted_db(root, entries, rng)
        result["import_s"] = round(time.perf_counter() - started, 1)
        now = time.time()
        result |= {k: round(v, 1) for k, v in _generate(db_file, sightings, now).items()}
        result["db_mb"] = round(db_file.stat().st_size / 2**20)
        with duckdb.connect(str(db_file), read_only=True) as con:
            found = con.execute(
                "SELECT plate FROM sightings WHERE plate IS NOT NULL LIMIT 1 OFFSET ?",
                [sightings // 2],
            ).fetchone()
        plate = found[0] if found else "AA1234BC"
        port = int(_free_port())
        cfile, config = _central(root, port)  # its agent keys are AGENT's
        config["auth"]["cookie_secure"] = False  # plain HTTP on loopback
        config["retention"] = {"enabled": False}  # the generated month stays whole
        cfile.write_text(yaml.safe_dump(config))
        url = f"http://127.0.0.1:{port}"
        central = subprocess.Popen(
            [sys.executable, "-c", "from varta.cli import main; main()", "central", "serve",
             "--config", str(cfile)],
            cwd=REPO_ROOT, stderr=_log(),
        )  # fmt: skip
        agent = None
        try:
            started = time.perf_counter()
            _wait_http(url, central, 600)
            result["startup_s"] = round(time.perf_counter() - started, 1)
            token = (root / "admin.token").read_text().strip()
            made = httpx.post(
                f"{url}/api/v1/users",
                json={"username": USER, "role": "supervisor", "password": PASSWORD},
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )
            if made.status_code != 201:
                raise RuntimeError(f"making the console user: {made.status_code} {made.text}")
            agent = _agent(root, config)
            delays = _alert_to_browser(url, agent, sample, alerts)
            result |= {
                "alerts": len(delays),
                "alert_to_browser_median_ms": round(statistics.median(delays), 1)
                if delays
                else None,
                "alert_to_browser_p95_ms": round(percentile(delays, 0.95), 1),
                "alert_to_browser_max_ms": round(max(delays, default=0.0), 1),
            }
            result |= _time_pages(url, requests, plate)
            result["requests_per_page"] = requests
        finally:
            if agent is not None:
                agent.stop()
            central.send_signal(signal.SIGTERM)
            central.wait(120)
    result["load_avg_1m"] = round(os.getloadavg()[0], 2)
    return result


def _free_port() -> str:
    from bench.stats import free_endpoint

    return free_endpoint().rsplit(":", 1)[1]


def _log() -> Any:
    path = os.environ.get("VARTA_BENCH_CENTRAL_LOG")
    return open(path, "ab") if path else subprocess.DEVNULL
