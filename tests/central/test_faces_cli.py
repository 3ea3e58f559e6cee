"""`varta central persons` on a real DuckDB file (central stopped) and through a running
central's REST API: enrol, bulk from a folder plus CSV (bad rows reported, the others
enrolled), list, show, expire, remove. Real photos and models."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from central.config import CentralConfig, FacesConfig, StorageConfig
from models.store import ModelStore
from tests.central.face_helpers import BIDEN, CLAPTON, OBAMA, OBAMA_AND_BIDEN, street_photo
from tests.central.police_helpers import Server
from tests.harness import central_config, central_yaml, make_keyring, role_token
from varta.cli import app

BULK_CSV = """files,name,legal_basis,reason,expires
obama.jpg;obama2.jpg,Barack O.,court order 1/26,missing person,2099-01-31
clapton.jpg,Eric C.,warrant 77,fraud,2099-01-31T12:00:00Z
street.jpg,Nobody,warrant 78,fraud,2099-01-31
pair.jpg,Two People,warrant 79,fraud,2099-01-31
missing.jpg,Ghost,warrant 80,fraud,2099-01-31
biden.jpg,Joe B.,,fraud,2099-01-31
biden.jpg,Joe B.,warrant 81,fraud,yesterday
"""


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["central", "persons", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def folder(tmp_path: Path, shared_data: Path) -> Path:
    photos = tmp_path / "photos"
    photos.mkdir()
    for rel, name in (
        (OBAMA, "obama.jpg"),
        ("faces-dev/images/examples__knn_examples__train__obama__obama2.jpg", "obama2.jpg"),
        (CLAPTON, "clapton.jpg"),
        (OBAMA_AND_BIDEN, "pair.jpg"),
        (BIDEN, "biden.jpg"),
    ):
        shutil.copy(shared_data / rel, photos / name)
    shutil.copy(street_photo(shared_data), photos / "street.jpg")
    (tmp_path / "persons.csv").write_text(BULK_CSV)
    return photos


@pytest.fixture
def offline_config(tmp_path: Path, model_store: ModelStore) -> Path:
    cfg = CentralConfig(
        storage=StorageConfig(data_dir=tmp_path / "data"),
        faces=FacesConfig(models_dir=model_store.root),
    )
    return central_yaml(tmp_path / "central.yaml", cfg)


def _check_bulk(code: int, out: str, err: str) -> list[dict[str, Any]]:
    assert code == 1  # some rows were refused
    report = json.loads(out)
    assert report["rows"] == 7
    assert sorted(p["name"] for p in report["enrolled"]) == ["Barack O.", "Eric C."]
    obama = next(p for p in report["enrolled"] if p["name"] == "Barack O.")
    assert len(obama["photos"]) == 2 and obama["legal_basis"] == "court order 1/26"
    problems = {p["line"]: p["reason"] for p in report["problems"]}
    assert sorted(problems) == [4, 5, 6, 7, 8]
    assert "street.jpg: no face found" in problems[4]
    assert "pair.jpg: 2 faces found" in problems[5]
    assert "missing.jpg" in problems[6]
    assert "legal_basis: required" in problems[7]
    assert "expires: expected ISO 8601" in problems[8]
    enrolled: list[dict[str, Any]] = report["enrolled"]
    return enrolled


def test_persons_commands_on_the_database_file(
    tmp_path: Path, folder: Path, offline_config: Path, shared_data: Path
) -> None:
    common = ["--offline", "--config", str(offline_config)]
    code, out, err = _run(
        "enrol",
        str(folder / "biden.jpg"),
        "--name",
        "Joe B.",
        "--legal-basis",
        "warrant 9",
        "--reason",
        "fraud",
        "--expires",
        "2099-06-30",
        "--json",
        *common,
    )
    assert code == 0, err
    biden = json.loads(out)
    assert biden["enrolled_by"].startswith("cli:") and biden["expires_at"].startswith(
        "2099-06-30T23:59:59"
    )
    code, out, err = _run("bulk", str(folder), str(tmp_path / "persons.csv"), "--json", *common)
    enrolled = _check_bulk(code, out, err)
    code, out, _ = _run("list", "--status", "active", *common)
    assert code == 0 and len(out.splitlines()) == 3
    refused = _run(
        "enrol",
        str(street_photo(shared_data)),
        "--name",
        "Nobody",
        "--legal-basis",
        "w 1",
        "--reason",
        "test",
        "--expires",
        "2099-01-01",
        *common,
    )
    assert refused[0] == 1 and "no face found" in refused[2]
    pid = enrolled[0]["person_id"]
    code, out, _ = _run("expire", pid, "--reason", "found", "--json", *common)
    assert code == 0 and json.loads(out)["status"] == "expired"
    code, out, _ = _run("remove", pid, "--reason", "order ended", "--json", *common)
    assert code == 0 and json.loads(out)["photos"] == []
    code, out, _ = _run("show", pid, *common)
    assert code == 0 and json.loads(out)["status"] == "removed"
    code, out, _ = _run("list", "--json", *common)
    assert {p["status"] for p in json.loads(out)} == {"active", "removed"}


@pytest.fixture
def server(tmp_path: Path, model_store: ModelStore) -> Iterator[Server]:
    ring = make_keyring(tmp_path / "keys", ["a1"])
    cfg = central_config(ring, tmp_path / "central")
    s = Server(cfg.model_copy(update={"faces": FacesConfig(models_dir=model_store.root)}))
    yield s
    s.stop()


def test_persons_bulk_through_a_running_central(
    tmp_path: Path, folder: Path, server: Server
) -> None:
    token = tmp_path / "sup.token"
    token.write_text(role_token(server.central, "supervisor"))
    remote = ["--central", server.url, "--token-file", str(token)]
    code, out, err = _run("bulk", str(folder), str(tmp_path / "persons.csv"), "--json", *remote)
    enrolled = _check_bulk(code, out, err)
    assert all(p["enrolled_by"].startswith("supervisor") for p in enrolled)
    code, out, _ = _run("list", "--json", *remote)
    assert code == 0 and len(json.loads(out)) == 2
    assert server.central.faces is not None and server.central.faces.version == 2
    police = tmp_path / "police.token"
    police.write_text(server.police_token)
    code, _, err = _run("list", "--central", server.url, "--token-file", str(police))
    assert code == 1 and "403" in err
