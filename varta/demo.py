"""``varta demo``: the main job. Central plus one edge agent on sample cameras, live.

Everything lives under ``var/demo``: keys, configs, central's DuckDB file and thumbnail
packs, the agent's spool, and a snapshot folder that a feeder fills with plate photos from
the shared data, the way an ANPR camera pushes snapshots. The second camera is a road
video played in real time (or ``--source``: your own camera URL, device or file).
Central and the agent run as real processes; this process only orchestrates and shows what
arrives, reading central's REST API like any client.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shared import keys
from shared.paths import REPO_ROOT, data_dir
from shared.plates import registry_form

log = logging.getLogger(__name__)

ROAD_VIDEO = "traffic-video/videos/vehiclecounting__input_video.mp4"
SNAPSHOT_SET = "plates-ua-dev"


@dataclass
class DemoPaths:
    """Where the demo keeps its state."""

    root: Path

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def snapshots(self) -> Path:
        return self.root / "snapshots"

    @property
    def central_yaml(self) -> Path:
        return self.root / "central.yaml"

    @property
    def agent_yaml(self) -> Path:
        return self.root / "agent.yaml"

    @property
    def token(self) -> Path:
        """The demo's API token (central's bootstrap admin token)."""
        return self.root / "api.token"

    @property
    def operator_password(self) -> Path:
        """The password of the demo's console user ``operator``."""
        return self.root / "operator.password"


