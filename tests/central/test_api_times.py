"""REST hygiene: every time is RFC 3339 with an offset, time parameters take it (and UNIX
seconds), and sightings beyond the live window need a reason and are audited."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from central.accounts import Role
from central.api.dto import AuditEntryRead, rfc3339, to_read
from central.app import create_app
from tests.central.auth_helpers import PASSWORD, Rig, bearer, make_rig, store_sighting

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")
TIME_KEY = re.compile(r"^(at|next_before|.*_at|.*_seen|.*_until)$")


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield make_rig(tmp_path)


@pytest.fixture
def client(rig: Rig) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(rig.central)) as c:
        yield c


def _times(value: Any, key: str = "") -> list[Any]:
    """Every value under a time-like key, anywhere in a JSON document."""
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in _times(v, k)]
    if isinstance(value, list):
        return [t for v in value for t in _times(v, key)]
    return [value] if TIME_KEY.match(key) and value is not None else []


@pytest.mark.parametrize(
    ("epoch", "text"),
    [
        (0.0, "1970-01-01T00:00:00.000000+00:00"),
        (1_800_000_000.123456, "2027-01-15T08:00:00.123456+00:00"),
        (1_764_925_461.5, "2025-12-05T09:04:21.500000+00:00"),
    ],
)
def test_rfc3339_has_microseconds_and_an_offset(epoch: float, text: str) -> None:
    assert rfc3339(epoch) == text


def test_every_time_in_every_response_is_rfc3339(rig: Rig, client: TestClient[Litestar]) -> None:
    now = time.time()
    store_sighting(rig.central, captured_at=now - 60)
    rig.user("olena", Role.OPERATOR)
    admin = bearer(rig.token(Role.ADMIN))
    session = client.post("/api/v1/auth/login", json={"username": "olena", "password": PASSWORD})
    made = client.post("/api/v1/tokens", json={"user": "olena", "scopes": ["search"],
                                               "expires_days": 1}, headers=admin)  # fmt: skip
    why = {"reason": "case 12/345"}
    documents = [
        session.json(),
        made.json(),
        client.get("/api/v1/users", headers=admin).json(),
        client.get("/api/v1/tokens", headers=admin).json(),
        client.get("/api/v1/audit", headers=admin).json(),
        client.get("/api/v1/sightings", params={"limit": 1}, headers=admin).json(),
        client.get("/api/v1/sightings/search", params=why, headers=admin).json(),
        client.get(
            "/api/v1/vehicles/journey", params={**why, "plate": "AT1234BB"}, headers=admin
        ).json(),
    ]
    times = [t for doc in documents for t in _times(doc)]
    assert len(times) > 20
    assert all(isinstance(t, str) and RFC3339.match(t) for t in times), times


def test_alert_and_audit_details_show_times_by_their_key_names() -> None:
    row = {"id": 1, "at": 0.0, "actor": "a", "action": "x", "target": "", "reason": "",
           "details": {"last_seen": 1.0, "expires_at": None, "count": 3}, "hash": "h"}  # fmt: skip
    read = to_read(row, AuditEntryRead)
    assert read.details == {"last_seen": rfc3339(1.0), "expires_at": None, "count": 3}


def _bodies(document: dict[str, Any]) -> list[Any]:
    """Every request body of the document's operations."""
    return [
        op["requestBody"]
        for path in document["paths"].values()
        for op in path.values()
        if isinstance(op, dict) and "requestBody" in op
    ]


def test_openapi_types_every_time_as_a_date_time_string(client: TestClient[Litestar]) -> None:
    document = client.get("/schema/openapi.json").json()
    schemas = document["components"]["schemas"]
    inputs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(_bodies(document))))
    checked = 0
    for schema_name, schema in schemas.items():
        for name, prop in (schema.get("properties") or {}).items():
            if not TIME_KEY.match(name):
                continue
            options = prop.get("oneOf", [prop])
            if schema_name in inputs:  # a request body may also take a whole date
                assert all(o["type"] in ("string", "null") for o in options), (name, prop)
                assert any("RFC 3339" in o.get("description", "") for o in options), (name, prop)
                checked += 1
                continue
            assert {"type": "string", "format": "date-time"} in [
                {k: o.get(k) for k in ("type", "format")} for o in options
            ], (name, prop)
            checked += 1
    assert checked >= 20


def test_sightings_outside_the_live_window_need_a_reason(
    rig: Rig, client: TestClient[Litestar]
) -> None:
    now = time.time()
    live = store_sighting(rig.central, captured_at=now - 300)
    old = store_sighting(rig.central, captured_at=now - 3600)
    operator = bearer(rig.token(Role.OPERATOR))
    page = client.get("/api/v1/sightings", headers=operator).json()
    assert [i["event_id"] for i in page["items"]] == [live]
    for before in (rfc3339(now - 1800), str(now - 1800)):  # RFC 3339 or UNIX seconds
        resp = client.get("/api/v1/sightings", params={"before": before}, headers=operator)
        assert resp.status_code == 400 and "need a reason" in resp.json()["error"]
    resp = client.get(
        "/api/v1/sightings", params={"reason": "case 7", "before": rfc3339(now)}, headers=operator
    )
    assert [i["event_id"] for i in resp.json()["items"]] == [live, old]
    assert client.get("/api/v1/sightings", params={"reason": "x"},
                      headers=operator).status_code == 400  # fmt: skip
    audit = rig.central.audit
    assert audit is not None
    [row] = audit.query(action="sightings.list")
    assert row.reason == "case 7" and row.details["results"] == 2


def test_paging_with_next_before_returns_each_sighting_once(
    rig: Rig, client: TestClient[Litestar]
) -> None:
    now = time.time()
    made = [store_sighting(rig.central, captured_at=now - 100 + i * 0.001) for i in range(5)]
    headers = bearer(rig.token(Role.SUPERVISOR))
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = client.get("/api/v1/sightings", params=params, headers=headers).json()
        seen += [i["event_id"] for i in page["items"]]
        if page["next_before"] is None:
            break
        params["before"] = page["next_before"]
    assert seen == made[::-1]


def test_audit_since_takes_rfc3339_and_unix_seconds(rig: Rig, client: TestClient[Litestar]) -> None:
    admin = bearer(rig.token(Role.ADMIN))
    start = time.time() - 60  # the audit log runs on the real clock
    for since in (rfc3339(start), str(start)):
        resp = client.get("/api/v1/audit", params={"since": since}, headers=admin)
        assert resp.status_code == 200 and resp.json(), resp.text
    resp = client.get("/api/v1/audit", params={"since": "last tuesday"}, headers=admin)
    assert resp.status_code == 400 and resp.json()["error"].startswith("since:")
