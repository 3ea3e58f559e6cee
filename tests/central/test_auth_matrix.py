"""Who may call which endpoint: every role, no token, bad, revoked and expired credentials."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from central.accounts import SCOPES, Role
from central.api.auth import RoleGuard, requires
from central.app import create_app
from tests.central.auth_helpers import Rig, bearer, make_rig, store_sighting
from tests.harness import admin_headers

ADMIN, SUP, OP, POL, ENG = (
    Role.ADMIN,
    Role.SUPERVISOR,
    Role.OPERATOR,
    Role.POLICE_API,
    Role.ENGINEER,
)
THUMB = "/api/v1/sightings/{event}/thumbnails/0"

# endpoint -> roles allowed (None: public)
ENDPOINTS: dict[str, frozenset[Role] | None] = {
    "/api/v1/agents": frozenset({ADMIN, SUP, OP, ENG}),
    "/api/v1/sightings": frozenset({ADMIN, SUP, OP}),
    THUMB: frozenset({ADMIN, SUP, OP}),
    "/api/v1/status/ingest": frozenset({ADMIN, ENG, SUP}),
    "/api/v1/users": frozenset({ADMIN}),
    "/api/v1/tokens": frozenset({ADMIN}),
    "/api/v1/auth/me": frozenset(Role),
    "/api/v1/audit": frozenset({ADMIN, SUP}),
    "/api/v1/audit/verify": frozenset({ADMIN}),
    "/api/v1/health": None,
    "/schema/openapi.json": None,
}
CALLERS = [*Role, "none", "garbage", "revoked", "expired"]
# endpoint -> scopes an API token needs for it (beyond the role)
NEEDS: dict[str, list[str]] = {
    "/api/v1/agents": ["agents:read"],
    "/api/v1/sightings": ["search"],
    THUMB: ["evidence:read"],
    "/api/v1/status/ingest": ["status:read"],
    "/api/v1/users": ["users:admin"],
    "/api/v1/tokens": ["tokens:admin"],
    "/api/v1/auth/me": [],
    "/api/v1/audit": ["audit:read"],
    "/api/v1/audit/verify": ["audit:read"],
}


class Env:
    """One running app shared by the matrix: a token per caller and a stored sighting."""

    def __init__(self, rig: Rig, client: TestClient[Litestar]) -> None:
        self.rig, self.client = rig, client
        self.event = store_sighting(rig.central)
        self.headers: dict[str, dict[str, str]] = {r.value: bearer(rig.token(r)) for r in Role}
        self.headers["none"] = {}
        self.headers["garbage"] = bearer("vt_" + "x" * 43)
        revoked = rig.api_token(ADMIN)
        rig.accounts.revoke_token(revoked.token.token_id, "test")
        self.headers["revoked"] = bearer(revoked.secret)
        expiring = rig.token(ADMIN, expires_days=1)
        self.headers["expired"] = bearer(expiring)

    def get(self, path: str, caller: str) -> Any:
        return self.client.get(path.format(event=self.event), headers=self.headers[caller])

    def narrow(self, role: Role, scopes: list[str]) -> dict[str, str]:
        """Headers with a token of ``role`` carrying just ``scopes`` (made once per pair)."""
        key = f"{role.value}:{','.join(sorted(scopes))}"
        if key not in self.headers:
            self.headers[key] = bearer(self.rig.token(role, scopes))
        return self.headers[key]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    rig = make_rig(tmp_path_factory.mktemp("matrix"))
    with TestClient(create_app(rig.central)) as client:
        e = Env(rig, client)
        rig.clock.now += 2 * 86_400  # the one-day token has expired; the others have none
        yield e


def _expected(allowed: frozenset[Role] | None, caller: str) -> int:
    if allowed is None:
        return 200
    if caller not in {r.value for r in Role}:
        return 401
    return 200 if Role(caller) in allowed else 403


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_authorisation_matrix(env: Env, path: str, caller: str) -> None:
    resp = env.get(path, caller)
    assert resp.status_code == _expected(ENDPOINTS[path], caller), resp.text
    if resp.status_code >= 400:
        body = resp.json()
        assert set(body) == {"status", "error", "detail"}
        assert body["status"] == resp.status_code


@pytest.mark.parametrize(
    ("caller", "status", "error"),
    [
        ("none", 401, "expected 'Authorization: Bearer <token>' or a session cookie"),
        ("garbage", 401, "unknown token"),
        ("revoked", 401, "token revoked"),
        ("expired", 401, "token expired"),
        (
            "police-api",
            403,
            "expected a role in ['admin', 'engineer', 'operator', 'supervisor'], got 'police-api'",
        ),
    ],
)
def test_error_body_shape_is_pinned(env: Env, caller: str, status: int, error: str) -> None:
    resp = env.get("/api/v1/agents", caller)
    assert resp.status_code == status
    assert resp.json() == {"status": status, "error": error, "detail": None}


@pytest.mark.parametrize(
    ("header", "error"),
    [
        ("Basic YWRtaW46YWRtaW4=", "expected 'Authorization: Bearer <token>'"),
        ("Bearer ", "expected 'Authorization: Bearer <token>'"),
        ("Bearer abc", "expected a Varta session or API token (vs_... or vt_...)"),
    ],
)
def test_malformed_authorization_headers_are_401(env: Env, header: str, error: str) -> None:
    resp = env.client.get("/api/v1/agents", headers={"Authorization": header})
    assert resp.json() == {"status": 401, "error": error, "detail": None}


@pytest.mark.parametrize(
    ("path", "scopes", "status"),
    [
        ("/api/v1/agents", ["agents:read"], 200),
        ("/api/v1/agents", ["search"], 403),
        ("/api/v1/sightings", ["search"], 200),
        ("/api/v1/sightings", ["evidence:read"], 403),
        (THUMB, ["evidence:read"], 200),
        (THUMB, ["search"], 403),
        ("/api/v1/status/ingest", ["status:read"], 200),
        ("/api/v1/status/ingest", [], 403),
    ],
)
def test_token_scopes_narrow_the_role(env: Env, path: str, scopes: list[str], status: int) -> None:
    token = env.rig.token(ADMIN, scopes)
    resp = env.client.get(path.format(event=env.event), headers=bearer(token))
    assert resp.status_code == status
    if status == 403:
        assert "missing" in resp.json()["error"]


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("path", list(NEEDS))
def test_narrow_tokens_of_every_role(env: Env, path: str, role: Role) -> None:
    """A token with just the route's scopes passes where its role may; without them, never."""
    allowed = ENDPOINTS[path]
    assert allowed is not None
    url = path.format(event=env.event)
    exact = env.client.get(url, headers=env.narrow(role, NEEDS[path]))
    assert exact.status_code == (200 if role in allowed else 403), exact.text
    if NEEDS[path]:
        others = sorted(SCOPES - set(NEEDS[path]))
        resp = env.client.get(url, headers=env.narrow(role, others))
        assert resp.status_code == 403, resp.text
        if role in allowed:
            assert resp.json()["error"].endswith(f"missing {NEEDS[path]}")