@dataclass
class Demo:
    """Runs the processes, the snapshot feeder and the live view."""

    paths: DemoPaths
    port: int
    source: str | None
    seconds: float
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def prepare(self) -> None:
        """Keys, configs and the snapshot folder."""
        p = self.paths
        p.root.mkdir(parents=True, exist_ok=True)
        if not (p.keys / "central.key_secret").exists():
            keys.generate(p.keys, "central")
        if not (p.keys / "demo-edge.key_secret").exists():
            public, _ = keys.generate(p.keys, "demo-edge")
            (p.keys / "allowed").mkdir(exist_ok=True)
            shutil.copy(public, p.keys / "allowed" / public.name)
        if not p.token.exists():
            keys.write_private(p.token, ("vt_" + secrets.token_urlsafe(32)).encode())
        if not p.operator_password.exists():
            keys.write_private(p.operator_password, secrets.token_urlsafe(12).encode())
        if p.snapshots.exists():
            shutil.rmtree(p.snapshots)
        p.snapshots.mkdir()
        p.central_yaml.write_text(yaml.safe_dump(self._central_config(), sort_keys=False))
        p.agent_yaml.write_text(yaml.safe_dump(self._agent_config(), sort_keys=False))
        self._load_wanted_list()

    def _load_wanted_list(self) -> None:
        """A wanted list as a registry exports it (Cyrillic), from plates the demo will show.

        Every other plate of the snapshot set is "stolen", so both hits and non-hits appear.
        """
        gt = (data_dir() / SNAPSHOT_SET / "ground_truth.csv").read_text().splitlines()[1:]
        plates = sorted({row.split(",")[1] for row in gt if row})[::2]
        rows = ["plate,category,priority,reason,case_ref,source"]
        rows += [
            f"{registry_form(p)},stolen,1,demo: reported stolen,DEMO-{i:04d},demo"
            for i, p in enumerate(plates, start=1)
        ]
        wanted = self.paths.root / "wanted.csv"
        wanted.write_text("\n".join(rows) + "\n")
        result = _varta(
            "central",
            "watchlist",
            "import",
            str(wanted),
            "--list",
            "demo-wanted",
            "--full",
            "--reason",
            "demo wanted list",
            "--config",
            str(self.paths.central_yaml),
        )
        if result.wait(timeout=120) != 0:
            raise RuntimeError("loading the demo wanted list failed; see the message above")

    def _central_config(self) -> dict[str, Any]:
        p = self.paths
        return {
            "ingest": {
                "bind": "tcp://127.0.0.1:7710",
                "server_secret_key": str(p.keys / "central.key_secret"),
                "allowed_agents_dir": str(p.keys / "allowed"),
            },
            "http": {"host": "127.0.0.1", "port": self.port},
            "storage": {"data_dir": str(p.root / "central")},
            "auth": {"bootstrap_token_file": str(p.token), "cookie_secure": False},
        }

    def _agent_config(self) -> dict[str, Any]:
        p = self.paths
        road = self.source or str(data_dir() / ROAD_VIDEO)
        cameras: list[dict[str, Any]] = [
            {
                "camera_id": "road-1",
                "name": "Street camera",
                "source": road,
                "kind": _kind_of(road),
                **({"loop": True} if _kind_of(road) == "file" else {}),
            },
            {
                "camera_id": "anpr-1",
                "name": "ANPR snapshot camera",
                "source": str(p.snapshots),
                "kind": "snapshots",
            },
        ]
        return {
            "agent_id": "demo-edge",
            "central": {
                "endpoint": "tcp://127.0.0.1:7710",
                "server_public_key": str(p.keys / "central.key"),
                "agent_secret_key": str(p.keys / "demo-edge.key_secret"),
            },
            "spool": {"dir": str(p.root / "spool")},
            "cameras": cameras,
        }

    def start(self) -> None:
        """Central first (it must be up to accept the agent), then the agent and feeder."""
        self.processes.append(_varta("central", "serve", "--config", str(self.paths.central_yaml)))
        if not _wait_http(f"{self.base}/api/v1/health", 60):
            raise RuntimeError("central did not come up; see its log above")
        self._console_user()
        self.processes.append(_varta("edge", "run", "--config", str(self.paths.agent_yaml)))
        threading.Thread(target=self._feed_snapshots, name="snapshot-feeder", daemon=True).start()

    def _console_user(self) -> None:
        """The operator account the console is tried with (kept when it exists already)."""
        token = self.paths.token.read_text().strip()
        if _get(f"{self.base}/api/v1/users/operator", token):
            return  # made by an earlier run
        body = {
            "username": "operator",
            "role": "operator",
            "password": self.paths.operator_password.read_text().strip(),
        }
        request = urllib.request.Request(
            f"{self.base}/api/v1/users",
            data=json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
            },
        )
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except urllib.error.URLError as err:
            raise RuntimeError(f"could not create the console user: {err}") from err

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _feed_snapshots(self) -> None:
        """Drop one plate photo every 3 s into the snapshot folder, as a camera would."""
        images = sorted((data_dir() / SNAPSHOT_SET / "images").glob("*.jpg"))
        for i, image in enumerate(images):
            if self.stop.wait(3.0 if i else 5.0):
                return
            tmp = self.paths.snapshots / f".{image.name}.part"
            shutil.copy(image, tmp)
            tmp.rename(self.paths.snapshots / f"{int(time.time() * 1000)}-{image.name}")

    def watch(self) -> int:
        """Print sightings as they arrive and a status line; return how many were seen."""
        seen: set[str] = set()
        started = time.monotonic()
        last_status = 0.0
        token = self.paths.token.read_text().strip()
        print(
            f"\nVarta demo: central at {self.base} (OpenAPI: {self.base}/schema). Ctrl-C stops.\n"
            "Police clients pull alerts (long-poll, cursor in 'next') like this:\n"
            f'  curl -H "Authorization: Bearer $(cat {self.paths.token})" '
            f'"{self.base}/api/v1/alerts?wait=30"\n'
            f"Operator console: {self.base}/console/ (user 'operator', password in "
            f"{self.paths.operator_password})\n"
        )
        cursor = ""
        while not self.stop.is_set():
            if self.seconds and time.monotonic() - started > self.seconds:
                break
            if any(proc.poll() is not None for proc in self.processes):
                print("a demo process exited; stopping", file=sys.stderr)
                break
            page = _get(f"{self.base}/api/v1/sightings?limit=50", token)
            for s in reversed(page.get("items", [])):
                if s["event_id"] not in seen:
                    seen.add(s["event_id"])
                    print(_sighting_line(s), flush=True)
            feed = _get(f"{self.base}/api/v1/alerts?limit=100&after={cursor}", token)
            for change in feed.get("items", []):
                print(_alert_line(change), flush=True)
            cursor = feed.get("next", cursor)
            if time.monotonic() - last_status > 5:
                last_status = time.monotonic()
                print(_status_line(_get(f"{self.base}/api/v1/agents", token)), flush=True)
            self.stop.wait(1.0)
        return len(seen)

    def shutdown(self) -> None:
        """SIGTERM the agent, then central; both stop cleanly."""
        self.stop.set()
        for proc in reversed(self.processes):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


