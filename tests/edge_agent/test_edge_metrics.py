"""The edge agent's Prometheus endpoint, scraped from a real `varta edge run` process."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from central.app import Central
from models.store import ModelStore
from shared.paths import REPO_ROOT
from tests.harness import central_config, free_port, make_keyring, start_central, wait_for

VIDEO = "traffic-video/videos/intel__car-detection.mp4"
Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def scrape(port: int) -> Samples:
    """Samples by name and sorted labels, parsed by prometheus-client's parser."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[name][tuple(sorted(labels.items()))]


@pytest.fixture
def central(tmp_path: Path) -> Iterator[Central]:
    ring = make_keyring(tmp_path / "keys", ["edge-1"])
    running = start_central(central_config(ring, tmp_path / "central"))
    yield running
    running.stop()


def _reachable(port: int) -> bool:
    try:
        scrape(port)
    except OSError:
        return False
    return True


@pytest.mark.slow
def test_running_agent_serves_metrics_that_move(
    central: Central, model_store: ModelStore, shared_data: Path, tmp_path: Path
) -> None:
    port = free_port()
    keys = tmp_path / "keys"
    cfg = {
        "agent_id": "edge-1",
        "central": {
            "endpoint": central.ingest.bound_endpoint,
            "server_public_key": str(keys / "central.key"),
            "agent_secret_key": str(keys / "agents" / "edge-1.key_secret"),
            "heartbeat_interval_s": 0.5,
        },
        "spool": {"dir": str(tmp_path / "spool")},
        "cameras": [
            {
                "camera_id": "lot-1",
                "kind": "file",
                "source": str(shared_data / VIDEO),
                "realtime": True,
                "loop": True,
            }
        ],
        "metrics": {"enabled": True, "port": port},
        "status_interval_s": 0,
    }
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-c", "from varta.cli import main; main()", "edge", "run"]
    args = ["-c", str(tmp_path / "agent.yaml"), "--models", str(model_store.root)]
    process = subprocess.Popen([*cmd, *args], cwd=REPO_ROOT)
    try:
        assert wait_for(lambda: _reachable(port), 60), "no metrics endpoint"
        assert wait_for(lambda: value(scrape(port), "varta_edge_frames_processed_total") > 0, 30)
        first = scrape(port)
        assert wait_for(
            lambda: (
                value(scrape(port), "varta_edge_sightings_total") >= 1
                and value(scrape(port), "varta_edge_records_acked_total") >= 1
            ),
            60,
        ), "no sighting reached central"
        later = scrape(port)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    frames = "varta_edge_frames_processed_total"
    assert value(later, frames) > value(first, frames)
    assert value(later, "varta_edge_camera_up", camera="lot-1") == 1
    assert 5 < value(later, "varta_edge_camera_fps_in", camera="lot-1") < 40  # a 12.5 fps clip
    taken = value(later, "varta_edge_camera_frames_taken_total", camera="lot-1")
    assert taken >= value(later, frames) > 0
    detect = value(later, "varta_edge_stage_duration_seconds_count", stage="detect")
    assert detect >= 1
    assert (
        value(later, "varta_edge_stage_duration_seconds_bucket", stage="detect", le="+Inf")
        == detect
    )
    assert value(later, "varta_edge_stage_duration_seconds_sum", stage="detect") > 0
    assert value(later, "varta_edge_central_connected") == 1
    assert value(later, "varta_edge_spool_depth") >= 0
    assert value(later, "varta_edge_spool_evictions_total") == 0
    reads = value(later, "varta_edge_plate_reads_total", result="plate") + value(
        later, "varta_edge_plate_reads_total", result="none"
    )
    assert reads >= 1  # the clip's cars are close enough to try their plates
    assert central.ingest.stats.sightings_stored >= value(later, "varta_edge_records_acked_total")