@pytest.mark.parametrize(
    ("holds", "grants", "status"),
    [
        (["tokens:admin", "alerts:read"], ["alerts:read"], 201),
        (["tokens:admin"], ["alerts:read"], 403),
        (["tokens:admin"], ["tokens:admin", "users:admin"], 403),
    ],
)
def test_a_token_cannot_mint_a_wider_token(
    env: Env, holds: list[str], grants: list[str], status: int
) -> None:
    body = {"user": "admin", "scopes": grants}
    resp = env.client.post("/api/v1/tokens", json=body, headers=env.narrow(ADMIN, holds))
    assert resp.status_code == status, resp.text


def test_bootstrap_token_from_config_file_is_an_admin(env: Env) -> None:
    resp = env.client.get("/api/v1/auth/me", headers=admin_headers(env.rig.central.config))
    assert resp.json()["role"] == "admin" and resp.json()["user"] == "admin"


def test_every_route_is_public_or_guarded(env: Env) -> None:
    """A route without ``requires(...)`` would let any authenticated role in."""
    app = env.client.app
    unguarded = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path.startswith("/schema"):
            continue
        for handler in route.route_handlers:
            if handler.http_methods == {"OPTIONS"}:
                continue  # Litestar's automatic CORS preflight answer
            public = handler.opt.get("exclude_from_auth")
            guards = [g for layer in handler.ownership_layers for g in (layer.guards or ())]
            guarded = any(isinstance(g, RoleGuard) for g in guards)
            if not (public or guarded):
                unguarded.append(f"{sorted(handler.http_methods)} {route.path}")
    assert unguarded == []


def test_thumbnail_view_is_audited_with_the_viewer(env: Env) -> None:
    resp = env.get(THUMB, "operator")
    assert resp.status_code == 200 and resp.content.startswith(b"\xff\xd8")
    user = env.get("/api/v1/auth/me", "operator").json()["user"]
    audit = env.rig.central.audit
    assert audit is not None
    views = audit.query(actor=user, action="evidence.view")
    assert views and views[0].target == f"sighting:{env.event}/thumbnail/0"


def test_refused_thumbnail_is_not_served(env: Env, tmp_path: Path) -> None:
    resp = env.get(THUMB, "engineer")
    assert resp.status_code == 403 and not resp.content.startswith(b"\xff\xd8")


@pytest.mark.parametrize(
    ("roles", "error"),
    [((), "at least one role"), (("admin", "operater"), "'operater' is not a valid Role")],
)
def test_requires_refuses_nonsense_at_import_time(roles: tuple[str, ...], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        requires(*roles)  # type: ignore[arg-type]
