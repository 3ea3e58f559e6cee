"""National hub end to end: two real centrals (uvicorn on loopback, DuckDB files), a real
edge agent on the region, and a real HTTP proxy that tampers with the hub's lists."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from central.check import check_national
from central.national.forward import list_verifier
from central.national.signing import Signer, generate
from central.store.db import Database
from central.watchlist.model import ListSettings
from central.watchlist.repository import WatchlistRepository
from central.watchlist.sync import sync_url
from shared.errors import SignatureInvalid
from tests.central.national_helpers import (
    LIST,
    REGION,
    WANTED,
    Hub,
    TamperingProxy,
    load_hub_list,
    region_config,
    start_hub,
)
from tests.central.police_helpers import Agent, Server
from tests.harness import KeyRing, make_keyring, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return make_keyring(tmp_path / "keys", ["a1"])


@pytest.fixture
def hub(tmp_path: Path, ring: KeyRing) -> Iterator[Hub]:
    h = start_hub(ring, tmp_path)
    load_hub_list(h.server, WANTED)
    yield h
    h.server.stop()


@pytest.fixture(scope="module")
def shared_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """One hub for the table of tampered lists (each case loads the list it starts from)."""
    root = tmp_path_factory.mktemp("hub")
    h = start_hub(make_keyring(root / "keys", []), root)
    yield h
    h.server.stop()


def _entries(server: Server) -> dict[str, tuple[str, str, str]]:
    watchlists = server.central.watchlists
    assert watchlists is not None
    rows = watchlists.repository.entries(LIST, limit=1000)
    return {
        str(r["entry_key"]): (str(r["plate"]), str(r["category"]), str(r["priority"])) for r in rows
    }


def _hub_alerts(hub: Hub) -> list[dict[str, Any]]:
    with hub.server.client(hub.server.operator_token) as http:
        resp = http.get("/api/v1/national/alerts", params={"limit": 1000})
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


def _region_stats(region: Server) -> Any:
    assert region.central.syncs is not None
    return region.central.syncs.stats[LIST]


def test_signed_sync_then_304_then_changes(tmp_path: Path, ring: KeyRing, hub: Hub) -> None:
    region = Server(region_config(ring, tmp_path, hub))
    try:
        assert wait_for(lambda: len(_entries(region)) == 3, 15)
        assert _entries(region) == _entries(hub.server)  # same keys, folded plates, fields
        rows = {r.name: r.status for r in check_national(region.config)}
        assert rows == {f"signed list {LIST}": "ok", "national forward": "ok", "national hub": "ok"}
        assert wait_for(lambda: _region_stats(region).syncs >= 4, 10, 0.05)
        with region.central.db.reader() as con:
            recorded = con.execute("SELECT count(*) FROM watchlist_syncs").fetchall()[0][0]
        assert recorded == 1  # the later checks were answered 304
        with httpx.Client(headers={"Authorization": f"Bearer {hub.token}"}) as http:
            first = http.get(hub.list_url)
            assert first.status_code == 200
            assert first.headers["content-type"].startswith("application/x-ndjson")
            assert first.headers["x-varta-signature"].startswith("ed25519=")
            again = http.get(hub.list_url, headers={"If-None-Match": first.headers["etag"]})
            assert (again.status_code, again.content) == (304, b"")
        load_hub_list(hub.server, [*WANTED, ("АВ5555ВА", "wanted", 3)])
        assert wait_for(lambda: len(_entries(region)) == 4, 15)
        assert _region_stats(region).rejected_signature == 0
    finally:
        region.stop()


def _altered(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return body.replace(b"BC1234HH", b"BC9999HH"), headers


def _other_key(tmp: Path) -> Any:
    """Signs the (unchanged) body with a key the region does not pin."""
    generate(tmp / "other.pem")
    signer = Signer.load(tmp / "other.pem")

    def tamper(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        digest = hashlib.sha256(body).hexdigest()
        signature = signer.sign(LIST, headers["last-modified"], digest)
        return body, {**headers, "x-varta-signature": signature}

    return tamper


def _unsigned(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return body, {k: v for k, v in headers.items() if k.lower() != "x-varta-signature"}


def _other_list(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return body, {**headers, "x-varta-list": "national-other"}


def _bad_base64(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return body, {**headers, "x-varta-signature": "ed25519=" + base64.b64encode(b"x").decode()}


@pytest.mark.parametrize(
    ("tamper", "error"),
    [
        (_altered, "differs from the hub's"),
        ("other-key", "does not verify with key"),
        (_unsigned, "expected a signed export, got none"),
        (_other_list, "expected list 'national-stolen' from the hub, got 'national-other'"),
        (_bad_base64, "expected 'ed25519=<64-byte base64>'"),
    ],
)
def test_tampered_list_is_refused_and_changes_nothing(
    tmp_path: Path, shared_hub: Hub, tamper: Any, error: str
) -> None:
    hub = shared_hub
    load_hub_list(hub.server, WANTED)
    proxy = TamperingProxy(hub.server.url)
    repo = WatchlistRepository(Database(tmp_path / "region.duckdb"))
    repo.save_list(ListSettings(name=LIST))
    url = f"{proxy.url}/api/v1/national/lists/{LIST}"
    verify = list_verifier(hub.public)
    try:
        assert sync_url(repo, LIST, url, verify=verify, token=hub.token).added == 3
        before = repo.active_entries().to_pylist()
        load_hub_list(hub.server, [*WANTED, ("АВ5555ВА", "wanted", 3)])
        proxy.tamper = _other_key(tmp_path) if tamper == "other-key" else tamper
        with pytest.raises(SignatureInvalid, match=error):
            sync_url(repo, LIST, url, verify=verify, token=hub.token)
        assert repo.active_entries().to_pylist() == before
        proxy.tamper = None
        assert sync_url(repo, LIST, url, verify=verify, token=hub.token).added == 1
    finally:
        proxy.close()


def test_replayed_older_export_is_refused(tmp_path: Path, shared_hub: Hub) -> None:
    hub = shared_hub
    load_hub_list(hub.server, WANTED)
    proxy = TamperingProxy(hub.server.url)
    repo = WatchlistRepository(Database(tmp_path / "region.duckdb"))
    repo.save_list(ListSettings(name=LIST))
    url = f"{proxy.url}/api/v1/national/lists/{LIST}"
    verify = list_verifier(hub.public)
    captured: list[tuple[bytes, dict[str, str]]] = []

    def record(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        captured.append((body, headers))
        return body, headers

    try:
        proxy.tamper = record
        assert sync_url(repo, LIST, url, verify=verify, token=hub.token).added == 3
        time.sleep(1.1)  # Last-Modified counts whole seconds
        load_hub_list(hub.server, [*WANTED, ("АВ5555ВА", "wanted", 3)])
        proxy.tamper = None
        assert sync_url(repo, LIST, url, verify=verify, token=hub.token).added == 1
        proxy.tamper = lambda _body, _headers: captured[0]  # validly signed, but older
        with pytest.raises(SignatureInvalid, match="older than the one in force"):
            sync_url(repo, LIST, url, verify=verify, token=hub.token)
        assert repo.count(LIST) == 4
    finally:
        proxy.close()


def test_region_keeps_old_list_and_counts_refusal(tmp_path: Path, ring: KeyRing, hub: Hub) -> None:
    proxy = TamperingProxy(hub.server.url)
    url = f"{proxy.url}/api/v1/national/lists/{LIST}"
    region = Server(region_config(ring, tmp_path, hub, list_url=url))
    try:
        assert wait_for(lambda: len(_entries(region)) == 3, 15)
        kept = _entries(region)
        proxy.tamper = _altered
        load_hub_list(hub.server, [*WANTED, ("АВ5555ВА", "wanted", 3)])
        assert wait_for(lambda: _region_stats(region).rejected_signature >= 2, 10, 0.05)
        assert _entries(region) == kept
        assert "differs from the hub's" in _region_stats(region).last_error
        assert _metric(region, "varta_watchlist_sync_signature_rejected", LIST) >= 2
        proxy.tamper = None
        assert wait_for(lambda: len(_entries(region)) == 4, 10)
    finally:
        region.stop()
        proxy.close()


def _forwarded(hub: Hub) -> dict[int, dict[str, Any]]:
    """The hub's alerts of the region by the region's alert id (asserts each is there once)."""
    items = _hub_alerts(hub)
    ids = [i["change"]["alert"]["alert_id"] for i in items if i["region"] == REGION]
    assert len(ids) == len(set(ids))
    return {i["change"]["alert"]["alert_id"]: i for i in items}


def test_alert_forwarded_once_and_updated(tmp_path: Path, ring: KeyRing, hub: Hub) -> None:
    region = Server(region_config(ring, tmp_path, hub))
    agent = Agent(tmp_path, ring, region.central.ingest.bound_endpoint)
    try:
        assert wait_for(lambda: len(_entries(region)) == 3, 15)
        agent.sight("AA7681TE")
        agent.sight("BC0000XX")  # on no list: nothing to forward
        assert wait_for(lambda: len(_forwarded(hub)) == 1, 15)
        agent.sight("AA7681TE", camera="cam-2")  # joins the open alert (a newer change)
        assert wait_for(
            lambda: [a["change"]["alert"]["sightings"] for a in _forwarded(hub).values()] == [2],
            15,
        )
        [item] = _forwarded(hub).values()
        alert = item["change"]["alert"]
        assert alert["details"]["list_name"] == LIST
        assert alert["details"]["listed_plate_raw"] == "АА7681ТЕ"
        with hub.server.client(hub.server.operator_token) as http:
            status = http.get("/api/v1/national/status").json()
        [lviv] = status["regions"]
        assert (lviv["region"], lviv["alerts"], lviv["open_alerts"]) == (REGION, 1, 1)
        assert status["lists"][0]["name"] == LIST and status["lists"][0]["entries"] == 3
    finally:
        agent.stop()
        region.stop()


def test_hub_down_region_alerts_then_delivers_once(tmp_path: Path, ring: KeyRing, hub: Hub) -> None:
    region = Server(region_config(ring, tmp_path, hub))
    agent = Agent(tmp_path, ring, region.central.ingest.bound_endpoint)
    port = hub.server.config.http.port
    try:
        assert wait_for(lambda: len(_entries(region)) == 3, 15)
        hub.server.stop()
        agent.sight("AA7681TE")
        agent.sight("KA0001BB")
        with region.client() as police:  # the region alerts on its own
            assert wait_for(lambda: len(_watchlist_alerts(police)) == 2, 15)
        assert wait_for(lambda: _queued(region) == 2, 10)
        assert wait_for(lambda: _sender(region).stats.failures >= 2, 10)
        hub.server = start_hub(ring, tmp_path, port).server
        assert wait_for(lambda: len(_forwarded(hub)) == 2, 20)
        assert wait_for(lambda: _queued(region) == 0, 10)
        national = hub.server.central.national
        assert national is not None and national.stats.stored == 2
        repeats = national.stats.duplicates  # 0 unless an answer was slower than the timeout
        # Answers lost: the region sends everything again; the hub stores nothing twice.
        region.central.db.writer.call(
            lambda con: con.execute("UPDATE webhook_queue SET delivered_at = NULL")
        )
        assert wait_for(lambda: _queued(region) == 0, 15)
        assert len(_forwarded(hub)) == 2
        assert (national.stats.stored, national.stats.duplicates - repeats) == (2, 2)
    finally:
        agent.stop()
        region.stop()


def _watchlist_alerts(police: httpx.Client) -> list[Any]:
    items = police.get("/api/v1/alerts").json()["items"]
    return [c for c in items if c["alert"]["kind"] == "watchlist"]


def _queued(region: Server) -> int:
    with region.central.db.reader() as con:
        depth = region.central.alerting.engine.repository.queue_depth(con)  # type: ignore[union-attr]
    return depth.get("national-hub", 0)


def _sender(region: Server) -> Any:
    alerting = region.central.alerting
    assert alerting is not None
    [sender] = [s for s in alerting.senders if s.endpoint.name == "national-hub"]
    return sender


def _change(alert_id: int, seq: int, kind: str = "watchlist") -> dict[str, Any]:
    alert = {
        "alert_id": alert_id,
        "kind": kind,
        "state": "new",
        "priority": 1,
        "category": "stolen",
        "title": "stolen: AA7681TE seen at cam-1",
        "subject": "AA7681TE",
        "dedup_key": f"watchlist:{LIST}:id:0:AA7681TE",
        "details": {"list_name": LIST} if kind == "watchlist" else {},
        "created_at": 1.0,
        "updated_at": 1.0,
        "first_seen": 1.0,
        "last_seen": 1.0,
        "seq": seq,
    }
    return {"seq": seq, "change": "created", "at": 1.0, "alert": alert}


def test_forward_endpoint_checks_region_and_each_change(shared_hub: Hub) -> None:
    hub = shared_hub
    url = f"{hub.server.url}/api/v1/national/alerts"
    region = {"Authorization": f"Bearer {hub.token}", "X-Varta-Region": REGION}
    good = [_change(900_001, 5), _change(900_002, 6)]
    bad = [{"seq": 7}, _change(900_003, 8, kind="agent_offline"), _change(900_004, 9)]
    bad[2]["seq"] = 10  # the change's seq differs from its alert's
    with httpx.Client(timeout=20) as http:
        first = http.post(url, json={"region": REGION, "changes": [*good, *bad]}, headers=region)
        assert first.status_code == 200, first.text
        body = first.json()
        assert (body["stored"], body["duplicates"]) == (2, 0)
        assert [r["index"] for r in body["refused"]] == [2, 3, 4]
        assert "expected a watchlist alert" in body["refused"][1]["reason"]
        again = http.post(url, json={"region": REGION, "changes": good}, headers=region).json()
        assert (again["stored"], again["duplicates"]) == (0, 2)
        newer = _change(900_001, 11)
        newer["alert"]["state"] = "acknowledged"
        moved = http.post(url, json={"region": REGION, "changes": [newer]}, headers=region)
        assert moved.json()["stored"] == 1
        other = http.post(url, json={"region": "kyiv", "changes": good}, headers=region)
        assert other.status_code == 403 and "region 'kyiv'" in other.json()["error"]
        junk = http.post(url, content=b"[1, 2]", headers=region)
        assert junk.status_code == 400 and "expected" in junk.json()["error"]
        police = {"Authorization": f"Bearer {hub.server.police_token}"}
        empty = {"region": REGION, "changes": []}
        assert http.post(url, json=empty, headers=police).status_code == 403
        listed = http.get(hub.list_url, headers=police)  # alerts:read is not national:read
        assert listed.status_code == 403 and "national:read" in listed.json()["error"]
        assert http.get(hub.list_url + "-nope", headers=region).status_code == 404
        page = http.get(url, params={"state": "acknowledged"}, headers=police).json()
    assert [i["change"]["alert"]["alert_id"] for i in page["items"]] == [900_001]
    assert page["items"][0]["change"]["seq"] == 11


def test_a_central_not_configured_as_hub_has_no_national_routes(
    tmp_path: Path, ring: KeyRing
) -> None:
    from tests.harness import central_config

    server = Server(central_config(ring, tmp_path / "plain"))
    try:
        with server.client(server.operator_token) as http:
            assert http.get(f"/api/v1/national/lists/{LIST}").status_code == 404
            assert http.get("/api/v1/national/status").status_code == 404
    finally:
        server.stop()


def _metric(server: Server, family: str, list_name: str) -> float:
    """One list's sample of a metric family, as Prometheus would scrape it."""
    from central.metrics import CentralCollector

    for metric in CentralCollector(server.central).collect():
        for sample in metric.samples:
            if sample.name.startswith(family) and sample.labels.get("list") == list_name:
                return float(sample.value)
    raise AssertionError(f"no {family} sample for list {list_name}")
