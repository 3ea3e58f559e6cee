"""A bench cluster: keys, central's config, and synthetic agent processes.

Shared by ``varta bench ingest`` and ``varta bench soak``: central runs in the bench's own
process (``central.app.build``), each agent is a ``bench.loadgen`` process with its own
CURVE key, spool and seed, producing at its share of the total rate.
"""

from __future__ import annotations

import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.stats import free_endpoint
from central.config import CentralConfig, IngestConfig, StorageConfig
from shared import keys
from shared.paths import REPO_ROOT


@dataclass(frozen=True)
class AgentProcess:
    """One running synthetic agent and where it writes its report."""

    agent_id: str
    popen: subprocess.Popen[bytes]
    result: Path

    @property
    def pid(self) -> int:
        """The agent's process id."""
        return self.popen.pid


def central_config(
    root: Path,
    agents: int,
    duckdb_memory_limit_mb: int | None = None,
    min_turn_interval_ms: int | None = None,
    writer_duty: float | None = None,
) -> CentralConfig:
    """Keys for central and ``agents`` agents (allow-listed) under ``root``; central's
    config with a free loopback endpoint and its data in ``root/central``; ingest settings
    left None keep their defaults."""
    overrides = {"min_turn_interval_ms": min_turn_interval_ms, "writer_duty": writer_duty}
    keys.generate(root / "keys", "central")
    (root / "allowed").mkdir(exist_ok=True)
    for i in range(agents):
        pub, _ = keys.generate(root / "keys", f"bench-{i}")
        (root / "allowed" / pub.name).write_bytes(pub.read_bytes())
    return CentralConfig(
        ingest=IngestConfig(
            bind=free_endpoint(),
            server_secret_key=root / "keys/central.key_secret",
            allowed_agents_dir=root / "allowed",
            **{k: v for k, v in overrides.items() if v is not None},
        ),
        storage=StorageConfig(
            data_dir=root / "central", duckdb_memory_limit_mb=duckdb_memory_limit_mb
        ),
    )


def seed_watchlist(config: CentralConfig, entries: int, seed: int = 7) -> int:
    """Import a synthetic national wanted list of ``entries`` plates (``bench.match``'s
    generator, with a hundredth as many wildcard and attribute entries) into central's
    database before it starts, so ingest matches against a realistic list; rows imported.
    """
    from bench.match import plates, write_export
    from central.store.db import Database
    from central.watchlist.model import ListSettings
    from central.watchlist.repository import WatchlistRepository
    from central.watchlist.sync import import_file

    rng = random.Random(seed)
    data_dir = Path(config.storage.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    export = data_dir / "watchlist.csv"
    write_export(export, plates(rng, entries), rng, entries // 100)
    db = Database(data_dir / config.storage.duckdb_file)
    try:
        repo = WatchlistRepository(db)
        repo.save_list(ListSettings(name="national", default_priority=3))
        return import_file(repo, "national", export, full=True).rows
    finally:
        db.close()


def _agent_config(root: Path, i: int, endpoint: str) -> Path:
    agent_id = f"bench-{i}"
    cfg = {
        "agent_id": agent_id,
        "central": {
            "endpoint": endpoint,
            "server_public_key": str(root / "keys/central.key"),
            "agent_secret_key": str(root / "keys" / f"{agent_id}.key_secret"),
        },
        "spool": {"dir": str(root / f"spool-{i}")},
    }
    path = root / f"{agent_id}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def spawn_agents(
    root: Path,
    endpoint: str,
    agents: int,
    seconds: float,
    rate: float,
    wait_acked: float = 30.0,
    cameras: int = 0,
) -> list[AgentProcess]:
    """Start ``agents`` loadgen processes sending to ``endpoint`` for ``seconds`` at
    ``rate`` sightings/s in total (0: as fast as each can), ``cameras`` in all spread
    over them (0: one camera each)."""
    procs = []
    for i in range(agents):
        own = cameras // agents + (1 if i < cameras % agents else 0) if cameras else 1
        out = root / f"result-{i}.json"
        cmd = [
            sys.executable,
            "-m",
            "bench.loadgen",
            "--config",
            str(_agent_config(root, i, endpoint)),
            "--seconds",
            str(seconds),
            "--rate",
            str(rate / agents if rate else 0),
            "--result",
            str(out),
            "--wait-acked",
            str(wait_acked),
            "--seed",
            str(i + 1),
            "--cameras",
            str(own),
        ]
        procs.append(AgentProcess(f"bench-{i}", subprocess.Popen(cmd, cwd=REPO_ROOT), out))
    return procs
