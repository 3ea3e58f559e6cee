"""`varta edge detect / check-config / run` with real models, photos, video and keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from edge_agent.config import AgentConfig
from edge_agent.run import run_agent
from models.store import ModelStore
from shared import keys
from varta.cli import app

CONTRACT = {
    "source", "frame", "plate", "plate_raw", "plate_confidence", "candidates", "plate_format",
    "vehicle_type", "vehicle_type_confidence", "colour", "colour_confidence", "bbox",
    "plate_bbox",
}  # fmt: skip
PHOTOS = {  # photos the reader gets right (see tests/edge_agent/test_plate_reader.py)
    "plates-eu/images/eu1.jpg": "M5XSX",
    "plates-eu/images/eu11.jpg": "BS47040",
    "plates-ua-dev/images/AO1467BH.jpeg": "AO1467BH",
    "plates-ua-dev/images/AA1080BC.jpg": "AA1080BC",
    "plates-ua-dev/images/AM3808CO.jpg": "AM3808CO",
}
VIDEO = "traffic-video/videos/intel__car-detection.mp4"


def detect(store: ModelStore, *paths: Path | str) -> tuple[int, list[dict[str, Any]], str]:
    """Run ``varta edge detect --json``; return exit code, parsed lines and stderr."""
    args = ["edge", "detect", *map(str, paths), "--json", "--models", str(store.root)]
    result = CliRunner().invoke(app, args)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, lines, result.stderr


@pytest.mark.slow
def test_detect_reads_the_known_plates(model_store: ModelStore, shared_data: Path) -> None:
    paths = [shared_data / p for p in PHOTOS]
    code, lines, _ = detect(model_store, *paths)
    assert code == 0
    assert all(set(line) >= CONTRACT for line in lines)
    for path, plate in zip(paths, PHOTOS.values(), strict=True):
        mine = [line for line in lines if line["source"] == str(path)]
        assert plate in [line["plate"] for line in mine], (path.name, mine)
        hit = next(line for line in mine if line["plate"] == plate)
        assert hit["frame"] == 0 and hit["plate_confidence"] > 0
        assert hit["candidates"][0][0] == plate and len(hit["plate_bbox"]) == 4


@pytest.mark.slow
def test_detect_on_a_video_prints_one_line_per_pass(
    model_store: ModelStore, shared_data: Path
) -> None:
    code, lines, _ = detect(model_store, shared_data / VIDEO)
    assert code == 0
    assert 1 <= len(lines) <= 20  # a few cars in 30 s, not one line per frame
    for line in lines:
        assert set(line) >= CONTRACT
        assert line["source"] == str(shared_data / VIDEO)
        assert isinstance(line["frame"], int) and 0 <= line["frame"] < 377
        assert len(line["bbox"]) == 4 and line["track_frames"] >= 2
        assert line["vehicle_type"] in {"car", "van", "truck", "bus", "motorcycle", None}


@pytest.mark.slow
def test_corrupt_and_missing_inputs_are_reported_and_skipped(
    model_store: ModelStore, shared_data: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 this is not really a JPEG")
    good = shared_data / "plates-ua-dev/images/AA1080BC.jpg"
    code, lines, stderr = detect(model_store, broken, tmp_path / "missing.jpg", good)
    assert code == 0
    assert "broken.jpg: not a readable image" in stderr
    assert "missing.jpg: no such file or folder" in stderr
    assert {line["source"] for line in lines} == {str(good)}


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"broken.jpg": b"garbage"}, "broken.jpg: not a readable image"),
        ({"clip.mp4": b"\x00\x00\x00\x18ftypmp42 truncated"}, "clip.mp4: not a readable video"),
        ({"notes.txt": b"hello"}, "notes.txt: not a photo or video"),
    ],
)
def test_nothing_readable_exits_non_zero(
    model_store: ModelStore, tmp_path: Path, files: dict[str, bytes], message: str
) -> None:
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    code, lines, stderr = detect(model_store, *(tmp_path / n for n in files))
    assert code == 1 and lines == []
    assert message in stderr and "nothing could be read" in stderr


def test_missing_models_name_the_pull_command(tmp_path: Path, shared_data: Path) -> None:
    code, _, stderr = detect(ModelStore(tmp_path), shared_data / next(iter(PHOTOS)))
    assert code == 1
    assert "varta models pull" in stderr and "is missing" in stderr


def _agent_yaml(tmp_path: Path, shared_data: Path, extra: str = "") -> Path:
    public, _ = keys.generate(tmp_path / "keys", "central")
    _, secret = keys.generate(tmp_path / "keys", "agent")
    path = tmp_path / "agent.yaml"
    path.write_text(
        "agent_id: test-edge\n"
        "central:\n"
        "  endpoint: tcp://127.0.0.1:9\n"
        f"  server_public_key: {public}\n"
        f"  agent_secret_key: {secret}\n"
        f"spool:\n  dir: {tmp_path / 'spool'}\n"
        "status_interval_s: 1\n"
        "cameras:\n"
        "  - camera_id: lot-1\n"
        "    kind: file\n"
        f"    source: {shared_data / VIDEO}\n"
        "    realtime: false\n" + extra
    )
    return path


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        ("", 0, "ok: 1 cameras, models verified"),
        ("pipeline:\n  tracker:\n    max_age_s: -1\n", 2, "pipeline.tracker.max_age_s"),
        ("  - camera_id: lot-1\n    kind: usb\n    source: '0'\n", 2, "camera ids must be unique"),
    ],
)
def test_check_config(
    model_store: ModelStore, shared_data: Path, tmp_path: Path, extra: str, code: int, message: str
) -> None:
    path = _agent_yaml(tmp_path, shared_data, extra)
    args = ["edge", "check-config", str(path), "--models", str(model_store.root)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == code, result.output
    assert message in result.stderr


@pytest.mark.slow
def test_run_agent_spools_sightings_of_a_camera(
    model_store: ModelStore, shared_data: Path, tmp_path: Path
) -> None:
    from shared.config import load

    config = load(_agent_yaml(tmp_path, shared_data), AgentConfig)
    status = tmp_path / "status.txt"
    with status.open("w") as out:
        total = run_agent(config, model_store.root, seconds=6, status=out)
    assert total >= 1
    assert "lot-1" in status.read_text() and "spool" in status.read_text()
    assert any((tmp_path / "spool").iterdir())
