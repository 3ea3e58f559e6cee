"""`varta central check` and central's Prometheus endpoint on a real `varta central serve`."""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import msgpack
import msgspec
import pytest
import zmq
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from bench.loadgen import make_sighting
from central.config import CentralConfig
from central.store.db import MIGRATIONS, Database
from shared import wire
from shared.config import MetricsConfig
from tests.harness import (
    KeyRing,
    agent_config_file,
    central_config,
    central_yaml,
    curve_dealer,
    free_port,
    make_keyring,
    read_result,
    send_hello,
    spawn_central,
    spawn_loadgen,
    wait_for,
)
from varta.cli import app


def check(config_file: Path) -> tuple[int, dict[str, dict[str, str]]]:
    """Run `varta central check --json`; exit code and rows by name."""
    result = CliRunner().invoke(app, ["central", "check", "-c", str(config_file), "--json"])
    body = json.loads(result.stdout)
    assert body["ok"] is (result.exit_code == 0)
    return result.exit_code, {r["name"]: r for r in body["checks"]}


def db_file(config: CentralConfig) -> Path:
    return Path(config.storage.data_dir) / config.storage.duckdb_file


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return make_keyring(tmp_path / "keys", ["a1"])


@pytest.fixture
def config(ring: KeyRing, tmp_path: Path) -> CentralConfig:
    metrics = MetricsConfig(enabled=True, port=free_port())
    return central_config(ring, tmp_path / "central").model_copy(update={"metrics": metrics})


def test_check_before_first_start_and_with_a_current_schema(
    config: CentralConfig, tmp_path: Path
) -> None:
    path = central_yaml(tmp_path / "central.yaml", config)
    code, rows = check(path)
    assert code == 0, rows
    assert all(r["status"] == "ok" for r in rows.values()), rows
    assert "does not exist yet" in rows["database"]["detail"]
    assert rows["allow-list"]["detail"] == "1 agents: a1"
    assert "free to bind" in rows["ingest port"]["detail"]
    assert "free to bind" in rows["http port"]["detail"]
    Database(db_file(config)).close()
    code, rows = check(path)
    assert code == 0
    assert f"schema version {len(MIGRATIONS)} is current" in rows["database"]["detail"]


def test_check_names_each_fault_and_its_fix(
    config: CentralConfig, ring: KeyRing, tmp_path: Path
) -> None:
    Database(db_file(config)).close()
    con = duckdb.connect(str(db_file(config)))
    con.execute("INSERT INTO schema_migrations (version) VALUES (999)")
    con.close()
    ring.central_secret.unlink()
    ingest_port = int(config.ingest.bind.rsplit(":", 1)[1])
    config = config.model_copy(
        update={"ingest": config.ingest.model_copy(update={"min_free_mb": 1 << 30})}
    )
    path = central_yaml(tmp_path / "central.yaml", config)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ingest_port))
        squatter.listen()
        code, rows = check(path)
    assert code == 1
    assert rows["server key"]["status"] == "fail"
    assert "varta keys gen central" in rows["server key"]["fix"]
    assert "schema version 999 is newer" in rows["database"]["detail"]
    assert "upgrade Varta" in rows["database"]["fix"]
    assert "MiB needed" in rows["disk"]["detail"]
    assert "in use, and not by a central" in rows["ingest port"]["detail"]
    (tmp_path / "broken.yaml").write_text("ingest:\n  bind: 7\n  nonsense: 1\n")
    code, rows = check(tmp_path / "broken.yaml")
    assert code == 1 and "ingest.nonsense" in rows["config"]["detail"]


