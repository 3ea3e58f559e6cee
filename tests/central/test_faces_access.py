"""Who may call the face endpoints: every role, and API tokens without the face scopes.
Police clients and engineers reach none of them (real app, real DuckDB)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from central.accounts import Role
from central.app import create_app
from tests.central.auth_helpers import Rig, bearer, make_rig

MISSING = "00000000-0000-4000-8000-000000000000"
# (method, path, roles allowed); an allowed caller gets 404 / 400 for the missing id or
# empty form, a refused one 403.
ROUTES = [
    ("GET", "/api/v1/persons", {Role.ADMIN, Role.SUPERVISOR, Role.OPERATOR}),
    ("GET", f"/api/v1/persons/{MISSING}", {Role.ADMIN, Role.SUPERVISOR, Role.OPERATOR}),
    ("POST", "/api/v1/persons", {Role.ADMIN, Role.SUPERVISOR}),
    ("POST", f"/api/v1/persons/{MISSING}/expire?reason=test", {Role.ADMIN, Role.SUPERVISOR}),
    ("DELETE", f"/api/v1/persons/{MISSING}?reason=test", {Role.ADMIN, Role.SUPERVISOR}),
    ("GET", "/api/v1/face-candidates", {Role.ADMIN, Role.SUPERVISOR, Role.OPERATOR}),
    ("GET", f"/api/v1/face-candidates/{MISSING}", {Role.ADMIN, Role.SUPERVISOR, Role.OPERATOR}),
    (
        "POST",
        f"/api/v1/face-candidates/{MISSING}/confirm",
        {Role.ADMIN, Role.SUPERVISOR, Role.OPERATOR},
    ),
]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Rig, TestClient[Litestar]]]:
    rig = make_rig(tmp_path_factory.mktemp("access"))
    with TestClient(create_app(rig.central)) as client:
        yield rig, client


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize(("method", "path", "allowed"), ROUTES)
def test_face_routes_by_role(
    env: tuple[Rig, TestClient[Litestar]],
    role: Role,
    method: str,
    path: str,
    allowed: set[Role],
) -> None:
    rig, client = env
    key = f"role:{role.value}"
    if key not in rig.tokens:
        rig.tokens[key] = rig.token(role)
    resp = client.request(method, path, headers=bearer(rig.tokens[key]))
    if role in allowed:
        assert resp.status_code in (200, 400, 404), (role, path, resp.text)
    else:
        assert resp.status_code == 403, (role, path, resp.text)


@pytest.mark.parametrize(
    ("scopes", "path", "status"),
    [
        (["alerts:read"], "/api/v1/persons", 403),
        (["faces:read"], "/api/v1/persons", 200),
        (["faces:read"], f"/api/v1/face-candidates/{MISSING}/confirm", 403),
        (["faces:decide"], f"/api/v1/face-candidates/{MISSING}/confirm", 404),
    ],
)
def test_operator_tokens_need_the_face_scopes(
    env: tuple[Rig, TestClient[Litestar]], scopes: list[str], path: str, status: int
) -> None:
    rig, client = env
    token = rig.token(Role.OPERATOR, scopes)
    method = "POST" if path.endswith("/confirm") else "GET"
    assert client.request(method, path, headers=bearer(token)).status_code == status


def test_a_face_alert_renders_on_the_console_board_and_its_page(tmp_path: Path) -> None:
    """Face alerts have no sighting trail; the operator console shows them anyway."""
    import re

    from tests.central.auth_helpers import PASSWORD

    rig = make_rig(tmp_path)
    rig.user("olena", "operator")
    assert rig.central.alerting is not None
    engine = rig.central.alerting.engine
    details = {"person": "Barack O.", "reason": "missing person", "score": 0.71}
    alert = rig.central.db.writer.call(
        lambda con: engine.raise_face(
            con, MISSING, "Wanted person Barack O. seen at cam-1", details, 1.8e9, "op2"
        )
    )
    with TestClient(create_app(rig.central)) as client:
        match = re.search(r'name="_csrf_token" value="([^"]+)"', client.get("/console/login").text)
        assert match is not None
        body = {"username": "olena", "password": PASSWORD, "_csrf_token": match.group(1)}
        assert client.post("/console/login", data=body, follow_redirects=False).status_code == 303
        board = client.get("/console/")
        assert board.status_code == 200 and f"/console/alerts/{alert.alert_id}" in board.text
        page = client.get(f"/console/alerts/{alert.alert_id}")
        assert page.status_code == 200 and MISSING in page.text
