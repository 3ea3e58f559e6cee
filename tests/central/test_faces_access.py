"""Who may call the face endpoints: every role, and API tokens without the face scopes.
Police clients and engineers reach none of them (real app, real DuckDB)."""

from __future__ import annotations

from collections.abc import Iterator

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
