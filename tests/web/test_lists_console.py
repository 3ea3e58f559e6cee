"""The wanted-list pages, the audit viewer, the keyboard help and the layout in headless
Chromium against `varta central serve` (the browser reaches nothing but localhost: the
``page`` fixture aborts and records every other request)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.harness import central_yaml, spawn_central, wait_for
from tests.web.conftest import PASSWORD, Site, _up
from tests.web.console_helpers import check_page, overflow, sign_in

pytestmark = pytest.mark.slow

ROWS = 45_000  # over loading.CHUNK_ROWS: the import is staged and applied in key ranges
VIEWPORTS = [(1366, 768), (1024, 768), (768, 1024)]


def _export(path: Path) -> Path:
    """A registry export of ``ROWS`` plates with one malformed row (line 3)."""
    lines = ["plate,category,priority,reason,case_ref"]
    for i in range(ROWS):
        plate = f"AA{i % 10000:04d}B{'ABCEH'[i // 10000]}"
        lines.append(f"{plate},stolen,2,викрадено,1202600{i:05d}")
        if i == 0:
            lines.append("BAD!,stolen,1,,")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _user(site: Site, name: str, role: str) -> None:
    with site.api() as api:
        body = {"username": name, "role": role, "password": PASSWORD}
        resp = api.post("/api/v1/users", json=body)
        assert resp.status_code in (201, 409), resp.text


def test_supervisor_uploads_a_list_and_changes_an_entry(
    page: Any, site: Site, tmp_path: Path
) -> None:
    sign_in(page, site, "petro")
    page.click("a[data-nav=lists]")
    page.wait_for_selector("tr[data-list=national]")
    assert page.locator("h1").inner_text() == "Списки розшуку"
    page.fill("#new-name", "regional")
    page.fill("#new-why", "обласний список")
    page.click("form[action='/console/lists'] button[type=submit]")
    page.wait_for_url("**/console/lists/regional")
    page.wait_for_selector("#upload-form")

    page.set_input_files("#up-file", str(_export(tmp_path / "export.csv")))
    page.fill("#up-why", "вивантаження реєстру")
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#report", timeout=120_000)
    phases = page.locator("#upload-status").get_attribute("data-phases") or ""
    assert phases.split()[0] == "upload" and phases.split()[-1] == "done", phases
    assert "sent" in phases.split()  # the bytes went up with the bar, then the server's part
    assert page.locator("#upload-bar").evaluate("b => b.value") == 100
    assert page.locator("#report").get_attribute("data-rejected") == "1"
    assert page.locator("#row-errors tr[data-line='3']").inner_text().startswith("3")
    assert "BAD!" in page.locator("#row-errors").inner_text()
    check_page(page, "list-upload")
    with site.api() as api:
        listed = api.get("/api/v1/watchlists/regional").json()
    assert listed["entries"] == ROWS

    page.goto(f"{site.url}/console/lists/regional?plate=AA0001")
    page.click("#add-entry")
    page.fill("#en-plate", "ВН0001АА")
    page.select_option("#en-category", "wanted")
    page.fill("#en-reason", "розшук за ухвалою")
    page.fill("#en-case", "12026000777")
    page.fill("#en-why", "нова справа")
    page.click("#save-entry")
    page.wait_for_selector("#done[data-done=saved]")
    page.select_option("#en-priority", "1")
    page.fill("#en-why", "пріоритет підвищено")
    page.click("#save-entry")
    page.wait_for_selector("#done[data-done=saved]")
    assert page.locator("#en-priority").input_value() == "1"
    check_page(page, "entry")
    page.fill("#ex-why", "авто знайдено")
    page.click("#expire-form button[type=submit]")
    page.wait_for_selector("#entry-validity[data-validity=expired]")
    page.fill("#rm-why", "внесено помилково")
    page.click("#remove-form button[type=submit]")
    page.wait_for_selector("#done[data-done=removed]")
    with site.api() as api:
        assert api.get("/api/v1/watchlists/regional/entries/BH0001AA").status_code == 404
        audit = api.get("/api/v1/audit", params={"actor": "petro", "limit": 50}).json()
    reasons = {(r["action"], r["reason"]) for r in audit}
    assert {
        ("watchlist.create", "обласний список"),
        ("watchlist.import", "вивантаження реєстру"),
        ("watchlist.entry.add", "нова справа"),
        ("watchlist.entry.edit", "пріоритет підвищено"),
        ("watchlist.entry.edit", "авто знайдено"),
        ("watchlist.entry.remove", "внесено помилково"),
    } <= reasons


def test_lists_audit_and_keyboard_help_in_english(page: Any, site: Site) -> None:
    _user(site, "maria", "supervisor")
    sign_in(page, site, "maria", "en")
    page.select_option("#pref-locale", "en")
    page.click("form:has(#pref-locale) button[type=submit]")
    page.wait_for_selector("html[lang=en] body[data-ready=true]")
    page.keyboard.press("?")  # the keyboard help lists the board's and the alert's keys
    help_ = page.locator("#keys-help")
    assert help_.is_visible() and "acknowledge" in help_.inner_text()
    assert "dispatch to a patrol crew" in help_.inner_text()
    check_page(page, "keys-help")
    page.keyboard.press("Escape")
    page.wait_for_function("document.activeElement.id === 'keys-open'")  # focus goes back
    assert not help_.is_visible()

    page.goto(f"{site.url}/console/lists")
    assert page.locator("tr[data-list=national] td.num").inner_text() == "3"
    check_page(page, "lists-en")
    page.click("tr[data-list=national] a")
    page.wait_for_selector("#entries")
    page.select_option("#e-category", "stolen")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**category=stolen**")
    assert page.locator("#entries tr[data-key]").evaluate_all("r => r.map(x => x.dataset.key)") == [
        "AO1467BH"
    ]
    page.click("a[data-nav=audit]")
    page.wait_for_selector("#chain-status[data-ok=true]")
    page.fill("#a-actor", "maria")
    page.fill("#a-action", "login")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**actor=maria**")
    actions = page.locator("tr[data-row-id] td:nth-child(4)").all_inner_texts()
    assert actions and set(actions) == {"login"}
    check_page(page, "audit-en")


def test_operator_cannot_reach_list_management_or_audit(page: Any, site: Site) -> None:
    sign_in(page, site, "olena")
    assert page.locator("a[data-nav=lists]").count() == 1
    assert page.locator("a[data-nav=audit]").count() == 0
    page.click("a[data-nav=lists]")
    page.click("tr[data-list=national] a")
    page.wait_for_selector("#entries")
    assert page.locator("#upload-form, #settings-form, #add-entry").count() == 0
    assert page.locator("#entries a").count() == 0  # no link to an entry's change form
    for path in ("/console/lists/national/entry", "/console/audit"):
        response = page.goto(f"{site.url}{path}")
        assert response is not None and response.status == 403
        assert page.locator(".error-page").get_attribute("data-status") == "403"


@pytest.mark.parametrize(("width", "height"), VIEWPORTS)
def test_no_side_scrolling_on_a_laptop_or_tablet(
    page: Any, site: Site, width: int, height: int
) -> None:
    page.set_viewport_size({"width": width, "height": height})
    sign_in(page, site, "petro")
    for path in ("/console/", "/console/lists", "/console/lists/national",
                 "/console/lists/national/entry", "/console/audit"):  # fmt: skip
        page.goto(f"{site.url}{path}")
        page.wait_for_selector("body[data-ready=true]")
        assert overflow(page) == 0, f"{path} at {width}x{height}"
        assert page.locator("a[data-nav=lists]").is_visible()
        assert page.locator("a[data-nav=audit]").is_visible()
    if width == 768:
        page.goto(f"{site.url}/console/lists/national")
        check_page(page, "list-tablet")


def test_a_tampered_chain_shows_its_first_broken_row(page: Any, site: Site) -> None:
    """Runs last in this module: central is stopped, a row of its DuckDB file is edited as
    someone with the file could, and a new central serves the same data."""
    site.process.send_signal(signal.SIGTERM)
    site.process.wait(60)
    db_file = Path(site.config.storage.data_dir) / site.config.storage.duckdb_file
    con = duckdb.connect(str(db_file))
    try:
        con.execute("UPDATE audit_log SET reason = 'nothing happened' WHERE id = 3")
    finally:
        con.close()
    yaml = central_yaml(db_file.parent.parent / "central-again.yaml", site.config)
    again = spawn_central(yaml)
    try:
        assert wait_for(lambda: _up(site.url), 60), "central did not start again"
        sign_in(page, site, "petro")
        page.click("a[data-nav=audit]")
        status = page.locator("#chain-status[data-ok=false]")
        assert status.get_attribute("data-first-broken") == "3"
        assert "row 3: content does not match its hash" in status.inner_text()
        page.click("#first-broken")
        page.wait_for_url("**/console/audit?before=4#row-3")
        row = page.locator("#row-3")
        assert row.get_attribute("class") == "broken-row" and row.is_visible()
        check_page(page, "audit-broken")
    finally:
        again.send_signal(signal.SIGTERM)
        try:
            again.wait(30)
        except subprocess.TimeoutExpired:
            again.kill()
            again.wait()
