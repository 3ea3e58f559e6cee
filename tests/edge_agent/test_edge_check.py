"""`varta edge check` against a real central (CURVE allow-list), real models and cameras."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from central.app import Central
from models.store import ModelStore
from tests.harness import KeyRing, central_config, free_port, make_keyring, start_central
from tests.small_fs import Filler, small_filesystem
from varta.cli import app

VIDEO = "traffic-video/videos/intel__car-detection.mp4"


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    ring = make_keyring(tmp_path / "keys", ["edge-1"])
    ring.agent("stranger", allow=False)
    return ring


@pytest.fixture
def central(ring: KeyRing, tmp_path: Path) -> Iterator[Central]:
    running = start_central(central_config(ring, tmp_path / "central"))
    yield running
    running.stop()


def agent_yaml(
    tmp_path: Path, ring: KeyRing, endpoint: str, source: str, agent: str = "edge-1", **spool: Any
) -> Path:
    cfg = {
        "agent_id": agent,
        "central": {
            "endpoint": endpoint,
            "server_public_key": str(ring.central_public),
            "agent_secret_key": str(ring.root / "agents" / f"{agent}.key_secret"),
        },
        "spool": {"dir": str(tmp_path / "spool"), "min_free_mb": 1, **spool},
        "cameras": [{"camera_id": "lot-1", "kind": "file", "source": source, "realtime": False}],
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def check(config: Path, models: Path) -> tuple[int, dict[str, dict[str, str]], str]:
    """Run `varta edge check --json`; exit code, rows by name, and the table output."""
    args = ["edge", "check", "-c", str(config), "--models", str(models)]
    timeouts = ["--camera-timeout", "5", "--link-timeout", "3"]
    table = CliRunner().invoke(app, [*args, *timeouts])
    result = CliRunner().invoke(app, [*args, *timeouts, "--json"])
    body = json.loads(result.stdout)
    assert result.exit_code == table.exit_code
    assert body["ok"] is (result.exit_code == 0)
    return result.exit_code, {r["name"]: r for r in body["checks"]}, table.stdout


def test_healthy_box_passes(
    central: Central, ring: KeyRing, model_store: ModelStore, shared_data: Path, tmp_path: Path
) -> None:
    config = agent_yaml(tmp_path, ring, central.ingest.bound_endpoint, str(shared_data / VIDEO))
    code, rows, table = check(config, model_store.root)
    assert code == 0, table
    assert set(rows) == {"models", "camera lot-1", "central link", "spool"}
    assert all(r["status"] == "ok" for r in rows.values()), rows
    assert "key accepted, hello acknowledged" in rows["central link"]["detail"]
    assert "frame 768x432 read" in rows["camera lot-1"]["detail"]
    assert "detector:" in rows["camera lot-1"]["detail"]
    assert "4 checks: 4 ok, 0 warnings, 0 failed" in table
    # The hello was real: central registered the agent and its camera.
    with central.db.reader() as con:
        cams = con.execute("SELECT agent_id, camera_id FROM cameras").fetchall()
    assert cams == [("edge-1", "lot-1")]


def test_a_snapshot_folder_is_checked_without_touching_its_photos(
    central: Central, ring: KeyRing, model_store: ModelStore, shared_data: Path, tmp_path: Path
) -> None:
    # The running agent deletes processed photos; the check reads one already waiting and
    # leaves it for the agent.
    folder = tmp_path / "snapshots"
    folder.mkdir()
    photo = folder / "AO1467BH.jpg"
    photo.write_bytes((shared_data / "plates-ua-dev/images/AO1467BH.jpeg").read_bytes())
    config = agent_yaml(tmp_path, ring, central.ingest.bound_endpoint, str(folder))
    yaml_cfg = yaml.safe_load(config.read_text())
    yaml_cfg["cameras"][0] = {
        "camera_id": "lot-1",
        "kind": "snapshots",
        "source": str(folder),
        "snapshots": {"after": "delete"},
    }
    config.write_text(yaml.safe_dump(yaml_cfg))
    code, rows, table = check(config, model_store.root)
    assert code == 0, table
    assert "detector:" in rows["camera lot-1"]["detail"]
    assert [p.name for p in folder.iterdir()] == [photo.name]


def test_missing_model_names_the_pull_command(
    central: Central, ring: KeyRing, shared_data: Path, tmp_path: Path
) -> None:
    config = agent_yaml(tmp_path, ring, central.ingest.bound_endpoint, str(shared_data / VIDEO))
    code, rows, table = check(config, tmp_path / "no-models")
    assert code == 1
    row = rows["model person-vehicle-bike-detection-2004"]
    assert row["status"] == "fail" and "is missing" in row["detail"]
    assert "fetch it with: varta models pull" in row["fix"]
    assert "--model person-vehicle-bike-detection-2004" in row["fix"]
    assert "fix: fetch it with: varta models pull" in table
    # The camera is still read; it is not inferred without the detector.
    assert rows["camera lot-1"]["status"] == "warn"
    assert rows["central link"]["status"] == "ok"


def test_dead_camera_url_fails(
    central: Central, ring: KeyRing, model_store: ModelStore, tmp_path: Path
) -> None:
    dead = f"rtsp://127.0.0.1:{free_port()}/stream"
    config = agent_yaml(tmp_path, ring, central.ingest.bound_endpoint, dead)
    yaml_cfg = yaml.safe_load(config.read_text())
    yaml_cfg["cameras"][0] = {"camera_id": "lot-1", "kind": "rtsp", "source": dead}
    config.write_text(yaml.safe_dump(yaml_cfg))
    code, rows, _ = check(config, model_store.root)
    assert code == 1
    row = rows["camera lot-1"]
    assert row["status"] == "fail" and "no frame within 5 s" in row["detail"]
    assert "rtsp source is reachable" in row["fix"]


def test_central_refusing_the_key_fails(
    central: Central, ring: KeyRing, model_store: ModelStore, shared_data: Path, tmp_path: Path
) -> None:
    endpoint = central.ingest.bound_endpoint
    config = agent_yaml(tmp_path, ring, endpoint, str(shared_data / VIDEO), agent="stranger")
    code, rows, _ = check(config, model_store.root)
    assert code == 1
    row = rows["central link"]
    assert row["status"] == "fail"
    assert "central refused this agent's key (not allow-listed)" in row["detail"]
    public = (ring.root / "agents" / "stranger.key").read_text()
    assert "central's allow-list as stranger.key" in row["fix"]
    assert row["fix"].split("(")[1].split(")")[0] in public  # the z85 key itself
    assert central.ingest.stats.auth_denied >= 2  # one per run: table and JSON


def test_central_down_is_told_apart(
    ring: KeyRing, model_store: ModelStore, shared_data: Path, tmp_path: Path
) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    config = agent_yaml(tmp_path, ring, endpoint, str(shared_data / VIDEO))
    code, rows, _ = check(config, model_store.root)
    assert code == 1
    assert "no connection within 3 s" in rows["central link"]["detail"]
    assert "start central" in rows["central link"]["fix"]


def test_full_spool_disk_fails(
    central: Central, ring: KeyRing, model_store: ModelStore, shared_data: Path, tmp_path: Path
) -> None:
    with small_filesystem(tmp_path / "small", 1 << 20) as mount:
        Filler(mount / "filler").fill()
        config = agent_yaml(tmp_path, ring, central.ingest.bound_endpoint, str(shared_data / VIDEO))
        cfg = yaml.safe_load(config.read_text())
        cfg["spool"]["dir"] = str(mount / "spool")
        config.write_text(yaml.safe_dump(cfg))
        code, rows, _ = check(config, model_store.root)
    assert code == 1
    row = rows["spool"]
    assert row["status"] == "fail" and "disk full" in row["detail"]
    assert "free space on the file system" in row["fix"]
    assert rows["central link"]["status"] == "ok"


@pytest.mark.parametrize(
    ("agent_id", "wrong_server_key", "detail", "fix"),
    [
        ("edge-1", True, "the CURVE handshake failed", "must be central's public key"),
        ("renamed", False, "did not acknowledge a hello from 'renamed'", "rename it on central"),
    ],
)
def test_central_link_tells_a_wrong_server_key_from_a_wrong_agent_id(
    central: Central,
    ring: KeyRing,
    tmp_path: Path,
    agent_id: str,
    wrong_server_key: bool,
    detail: str,
    fix: str,
) -> None:
    from edge_agent.check import check_central
    from edge_agent.config import AgentConfig, CentralLinkConfig
    from shared import keys

    server_key = ring.central_public
    if wrong_server_key:
        server_key, _ = keys.generate(tmp_path / "other", "central")
    link = CentralLinkConfig(
        endpoint=central.ingest.bound_endpoint,
        server_public_key=server_key,
        agent_secret_key=ring.root / "agents" / "edge-1.key_secret",
    )
    (row,) = check_central(AgentConfig(agent_id=agent_id, central=link), timeout=2)
    assert row.status == "fail" and detail in row.detail and fix in row.fix
