"""Wanted lists changed while central serves: a real uvicorn server, a real edge agent over
CURVE ZeroMQ, a real DuckDB file. Uploads answer with a per-row error report, entry
changes match the next live sighting without a restart, every change is audited, and new
entries are matched against past sightings (historical alerts, once)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from central.audit import AuditLog
from tests.central.police_helpers import Agent, Server, police_config
from tests.harness import KeyRing, make_keyring, role_token, wait_for

pytestmark = pytest.mark.slow

CSV = (
    "номер;категорія;пріоритет;причина;справа;діє_до\n"
    "АА1234ВВ;викрадений;1;викрадено 04.12;12025000001;\n"  # line 2
    "КА 0001 ХХ;розшук;;;12025000002;31.12.2099\n"  # line 3
    "AB123;stolen;9;;;\n"  # line 4: priority out of range
    ";stolen;1;;;\n"  # line 5: no plate
    "ВС7777ТІ;порушення;4;;;not-a-date\n"  # line 6: bad date
)


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return make_keyring(tmp_path / "keys", ["a1"])


@pytest.fixture
def server(tmp_path: Path, ring: KeyRing) -> Iterator[Server]:
    s = Server(police_config(ring, tmp_path / "central"))
    yield s
    s.stop()


@pytest.fixture
def agent(tmp_path: Path, ring: KeyRing, server: Server) -> Iterator[Agent]:
    a = Agent(tmp_path, ring, server.central.ingest.bound_endpoint)
    yield a
    a.stop()


@pytest.fixture
def supervisor(server: Server) -> Iterator[httpx.Client]:
    with server.client(role_token(server.central, "supervisor")) as http:
        yield http


def _ok(resp: httpx.Response, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json() if resp.content else None


def _audit(server: Server, action: str) -> list[Any]:
    assert server.central.audit is not None
    return AuditLog.query(server.central.audit, action=action)


def _alerts(server: Server, plate: str) -> list[dict[str, Any]]:
    with server.client() as police:
        body = _ok(police.get("/api/v1/alerts", params={"limit": 1000}))
    latest: dict[int, dict[str, Any]] = {}
    for change in body["items"]:
        alert = change["alert"]
        if alert["kind"] == "watchlist" and alert["subject"] == plate:
            latest[alert["alert_id"]] = alert
    return list(latest.values())


def test_upload_reports_rows_and_keeps_settings(server: Server, supervisor: httpx.Client) -> None:
    put = supervisor.put(
        "/api/v1/watchlists/national",
        params={"reason": "new registry feed"},
        json={"strict": True, "retention_days": 30, "default_priority": 2},
    )
    assert _ok(put)["strict"] is True
    report = _ok(
        supervisor.post(
            "/api/v1/watchlists/national/import",
            params={"reason": "daily export 05.12", "format": "csv"},
            content=CSV.encode(),
        )
    )
    assert (report["rows"], report["added"], report["rejected"]) == (5, 2, 3)
    problems = {p["line"]: p["reason"] for p in report["problems"]}
    assert set(problems) == {4, 5, 6}
    assert "outside 1..5" in problems[4] and "no plate" in problems[5]
    assert "not a date" in problems[6]
    # Re-importing without settings keeps them; JSON Lines, Latin plates.
    lines = b'{"plate": "AA1234BB", "category": "stolen", "reason": "changed"}\n{"plate": 5}\n'
    again = _ok(
        supervisor.post(
            "/api/v1/watchlists/national/import",
            params={"reason": "correction"},
            content=lines,
            headers={"Content-Type": "application/x-ndjson"},
        )
    )
    assert (again["updated"], again["added"], again["rejected"]) == (1, 0, 1)
    assert again["problems"][0]["line"] == 2
    settings = _ok(supervisor.get("/api/v1/watchlists/national"))
    assert (settings["strict"], settings["retention_days"], settings["entries"]) == (True, 30, 2)
    [stolen] = _ok(supervisor.get("/api/v1/watchlists/national/entries", params={"plate": "1234"}))[
        "items"
    ]
    assert (stolen["plate"], stolen["plate_raw"], stolen["priority"]) == ("AA1234BB", "AA1234BB", 2)
    page = _ok(supervisor.get("/api/v1/watchlists/national/entries", params={"limit": 1}))
    assert page["next"] == page["items"][0]["entry_key"]
    imports = _audit(server, "watchlist.import")
    assert [(e.reason, e.details["added"]) for e in imports] == [
        ("correction", 0),
        ("daily export 05.12", 2),
    ]
    assert _audit(server, "watchlist.create")[0].target == "watchlist:national"


@pytest.mark.parametrize(
    ("role", "scopes", "status"),
    [("operator", None, 403), ("supervisor", ["watchlists:read"], 403), ("admin", None, 200)],
)
def test_changes_need_write_scope_and_role(
    server: Server, role: str, scopes: list[str] | None, status: int
) -> None:
    with server.client(role_token(server.central, role, scopes)) as http:
        resp = http.put("/api/v1/watchlists/x", params={"reason": "test"}, json={})
        assert resp.status_code == status, resp.text
        assert _ok(http.get("/api/v1/watchlists")) is not None


def test_reason_is_required(supervisor: httpx.Client) -> None:
    resp = supervisor.put("/api/v1/watchlists/x", json={})
    assert resp.status_code == 400 and "reason" in resp.json()["error"]


def test_entry_changes_apply_to_the_next_live_sighting(
    server: Server, agent: Agent, supervisor: httpx.Client
) -> None:
    _ok(supervisor.put("/api/v1/watchlists/desk", params={"reason": "desk list"}, json={}))
    entry = {"plate": "ВН 4321 КО", "category": "stolen", "priority": 1, "case_ref": "K-1"}
    added = _ok(
        supervisor.post(
            "/api/v1/watchlists/desk/entries", params={"reason": "call 102"}, json=entry
        ),
        201,
    )
    assert (added["entry_key"], added["kind"]) == ("BH4321KO", "plate")
    dup = supervisor.post("/api/v1/watchlists/desk/entries", params={"reason": "x2x"}, json=entry)
    assert dup.status_code == 409
    agent.sight("BH4321KO")
    assert wait_for(lambda: len(_alerts(server, "BH4321KO")) == 1, 20)
    [alert] = _alerts(server, "BH4321KO")
    assert (alert["category"], alert["priority"], alert["historical"]) == ("stolen", 1, False)

    edited = _ok(
        supervisor.patch(
            "/api/v1/watchlists/desk/entries/BH4321KO",
            params={"reason": "now wanted"},
            json={"category": "wanted", "valid_until": "2099-01-01T00:00:00Z"},
        )
    )
    assert (edited["category"], edited["valid_until"]) == (
        "wanted",
        "2099-01-01T00:00:00.000000+00:00",
    )
    bad = supervisor.patch(
        "/api/v1/watchlists/desk/entries/BH4321KO",
        params={"reason": "typo"},
        json={"plate": "BH4321KA"},
    )
    assert bad.status_code == 400 and "remove it" in bad.json()["error"]
    assert _ok(supervisor.get("/api/v1/watchlists/desk/entries/BH4321KO"))["case_ref"] == "K-1"

    _ok(
        supervisor.delete(
            "/api/v1/watchlists/desk/entries/BH4321KO", params={"reason": "car found"}
        ),
        204,
    )
    _ok(
        supervisor.post(
            "/api/v1/watchlists/desk/entries",
            params={"reason": "call 102"},
            json={"plate": "KA0777AA", "category": "wanted"},
        ),
        201,
    )
    gone = agent.sight("BH4321KO")
    agent.sight("KA0777AA")
    assert wait_for(lambda: len(_alerts(server, "KA0777AA")) == 1, 20)
    assert _stored(server, gone.event_id)
    assert [a["sightings"] for a in _alerts(server, "BH4321KO")] == [1]  # removed: no match
    assert [a["category"] for a in _alerts(server, "KA0777AA")] == ["wanted"]
    for action, reason in (
        ("watchlist.entry.add", "call 102"),
        ("watchlist.entry.edit", "now wanted"),
        ("watchlist.entry.remove", "car found"),
    ):
        rows = _audit(server, action)
        assert rows and rows[-1].reason == reason, action
        assert rows[-1].actor.startswith("supervisor") and rows[-1].target.startswith(
            "watchlist:desk/"
        )
    missing = supervisor.delete("/api/v1/watchlists/desk/entries/NOPE", params={"reason": "abc"})
    assert missing.status_code == 404


def test_new_entries_find_past_sightings_once(
    server: Server, agent: Agent, supervisor: httpx.Client
) -> None:
    seen = [agent.sight("AI5555MM", camera="cam-2"), agent.sight("AI5555MM", camera="cam-3")]
    agent.sight("AI5556MM")  # another character, not an OCR look-alike: no match
    assert wait_for(lambda: all(_stored(server, s.event_id) for s in seen), 20)
    assert server.central.past_reads is not None
    _ok(supervisor.put("/api/v1/watchlists/past", params={"reason": "test"}, json={}))
    export = "plate,category,reason\nAI 5555 MM,stolen,reported this morning\n"
    for attempt in range(2):  # the second import changes the entry: it is matched again
        body = export if attempt == 0 else export.replace("this morning", "updated")
        report = _ok(
            supervisor.post(
                "/api/v1/watchlists/past/import", params={"reason": "theft report"}, content=body
            )
        )
        assert report["added"] + report["updated"] == 1
        assert server.central.past_reads.wait_idle(30)
    [alert] = _alerts(server, "AI5555MM")
    assert alert["historical"] is True
    assert alert["sightings"] == 2
    assert _epoch(alert["first_seen"]) == pytest.approx(seen[0].captured_at, abs=1e-3)
    with server.client() as police:
        detail = _ok(police.get(f"/api/v1/alerts/{alert['alert_id']}"))
    assert sorted(t["event_id"] for t in detail["trail"]) == sorted(s.event_id for s in seen)
    assert all(t["historical"] for t in detail["trail"])
    assert [_epoch(t["captured_at"]) for t in detail["trail"]] == pytest.approx(
        sorted(s.captured_at for s in seen), abs=1e-3
    )


def _epoch(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339).timestamp()


def _stored(server: Server, event_id: str) -> bool:
    with server.central.db.reader() as con:
        rows = con.execute(
            "SELECT count(*) FROM sightings WHERE event_id = ?::UUID", [event_id]
        ).fetchall()
    return bool(rows[0][0])


def test_operators_read_lists(server: Server) -> None:
    started = time.monotonic()
    with server.client(role_token(server.central, "operator")) as http:
        assert _ok(http.get("/api/v1/watchlists")) == []
        assert http.get("/api/v1/watchlists/none/entries").status_code == 404
    assert time.monotonic() - started < 10


def test_cli_imports_over_http_then_offline(server: Server, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from central.cli import app

    token = tmp_path / "token"
    token.write_text(role_token(server.central, "supervisor", ["watchlists:write"]))
    export = tmp_path / "export.csv"
    export.write_text("plate,category\nАА0001ВВ,stolen\nbad plate!,stolen\n")
    common = ["watchlist", "import", str(export), "--list", "cli", "--reason", "registry"]
    runner = CliRunner()
    online = runner.invoke(
        app,
        [*common, "--central", server.url, "--token-file", str(token), "--retention-days", "9"],
    )
    assert online.exit_code == 0, online.output
    assert "1 added" in online.output and "line 3:" in online.output
    assert server.central.watchlists is not None
    assert [m.entry.plate for m in _matches(server, "AA0001BB")] == ["AA0001BB"]
    [audited] = _audit(server, "watchlist.import")
    assert audited.actor.startswith("supervisor") and audited.reason == "registry"
    no_token = runner.invoke(app, [*common, "--central", server.url], env={"VARTA_TOKEN": ""})
    assert no_token.exit_code == 2 and "API token" in no_token.output

    server.stop()  # central stopped: the same command writes the file
    db_file = Path(server.config.storage.data_dir) / server.config.storage.duckdb_file
    export.write_text("plate,category\nАА0002ВВ,wanted\n")
    offline = runner.invoke(app, [*common, "--central", server.url, "--db", str(db_file)])
    assert offline.exit_code == 0, offline.output
    assert "does not answer" in offline.output
    from central.store.db import Database
    from central.watchlist.repository import WatchlistRepository

    db = Database(db_file)
    try:
        repo = WatchlistRepository(db)
        assert repo.get_list("cli").retention_days == 9  # kept: not given again
        assert repo.count("cli") == 2
        [first, second] = AuditLog(db).query(action="watchlist.import")
        assert first.actor.startswith("cli:") and second.actor.startswith("supervisor")
    finally:
        db.close()


def _matches(server: Server, plate: str) -> list[Any]:
    from shared import wire

    assert server.central.watchlists is not None
    sighting = wire.Sighting(
        event_id=wire.new_event_id(time.time()),
        camera_id="cam-1",
        captured_at=time.time(),
        plate=wire.Plate(text=plate, raw=plate, confidence=0.9),
    )
    return server.central.watchlists.match(sighting)


def test_cli_sync_folder_over_http_is_a_full_export(
    server: Server, supervisor: httpx.Client, tmp_path: Path
) -> None:
    import os

    from typer.testing import CliRunner

    from central.cli import app

    rows = "".join(f"KA{i:04d}AA,stolen\n" for i in range(20))
    _ok(
        supervisor.post(
            "/api/v1/watchlists/drop/import",
            params={"reason": "first load"},
            content=f"plate,category\n{rows}",
        )
    )
    drop = tmp_path / "drop"
    drop.mkdir()
    export = drop / "export-2.csv"
    export.write_text("plate,category\nKA0000AA,stolen\nKA0001AA,wanted\n")
    os.utime(export, (time.time() - 60, time.time() - 60))  # settled
    token = tmp_path / "token"
    token.write_text(role_token(server.central, "admin", ["watchlists:write"]))
    args = ["watchlist", "sync", "--list", "drop", "--reason", "nightly", "--folder", str(drop)]
    args += ["--central", server.url, "--token-file", str(token)]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 1 and "would remove 18 entries" in refused.output
    synced = CliRunner().invoke(app, [*args, "--allow-mass-removal"])
    assert synced.exit_code == 0, synced.output
    assert "1 updated, 18 removed" in synced.output
    assert _ok(supervisor.get("/api/v1/watchlists/drop"))["entries"] == 2


def test_strictness_change_applies_at_once(server: Server, supervisor: httpx.Client) -> None:
    params = {"reason": "registry"}
    body = "plate,category\nAA1234BB,stolen\n"
    _ok(supervisor.post("/api/v1/watchlists/s/import", params=params, content=body))
    assert len(_matches(server, "AA12348B")) == 1  # OCR look-alike B -> 8
    again = {**params, "strict": "true"}  # same rows: only the setting changes
    assert (
        _ok(supervisor.post("/api/v1/watchlists/s/import", params=again, content=body))["unchanged"]
        == 1
    )
    assert _matches(server, "AA12348B") == []
    _ok(supervisor.put("/api/v1/watchlists/s", params=params, json={"strict": False}))
    assert len(_matches(server, "AA12348B")) == 1
    assert _ok(supervisor.get("/api/v1/watchlists/s"))["strict"] is False


def test_drop_folder_syncs_inside_central(ring: KeyRing, tmp_path: Path) -> None:
    import os

    from central.config import WatchlistsConfig, WatchlistSyncConfig

    drop = tmp_path / "drop"
    drop.mkdir()

    def export(name: str, body: str, age_s: float) -> None:
        path = drop / name
        path.write_text(body)
        os.utime(path, (time.time() - age_s, time.time() - age_s))  # settled

    export("day-1.csv", "plate,category\nАІ0101КК,stolen\nAI0202KK,wanted\n", 60)
    sync = WatchlistSyncConfig(name="registry", folder=drop, interval_s=0.2)
    config = police_config(ring, tmp_path / "central").model_copy(
        update={"watchlists": WatchlistsConfig(sync=[sync])}
    )
    server = Server(config)
    try:
        repo = server.central.watchlists
        assert repo is not None
        # The list is written first, then the matcher rebuilt and swapped: wait for the swap.
        assert wait_for(lambda: len(_matches(server, "AI0101KK")) == 1, 20)
        assert repo.repository.count("registry") == 2
        assert [m.entry.category for m in _matches(server, "AI0101KK")] == ["stolen"]
        export("day-2.csv", "plate,category\nAI0101KK,wanted\n", 30)  # full: 0202 goes
        assert wait_for(lambda: _matches(server, "AI0202KK") == [], 20)
        assert repo.repository.count("registry") == 1
        assert [m.entry.category for m in _matches(server, "AI0101KK")] == ["wanted"]
        assert wait_for(lambda: len(_audit(server, "watchlist.sync")) == 2, 20)
        synced = _audit(server, "watchlist.sync")
        assert [(e.actor, e.details["removed"]) for e in synced] == [
            ("system:sync", 1),
            ("system:sync", 0),
        ]
        with server.client(server.operator_token) as http:
            health = http.get("/api/v1/health").json()
        assert health["status"] == "ok", health
    finally:
        server.stop()
