"""Evidence packages on a real central (DuckDB, thumbnail packs, alert engine), exported over
REST and checked by the verifier and `varta central evidence verify`; tampering with a
file or an audit row is caught and named."""

from __future__ import annotations

import csv
import functools
import io
import json
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from typer.testing import CliRunner

from central.cli import app as central_cli
from central.evidence import verify_package
from central.evidence.package import sha256
from central.store.sightings import IncomingSighting, SightingRepository
from tests.central.alerts_helpers import write_wanted_list
from tests.central.auth_helpers import Rig, bearer, make_rig
from tests.central.search_helpers import Spec, sighting

JPEGS = [b"\xff\xd8 vehicle %d \xff\xd9" % i for i in range(6)]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    write_wanted_list(tmp_path / "central" / "varta.duckdb")  # АА7681ТЕ is wanted
    yield make_rig(tmp_path)


@pytest.fixture
def client(rig: Rig) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app_for(rig)) as c:
        yield c


def create_app_for(rig: Rig) -> Litestar:
    from central.app import create_app

    return create_app(rig.central)


def _insert(items: list[IncomingSighting], received: float, con: Any) -> set[str]:
    return SightingRepository().insert(con, items, received)


def sight(rig: Rig, plate: str, cameras: list[str], alert: bool = True) -> list[str]:
    """Store one sighting of ``plate`` per camera a minute apart with two real crops each,
    as ingest does, and run them through the alert engine; return the event ids."""
    central = rig.central
    base = time.time() - 600
    items = []
    for i, camera in enumerate(cameras):
        refs = central.thumbs.append(JPEGS[2 * i : 2 * i + 2])
        items.append(IncomingSighting("a1", sighting(Spec(plate, camera, 60.0 * i), base), refs))
    central.thumbs.flush()
    central.db.writer.call(functools.partial(_insert, items, time.time()))  # as ingest
    if alert:
        assert central.alerting is not None
        central.alerting.engine.on_commit(items).result(10)
    return [item.sighting.event_id for item in items]


