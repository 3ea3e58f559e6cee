"""Central and one sending agent as real processes in the two namespaces of a :class:`Link`.

Central (``varta central serve``: ZeroMQ ingest with CURVE, DuckDB, the HTTP API) runs in
the central namespace; the agent is ``bench.loadgen``: a real ``EdgeAgent`` (spool,
publisher, heartbeats, clock guard) fed synthetic sightings at a known rate, in the agent
namespace. The agent logs the event id of every sighting its spool accepted and keeps a
JSON snapshot of its state (delivered count, spool depth, reconnects); the rig reads both,
asks central's API for the agent's health from inside the central namespace, and counts
the stored event ids in the DuckDB file once central has stopped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.faults.netfault import AGENT_ADDR, CENTRAL_ADDR, Link, wait_until
from central.accounts.secrets import new_secret
from central.config import AuthConfig, CentralConfig, HttpConfig, IngestConfig, StorageConfig
from shared import keys
from shared.paths import REPO_ROOT

INGEST_PORT = 7710
HTTP_PORT = 8080
RELAY_PORT = 7711
AGENT_ID = "a1"


@dataclass(frozen=True)
class Tally:
    """Sent (accepted by the agent's spool) against stored (in central's DuckDB)."""

    sent: int
    stored: int
    duplicates: int  # stored rows beyond one per event id
    missing: int  # sent, never stored
    unexpected: int  # stored, never logged as sent
    captured_at: tuple[float, float]  # earliest and latest stored capture time


class Rig:
    """Keys, configs and the processes of one scenario; :meth:`close` stops them all."""

    def __init__(self, work: Path, link: Link, offline_after_s: float = 5.0) -> None:
        self.work = work
        self.link = link
        work.mkdir(parents=True, exist_ok=True)
        self._keys = work / "keys"
        keys.generate(self._keys, "central")
        public, _ = keys.generate(self._keys / "agents", AGENT_ID)
        (self._keys / "allowed").mkdir()
        (self._keys / "allowed" / public.name).write_bytes(public.read_bytes())
        token = work / "admin.token"
        token.write_text(new_secret("api"))
        token.chmod(0o600)
        self._token = token
        config = CentralConfig(
            ingest=IngestConfig(
                bind=f"tcp://{CENTRAL_ADDR}:{INGEST_PORT}",
                server_secret_key=self._keys / "central.key_secret",
                allowed_agents_dir=self._keys / "allowed",
            ),
            http=HttpConfig(host=CENTRAL_ADDR, port=HTTP_PORT),
            storage=StorageConfig(data_dir=work / "central"),
            auth=AuthConfig(bootstrap_token_file=token, cookie_secure=False),
            agent_offline_after_s=offline_after_s,
        )
        self.central_yaml = work / "central.yaml"
        self.central_yaml.write_text(yaml.safe_dump(config.model_dump(mode="json")))
        self.db_file = work / "central" / "varta.duckdb"
        self.accepted = work / "accepted.txt"
        self.status_file = work / "agent-status.json"
        self.central: subprocess.Popen[bytes] | None = None
        self.agent: subprocess.Popen[bytes] | None = None
        self.relay: subprocess.Popen[bytes] | None = None
        self._logs: list[Any] = []

    # -- central ----------------------------------------------------------------------------

    def start_central(self, timeout: float = 60.0) -> float:
        """Start central and wait for its API; return how long that took (seconds)."""
        started = time.monotonic()
        argv = [sys.executable, "-c", "from varta.cli import main; main()", "central", "serve"]
        self.central = self.link.spawn(
            self.link.central_ns,
            [*argv, "--config", str(self.central_yaml)],
            env={"PYTHONPATH": str(REPO_ROOT)},
            log=self._log("central"),
        )
        if not wait_until(self._central_up, timeout, 0.2):
            raise RuntimeError(f"central did not answer within {timeout:.0f} s (see its log)")
        return time.monotonic() - started

    def _central_up(self) -> bool:
        if self.central is not None and self.central.poll() is not None:
            raise RuntimeError(f"central exited with {self.central.returncode} (see its log)")
        try:
            self.api("/api/v1/health")
        except (OSError, ValueError):
            return False
        return True

    def kill_central(self) -> None:
        """SIGKILL central: no clean shutdown, whatever it was doing."""
        assert self.central is not None
        os.kill(self.central.pid, signal.SIGKILL)
        self.central.wait(10)

    def stop_central(self) -> None:
        """SIGTERM central and wait for its clean exit."""
        if self.central is not None and self.central.poll() is None:
            self.central.send_signal(signal.SIGTERM)
            self.central.wait(60)

    def api(self, path: str) -> Any:
        """GET one of central's API paths (as the bootstrap admin)."""
        headers = {"Authorization": f"Bearer {self._token.read_text().strip()}"}
        return self.link.get_json(self.link.central_ns, CENTRAL_ADDR, HTTP_PORT, path, headers)

    def agent_health(self) -> dict[str, Any]:
        """The agent's entry in central's ``/api/v1/agents`` ({} before its first hello)."""
        try:
            agents = self.api("/api/v1/agents")
        except (OSError, ValueError):
            return {}
        return next((a for a in agents if a["agent_id"] == AGENT_ID), {})

    # -- agent ------------------------------------------------------------------------------

    def start_relay(self, max_delay: float) -> str:
        """The jitter relay in the agent's namespace; return the endpoint agents dial."""
        upstream = f"{CENTRAL_ADDR}:{INGEST_PORT}"
        argv = [sys.executable, "-m", "bench.faults.jitter_relay", "--max-delay", str(max_delay),
                "--listen", f"127.0.0.1:{RELAY_PORT}", "--to", upstream]  # fmt: skip
        self.relay = self.link.spawn(
            self.link.agent_ns,
            argv,
            env={"PYTHONPATH": str(REPO_ROOT)},
            log=self._log("relay"),
        )
        return f"tcp://127.0.0.1:{RELAY_PORT}"

    def start_agent(
        self,
        count: int,
        rate: float,
        endpoint: str | None = None,
        env: dict[str, str] | None = None,
        step_confirm_s: float = 60.0,
    ) -> None:
        """Start the sending agent: ``count`` sightings at ``rate`` per second."""
        config = self.work / "agent.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "agent_id": AGENT_ID,
                    "central": {
                        "endpoint": endpoint or f"tcp://{CENTRAL_ADDR}:{INGEST_PORT}",
                        "server_public_key": str(self._keys / "central.key"),
                        "agent_secret_key": str(self._keys / "agents" / f"{AGENT_ID}.key_secret"),
                        "ack_timeout_s": 15.0,
                        "backoff_max_s": 1.0,
                        "heartbeat_interval_s": 0.5,
                    },
                    "spool": {"dir": str(self.work / "spool")},
                    "clock": {"step_threshold_s": 2.0, "step_confirm_s": step_confirm_s},
                }
            )
        )
        argv = [sys.executable, "-m", "bench.loadgen", "--config", str(config),
                "--count", str(count), "--rate", str(rate), "--wait-acked", "120",
                "--log-accepted", str(self.accepted), "--status", str(self.status_file),
                "--result", str(self.work / "agent-result.json"), "--linger", "1.5"]  # fmt: skip
        self.agent = self.link.spawn(
            self.link.agent_ns,
            argv,
            env={"PYTHONPATH": str(REPO_ROOT), **(env or {})},
            log=self._log("agent"),
        )
        if not wait_until(lambda: self.status().get("delivered", 0) > 0, 60, 0.1):
            raise RuntimeError("the agent delivered nothing within 60 s (see its log)")

    def status(self) -> dict[str, Any]:
        """The agent's last state snapshot ({} before the first)."""
        try:
            return dict(json.loads(self.status_file.read_text()))
        except (OSError, ValueError):
            return {}

    def wait_delivered(self, at_least: int, timeout: float) -> float | None:
        """Wait until the agent's first ``at_least`` sightings are acknowledged; when (mono)."""
        if wait_until(lambda: self.status().get("delivered", 0) >= at_least, timeout, 0.05):
            return time.monotonic()
        return None

    def wait_agent(self, timeout: float = 180.0) -> int:
        """Wait for the agent to finish (all its sightings acknowledged, or gave up)."""
        assert self.agent is not None
        return self.agent.wait(timeout)

    # -- results ----------------------------------------------------------------------------

    def tally(self) -> Tally:
        """Count stored event ids against sent ones (central must be stopped)."""
        import duckdb

        sent = self.accepted.read_text().split() if self.accepted.exists() else []
        con = duckdb.connect(str(self.db_file), read_only=True)
        try:
            rows = con.execute(
                "SELECT event_id::VARCHAR, epoch(captured_at) FROM sightings"
            ).fetchall()
        finally:
            con.close()
        ids = [r[0] for r in rows]
        times = [float(r[1]) for r in rows] or [0.0]
        stored, wanted = set(ids), set(sent)
        return Tally(
            sent=len(sent),
            stored=len(ids),
            duplicates=len(ids) - len(stored),
            missing=len(wanted - stored),
            unexpected=len(stored - wanted),
            captured_at=(min(times), max(times)),
        )

    def close(self) -> None:
        """Stop what still runs (the link's close kills anything left in the namespaces)."""
        for proc in (self.agent, self.relay):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
        if self.central is not None and self.central.poll() is None:
            self.stop_central()
        for fh in self._logs:
            fh.close()

    def _log(self, name: str) -> Any:
        fh = (self.work / f"{name}.log").open("ab")
        self._logs.append(fh)
        return fh


__all__ = ["AGENT_ADDR", "AGENT_ID", "Rig", "Tally"]
