"""The operator console end to end in headless Chromium against `varta central serve`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.central.police_helpers import Agent
from tests.web.conftest import PASSWORD, Site
from tests.web.console_helpers import check_page, photo, sight_photo, sign_in

pytestmark = pytest.mark.slow

ROW = "#board tr[data-alert-id]"


def _alert_row(page: Any, plate: str) -> Any:
    row = page.locator(ROW, has_text=plate)
    row.first.wait_for(state="visible", timeout=15_000)
    return row.first


def _history(site: Site, alert_id: str) -> list[dict[str, Any]]:
    with site.api() as api:
        resp = api.get(f"/api/v1/alerts/{alert_id}")
        assert resp.status_code == 200, resp.text
        history: list[dict[str, Any]] = resp.json()["history"]
        return history


def test_live_alert_cue_and_lifecycle_in_ukrainian(page: Any, site: Site, agent: Agent) -> None:
    page.goto(f"{site.url}/console/login")
    assert page.locator("html").get_attribute("lang") == "uk"
    assert page.locator("h1").inner_text() == "Вхід до пульта оператора"
    check_page(page, "login")
    sign_in(page, site, "olena")
    assert page.locator("h1").inner_text() == "Тривоги наживо"
    assert page.locator("a[data-nav=audit]").count() == 0  # operators have no audit viewer
    page.evaluate("window.__sameDocument = true")
    sight_photo(agent, "AO1467BH", photo("AO1467BH.jpeg"))
    row = _alert_row(page, "АО1467ВН")  # drawn as the registry writes it, in Cyrillic
    assert page.evaluate("window.__sameDocument") is True  # it came without a reload
    assert row.get_attribute("data-state") == "new"
    assert row.locator(".conf").inner_text().endswith("%")  # the read confidence, per locale
    page.wait_for_function("document.body.dataset.cueCount >= 1")
    page.wait_for_function("document.body.dataset.cuePlayed >= 1")
    assert int(page.locator("body").get_attribute("data-cue-count") or 0) >= 1
    assert page.locator("[data-count=new]").inner_text() == "1"
    check_page(page, "board")

    alert_id = row.get_attribute("data-alert-id")
    row.locator("a").click()
    page.wait_for_url(f"**/console/alerts/{alert_id}")
    page.wait_for_selector("body[data-ready=true]")
    detail = page.locator("article.alert-detail")
    assert "12025000000" in detail.inner_text()  # the case reference of the wanted entry
    assert page.locator("table.candidates tr").count() >= 2
    page.wait_for_function(
        "[...document.querySelectorAll('.thumbs img')].every(i => i.complete && i.naturalWidth)"
    )
    check_page(page, "alert")

    page.keyboard.press("a")  # acknowledge: one key
    page.wait_for_selector("body[data-ready=true] article[data-state=acknowledged]")
    page.keyboard.press("d")  # dispatch: the crew field opens and takes the focus
    page.keyboard.type("Патруль 12")
    page.fill("#dispatch-note", "білий седан, рух на захід")
    page.click("#act-dispatched button[type=submit]")
    page.wait_for_selector("body[data-ready=true] article[data-state=dispatched]")
    page.keyboard.press("r")  # resolve, after its confirmation
    page.keyboard.press("Enter")
    page.wait_for_selector("article[data-state=resolved]")
    steps = [(h["to_state"], h["actor"], h["reason"]) for h in _history(site, alert_id or "")]
    assert steps[1:] == [
        ("acknowledged", "olena", ""),
        ("dispatched", "olena", "crew Патруль 12: білий седан, рух на захід"),
        ("resolved", "olena", ""),
    ]
    with site.api() as api:
        audit = api.get("/api/v1/audit", params={"actor": "olena"}).json()
    actions = {row["action"] for row in audit}
    assert {"alert.acknowledged", "alert.dispatched", "alert.resolved"} <= actions


def test_reject_with_reason_in_english_and_audit_chain(page: Any, site: Site, agent: Agent) -> None:
    sign_in(page, site, "petro")
    page.select_option("#pref-locale", "en")
    page.click("form:has(#pref-locale) button[type=submit]")
    page.wait_for_selector("html[lang=en]")
    assert page.locator("h1").inner_text() == "Live alerts"
    sight_photo(agent, "KA7777CA", photo("KA7777CA.jpg"), camera="cam-2")
    row = _alert_row(page, "КА7777СА")
    alert_id = row.get_attribute("data-alert-id")
    page.keyboard.press("j")  # select the newest row, acknowledge it by htmx (CSRF header)
    page.keyboard.press("a")
    page.wait_for_selector(f"#alert-{alert_id}[data-state=acknowledged]")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/console/alerts/{alert_id}")
    page.wait_for_selector("body[data-ready=true] article[data-state=acknowledged]")
    page.keyboard.press("x")
    page.select_option("#reject-reason", "Plate misread")
    page.fill("#reject-note", "a different car")
    page.click("#act-rejected button[type=submit]")
    page.wait_for_selector("body[data-ready=true] article[data-state=rejected]")
    assert page.locator("#alert-state").inner_text() == "rejected"
    check_page(page, "alert-en")
    assert _history(site, alert_id or "")[-1]["reason"] == "Plate misread: a different car"

    page.click("a[data-nav=audit]")
    page.wait_for_selector("#chain-status[data-ok=true]")
    assert "Chain verified" in page.locator("#chain-status").inner_text()
    check_page(page, "audit")
    page.click("a[data-nav=board]")
    page.select_option("#f-state", "rejected")  # the board's filters are a plain GET form
    page.select_option("#f-camera", "cam-2")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/console/?*state=rejected*")
    states = page.locator(ROW).evaluate_all("rows => rows.map(r => r.dataset.state)")
    assert states == ["rejected"]
    page.select_option("#pref-locale", "uk")  # leave petro as he was
    page.click("form:has(#pref-locale) button[type=submit]")
    page.wait_for_selector("html[lang=uk]")


def test_operator_cannot_reach_supervisor_pages(page: Any, site: Site) -> None:
    sign_in(page, site, "olena")
    assert page.locator("a[data-nav=audit]").count() == 0
    response = page.goto(f"{site.url}/console/audit")
    assert response is not None and response.status == 403
    assert page.locator(".error-page").get_attribute("data-status") == "403"
    check_page(page, "forbidden")


def test_form_post_without_csrf_token_is_refused(page: Any, site: Site) -> None:
    sign_in(page, site, "olena")
    token = page.locator("input[name=_csrf_token]").first.get_attribute("value")
    post = """async ([body, token]) => {
        const headers = {'Content-Type': 'application/x-www-form-urlencoded'};
        if (token) headers['x-csrftoken'] = token;
        const init = {method: 'POST', body, headers, redirect: 'manual'};
        const r = await fetch('/console/prefs/', init);
        return r.status;
    }"""
    assert page.evaluate(post, ["muted=true", None]) == 403
    assert page.evaluate(post, ["muted=true&next=/console/", token]) in (0, 303)  # accepted
    assert page.evaluate(post, ["muted=false&next=/console/", token]) in (0, 303)
    page.goto(f"{site.url}/console/")
    assert page.locator("body").get_attribute("data-muted") == "false"


def test_mute_is_kept_per_user(page: Any, site: Site, agent: Agent) -> None:
    sign_in(page, site, "olena")
    assert page.locator("body").get_attribute("data-muted") == "false"
    page.wait_for_selector("body[data-ready=true]")
    page.keyboard.press("m")
    page.wait_for_selector("body[data-muted=true][data-ready=true]")
    page.goto(f"{site.url}/console/")
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("body").get_attribute("data-muted") == "true"
    sight_photo(agent, "BA5486HE", photo("BA5486HE.jpg"), camera="cam-3")
    _alert_row(page, "ВА5486НЕ")
    page.wait_for_function("document.body.dataset.cueCount >= 1")  # the visual cue only
    assert page.locator("body").get_attribute("data-cue-played") == "0"
    page.keyboard.press("m")
    page.wait_for_selector("body[data-muted=false]")


def test_ended_session_goes_to_login_and_engineer_sees_no_alerts(page: Any, site: Site) -> None:
    sign_in(page, site, "ivan")
    assert page.locator("a[data-nav=board]").count() == 0
    assert page.locator("a[data-nav=api]").count() == 1
    check_page(page, "home-engineer")
    response = page.goto(f"{site.url}/console/alerts/1")
    assert response is not None and response.status == 403
    with site.api() as api:  # an administrator resets ivan's password: his sessions end
        resp = api.patch("/api/v1/users/ivan", json={"password": PASSWORD, "reason": "test"})
        assert resp.status_code == 200, resp.text
    page.goto(f"{site.url}/console/")
    page.wait_for_url("**/console/login?expired=true**")
    assert page.locator(".notice").is_visible()