def export_alert(client: TestClient[Litestar], token: str, reason: str = "case 12/345") -> bytes:
    alerts = client.get("/api/v1/alerts", headers=bearer(token)).json()["items"]
    alert_id = alerts[-1]["alert"]["alert_id"]
    resp = client.post(
        f"/api/v1/alerts/{alert_id}/evidence", json={"reason": reason}, headers=bearer(token)
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/zip"
    assert f'filename="evidence-alert-{alert_id}.zip"' in resp.headers["content-disposition"]
    return resp.content


def test_alert_package_holds_everything_and_verifies(
    rig: Rig, client: TestClient[Litestar], tmp_path: Path
) -> None:
    ids = sight(rig, "AA7681TE", ["cam-1", "cam-2"])
    token = rig.token("operator")
    data = export_alert(client, token)
    verdict = verify_package(data)
    assert verdict.ok, verdict.problems
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
        assert zf.read("manifest.sha256").decode().split()[0] == sha256(zf.read("manifest.json"))
        thumbs = sorted(n for n in names if n.startswith("thumbs/"))
        assert [zf.read(n) for n in thumbs] == JPEGS[:4]  # the stored crops, byte for byte
        rows = list(csv.DictReader(io.StringIO(zf.read("sightings.csv").decode())))
        history = json.loads(zf.read("history.json"))
        audit = json.loads(zf.read("audit.json"))
    assert {"alert.json", "history.json", "sightings.json", "audit.json"} <= names
    assert manifest["kind"] == "alert" and manifest["reason"] == "case 12/345"
    assert {f["name"] for f in manifest["files"]} == names - {"manifest.json", "manifest.sha256"}
    assert [r["event_id"] for r in rows] == ids
    assert {r["plate_registry"] for r in rows} == {"АА7681ТЕ"}  # as the registry writes it
    assert history[0]["to_state"] == "new"
    exports = [r for r in audit if r["action"] == "evidence.export"]
    assert len(exports) == 1 and exports[0]["reason"] == "case 12/345"
    assert all(len(r["hash"]) == 64 and len(r["prev_hash"]) == 64 for r in audit)
    path = tmp_path / "alert.zip"
    path.write_bytes(data)
    result = CliRunner().invoke(central_cli, ["evidence", "verify", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"OK: {verdict.files} files and {len(audit)} audit rows")


def _rewrite(data: bytes, change: Callable[[dict[str, bytes]], None]) -> bytes:
    """The package with ``change`` applied to its files (name -> bytes), rezipped."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    change(files)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, body in files.items():
            zf.writestr(name, body)
    return out.getvalue()


def _thumb(files: dict[str, bytes]) -> None:
    name = sorted(n for n in files if n.startswith("thumbs/"))[0]
    files[name] = files[name][:-2] + b"\x00\xd9"


def _reseal(files: dict[str, bytes], name: str) -> None:
    """Update the manifest and its hash after editing ``name`` (a careful forger)."""
    manifest = json.loads(files["manifest.json"])
    for entry in manifest["files"]:
        if entry["name"] == name:
            entry["sha256"] = sha256(files[name])
    files["manifest.json"] = json.dumps(manifest).encode()
    files["manifest.sha256"] = f"{sha256(files['manifest.json'])}  manifest.json\n".encode()


def _audit_row(files: dict[str, bytes]) -> None:
    rows = json.loads(files["audit.json"])
    export = next(r for r in rows if r["action"] == "evidence.export")
    export["reason"] = "no reason at all"
    files["audit.json"] = json.dumps(rows).encode()
    _reseal(files, "audit.json")


def _manifest(files: dict[str, bytes]) -> None:
    files["manifest.json"] = files["manifest.json"].replace(b"case 12/345", b"case 99/999")


def _added(files: dict[str, bytes]) -> None:
    files["thumbs/extra.jpg"] = JPEGS[5]


def _removed(files: dict[str, bytes]) -> None:
    del files["sightings.csv"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (_thumb, r"thumbs/.*-0-vehicle\.jpg: sha256 does not match the manifest"),
        (_audit_row, r"audit row \d+: content does not match its chain hash"),
        (_manifest, r"manifest\.json: sha256 .* does not match manifest\.sha256"),
        (_added, r"thumbs/extra\.jpg: not in the manifest"),
        (_removed, r"sightings\.csv: listed in the manifest but missing"),
    ],
    ids=["thumbnail", "audit-row", "manifest", "added", "removed"],
)
def test_tampering_fails_naming_what_changed(
    rig: Rig,
    client: TestClient[Litestar],
    tmp_path: Path,
    change: Callable[[dict[str, bytes]], None],
    named: str,
) -> None:
    sight(rig, "AA7681TE", ["cam-1", "cam-2"])
    data = _rewrite(export_alert(client, rig.token("supervisor")), change)
    verdict = verify_package(data)
    assert not verdict.ok
    assert len(verdict.problems) == 1, verdict.problems
    assert re.search(named, verdict.problems[0]), verdict.problems
    path = tmp_path / "tampered.zip"
    path.write_bytes(data)
    result = CliRunner().invoke(central_cli, ["evidence", "verify", str(path)])
    assert result.exit_code == 1
    assert "FAILED" in result.output and re.search(named, result.output)


def test_not_a_zip_is_refused_clearly(tmp_path: Path) -> None:
    assert verify_package(b"PK not really").problems[0].startswith("not a ZIP file")
    path = tmp_path / "x.zip"
    path.write_bytes(b"hello")
    assert CliRunner().invoke(central_cli, ["evidence", "verify", str(path)]).exit_code == 1
    missing = CliRunner().invoke(central_cli, ["evidence", "verify", str(tmp_path / "no.zip")])
    assert missing.exit_code == 2 and "cannot read" in missing.output


def test_journey_package_in_time_order(rig: Rig, client: TestClient[Litestar]) -> None:
    ids = sight(rig, "BC0101AA", ["cam-1", "cam-2", "cam-3"], alert=False)
    token = rig.token("operator")
    body = {"plate": "ВС0101АА", "reason": "case 7/2026"}  # Cyrillic typed, folded
    resp = client.post("/api/v1/vehicles/journey/evidence", json=body, headers=bearer(token))
    assert resp.status_code == 200, resp.text
    assert verify_package(resp.content).ok
    with zipfile.ZipFile(io.BytesIO(resp.content)) as zf:
        journey = json.loads(zf.read("journey.json"))
        audit = json.loads(zf.read("audit.json"))
        assert len([n for n in zf.namelist() if n.startswith("thumbs/")]) == 6
    assert journey["cameras"] == ["cam-1", "cam-2", "cam-3"]
    assert [s["event_id"] for s in journey["stops"]] == ids
    assert [r["action"] for r in audit] == ["search.journey", "evidence.export"]
    assert {r["target"] for r in audit} == {"plate:BC0101AA"}


@pytest.mark.parametrize(
    ("role", "scopes", "body", "status"),
    [
        ("operator", None, {"reason": " "}, 400),  # a reason is required
        ("operator", None, {}, 400),
        ("operator", ["alerts:read", "search"], {"reason": "case 1"}, 403),  # no export scope
        ("engineer", None, {"reason": "case 1"}, 403),
        ("police-api", None, {"reason": "case 1"}, 403),
    ],
)
def test_export_needs_a_reason_a_role_and_the_scope(
    rig: Rig,
    client: TestClient[Litestar],
    role: str,
    scopes: list[str] | None,
    body: dict[str, str],
    status: int,
) -> None:
    sight(rig, "AA7681TE", ["cam-1"])
    token = rig.token(role, scopes)
    resp = client.post("/api/v1/alerts/1/evidence", json=body, headers=bearer(token))
    assert resp.status_code == status, resp.text
    assert set(resp.json()) == {"status", "error", "detail"}
    assert rig.central.audit is not None
    assert rig.central.audit.query(action="evidence.export") == []  # nothing exported


def test_export_of_a_missing_alert_is_404(rig: Rig, client: TestClient[Litestar]) -> None:
    resp = client.post(
        "/api/v1/alerts/999/evidence", json={"reason": "case 1"}, headers=bearer(rig.token("admin"))
    )
    assert resp.status_code == 404


def test_openapi_documents_the_exports(client: TestClient[Litestar]) -> None:
    paths = client.get("/schema/openapi.json").json()["paths"]
    alert = paths["/api/v1/alerts/{alert_id}/evidence"]["post"]
    assert "application/zip" in alert["responses"]["200"]["content"]
    assert "/api/v1/vehicles/journey/evidence" in paths
