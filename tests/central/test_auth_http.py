"""End to end through a real uvicorn server: bootstrap token, users, login, evidence, revoke."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import pytest
from typer.testing import CliRunner

from central.config import CentralConfig
from tests.central.auth_helpers import PASSWORD, store_sighting
from tests.central.police_helpers import Server
from tests.harness import admin_headers, central_config, central_yaml, make_keyring
from varta.cli import app as varta


@pytest.fixture
def config(tmp_path: Path) -> CentralConfig:
    return central_config(make_keyring(tmp_path / "keys", []), tmp_path / "central")


@pytest.fixture
def served(config: CentralConfig) -> Iterator[Server]:
    s = Server(config)
    yield s
    s.stop()


def test_police_and_operator_flow_over_real_http(
    served: Server, config: CentralConfig, tmp_path: Path
) -> None:
    event = store_sighting(served.central)
    thumb = f"/api/v1/sightings/{event}/thumbnails/0"
    with httpx.Client(base_url=served.url, timeout=10) as http:
        assert http.get("/api/v1/health").json()["status"] == "ok"
        refused = http.get(thumb)
        assert refused.status_code == 401 and set(refused.json()) == {"status", "error", "detail"}
        admin = admin_headers(config)
        for body in (
            {"username": "olena", "role": "operator", "password": PASSWORD},
            {"username": "patrol", "role": "police-api"},
        ):
            assert http.post("/api/v1/users", json=body, headers=admin).status_code == 201
        made = http.post(
            "/api/v1/tokens", json={"user": "patrol", "scopes": ["alerts:read"]}, headers=admin
        ).json()
        police = {"Authorization": f"Bearer {made['secret']}"}
        assert http.get(thumb, headers=police).status_code == 403
        login = http.post("/api/v1/auth/login", json={"username": "olena", "password": PASSWORD})
        operator = {"Authorization": f"Bearer {login.json()['token']}"}
        assert http.get(thumb, headers=operator).status_code == 200
        live = http.get("/api/v1/sightings", headers=operator).json()
        assert live == {"items": [], "next_before": None}  # captured in 1970: not live
        old = http.get("/api/v1/sightings", params={"reason": "case 12/345"}, headers=operator)
        assert old.json()["items"][0]["event_id"] == event
        revoked = http.delete(f"/api/v1/tokens/{made['token']['token_id']}", headers=admin)
        assert revoked.status_code == 200
        assert http.get("/api/v1/auth/me", headers=police).json()["error"] == "token revoked"
    served.stop()
    cfile = central_yaml(tmp_path / "central.yaml", config)
    result = CliRunner().invoke(varta, ["central", "audit", "verify", "--config", str(cfile)])
    assert result.exit_code == 0 and result.output.startswith("OK: "), result.output
    con = duckdb.connect(str(served.central.db.path), read_only=True)
    actions = [r[0] for r in con.execute("SELECT action FROM audit_log ORDER BY id").fetchall()]
    con.close()
    assert actions == [
        "user.create",  # bootstrap admin
        "token.create",  # bootstrap token
        "user.create",
        "user.create",
        "token.create",
        "login",
        "evidence.view",
        "sightings.list",
        "token.revoke",
    ]
