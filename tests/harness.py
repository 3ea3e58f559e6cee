"""Builders for real transport tests: keys, a running central, agent configs and processes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import yaml
import zmq

from central.accounts.secrets import new_secret
from central.app import Central, build
from central.config import AuthConfig, CentralConfig, HttpConfig, IngestConfig, StorageConfig
from shared import keys, wire
from shared.paths import REPO_ROOT


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class KeyRing:
    """Central's key pair and an allow-list directory of agent keys."""

    root: Path

    @property
    def allowed(self) -> Path:
        return self.root / "allowed"

    @property
    def central_secret(self) -> Path:
        return self.root / "central.key_secret"

    @property
    def central_public(self) -> Path:
        return self.root / "central.key"

    def agent(self, agent_id: str, allow: bool = True) -> Path:
        """Make an agent key pair (allow-listed unless told otherwise); return its secret."""
        public, secret = keys.generate(self.root / "agents", agent_id)
        if allow:
            self.allowed.mkdir(parents=True, exist_ok=True)
            (self.allowed / public.name).write_bytes(public.read_bytes())
        return secret


def make_keyring(root: Path, agents: list[str]) -> KeyRing:
    """Central keys plus allow-listed keys for ``agents``."""
    ring = KeyRing(root)
    keys.generate(root, "central")
    ring.allowed.mkdir(parents=True, exist_ok=True)
    for a in agents:
        ring.agent(a)
    return ring


def central_config(ring: KeyRing, data_dir: Path, port: int | None = None) -> CentralConfig:
    """A central config on a free loopback port with a real DuckDB file in ``data_dir``.

    It names a bootstrap admin API token file (``admin_token(config)`` reads it back).
    """
    token_file = data_dir.with_name(data_dir.name + ".token")
    token_file.parent.mkdir(parents=True, exist_ok=True)
    if not token_file.exists():
        token_file.write_text(new_secret("api"))
        token_file.chmod(0o600)
    return CentralConfig(
        ingest=IngestConfig(
            bind=f"tcp://127.0.0.1:{port or free_port()}",
            server_secret_key=ring.central_secret,
            allowed_agents_dir=ring.allowed,
        ),
        http=HttpConfig(port=free_port()),
        storage=StorageConfig(data_dir=data_dir),
        auth=AuthConfig(bootstrap_token_file=token_file, cookie_secure=False),
    )


def admin_token(config: CentralConfig) -> str:
    """The bootstrap admin's API token (every scope) of a ``central_config`` config."""
    assert config.auth.bootstrap_token_file is not None
    return config.auth.bootstrap_token_file.read_text().strip()


def admin_headers(config: CentralConfig) -> dict[str, str]:
    """``Authorization`` header with the bootstrap admin's token."""
    return {"Authorization": f"Bearer {admin_token(config)}"}


def role_token(central: Central, role: str, scopes: list[str] | None = None) -> str:
    """A fresh user with ``role`` and an API token for them (every scope unless given)."""
    from central.accounts.model import SCOPES

    assert central.accounts is not None
    name = f"{role}-{len(central.accounts.list_users())}"
    central.accounts.create_user(name, role, None, "test")
    made = central.accounts.create_token(name, SCOPES if scopes is None else scopes, "test")
    return made.secret


def start_central(config: CentralConfig) -> Central:
    """Build and start ingest (no HTTP)."""
    central = build(config)
    central.start()
    return central


def agent_config_file(
    path: Path, ring: KeyRing, agent_id: str, endpoint: str, spool: Path, **link: object
) -> Path:
    """Write an agent.yaml for a synthetic agent."""
    cfg = {
        "agent_id": agent_id,
        "central": {
            "endpoint": endpoint,
            "server_public_key": str(ring.central_public),
            "agent_secret_key": str(ring.root / "agents" / f"{agent_id}.key_secret"),
            "ack_timeout_s": 15.0,
            "backoff_max_s": 1.0,
            "heartbeat_interval_s": 0.5,
            **link,
        },
        "spool": {"dir": str(spool)},
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def spawn_loadgen(
    config: Path,
    count: int = 0,
    rate: float = 0.0,
    seconds: float = 0.0,
    result: Path | None = None,
    wait_acked: float = 60.0,
    seed: int = 1,
    log_accepted: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a synthetic agent process."""
    cmd = [
        sys.executable,
        "-m",
        "bench.loadgen",
        "--config",
        str(config),
        "--count",
        str(count),
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
        "--wait-acked",
        str(wait_acked),
        "--seed",
        str(seed),
    ]
    if result is not None:
        cmd += ["--result", str(result)]
    if log_accepted is not None:
        cmd += ["--log-accepted", str(log_accepted)]
    return subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.DEVNULL)


def wait_for(predicate: object, timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate()`` until true or ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(interval)
    return False


def read_result(path: Path) -> dict[str, object]:
    """A loadgen process's JSON report."""
    return dict(json.loads(path.read_text()))


def central_yaml(path: Path, config: CentralConfig) -> Path:
    """Write a central config as YAML for `varta central serve`."""
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    return path


def spawn_central(config_file: Path) -> subprocess.Popen[bytes]:
    """Run `varta central serve` as a real process."""
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from varta.cli import main; main()",
            "central",
            "serve",
            "--config",
            str(config_file),
        ],
        cwd=REPO_ROOT,
    )


def stored_ids(db_file: Path) -> list[str]:
    """Every stored event id (with repeats, if there were any), read from the DuckDB file."""
    import duckdb

    con = duckdb.connect(str(db_file), read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT event_id::VARCHAR FROM sightings").fetchall()]
    finally:
        con.close()


def curve_dealer(
    ctx: zmq.Context[Any], endpoint: str, ring: KeyRing, secret: Path | None
) -> zmq.Socket[Any]:
    """A raw DEALER socket to central (CURVE with ``secret``; plain when None)."""
    sock: zmq.Socket[Any] = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if secret is not None:
        pair = keys.load_pair(secret)
        sock.curve_serverkey = keys.load_public(ring.central_public)
        sock.curve_publickey, sock.curve_secretkey = pair.public, pair.secret
    sock.connect(endpoint)
    return sock


def send_hello(sock: zmq.Socket[Any], agent: str, cameras: list[str]) -> dict[str, Any]:
    """Announce ``agent`` with ``cameras`` on a raw DEALER socket; central's answer."""
    msg = wire.AgentHello(
        agent_id=agent,
        software_version="test",
        cameras=[wire.CameraInfo(camera_id=c) for c in cameras],
        msg_id=1,
    )
    sock.send_multipart([wire.encode(msg)])
    assert sock.poll(5000), "central did not answer the hello"
    answer: dict[str, Any] = msgpack.unpackb(sock.recv_multipart()[0])
    return answer
