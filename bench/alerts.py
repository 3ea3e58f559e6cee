"""``varta bench alerts``: edge agent -> central -> alert -> police client, end to end.

A 1,000,000-entry Cyrillic wanted list (as ``bench.match`` generates) is imported into a
fresh central's DuckDB file. Central runs as its own process (``varta central serve``:
ingest, alert engine and uvicorn). An agent process (a real ``EdgeAgent``: spool, CURVE
ZeroMQ) publishes sightings at the requested rate; a share of them carry wanted plates.
This process is the police client: it long-polls ``GET /api/v1/alerts`` and, for every
alert change it receives, takes the time from the sighting's capture (when the agent
submitted it; same machine clock) to the moment the change arrived.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.loadgen import make_sighting
from bench.match import plates, write_export
from bench.stats import free_endpoint, percentile
from shared import keys, wire
from shared.paths import REPO_ROOT


def _wanted_db(root: Path, entries: int, rng: random.Random) -> tuple[Path, list[str]]:
    """Import a synthetic national list into central's DuckDB file; return a sample."""

    from central.store.db import Database
    from central.watchlist.model import ListSettings
    from central.watchlist.repository import WatchlistRepository
    from central.watchlist.sync import import_file

    listed = plates(rng, entries)
    export, db_file = root / "export.csv", root / "central" / "varta.duckdb"
    db_file.parent.mkdir(parents=True)
    write_export(export, listed, rng, 300)
    db = Database(db_file)
    try:
        repo = WatchlistRepository(db)
        repo.save_list(ListSettings(name="national"))
        import_file(repo, "national", export, full=True)
    finally:
        db.close()
    export.unlink()
    return db_file, rng.sample(listed, 5000)


def _central(
    root: Path, http_port: int, ingest: dict[str, Any] | None = None
) -> tuple[Path, dict[str, Any]]:
    from central.accounts.secrets import new_secret

    token = root / "admin.token"
    token.write_text(new_secret("api"))
    token.chmod(0o600)
    keys.generate(root / "keys", "central")
    pub, _ = keys.generate(root / "keys", "bench-0")
    (root / "allowed").mkdir()
    (root / "allowed" / pub.name).write_bytes(pub.read_bytes())
    config = {
        "ingest": {
            "bind": free_endpoint(),
            "server_secret_key": str(root / "keys/central.key_secret"),
            "allowed_agents_dir": str(root / "allowed"),
            **(ingest or {}),
        },
        "http": {"host": "127.0.0.1", "port": http_port},
        "storage": {"data_dir": str(root / "central")},
        "auth": {"bootstrap_token_file": str(token)},
    }
    path = root / "central.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, config


def _central_log() -> Any:
    """Central's stderr: to the file named by ``$VARTA_BENCH_CENTRAL_LOG``, else dropped."""
    path = os.environ.get("VARTA_BENCH_CENTRAL_LOG")
    return open(path, "ab") if path else subprocess.DEVNULL


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"central exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"central did not serve {url} within {timeout:.0f} s")


def _poll(url: str, until: float, headers: dict[str, str]) -> list[tuple[float, dict[str, Any]]]:
    """Long-poll the change feed until ``until``; (arrival time, change) per change."""
    got: list[tuple[float, dict[str, Any]]] = []
    after = ""
    with httpx.Client(base_url=url, timeout=40, headers=headers) as http:
        while time.time() < until:
            body = http.get("/api/v1/alerts", params={"after": after, "wait": 5}).json()
            now = time.time()
            got += [(now, c) for c in body["items"]]
            after = body["next"]
    return got


