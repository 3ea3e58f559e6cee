"""Model manifest, fetcher and store against the real offline mirror."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from models.fetch import mirror_path, pull
from models.store import ModelStore, load_manifest, sha256_file
from shared.errors import ModelCorrupt, ModelMissing
from shared.paths import model_mirror

SMALL = "landmarks-regression-retail-0009"  # ~450 kB at FP16: cheap to copy in every test


def small_entry(precision: str = "FP16"):
    return load_manifest().entry(SMALL, precision)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def fake_mirror(tmp_path: Path, damage: str) -> Path:
    """A mirror holding the small model with its .bin damaged as named."""
    mirror = tmp_path / "mirror"
    for file in small_entry().files:
        target = mirror_path(mirror, file.url)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mirror_path(model_mirror(), file.url), target)
        if file.name.endswith(".bin"):
            data = bytearray(target.read_bytes())
            if damage == "flipped byte":
                data[len(data) // 2] ^= 0xFF
            elif damage == "truncated":
                data = data[:-10]
            elif damage == "empty":
                data = bytearray()
            target.write_bytes(bytes(data))
    return mirror


def test_manifest_lists_required_models():
    manifest = load_manifest()
    keys = {entry.key for entry in manifest.models}
    required = {
        "vehicle-detection-0200/FP16",
        "vehicle-detection-0201/FP16-INT8",
        "person-vehicle-bike-detection-2004/FP16",
        "person-vehicle-bike-detection-2004/FP16-INT8",
        "vehicle-license-plate-detection-barrier-0106/FP16-INT8",
        "vehicle-attributes-recognition-barrier-0039/FP16",
        "face-detection-retail-0004/FP16",
        "landmarks-regression-retail-0009/FP16",
        "face-reidentification-retail-0095/FP16",
        "PP-OCRv6_det_small/FP32",
        "PP-OCRv6_rec_small/FP32",
    }
    assert required <= keys
    for entry in manifest.models:
        assert entry.licence and entry.inputs and entry.files
        for file in entry.files:
            assert len(file.sha256) == 64 and file.size > 0
            assert file.url.startswith("https://") if entry.source == "url" else file.package_path


def test_pull_from_mirror_verifies_and_is_idempotent(tmp_path):
    paths = pull([small_entry()], tmp_path, model_mirror())
    assert [p.name for p in paths] == [f.name for f in small_entry().files]
    for path, file in zip(paths, small_entry().files, strict=True):
        assert sha256_file(path) == file.sha256
    before = [p.stat().st_mtime_ns for p in paths]
    pull([small_entry()], tmp_path, model_mirror())
    assert [p.stat().st_mtime_ns for p in paths] == before, "verified files are not copied again"
    xml = ModelStore(tmp_path).path(SMALL)
    assert xml == tmp_path / SMALL / "FP16" / f"{SMALL}.xml"
    assert files_under(tmp_path) == sorted(paths), "no temp files left behind"


@pytest.mark.parametrize("damage", ["flipped byte", "truncated", "empty"])
def test_corrupt_mirror_file_is_refused_and_nothing_left(tmp_path, damage):
    mirror = fake_mirror(tmp_path, damage)
    dest = tmp_path / "store"
    expected = next(f for f in small_entry().files if f.name.endswith(".bin")).sha256
    with pytest.raises(ModelCorrupt) as caught:
        pull([small_entry()], dest, mirror)
    message = str(caught.value)
    assert f"{SMALL}.bin" in message
    assert expected in message
    actual = message.split("got ")[1].split(";", maxsplit=1)[0]
    assert len(actual) == 64 and actual != expected
    assert [p.name for p in files_under(dest)] == [f"{SMALL}.xml"], "the bad .bin was not kept"


def test_mirror_without_the_file_raises_missing(tmp_path):
    with pytest.raises(ModelMissing, match="has no"):
        pull([small_entry()], tmp_path / "store", tmp_path / "empty-mirror")
    assert files_under(tmp_path) == []


@pytest.mark.parametrize(
    ("model", "precision", "error", "fragments"),
    [
        (SMALL, None, ModelMissing, [f"{SMALL}.xml", "varta models pull --mirror", "--model"]),
        (SMALL, "INT4", ModelMissing, ["not in the manifest", f"{SMALL}/FP16"]),
        ("no-such-model", None, ModelMissing, ["not in the manifest"]),
    ],
)
def test_missing_model_names_file_and_fix(tmp_path, model, precision, error, fragments):
    with pytest.raises(error) as caught:
        ModelStore(tmp_path).path(model, precision)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_tampered_store_file_is_corrupt(tmp_path):
    pull([small_entry()], tmp_path, model_mirror())
    xml = tmp_path / SMALL / "FP16" / f"{SMALL}.xml"
    xml.write_bytes(xml.read_bytes().replace(b"<net", b"<nyt", 1))
    with pytest.raises(ModelCorrupt, match=r"expected sha256 [0-9a-f]{64}.*got [0-9a-f]{64}"):
        ModelStore(tmp_path).path(SMALL)


def test_pypi_model_resolves_inside_installed_package(tmp_path):
    path = ModelStore(tmp_path).path("PP-OCRv6_rec_small")
    assert path.name == "PP-OCRv6_rec_small.onnx"
    assert "rapidocr" in path.parts and path.is_file()
    assert files_under(tmp_path) == [], "wheel models are not copied into the store"


def test_models_list_json(tmp_path):
    from varta.cli import app

    runner = CliRunner()
    args = ["models", "pull", "--mirror", str(model_mirror()), "--dest", str(tmp_path)]
    pulled = runner.invoke(app, [*args, "--model", SMALL])
    assert pulled.exit_code == 0, pulled.output
    listed = runner.invoke(app, ["models", "list", "--dest", str(tmp_path), "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    states = {(r["model"], r["precision"], r["file"]): r["state"] for r in rows}
    assert len(states) == sum(len(e.files) for e in load_manifest().models)
    for (model, _, _), state in states.items():
        expected = (
            "verified"
            if model in (SMALL, "PP-OCRv6_det_small", "PP-OCRv6_rec_small")
            else "missing"
        )
        assert state == expected, (model, state)


def test_models_pull_cli_reports_corruption(tmp_path):
    from varta.cli import app

    mirror = fake_mirror(tmp_path, "flipped byte")
    result = CliRunner().invoke(
        app,
        [
            "models",
            "pull",
            "--mirror",
            str(mirror),
            "--dest",
            str(tmp_path / "s"),
            "--model",
            SMALL,
        ],
    )
    assert result.exit_code == 1
    assert "failed verification" in result.output


def test_session_store_has_every_model(model_store):
    for row in model_store.status(verify=False):
        assert row.state == "present", row


@pytest.fixture
def http_mirror(tmp_path):
    """A real HTTP server on 127.0.0.1 serving the small model (its .bin possibly damaged)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    served = tmp_path / "www"
    served.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(served))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("damage", "error"), [(None, None), ("flipped byte", ModelCorrupt)])
