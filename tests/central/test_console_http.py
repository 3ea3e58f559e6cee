"""The console over HTTP in process (real DuckDB, Litestar's test client): sign-in with CSRF,
what anonymous and wrong-role callers get, the REST API untouched by CSRF, vendored
OpenAPI pages, preferences, and the rules of the alert actions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from central.accounts.prefs import PrefsService, UserPrefs
from central.alerts.board import BoardFilter
from central.app import create_app
from central.store.db import MIGRATIONS
from central.web.alert_pages import ActionForm, action_reason
from central.web.pages import safe_next
from shared.errors import InvalidRequest
from tests.central.auth_helpers import PASSWORD, Rig, bearer, make_rig

TOKEN = re.compile(r'name="_csrf_token" value="([0-9a-f]+)"')


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = make_rig(tmp_path)
    r.user("olena", "operator")
    r.user("petro", "supervisor")
    yield r


@pytest.fixture
def client(rig: Rig) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(rig.central)) as c:
        yield c


def _token(client: TestClient[Litestar], path: str = "/console/login") -> str:
    match = TOKEN.search(client.get(path).text)
    assert match is not None
    return match.group(1)


def _sign_in(client: TestClient[Litestar], user: str) -> None:
    body = {"username": user, "password": PASSWORD, "_csrf_token": _token(client)}
    resp = client.post("/console/login", data=body, follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == "/console/", resp.text


def test_login_needs_the_csrf_token(client: TestClient[Litestar]) -> None:
    body = {"username": "olena", "password": PASSWORD}
    refused = client.post("/console/login", data=body, follow_redirects=False)
    assert refused.status_code == 403 and "varta_session" not in refused.cookies
    _sign_in(client, "olena")
    board = client.get("/console/")
    assert board.status_code == 200 and 'hx-ext="sse"' in board.text
    assert "default-src 'self'" in board.headers["content-security-policy"]


def test_wrong_password_is_answered_on_the_page(client: TestClient[Litestar]) -> None:
    body = {"username": "olena", "password": "wrong", "_csrf_token": _token(client), "lang": "en"}
    resp = client.post("/console/login", data=body)
    assert resp.status_code == 401 and "Wrong user name or password." in resp.text


def test_repeated_failures_are_throttled_like_the_api(client: TestClient[Litestar]) -> None:
    token = _token(client)
    statuses = []
    for _ in range(6):
        body = {"username": "olena", "password": "wrong", "_csrf_token": token, "lang": "en"}
        resp = client.post("/console/login", data=body)
        statuses.append(resp.status_code)
    assert statuses[:3] == [401, 401, 401] and statuses[-1] == 429
    assert "Too many attempts. Try again in" in resp.text


@pytest.mark.parametrize(
    ("headers", "status", "where"),
    [
        ({}, 303, "location"),
        ({"HX-Request": "true"}, 401, "hx-redirect"),
    ],
)
def test_no_session_goes_to_login(
    client: TestClient[Litestar], headers: dict[str, str], status: int, where: str
) -> None:
    resp = client.get("/console/alerts/7", headers=headers, follow_redirects=False)
    assert resp.status_code == status
    assert resp.headers[where] == "/console/login?expired=true&next=%2Fconsole%2Falerts%2F7"


def test_operator_gets_the_403_page_and_no_link(client: TestClient[Litestar]) -> None:
    _sign_in(client, "olena")
    assert 'data-nav="audit"' not in client.get("/console/").text
    resp = client.get("/console/audit")
    assert resp.status_code == 403 and 'data-status="403"' in resp.text


def test_supervisor_sees_the_audit_chain(client: TestClient[Litestar]) -> None:
    _sign_in(client, "petro")
    assert 'data-nav="audit"' in client.get("/console/").text
    resp = client.get("/console/audit")
    assert resp.status_code == 200 and 'data-ok="true"' in resp.text


def test_rest_api_keeps_bearer_tokens_without_csrf(rig: Rig, client: TestClient[Litestar]) -> None:
    login = client.post("/api/v1/auth/login", json={"username": "olena", "password": PASSWORD})
    assert login.status_code == 200
    token = rig.token("operator")
    resp = client.post(
        "/api/v1/alerts/5/transition", json={"to": "acknowledged"}, headers=bearer(token)
    )
    assert resp.status_code == 404 and resp.json()["error"] == "no alert with id 5"


def test_openapi_pages_load_only_vendored_files(client: TestClient[Litestar]) -> None:
    for path in ("/schema", "/schema/swagger"):
        page = client.get(path).text
        assert "https://" not in page and "http://" not in page
        urls = re.findall(r"(?:src|href)=['\"]([^'\"]+)", page)
        assert urls and all(u.startswith("/console/static/") for u in urls)
        assert all(client.get(u).status_code == 200 for u in urls)


def test_prefs_are_kept_per_user(rig: Rig) -> None:
    prefs = PrefsService(rig.central.db)
    assert prefs.get("olena") == UserPrefs("uk", False)
    assert prefs.update("olena", muted=True) == UserPrefs("uk", True)
    assert prefs.update("olena", locale="en") == UserPrefs("en", True)
    assert prefs.get("olena") == UserPrefs("en", True) and prefs.get("petro") == UserPrefs()
    with pytest.raises(InvalidRequest, match="expected a language"):
        prefs.update("olena", locale="de")
    assert rig.central.db.schema_version == len(MIGRATIONS)


REASONS = ["Plate misread", "Duplicate of another alert"]


@pytest.mark.parametrize(
    ("form", "expected", "error"),
    [
        (ActionForm(to="acknowledged"), "", None),
        (ActionForm(to="dispatched", crew="П-12", note="  на захід "), "crew П-12: на захід", None),
        (ActionForm(to="dispatched", crew="П-12"), "crew П-12", None),
        (ActionForm(to="dispatched", crew="  "), None, "needs the patrol crew"),
        (ActionForm(to="rejected", reason="Plate misread"), "Plate misread", None),
        (ActionForm(to="rejected", reason="Plate misread", note="x"), "Plate misread: x", None),
        (ActionForm(to="rejected", reason="because"), None, "from the list"),
        (ActionForm(to="resolved", note="a" * 501), None, "at most 500"),
        (ActionForm(to="new"), None, "expected an action"),
    ],
)
def test_action_reason(form: ActionForm, expected: str | None, error: str | None) -> None:
    if error is not None:
        with pytest.raises(InvalidRequest, match=error):
            action_reason(form, REASONS)
    else:
        assert action_reason(form, REASONS) == expected


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/console/alerts/3", "/console/alerts/3"),
        ("/console/?state=new", "/console/?state=new"),
        ("https://evil.example/console/", "/console/"),
        ("//evil.example/console/", "/console/"),
        ("/api/v1/users", "/console/"),
        ("", "/console/"),
    ],
)
def test_safe_next_stays_in_the_console(target: str, expected: str) -> None:
    assert safe_next(target) == expected


@pytest.mark.parametrize(("kw", "error"), [({"state": "open"}, "state"), ({"limit": 0}, "limit")])
def test_board_filter_is_checked(kw: dict[str, object], error: str) -> None:
    with pytest.raises(InvalidRequest, match=error):
        BoardFilter(**kw)  # type: ignore[arg-type]