def run(
    entries: int = 1_000_000,
    rate: float = 1000.0,
    seconds: float = 20.0,
    hit_rate: float = 0.01,
    upload_entries: int = 0,
    ingest: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the benchmark and return its result object.

    ``upload_entries``: a second list of that many entries is uploaded over REST (a full
    import) while the agent publishes, starting after a tenth of ``seconds``. ``ingest``:
    central's ingest settings that differ from the defaults (e.g. ``writer_duty``).
    """
    logging.getLogger("httpx").setLevel(logging.WARNING)
    rng = random.Random(3)
    with tempfile.TemporaryDirectory(prefix="varta-bench-alerts-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        _, sample = _wanted_db(root, entries, rng)
        import_s = time.perf_counter() - started
        (root / "wanted.txt").write_text("\n".join(sample))
        port = int(free_endpoint().rsplit(":", 1)[1])
        cfile, config = _central(root, port, ingest)
        url = f"http://127.0.0.1:{port}"
        central = subprocess.Popen(
            [sys.executable, "-c", "from varta.cli import main; main()", "central", "serve",
             "--config", str(cfile)],
            cwd=REPO_ROOT, stderr=_central_log(),
        )  # fmt: skip
        try:
            started = time.perf_counter()
            _wait_http(url, central, 600)
            startup_s = time.perf_counter() - started
            upload = _Upload(root, url, upload_entries, rng) if upload_entries else None
            result = _measure(root, config, url, rate, seconds, hit_rate, upload)
        finally:
            central.send_signal(signal.SIGTERM)
            central.wait(60)
        result.update(
            wanted_entries=entries,
            import_s=round(import_s, 1),
            startup_s=round(startup_s, 1),
            ingest=ingest or {},
        )
        return result


class _Upload:
    """A full import of a generated export over REST, in a thread of its own."""

    def __init__(self, root: Path, url: str, entries: int, rng: random.Random) -> None:
        export = root / "upload.csv"
        write_export(export, plates(rng, entries), rng, 0)
        self._body = export.read_bytes()
        export.unlink()
        self._url, self._root, self.entries = url, root, entries
        self.result: dict[str, Any] = {}
        self.window = (0.0, 0.0)
        self._thread = threading.Thread(target=self._run, name="bench-upload", daemon=True)

    def start(self, delay_s: float) -> None:
        self._delay = delay_s
        self._thread.start()

    def _run(self) -> None:
        time.sleep(self._delay)
        token = (self._root / "admin.token").read_text().strip()
        started = time.perf_counter()
        answer = httpx.post(
            f"{self._url}/api/v1/watchlists/registry/import",
            params={"reason": "bench: registry export", "full": "true"},
            content=self._body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
            timeout=600,
        )
        took = time.perf_counter() - started
        report = answer.json()
        self.window = (time.time() - took, time.time())
        self.result = {
            "upload_entries": self.entries,
            "upload_status": answer.status_code,
            "upload_added": report.get("added", 0),
            "upload_s": round(took, 1),
            "upload_import_s": round(float(report.get("seconds", 0.0)), 1),
        }

    def join(self, timeout: float) -> dict[str, Any]:
        self._thread.join(timeout)
        return self.result or {"upload_entries": self.entries, "upload_s": None}


def _epoch(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339).timestamp()


def _measure(
    root: Path,
    config: dict[str, Any],
    url: str,
    rate: float,
    seconds: float,
    hit_rate: float,
    upload: _Upload | None = None,
) -> dict[str, Any]:
    agent_cfg = root / "agent.yaml"
    agent_cfg.write_text(
        yaml.safe_dump(
            {
                "agent_id": "bench-0",
                "central": {
                    "endpoint": config["ingest"]["bind"],
                    "server_public_key": str(root / "keys/central.key"),
                    "agent_secret_key": str(root / "keys/bench-0.key_secret"),
                },
                "spool": {"dir": str(root / "spool")},
            }
        )
    )
    out = root / "agent.json"
    agent = subprocess.Popen(
        [sys.executable, "-m", "bench.alerts", "--config", str(agent_cfg), "--rate", str(rate),
         "--seconds", str(seconds), "--hit-rate", str(hit_rate), "--wanted",
         str(root / "wanted.txt"), "--result", str(out)],
        cwd=REPO_ROOT,
    )  # fmt: skip
    auth = {"Authorization": f"Bearer {(root / 'admin.token').read_text().strip()}"}
    if upload is not None:
        upload.start(seconds / 10)
    changes = _poll(url, time.time() + seconds + 3.0, auth)
    status = httpx.get(f"{url}/api/v1/status/ingest", headers=auth).json()
    stored = status["sightings_stored"]
    agent.wait(120)
    report = json.loads(out.read_text())
    hits = set(report["hit_event_ids"])
    latencies = [
        (arrived - _epoch(c["alert"]["latest"]["captured_at"])) * 1000
        for arrived, c in changes
        if c["alert"]["kind"] == "watchlist"
        and c["change"] in ("created", "sighted")
        and c["alert"]["latest"]["event_id"] in hits
    ]
    alerted = {c["alert"]["latest"]["event_id"] for _, c in changes if c["alert"]["latest"]}
    uploaded = upload.join(600) if upload is not None else {}
    if upload is not None:  # alerts of sightings captured while the upload was under way
        start, end = upload.window
        during = [
            (arrived - _epoch(c["alert"]["latest"]["captured_at"])) * 1000
            for arrived, c in changes
            if c["alert"]["latest"]
            and start <= _epoch(c["alert"]["latest"]["captured_at"]) <= end
            and c["alert"]["latest"]["event_id"] in hits
        ]
        uploaded |= {
            "during_upload_alerts": len(during),
            "during_upload_p95_ms": round(percentile(during, 0.95), 1),
            "during_upload_max_ms": round(max(during, default=0.0), 1),
        }
    if trace := os.environ.get("VARTA_BENCH_TRACE"):  # arrival time and latency per alert
        Path(trace).write_text(
            "\n".join(
                f"{arrived:.3f} {(arrived - _epoch(c['alert']['latest']['captured_at'])) * 1e3:.1f}"
                for arrived, c in changes
                if c["alert"]["latest"]
            )
        )
    return {
        **uploaded,
        "p50_ms": round(percentile(latencies, 0.5), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies, default=0.0), 1),
        "sightings_per_s": round(stored / report["seconds"]),
        "sightings_produced": report["produced"],
        "sightings_stored": stored,
        "wanted_sightings": len(hits),
        "alert_changes_received": len(latencies),
        "wanted_sightings_without_alert": len(hits - alerted),
        "rate": rate,
        "seconds": seconds,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def run_agent(
    config_path: Path, rate: float, seconds: float, hit_rate: float, wanted: Path, result: Path
) -> None:
    """Agent process: publish sightings at ``rate``; a ``hit_rate`` share are wanted plates."""
    import msgspec

    from edge_agent.app import EdgeAgent
    from edge_agent.config import AgentConfig
    from shared.config import load

    listed = wanted.read_text().split()
    agent = EdgeAgent(load(config_path, AgentConfig), cameras=[wire.CameraInfo(camera_id="cam-1")])
    agent.start()
    rng = random.Random(17)
    pool = [make_sighting(rng) for _ in range(256)]
    produced, hits, start = 0, [], time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        if produced >= rate * elapsed:
            time.sleep(0.002)
            continue
        now = time.time()
        if rng.random() < hit_rate:
            item = make_sighting(rng, plate=rng.choice(listed), now=now)
            hits.append(item[0].event_id)
        else:
            s, frames = pool[produced % len(pool)]
            item = (msgspec.structs.replace(s, event_id=wire.new_event_id(now), captured_at=now),
                    frames)  # fmt: skip
        agent.submit([item])
        produced += 1
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and agent.spool.stats().depth > 0:
        time.sleep(0.05)
    agent.stop()
    result.write_text(json.dumps({"produced": produced, "seconds": elapsed, "hit_event_ids": hits}))


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.alerts``: the agent process of the benchmark."""
    p = argparse.ArgumentParser(description=run_agent.__doc__)
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--hit-rate", type=float, default=0.01)
    p.add_argument("--wanted", type=Path, required=True)
    p.add_argument("--result", type=Path, required=True)
    a = p.parse_args(argv)
    run_agent(a.config, a.rate, a.seconds, a.hit_rate, a.wanted, a.result)


if __name__ == "__main__":
    main()