def test_pull_downloads_over_http(tmp_path, http_mirror, damage, error):
    import msgspec

    served, base = http_mirror
    entry = small_entry()
    files = []
    for file in entry.files:
        data = mirror_path(model_mirror(), file.url).read_bytes()
        if damage and file.name.endswith(".bin"):
            data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
        (served / file.name).write_bytes(data)
        files.append(msgspec.structs.replace(file, url=f"{base}/{file.name}"))
    entry = msgspec.structs.replace(entry, files=files)
    dest = tmp_path / "store"
    if error is None:
        paths = pull([entry], dest, mirror=None)
        assert [sha256_file(p) for p in paths] == [f.sha256 for f in files]
    else:
        with pytest.raises(error, match=f"{SMALL}.bin from http://127.0.0.1"):
            pull([entry], dest, mirror=None)
        assert [p.name for p in files_under(dest)] == [f"{SMALL}.xml"]


def test_download_failure_is_missing(tmp_path, http_mirror):
    import msgspec

    _, base = http_mirror
    entry = small_entry()
    files = [msgspec.structs.replace(f, url=f"{base}/absent/{f.name}") for f in entry.files]
    with pytest.raises(ModelMissing, match=r"could not download .*404"):
        pull([msgspec.structs.replace(entry, files=files)], tmp_path / "store", mirror=None)
    assert files_under(tmp_path / "store") == []
