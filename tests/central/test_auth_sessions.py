"""Login, sessions, lockout, cookies, user and token administration over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from central.accounts import AccountPolicy, Role
from central.accounts.login import ThrottlePolicy
from central.api.dto import rfc3339
from central.app import create_app
from central.audit import AuditLog
from tests.central.auth_helpers import PASSWORD, Rig, bearer, make_rig
from tests.harness import wait_for

Client = TestClient[Litestar]


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return make_rig(tmp_path, AccountPolicy(3600, ThrottlePolicy(free_failures=3)))


@pytest.fixture
def client(rig: Rig) -> Iterator[Client]:
    with TestClient(create_app(rig.central)) as c:
        yield c


def _audit(rig: Rig) -> AuditLog:
    assert rig.central.audit is not None
    return rig.central.audit


def _login(client: Client, user: str, password: str = PASSWORD) -> tuple[int, dict[str, str]]:
    resp = client.post("/api/v1/auth/login", json={"username": user, "password": password})
    return resp.status_code, resp.json()


def test_login_gives_a_session_that_works_until_it_expires(rig: Rig, client: Client) -> None:
    rig.user("olena", Role.OPERATOR)
    status, session = _login(client, "olena")
    assert status == 200 and session["role"] == "operator" and session["token"].startswith("vs_")
    me = client.get("/api/v1/auth/me", headers=bearer(session["token"])).json()
    assert me == {
        "user": "olena",
        "role": "operator",
        "kind": "session",
        "token_id": session["session_id"],
        "scopes": None,
    }
    rig.clock.now += 3599
    assert client.get("/api/v1/sightings", headers=bearer(session["token"])).status_code == 200
    rig.clock.now += 2
    resp = client.get("/api/v1/sightings", headers=bearer(session["token"]))
    assert resp.json() == {"status": 401, "error": "token expired", "detail": None}


def test_logins_ok_and_failed_are_audited(rig: Rig, client: Client) -> None:
    rig.user("olena", Role.OPERATOR)
    assert _login(client, "olena", "wrong password!")[0] == 401
    assert _login(client, "nobody")[0] == 401
    assert _login(client, "olena")[0] == 200
    rows = _audit(rig).query()
    got = [(r.actor, r.action, r.target, r.details.get("why")) for r in rows[:3]]
    assert rows[1].details["count"] == 1
    assert got == [
        ("olena", "login", f"session:{rows[0].target.split(':')[1]}", None),
        ("anonymous", "login.failed", "user:nobody", "unknown user"),
        ("anonymous", "login.failed", "user:olena", "bad password"),
    ]
    assert rows[1].details["client"] == "testclient"


def test_failing_source_waits_longer_each_time_then_gets_in(rig: Rig, client: Client) -> None:
    rig.user("olena", Role.OPERATOR)
    for _ in range(3):  # free failures
        status, body = _login(client, "olena", "wrong password!")
    assert status == 401
    assert body["error"] == "invalid user name or password, or the account is disabled"
    status, _ = _login(client, "olena", "wrong password!")  # the 4th: wait 1 s from now
    assert status == 401
    resp = client.post("/api/v1/auth/login", json={"username": "olena", "password": PASSWORD})
    assert resp.status_code == 429 and resp.headers["retry-after"] == "1"
    assert resp.json() == {
        "status": 429,
        "error": "too many failed logins; try again in 1 s",
        "detail": None,
    }
    rig.clock.now += 1
    assert _login(client, "olena", "wrong password!")[0] == 401  # the 5th: wait 2 s
    resp = client.post("/api/v1/auth/login", json={"username": "olena", "password": PASSWORD})
    assert resp.status_code == 429 and resp.headers["retry-after"] == "2"
    rig.clock.now += 2
    assert _login(client, "olena")[0] == 200


def test_disabled_user_cannot_log_in_and_loses_sessions(rig: Rig, client: Client) -> None:
    rig.user("olena", Role.OPERATOR)
    admin = bearer(rig.token(Role.ADMIN))
    session = _login(client, "olena")[1]["token"]
    change = {"disabled": True, "reason": "left"}
    resp = client.patch("/api/v1/users/olena", json=change, headers=admin)
    assert resp.status_code == 200 and resp.json()["disabled"] is True
    assert client.get("/api/v1/auth/me", headers=bearer(session)).status_code == 401
    assert _login(client, "olena")[0] == 401
    row = _audit(rig).query(action="user.change")[0]
    assert row.target == "user:olena" and row.reason == "left"


def test_logout_revokes_the_session_and_clears_the_cookie(rig: Rig, client: Client) -> None:
    rig.user("olena", Role.SUPERVISOR)
    token = _login(client, "olena")[1]["token"]
    resp = client.post("/api/v1/auth/logout", headers=bearer(token))
    assert resp.status_code == 204 and 'varta_session=""' in resp.headers["set-cookie"]
    resp = client.get("/api/v1/auth/me", headers=bearer(token))
    assert resp.json()["error"] == "token revoked"


def test_session_cookie_authenticates_and_refuses_cross_site_changes(
    rig: Rig, client: Client
) -> None:
    rig.user("olena", Role.SUPERVISOR)
    resp = client.post("/api/v1/auth/login", json={"username": "olena", "password": PASSWORD})
    cookie = resp.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.get("/api/v1/auth/me").json()["user"] == "olena"  # cookie jar
    evil = client.post("/api/v1/auth/logout", headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403
    same = client.post("/api/v1/auth/logout", headers={"Origin": "http://testserver.local"})
    assert same.status_code == 204


def test_admin_creates_users_and_tokens_and_revokes_them(rig: Rig, client: Client) -> None:
    admin = bearer(rig.token(Role.ADMIN))
    resp = client.post(
        "/api/v1/users", json={"username": "patrol-app", "role": "police-api"}, headers=admin
    )
    assert resp.status_code == 201 and resp.json()["role"] == "police-api"
    resp = client.post(
        "/api/v1/tokens",
        json={"user": "patrol-app", "scopes": ["alerts:read"], "expires_days": 30},
        headers=admin,
    )
    assert resp.status_code == 201
    made = resp.json()
    token_id, secret = made["token"]["token_id"], made["secret"]
    assert made["token"]["expires_at"] == rfc3339(rig.clock.now + 30 * 86_400)
    police = bearer(secret)
    assert client.get("/api/v1/auth/me", headers=police).json()["scopes"] == ["alerts:read"]
    listed = client.get("/api/v1/tokens", params={"user": "patrol-app"}, headers=admin).json()
    assert [t["token_id"] for t in listed] == [token_id]
    assert listed[0]["last_used_at"] == rfc3339(rig.clock.now) and "secret" not in listed[0]
    resp = client.delete(f"/api/v1/tokens/{token_id}", params={"reason": "lost"}, headers=admin)
    assert resp.status_code == 200 and resp.json()["revoked_at"] == rfc3339(rig.clock.now)
    assert client.get("/api/v1/auth/me", headers=police).status_code == 401
    actions = [(r.action, r.target) for r in _audit(rig).query(actor=_me(client, admin))]
    assert actions[:3] == [
        ("token.revoke", f"token:{token_id}"),
        ("token.create", f"token:{token_id}"),
        ("user.create", "user:patrol-app"),
    ]


def _me(client: Client, headers: dict[str, str]) -> str:
    return str(client.get("/api/v1/auth/me", headers=headers).json()["user"])


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"username": "Bad Name", "role": "operator"}, 400, "expected a user name"),
        ({"username": "ok", "role": "operator", "password": "short"}, 400, "expected a password"),
        ({"username": "ok", "role": "king"}, 400, "Validation failed"),
    ],
)
def test_bad_user_requests_say_what_was_expected(
    rig: Rig, client: Client, body: dict[str, str], status: int, error: str
) -> None:
    resp = client.post("/api/v1/users", json=body, headers=bearer(rig.token(Role.ADMIN)))
    assert resp.status_code == status and resp.json()["error"].startswith(error)


def test_unknown_scope_is_refused(rig: Rig, client: Client) -> None:
    admin = bearer(rig.token(Role.ADMIN))
    resp = client.post("/api/v1/tokens", json={"user": "admin", "scopes": ["root"]}, headers=admin)
    assert resp.status_code == 400 and "unknown ['root']" in resp.json()["error"]


def test_last_used_is_written_at_most_once_a_minute(rig: Rig, client: Client) -> None:
    made = rig.api_token(Role.ENGINEER)

    def last_used() -> float | None:
        return rig.accounts.get_token(made.token.token_id).last_used_at

    # The touch is a background job on the database writer: wait for it, not for the reply.
    client.get("/api/v1/agents", headers=bearer(made.secret))
    assert wait_for(lambda: last_used() is not None, 10)
    first = last_used()
    rig.clock.now += 30
    client.get("/api/v1/agents", headers=bearer(made.secret))
    rig.central.db.writer.call(lambda con: None)  # jobs run in order: the touch is done
    assert last_used() == first
    rig.clock.now += 31
    client.get("/api/v1/agents", headers=bearer(made.secret))
    assert wait_for(lambda: last_used() == rig.clock.now, 10)


def test_audit_can_be_read_and_verified_and_reading_is_audited(rig: Rig, client: Client) -> None:
    rig.user("olena", Role.OPERATOR)
    _login(client, "olena", "wrong password!")
    supervisor = bearer(rig.token(Role.SUPERVISOR))
    rows = client.get("/api/v1/audit", params={"action": "login.failed"}, headers=supervisor)
    assert [(r["actor"], r["target"]) for r in rows.json()] == [("anonymous", "user:olena")]
    viewed = _audit(rig).query(action="audit.view")[0]
    assert viewed.details["action"] == "login.failed" and viewed.details["rows"] == 1
    check = client.get("/api/v1/audit/verify", headers=bearer(rig.token(Role.ADMIN))).json()
    assert check["ok"] and check["problems"] == [] and check["head"] == _audit(rig).head[1]
    assert check["rows"] == _audit(rig).head[0]


def test_users_change_their_own_password(rig: Rig, client: Client) -> None:
    rig.user("olena", Role.OPERATOR)
    session = bearer(_login(client, "olena")[1]["token"])
    new = "another long passphrase"
    wrong = client.post(
        "/api/v1/auth/password", json={"current": "nope", "new": new}, headers=session
    )
    assert wrong.status_code == 401
    ok = client.post(
        "/api/v1/auth/password", json={"current": PASSWORD, "new": new}, headers=session
    )
    assert ok.status_code == 204
    assert client.get("/api/v1/auth/me", headers=session).status_code == 401  # sessions ended
    assert _login(client, "olena")[0] == 401 and _login(client, "olena", new)[0] == 200
    row = _audit(rig).query(action="user.change", target="user:olena")[0]
    assert row.actor == "olena" and row.details["password"] is True
