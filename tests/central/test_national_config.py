"""National hub configuration, keys and `varta central check` rows (no servers)."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from central.check import check_national
from central.config import CentralConfig
from central.national.signing import Signer, Verifier, generate, key_id
from shared.errors import ConfigError, SignatureInvalid

PUBLIC = "ed25519:" + "A" * 43 + "="
URL = "http://hub.lan:8000/api/v1/national/lists/national-stolen"


def _config(tmp: Path, national: dict[str, Any], sync: list[dict[str, Any]]) -> CentralConfig:
    return CentralConfig.model_validate({"national": national, "watchlists": {"sync": sync}})


@pytest.mark.parametrize(
    ("national", "sync", "error"),
    [
        ({"hub": True}, [], "hub needs signing_key_file"),
        ({"publish": ["a"]}, [], "publish needs hub: true"),
        ({"hub": True, "signing_key_file": "k", "publish": ["a", "a"]}, [], "each published"),
        ({"forward": {"url": "http://hub:8000"}}, [], "needs region and token_file"),
        ({"forward": {"url": "http://hub/x?y", "region": "r", "token_file": "t"}}, [], "url"),
        ({"forward": {"url": "http://hub", "region": "Lviv!", "token_file": "t"}}, [], "region"),
        (
            {"forward": {"url": "http://hub", "region": "lviv", "token_file": "t"}},
            [{"name": "local", "url": URL}],
            "no list to forward",
        ),
        (
            {"forward": {"url": "http://hub", "region": "lviv", "token_file": "t", "lists": ["x"]}},
            [{"name": "n", "url": URL}],
            "expected lists of watchlists.sync, got ['x']",
        ),
        ({}, [{"name": "n", "folder": "/tmp", "verify_key": PUBLIC}], "need a url"),
        ({}, [{"name": "n", "url": URL, "verify_key": "ed25519:short"}], "verify_key"),
        ({}, [{"name": "n", "url": URL, "verify_key": PUBLIC}], None),
    ],
)
def test_national_config_validation(
    tmp_path: Path, national: dict[str, Any], sync: list[dict[str, Any]], error: str | None
) -> None:
    if error is None:
        _config(tmp_path, national, sync)
        return
    with pytest.raises(ValidationError, match=error.replace("[", r"\[").replace("?", r"\?")):
        _config(tmp_path, national, sync)


def test_forwarded_lists_default_to_the_signed_sources(tmp_path: Path) -> None:
    forward = {"url": "http://hub:8000", "region": "lviv", "token_file": "t"}
    sync = [
        {"name": "national-stolen", "url": URL, "verify_key": PUBLIC},
        {"name": "local", "url": "http://registry.lan/export.csv"},
    ]
    assert _config(tmp_path, {"forward": forward}, sync).forwarded_lists == ["national-stolen"]
    with pytest.raises(ValidationError, match="'national-hub' is reserved"):
        CentralConfig.model_validate(
            {"webhooks": {"endpoints": [{"name": "national-hub", "url": "http://x"}]}}
        )


def test_keygen_writes_0600_key_that_signs_and_verifies(tmp_path: Path) -> None:
    public = generate(tmp_path / "hub.pem")
    assert stat.S_IMODE((tmp_path / "hub.pem").stat().st_mode) == 0o600
    with pytest.raises(ConfigError, match="--force"):
        generate(tmp_path / "hub.pem")
    signer = Signer.load(tmp_path / "hub.pem")
    assert signer.public == public and len(key_id(public)) == 16
    when = "Sun, 06 Dec 2026 18:00:00 GMT"
    signature = signer.sign("national-stolen", when, "ab" * 32)
    Verifier(public).verify("national-stolen", "national-stolen", when, "ab" * 32, signature)
    for name, built, digest in [
        ("national-stolen", when, "cd" * 32),
        ("national-stolen", "Sun, 06 Dec 2026 18:00:01 GMT", "ab" * 32),
        ("national-wanted", when, "ab" * 32),
    ]:
        with pytest.raises(SignatureInvalid, match="does not verify"):
            Verifier(public).verify(name, name, built, digest, signature)
    with pytest.raises(ConfigError, match="32-byte"):
        Verifier("ed25519:AAAA")


def test_check_rows(tmp_path: Path) -> None:
    generate(tmp_path / "hub.pem")
    (tmp_path / "token").write_text("vt_secret")
    hub = _config(tmp_path, {"hub": True, "signing_key_file": str(tmp_path / "hub.pem")}, [])
    [row] = check_national(hub)
    assert (row.name, row.status) == ("hub signing key", "ok") and "ed25519:" in row.detail
    missing = _config(tmp_path, {"hub": True, "signing_key_file": str(tmp_path / "nope")}, [])
    [row] = check_national(missing)
    assert row.status == "fail" and "cannot read" in row.detail
    forward = {"url": "http://127.0.0.1:9", "region": "lviv", "token_file": str(tmp_path / "none")}
    sync = [{"name": "n", "url": URL, "verify_key": PUBLIC, "token_file": str(tmp_path / "token")}]
    rows = {r.name: r for r in check_national(_config(tmp_path, {"forward": forward}, sync))}
    assert rows["signed list n"].status == "ok"
    assert rows["national forward"].status == "fail"
    assert "cannot read token_file" in rows["national forward"].detail
    assert rows["national hub"].status == "warn" and "alerts queue" in rows["national hub"].detail


def _hub_line(**fields: Any) -> str:
    row = {
        "id": "7",
        "plate": "АА7681ТЕ",
        "category": "stolen",
        "priority": 1,
        "reason": "розшук",
        "case_ref": "1",
        "valid_from": None,
        "valid_until": "2099-12-31T00:00:00.000000Z",
        "source": "",
        "vehicle_type": "",
        "colour": "",
        "entry_key": "id:7",
        "kind": "plate",
        "plate_folded": "AA7681TE",
    }
    import json

    return json.dumps({**row, **fields}, ensure_ascii=False)


@pytest.mark.parametrize(
    ("second", "rows", "problems"),
    [
        ({"id": "8", "entry_key": "id:8", "plate": "BC1234HH", "plate_folded": "BC1234HH"}, 2, 0),
        ({"id": "8", "entry_key": "id:8", "category": "lost"}, 2, 1),  # row by row: reported
        ({"id": "8", "entry_key": "id:8", "priority": 9}, 2, 1),
        ({}, 2, 1),  # the same key twice
    ],
)
def test_hub_export_reader_matches_the_row_reader(
    tmp_path: Path, second: dict[str, Any], rows: int, problems: int
) -> None:
    from central.national.hub_export import read_hub_export
    from central.watchlist.importer import read_file

    path = tmp_path / "export"
    path.write_text(_hub_line() + "\n" + _hub_line(**second) + "\n", encoding="utf-8")
    fast, slow = read_hub_export(path, "jsonl"), read_file(path, "jsonl")
    assert (fast.rows, len(fast.problems)) == (rows, problems)
    assert fast.table.to_pylist() == slow.table.to_pylist()


def test_store_keeps_newest_change_once_and_purges_by_age(tmp_path: Path) -> None:
    import msgspec

    from central.alerts.model import Change
    from central.national.store import NationalAlertStore
    from central.store.db import Database

    def change(alert_id: int, seq: int, state: str = "new") -> Change:
        alert = {
            "alert_id": alert_id, "kind": "watchlist", "state": state, "priority": 1,
            "category": "stolen", "title": "t", "subject": "AA7681TE", "dedup_key": "k",
            "details": {"list_name": "national-stolen"}, "created_at": 1.0, "updated_at": 1.0,
            "first_seen": 1.0, "last_seen": 1.0, "seq": seq,
        }  # fmt: skip
        body = {"seq": seq, "change": "created", "at": 1.0, "alert": alert}
        return msgspec.convert(body, Change)

    now = [1000.0]
    db = Database(tmp_path / "hub.duckdb")
    store = NationalAlertStore(db, lambda: now[0])
    try:
        first = store.receive("lviv", [change(1, 1), change(2, 2), change(1, 3, "acknowledged")])
        assert (first.stored, first.duplicates) == (2, 1)  # alert 1's seq 1 is superseded
        assert store.receive("lviv", [change(1, 3), change(2, 2)]).duplicates == 2
        assert store.receive("kyiv", [change(1, 1)]).stored == 1  # another region's alert 1
        now[0] = 2000.0
        assert store.receive("lviv", [change(2, 4, "dispatched")]).stored == 1
        page = store.page()
        assert [(i.region, i.change.seq) for i in page.items] == [
            ("lviv", 3), ("kyiv", 1), ("lviv", 4)
        ]  # fmt: skip
        assert store.page(after=page.items[0].hub_seq, region="lviv").next == page.next
        assert store.purge(older_than=1500.0) == 2
        assert [(i.region, i.change.alert.alert_id) for i in store.page().items] == [("lviv", 2)]
        [lviv, kyiv] = sorted(store.regions(), key=lambda r: r.region, reverse=True)
        assert (lviv.requests, lviv.changes, lviv.duplicates, lviv.alerts) == (3, 6, 3, 1)
        assert (kyiv.alerts, kyiv.open_alerts) == (0, 0)
    finally:
        db.close()
