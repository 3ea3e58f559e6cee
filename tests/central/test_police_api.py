"""Police REST API end to end: a real agent publishes over CURVE ZeroMQ, real ingest stores
into a DuckDB file, the alert engine matches a Cyrillic wanted list, and an HTTP client of
a real uvicorn server pulls, long-polls, acknowledges and moves alerts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.central.alerts_helpers import write_wanted_list
from tests.central.police_helpers import Agent, Server, page, police_config
from tests.harness import KeyRing, make_keyring, role_token, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return make_keyring(tmp_path / "keys", ["a1"])


@pytest.fixture
def server(tmp_path: Path, ring: KeyRing) -> Iterator[Server]:
    config = police_config(ring, tmp_path / "central")
    write_wanted_list(Path(config.storage.data_dir) / config.storage.duckdb_file)
    s = Server(config)
    yield s
    s.stop()


@pytest.fixture
def agent(tmp_path: Path, ring: KeyRing, server: Server) -> Iterator[Agent]:
    a = Agent(tmp_path, ring, server.central.ingest.bound_endpoint)
    yield a
    a.stop()


def _watchlist(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in items if c["alert"]["kind"] == "watchlist"]


def test_sighting_to_police_client_with_evidence(server: Server, agent: Agent) -> None:
    with server.client() as http:
        start = time.monotonic()
        sighting = agent.sight("AA7681TE")
        body = page(http, wait=10)
        took = time.monotonic() - start
        [change] = _watchlist(body["items"])
        alert = change["alert"]
        assert alert["details"]["listed_plate_raw"] == "АА7681ТЕ"
        assert (alert["priority"], alert["category"], alert["state"]) == (1, "stolen", "new")
        assert alert["latest"]["event_id"] == sighting.event_id
        assert took < 3.0
        detail = http.get(f"/api/v1/alerts/{alert['alert_id']}").json()
        [item] = detail["trail"]
        assert [h["action"] for h in detail["history"]] == ["created"]
    evidence = role_token(server.central, "police-api", ["alerts:read", "evidence:read"])
    other = agent.sight("BC0000XX")  # on no list: not evidence of anything
    with server.client(evidence) as police_evidence:
        thumb = police_evidence.get(item["thumbnails"][0])
        assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
        assert wait_for(lambda: _stored(server, other.event_id), 20)
        refused = police_evidence.get(f"/api/v1/sightings/{other.event_id}/thumbnails/0")
        assert refused.status_code == 403 and "not evidence" in refused.json()["error"]
    with server.client(server.police_token) as police_no_scope:
        assert police_no_scope.get(item["thumbnails"][0]).status_code == 403


def test_dedup_lifecycle_and_errors_over_http(server: Server, agent: Agent) -> None:
    with server.client() as police, server.client(server.operator_token) as http:
        for cam in ("cam-1", "cam-2", "cam-3"):
            agent.sight("BC1234HH", camera=cam)
            time.sleep(0.05)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            alerts = {c["alert"]["alert_id"]: c["alert"] for c in page(http)["items"]}
            if any(a["sightings"] == 3 for a in alerts.values()):
                break
            time.sleep(0.05)
        [alert] = [a for a in alerts.values() if a["kind"] == "watchlist"]
        assert alert["sightings"] == 3
        path = f"/api/v1/alerts/{alert['alert_id']}"
        trail = http.get(path).json()["trail"]
        assert sorted(t["camera_id"] for t in trail) == ["cam-1", "cam-2", "cam-3"]

        illegal = http.post(f"{path}/transition", json={"to": "dispatched"})
        assert illegal.status_code == 409
        assert illegal.json()["status"] == 409 and "allowed next" in illegal.json()["error"]
        no_reason = http.post(f"{path}/transition", json={"to": "rejected"})
        assert no_reason.status_code == 400 and "reason" in no_reason.json()["error"]
        ack = police.post(f"{path}/ack")
        assert ack.status_code == 200 and ack.json()["police_ack_by"].startswith("police-api")
        assert police.post(f"{path}/transition", json={"to": "acknowledged"}).status_code == 403
        ok = http.post(f"{path}/transition", json={"to": "rejected", "reason": "plate misread"})
        assert ok.status_code == 200 and ok.json()["state"] == "rejected"
        history = http.get(path).json()["history"]
        assert [h["action"] for h in history] == ["created", "police_ack", "transition"]
        assert history[-1]["reason"] == "plate misread"
        assert history[-1]["actor"].startswith("operator")


BAD = [
    ({"after": "not-a-cursor"}, 400, "cursor"),
    ({"after": "YTE6eA"}, 400, "cursor"),  # base64 of "a1:x"
    ({"limit": "0"}, 400, None),
    ({"limit": "abc"}, 400, None),
    ({"wait": "31"}, 400, None),
    ({"wait": "-1"}, 400, None),
]


@pytest.mark.parametrize(("params", "status", "word"), BAD)
def test_bad_parameters_are_4xx_with_error_body(
    server: Server, params: dict[str, str], status: int, word: str | None
) -> None:
    with server.client() as http:
        resp = http.get("/api/v1/alerts", params=params)
    assert resp.status_code == status
    body = resp.json()
    assert set(body) == {"status", "error", "detail"} and body["status"] == status
    if word:
        assert word in body["error"]


def test_unknown_alert_is_404(server: Server) -> None:
    with server.client() as police, server.client(server.operator_token) as http:
        for resp in (
            http.get("/api/v1/alerts/4242"),
            police.post("/api/v1/alerts/4242/ack"),
            http.post("/api/v1/alerts/4242/transition", json={"to": "acknowledged"}),
            http.get(f"/api/v1/alerts/{10**30}"),
            police.post(f"/api/v1/alerts/{10**30}/ack"),
        ):
            assert resp.status_code == 404 and resp.json()["status"] == 404


def test_long_poll_wakes_on_new_alert_and_times_out_empty(server: Server, agent: Agent) -> None:
    with server.client() as http:
        head = page(http)["next"]
        start = time.monotonic()
        empty = page(http, after=head, wait=1)
        assert empty["items"] == [] and empty["next"] == head
        assert 0.9 <= time.monotonic() - start < 2.5
        result: dict[str, Any] = {}

        def poll() -> None:
            result["body"] = page(http, after=head, wait=20)
            result["at"] = time.monotonic()

        poller = threading.Thread(target=poll)
        poller.start()
        time.sleep(0.5)
        sent = time.monotonic()
        agent.sight("KA0001AB")
        poller.join(25)
        assert result["at"] - sent < 1.5
        [change] = _watchlist(result["body"]["items"])
        assert change["alert"]["details"]["listed_plate_raw"] == "КА0001АВ"


def test_no_or_bad_token_is_refused(server: Server) -> None:
    assert httpx.get(f"{server.url}/api/v1/alerts").status_code == 401
    bad = httpx.get(f"{server.url}/api/v1/alerts", headers={"Authorization": "Bearer vt_nope"})
    assert bad.status_code == 401 and bad.json()["status"] == 401


def _drain(server: Server, after: str | None, seen: list[int]) -> str | None:
    with server.client() as http:
        while True:
            body = page(http, after=after or "", limit=2)
            seen += [c["seq"] for c in body["items"]]
            after = body["next"]
            if not body["items"]:
                return after


def test_cursor_paging_across_restart_and_offline_alert(
    tmp_path: Path, ring: KeyRing, server: Server, agent: Agent
) -> None:
    for plate in ("AA7681TE", "BC1234HH", "KA0001AB"):
        agent.sight(plate)
    engine = server.central.alerting.engine  # type: ignore[union-attr]
    assert _wait(lambda: engine.stats.alerts_created >= 3)
    seen: list[int] = []
    cursor = _drain(server, None, seen)
    server.stop()
    agent.stop()  # the agent goes silent while central is down
    again = Server(server.config)
    try:
        with again.client() as http:
            # The agent stays silent past agent_offline_after_s: an agent_offline alert.
            body = page(http, after=cursor, wait=10)
            assert [c["alert"]["kind"] for c in body["items"]] == ["agent_offline"]
        _drain(again, cursor, seen)
        assert seen == list(range(1, len(seen) + 1)) and len(seen) >= 4
    finally:
        again.stop()


def _wait(predicate: Any, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _stored(server: Server, event_id: str) -> bool:
    with server.central.db.reader() as con:
        row = con.execute(
            "SELECT count(*) FROM sightings WHERE event_id = ?::UUID", [event_id]
        ).fetchone()
    return bool(row and row[0])