def _kind_of(source: str) -> str:
    if source.startswith(("rtsp://", "rtsps://")):
        return "rtsp"
    if source.startswith(("http://", "https://")):
        return "http"
    if source.startswith("/dev/video") or source.isdigit():
        return "usb"
    return "snapshots" if Path(source).is_dir() else "file"


def _varta(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "from varta.cli import main; main()", *args], cwd=REPO_ROOT
    )


def _get(url: str, token: str = "") -> Any:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError) as err:
        log.debug("GET %s failed: %s", url, err)
        return {}


def _wait_http(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _get(url):
            return True
        time.sleep(0.3)
    return False


def _local_clock(value: str | float) -> str:
    """``HH:MM:SS`` local time of an API time (RFC 3339 since the API shows times so)."""
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value).astimezone().strftime("%H:%M:%S")
    return time.strftime("%H:%M:%S", time.localtime(value))


def _sighting_line(s: dict[str, Any]) -> str:
    when = _local_clock(s["captured_at"])
    plate = s.get("plate") or "-"
    conf = f" ({s['plate_confidence']:.2f})" if s.get("plate_confidence") else ""
    what = " ".join(x for x in (s.get("colour"), s.get("vehicle_type")) if x) or "vehicle"
    region = f" {s['plate_region']}" if s.get("plate_region") else ""
    return f"{when}  {s['camera_id']:<8} {plate:<10}{conf}{region}  {what}"


def _alert_line(change: dict[str, Any]) -> str:
    a = change["alert"]
    return (
        f"  ALERT #{a['alert_id']} [{change['change']}] P{a['priority']} {a['category']}: "
        f"{a['title']} ({a['sightings']} sighting(s), state {a['state']})"
    )


def _camera_state(online: bool | None) -> str:
    return "starting" if online is None else ("up" if online else "DOWN")


def _status_line(agents: Any) -> str:
    if not isinstance(agents, list) or not agents:
        return "[status] waiting for the edge agent to say hello..."
    parts = []
    for a in agents:
        cams = ", ".join(
            f"{c['camera_id']} {_camera_state(c['online'])} {c['fps_in']:.0f}/"
            f"{c['fps_out']:.0f} fps, {c['frames_dropped']} dropped"
            for c in a["cameras"]
        )
        parts.append(
            f"{a['agent_id']}: {a['health']}, spool {a['spool_depth']}, "
            f"{a['sightings_received']} sightings; {cams}"
        )
    return "[status] " + " | ".join(parts)


def run_demo(root: Path, port: int, source: str | None, seconds: float) -> int:
    """Run the demo until Ctrl-C/SIGTERM or ``seconds``; return the sightings shown."""
    demo = Demo(DemoPaths(root), port, source, seconds)
    demo.prepare()
    signal.signal(signal.SIGTERM, lambda *_: demo.stop.set())
    try:
        demo.start()
        return demo.watch()
    except KeyboardInterrupt:
        return 0
    finally:
        demo.shutdown()