def scrape(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """``{sample name: {sorted labels: value}}`` from a real scrape, parsed by
    prometheus-client's own parser."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def one(metrics: dict[str, Any], name: str, **labels: str) -> float:
    return float(metrics[name][tuple(sorted(labels.items()))])


@pytest.fixture
def served(config: CentralConfig, tmp_path: Path) -> Iterator[CentralConfig]:
    config = config.model_copy(
        update={
            "agent_offline_after_s": 2.0,
            "alerts": config.alerts.model_copy(update={"offline_check_interval_s": 0.5}),
        }
    )
    process = spawn_central(central_yaml(tmp_path / "central.yaml", config))
    try:
        health = f"http://127.0.0.1:{config.http.port}/api/v1/health"
        assert wait_for(lambda: _answers(health), 60), "central did not start"
        yield config
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


@pytest.mark.slow
def test_serving_central_checks_ok_and_metrics_move(
    served: CentralConfig, ring: KeyRing, tmp_path: Path
) -> None:
    code, rows = check(tmp_path / "central.yaml")
    assert code == 0, rows
    assert "central is serving (it refused a throwaway key" in rows["ingest port"]["detail"]
    assert "running central" in rows["database"]["detail"]
    assert "serving and healthy" in rows["http port"]["detail"]
    assert "metrics are served" in rows["metrics port"]["detail"]

    port = served.metrics.port
    before = scrape(port)
    denied = one(before, "varta_ingest_auth_denied_total")
    assert denied >= 1  # the check's throwaway key
    assert one(before, "varta_ingest_up") == 1 and one(before, "varta_ingest_storage_ok") == 1
    stored = one(before, "varta_ingest_sightings_stored_total")
    turns = one(before, "varta_ingest_turn_duration_seconds_count")

    agent = agent_config_file(
        tmp_path / "agent.yaml", ring, "a1", served.ingest.bind, tmp_path / "spool"
    )
    result = tmp_path / "result.json"
    assert spawn_loadgen(agent, count=120, result=result).wait(timeout=120) == 0
    assert read_result(result)["acked"] == 120

    after = scrape(port)
    assert one(after, "varta_ingest_sightings_stored_total") == stored + 120
    assert one(after, "varta_ingest_batches_total") >= 1
    assert one(after, "varta_ingest_turn_duration_seconds_count") > turns
    assert one(after, "varta_ingest_turn_duration_seconds_bucket", le="+Inf") == one(
        after, "varta_ingest_turn_duration_seconds_count"
    )
    # Per-agent counts are written with heartbeats (every few turns), so they may lag.
    assert 0 <= one(after, "varta_agent_sightings_received_total", agent="a1") <= 120
    assert one(after, "varta_agent_spool_depth", agent="a1") >= 0
    commits = "varta_database_commits_total"
    assert one(after, commits) > one(before, commits)
    assert one(after, "varta_database_writer_up") == 1
    assert (("agent", "a1"), ("camera", "cam-1")) in after["varta_camera_up"]

    # A batch with one good sighting and two bad ones: the refusals are counted by reason.
    rng = random.Random(2)
    good, frames = make_sighting(rng, camera_id="cam-1")
    other, other_frames = make_sighting(rng, camera_id="cam-1")
    bad = [
        msgspec.structs.replace(other, event_id="-" * 36),
        msgspec.structs.replace(other, camera_id="cam-of-someone-else"),
    ]
    ctx: zmq.Context[Any] = zmq.Context()
    sock = curve_dealer(ctx, served.ingest.bind, ring, ring.root / "agents" / "a1.key_secret")
    try:
        assert send_hello(sock, "a1", ["cam-1"])["kind"] == "ack"
        batch = wire.SightingBatch(agent_id="a1", batch_id=9, items=[good, *bad])
        sock.send_multipart([wire.encode(batch), *frames, *other_frames, *other_frames])
        assert sock.poll(5000)
        ack = msgpack.unpackb(sock.recv_multipart()[0])
        assert ack["stored"] == 1 and len(ack["rejected"]) == 2
    finally:
        sock.close(0)
        ctx.term()
    refused = scrape(port)
    assert one(refused, "varta_ingest_sightings_stored_total") == stored + 121
    uuid = one(refused, "varta_ingest_items_refused_total", reason="event id not a UUID")
    foreign = one(refused, "varta_ingest_items_refused_total", reason="camera not announced")
    assert (uuid, foreign) == (1, 1)

    # The agent has gone quiet: it is reported offline, and an alert is raised.
    def offline_alert() -> bool:
        m = scrape(port)
        new = m.get("varta_alerts", {}).get((("kind", "agent_offline"), ("state", "new")), 0)
        return one(m, "varta_agent_up", agent="a1") == 0 and new == 1

    assert wait_for(offline_alert, 30, 0.5)
    last = scrape(port)
    assert one(last, "varta_alerts", kind="agent_offline", state="resolved") == 0
