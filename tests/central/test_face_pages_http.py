"""The face pages of the console over HTTP in process (real DuckDB, Litestar's test client):
who may open what, and what an unknown candidate or person gives. The browser tests
(``tests/web/test_faces_console.py``) drive the pages themselves with the real models."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from central.alerts.service import AlertService
from central.app import create_app
from central.web.board import changes
from tests.central.auth_helpers import PASSWORD, Rig, make_rig

TOKEN = re.compile(r'name="_csrf_token" value="([0-9a-f]+)"')
USERS = {
    "operator": "olena",
    "supervisor": "petro",
    "engineer": "ivan",
    "police-api": "pavlo",
}
MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient[Litestar]]:
    rig: Rig = make_rig(tmp_path_factory.mktemp("face-pages"))
    for role, name in USERS.items():
        rig.user(name, role)
    with TestClient(create_app(rig.central)) as c:
        yield c


def _sign_in(client: TestClient[Litestar], user: str) -> None:
    client.cookies.clear()
    match = TOKEN.search(client.get("/console/login").text)
    assert match is not None
    body = {"username": user, "password": PASSWORD, "_csrf_token": match.group(1)}
    resp = client.post("/console/login", data=body, follow_redirects=False)
    assert resp.status_code == 303, resp.text


@pytest.mark.parametrize(
    ("role", "path", "status"),
    [
        ("operator", "/console/faces/queue", 200),
        ("operator", "/console/persons", 200),
        ("operator", "/console/persons/new", 403),  # operators browse, never enrol
        ("operator", f"/console/faces/{MISSING}", 404),
        ("operator", f"/console/persons/{MISSING}", 404),
        ("operator", f"/console/faces/{MISSING}/crop", 404),
        ("supervisor", "/console/persons/new", 200),
        ("supervisor", f"/console/persons/{MISSING}/remove", 404),
        ("supervisor", "/console/persons?status=gone", 400),
        ("engineer", "/console/faces/queue", 403),
        ("engineer", "/console/persons", 403),
        ("police-api", "/console/faces/queue", 403),
        ("police-api", f"/console/faces/{MISSING}", 403),
        ("police-api", "/console/persons", 403),
    ],
)
def test_who_may_open_the_face_pages(
    client: TestClient[Litestar], role: str, path: str, status: int
) -> None:
    _sign_in(client, USERS[role])
    resp = client.get(path, follow_redirects=False)
    assert resp.status_code == status, resp.text[-500:]


@pytest.mark.parametrize(
    ("role", "queue", "link"),
    [("operator", True, True), ("supervisor", True, True), ("engineer", False, False)],
)
def test_the_board_and_navigation_by_role(
    client: TestClient[Litestar], role: str, queue: bool, link: bool
) -> None:
    _sign_in(client, USERS[role])
    home = client.get("/console/")
    assert home.status_code == 200
    assert ('id="face-queue"' in home.text) is queue
    assert ('data-nav="persons"' in home.text) is link


def test_changes_need_the_csrf_token_and_the_role(client: TestClient[Litestar]) -> None:
    _sign_in(client, "olena")
    forged = client.post(f"/console/faces/{MISSING}/confirm", follow_redirects=False)
    assert forged.status_code == 403  # no CSRF token
    match = TOKEN.search(client.get("/console/persons").text)
    assert match is not None
    headers = {"x-csrftoken": match.group(1)}
    missing = client.post(f"/console/faces/{MISSING}/confirm", headers=headers)
    assert missing.status_code == 404
    expire = client.post(
        f"/console/persons/{MISSING}/expire", data={"why": "test"}, headers=headers
    )
    assert expire.status_code == 403  # operators do not manage persons


def test_anonymous_callers_go_to_the_login(client: TestClient[Litestar]) -> None:
    client.cookies.clear()
    for path in ("/console/faces/queue", "/console/persons", f"/console/faces/{MISSING}"):
        resp = client.get(path, follow_redirects=False)
        assert resp.status_code == 303 and "/console/login" in resp.headers["location"], path


def test_the_board_stream_announces_new_face_candidates(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    assert rig.central.alerting is not None
    alerts = AlertService(rig.central.alerting.engine, rig.central.db)
    matched = [0]

    async def scenario() -> list[tuple[str | None, object]]:
        stream = changes(
            alerts, alerts.head, lambda: True, keepalive_s=0.2, faces_matched=lambda: matched[0]
        )
        seen = [await anext(stream), await anext(stream)]  # connected, then a keepalive
        matched[0] = 1  # ingest stored a candidate
        seen.append(await anext(stream))
        seen.append(await anext(stream))  # nothing new: a keepalive again
        return [(m.event, m.data if m.event else m.comment) for m in seen]

    got = asyncio.run(scenario())
    assert got == [(None, "connected"), (None, "keepalive"), ("faces", "1"), (None, "keepalive")]
