"""The Ansible roles deploy for real: SSH into network-namespace hosts, then traffic flows.

One run, in order: ``site.yml`` deploys central and one edge agent (timed); a plate photo
dropped into the agent's snapshot camera becomes a sighting at central and, its plate
enrolled on a wanted list through the CLI, an alert; ``site.yml`` again changes nothing
(timed); a configuration the new version refuses leaves the agent as it was;
``edge.yml --limit`` upgrades the cluster to a new version, which delivers a sighting; with
central stopped the agent spools new sightings, the cluster is rolled back, and once
``central.yml`` has started central again every spooled sighting arrives.

systemd is not PID 1 here: the roles render and verify the units (``systemd-analyze
verify``) and supervise the processes with start-stop-daemon (``varta_supervisor:
pidfile``).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml

from edge_agent.cli import app as edge_app
from shared.paths import REPO_ROOT, data_dir, model_mirror
from shared.plates import registry_form
from tests.deploy.conftest import Dist, build_dist
from tests.deploy.netns import Host, HostNet, netns_available

ANSIBLE_DIR = REPO_ROOT / "ansible"
BIN = Path(sys.executable).parent
PLATES = "plates-ua-dev"


def _skip_reason() -> str:
    if not (BIN / "ansible-playbook").is_file():
        return "ansible-core is not installed (the dev group pins it)"
    return netns_available()


@pytest.fixture(scope="module")
def net() -> Iterator[HostNet]:
    """Two hosts (central-1, edge-1) and the controller; all removed even on failure."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    # Not under pytest's 0700 tmp: the service user must reach its directories.
    base = Path(tempfile.mkdtemp(prefix="varta-netns-"))
    base.chmod(0o755)
    testnet = HostNet(base)
    user = f"{testnet.tag}-svc"
    try:
        testnet.up(["central-1", "edge-1"])
        yield testnet
    finally:
        testnet.close()
        for command in (["userdel", user], ["groupdel", user]):
            subprocess.run(command, check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _edge_check_available() -> bool:
    """Whether this branch has ``varta edge check`` (built in parallel on another branch)."""
    return "check" in {command.name for command in edge_app.registered_commands}


def _inventory(net: HostNet, wheel: Path, wheelhouse: Path) -> Path:
    central, edge = net.hosts["central-1"], net.hosts["edge-1"]
    user = f"{net.tag}-svc"
    inventory = {
        "all": {
            "vars": {
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(net.ssh_key),
                "ansible_ssh_common_args": " ".join(net.ssh_options()[:-4]),
                "ansible_python_interpreter": "/usr/bin/python3",
                "varta_supervisor": "pidfile",
                "varta_user": user,
                "varta_group": user,
                # Hosts share /etc/passwd here, so the user's home cannot be per host.
                "varta_user_home": "/nonexistent",
                "varta_wheel": str(wheel),
                "varta_pip_find_links": str(wheelhouse),
                "varta_edge_models_mirror": str(model_mirror()),
                "varta_edge_check": _edge_check_available(),
            },
            "children": {
                "central": {
                    "hosts": {
                        "central-1": {
                            "ansible_host": central.address,
                            "varta_prefix": str(central.root),
                        }
                    }
                },
                "edge": {
                    "children": {
                        "cluster_test": {
                            "hosts": {
                                "edge-1": {
                                    "ansible_host": edge.address,
                                    "varta_prefix": str(edge.root),
                                    "varta_edge_cameras": [
                                        {
                                            "camera_id": "anpr-1",
                                            "kind": "snapshots",
                                            "source": str(_snapshots(edge)),
                                            "lat": 50.4501,
                                            "lon": 30.5234,
                                            "heading": 90,
                                            "label": "test gantry",
                                            # Photos dropped while the agent restarts count.
                                            "snapshots": {
                                                "after": "delete",
                                                "process_existing": True,
                                            },
                                        }
                                    ],
                                }
                            }
                        }
                    }
                },
            },
        }
    }
    path = net.base / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


def _snapshots(edge: Host) -> Path:
    return edge.root / "srv" / "snapshots" / "anpr-1"


def _playbook(
    net: HostNet, inventory: Path, playbook: str, *extra: str, fails: bool = False
) -> tuple[int, float, str]:
    """Run a playbook from the controller namespace; (changed tasks, seconds, output)."""
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "ANSIBLE_HOME": str(net.base / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(net.base / "ansible-tmp"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(net.base / "cp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "false",
        # Per-task times, for the slowest tasks printed with the measurements.
        "ANSIBLE_CALLBACKS_ENABLED": "junit",
        "JUNIT_OUTPUT_DIR": str(net.base / "junit" / playbook),
    }
    started = time.monotonic()
    done = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            net.ctl,
            BIN / "ansible-playbook",
            "-i",
            inventory,
            playbook,
            *extra,
        ],
        cwd=ANSIBLE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    seconds = time.monotonic() - started
    output = done.stdout + done.stderr
    (net.base / f"ansible-{int(started)}.log").write_text(output)
    assert (done.returncode != 0) == fails, output[-6000:]
    changed = sum(int(n) for n in re.findall(r"\bchanged=(\d+)", output))
    return changed, seconds, output


def _slowest(net: HostNet, playbook: str, count: int = 5) -> list[str]:
    """The slowest tasks of the latest run of ``playbook`` (from the junit callback)."""
    (report, *_) = sorted((net.base / "junit" / playbook).glob("*.xml"), key=os.path.getmtime)[::-1]
    cases = ElementTree.parse(report).getroot().iter("testcase")
    timed = sorted(((float(c.get("time", 0)), c.get("name", "")) for c in cases), reverse=True)
    return [f"{seconds:.1f}s {name}" for seconds, name in timed[:count]]


def _api(net: HostNet, path: str) -> Any:
    """GET central's REST API from the controller namespace, as an operator's client would."""
    token = (net.hosts["central-1"].root / "etc/varta/bootstrap.token").read_text().strip()
    url = f"http://{net.hosts['central-1'].address}:8000{path}"
    done = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            net.ctl,
            "curl",
            "-sfm5",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return json.loads(done.stdout) if done.returncode == 0 else None


def _wait(what: str, probe: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _photos(count: int, skip: int = 0) -> list[tuple[Path, str]]:
    """``count`` JPEG plate photos with their plates (the snapshot glob is ``*.jpg``)."""
    root = data_dir() / PLATES
    with (root / "ground_truth.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["file"].endswith(".jpg")]
    return [(root / r["file"], r["plate_text"]) for r in rows[skip : skip + count]]


def _drop(edge: Host, photo: Path) -> None:
    """Put a photo into the snapshot folder whole (written aside, then renamed in)."""
    folder = _snapshots(edge)
    tmp = folder / f".{photo.name}.part"
    shutil.copy(photo, tmp)
    tmp.rename(folder / f"{time.monotonic_ns()}-{photo.name}")


class _Feeder:
    """Drops a plate photo (none of them wanted) into the snapshot folder every second, as a
    camera at a road would, so the snapshot camera has frames whenever it is checked."""

    def __init__(self, edge: Host) -> None:
        self._edge = edge
        self._photos = [photo for photo, _plate in _photos(8, skip=8)]
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feeder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        index = 0
        while not self._done.wait(1.0):
            try:
                _drop(self._edge, self._photos[index % len(self._photos)])
            except OSError:  # the hosts' folders are being torn down
                return
            index += 1


def _sightings(net: HostNet) -> list[dict[str, Any]]:
    page = _api(net, "/api/v1/sightings?limit=1000")
    return [] if page is None else page.get("items", [])


def _agent_version(net: HostNet) -> str:
    """The software version edge-1's heartbeats report to central."""
    agents = _api(net, "/api/v1/agents") or {}
    items = agents.get("items", agents) if isinstance(agents, dict) else agents
    return next((a["software_version"] for a in items if a["agent_id"] == "edge-1"), "")


def _spool_bytes(edge: Host) -> int:
    spool = edge.root / "var/lib/varta/spool"
    return sum(f.stat().st_size for f in spool.rglob("*") if f.is_file())


def _running_venv(host: Host, component: str) -> str:
    """The venv the supervised process runs from (its interpreter's path)."""
    pidfile = host.root / f"run/varta/varta-{component}.pid"
    pid = pidfile.read_text().strip()
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()


def _stop(host: Host, component: str) -> None:
    pidfile = host.root / f"run/varta/varta-{component}.pid"
    subprocess.run(
        [
            "start-stop-daemon",
            "--stop",
            "--retry",
            "TERM/30/KILL/5",
            "--remove-pidfile",
            "--pidfile",
            pidfile,
        ],
        check=True,
    )


def _new_version(tmp: Path, version: str) -> Dist:
    """The same tree with another version number: what an upgrade ships."""
    source = tmp / "src"
    shutil.copytree(
        REPO_ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "var", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"
        ),
    )
    pyproject = source / "pyproject.toml"
    pyproject.write_text(
        re.sub(r'^version = ".*"$', f'version = "{version}"', pyproject.read_text(), flags=re.M)
    )
    return build_dist(source, tmp / "dist")


def _check_first_deployment(net: HostNet, output: str) -> None:
    """Units verified, keys where they belong, no web stack on the edge, map from inventory."""
    central, edge = net.hosts["central-1"], net.hosts["edge-1"]
    assert shutil.which("systemd-analyze") is None or "Render the systemd unit, verified" in output
    if _edge_check_available():  # the role's `varta edge check` ran and passed
        assert re.search(r"Run varta edge check[^\n]*\n(?:[^\n]*\n)??ok: \[edge-1\]", output)
    assert (edge.root / "etc/systemd/system/varta-edge.service").is_file()
    assert (central.root / "etc/varta/allowed_agents/edge-1.key").is_file()
    secret = edge.root / "etc/varta/keys/edge-1.key_secret"
    assert secret.stat().st_mode & 0o077 == 0
    assert not (central.root / "etc/varta/keys/edge-1.key_secret").exists()
    assert not (edge.root / "etc/varta/keys/central.key_secret").exists()
    assert (edge.root / "etc/varta/keys/central.key").is_file()
    installed = edge.run(
        f"{edge.root}/opt/varta/current-edge/bin/python",
        "-c",
        "import importlib.util as u;"
        "print([m for m in ('litestar', 'duckdb', 'uvicorn') if u.find_spec(m)])",
    )
    assert installed.strip() == "[]"  # an edge box has no web stack
    places = yaml.safe_load((central.root / "etc/varta/central.yaml").read_text())["cameras"]
    assert places == [
        {"id": "anpr-1", "lat": 50.4501, "lon": 30.5234, "heading": 90, "label": "test gantry"}
    ]
    _wait("central's health", lambda: _api(net, "/api/v1/health"), 60)


def _wanted_plate_raises_an_alert(net: HostNet) -> None:
    """A wanted plate enrolled through the CLI, its photo at the camera: sighting and alert."""
    central, edge = net.hosts["central-1"], net.hosts["edge-1"]
    (photo, plate), *_ = _photos(1)
    wanted = central.root / "wanted.csv"
    wanted.write_text(
        "plate,category,priority,reason,case_ref,source\n"
        f"{registry_form(plate)},stolen,1,deployment test,DEPLOY-1,test\n"
    )
    central.run(
        f"{central.root}/opt/varta/current-central/bin/varta",
        "central",
        "watchlist",
        "import",
        str(wanted),
        "--list",
        "deploy-test",
        "--reason",
        "deployment test",
        "--central",
        "http://127.0.0.1:8000",
        "--token-file",
        str(central.root / "etc/varta/bootstrap.token"),
    )
    _wait("the agent at central", lambda: "edge-1" in json.dumps(_api(net, "/api/v1/agents")), 60)
    _drop(edge, photo)
    _wait(
        f"a sighting of {plate}",
        lambda: [s for s in _sightings(net) if s["plate"] == plate and s["agent_id"] == "edge-1"],
        120,
    )
    alerts = _wait(
        f"an alert for {plate}",
        lambda: [
            c
            for c in (_api(net, "/api/v1/alerts?limit=100") or {}).get("items", [])
            if c["alert"]["category"] == "stolen"
        ],
        60,
    )
    assert alerts[0]["alert"]["priority"] == 1


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_deploy_alert_rerun_upgrade_rollback(
    net: HostNet, dist: Dist, wheelhouse: Path, tmp_path: Path
) -> None:
    central, edge = net.hosts["central-1"], net.hosts["edge-1"]
    _snapshots(edge).mkdir(parents=True)
    _snapshots(edge).chmod(0o777)  # an upload folder the agent may delete from
    inventory = _inventory(net, dist.wheel, wheelhouse)
    feeder = _Feeder(edge)  # `varta edge check` wants a frame from every camera
    feeder.start()

    # 1. First deployment; 2. a sighting and an alert.
    changed, first_s, output = _playbook(net, inventory, "site.yml")
    assert changed > 20
    _check_first_deployment(net, output)
    _wanted_plate_raises_an_alert(net)

    # 3. The same run again changes nothing.
    changed, rerun_s, output = _playbook(net, inventory, "site.yml")
    assert changed == 0, output[-4000:]
    rerun_slowest = _slowest(net, "site.yml")

    # A configuration the new version refuses never replaces the running one.
    agent_yaml = edge.root / "etc/varta/agent.yaml"
    running, config_before = _running_venv(edge, "edge"), agent_yaml.read_text()
    bad = json.dumps({"varta_edge_extra_config": {"spool": {"max_bytes": 5}}})
    _, _, output = _playbook(net, inventory, "edge.yml", "-e", bad, fails=True)
    assert "check-config" in output and "max_bytes" in output
    assert agent_yaml.read_text() == config_before
    assert _running_venv(edge, "edge") == running

    # 4. Upgrade one cluster (checked by `varta edge check` where this branch has it); the
    # new version delivers a sighting.
    old_venv = _running_venv(edge, "edge")
    new = _new_version(tmp_path, "0.1.1")
    changed, upgrade_s, _ = _playbook(
        net, inventory, "edge.yml", "--limit", "cluster_test", "-e", f"varta_wheel={new.wheel}"
    )
    assert changed > 0
    assert "varta-0.1.1" in _running_venv(edge, "edge")
    _wait("0.1.1 reporting to central", lambda: _agent_version(net) == "0.1.1", 120)
    (photo, plate), *_ = _photos(1, skip=1)
    _drop(edge, photo)
    _wait(
        f"a sighting of {plate} from 0.1.1",
        lambda: plate in {s["plate"] for s in _sightings(net)},
        120,
    )

    # 5. Central down: the agent spools; roll the cluster back; nothing spooled is lost.
    feeder.stop()
    _stop(central, "central")
    before = _spool_bytes(edge)
    spooled = _photos(3, skip=2)
    for extra_photo, _plate in spooled:
        _drop(edge, extra_photo)
    _wait("sightings in the spool", lambda: _spool_bytes(edge) > before, 120)
    time.sleep(3)  # the remaining photos of the batch
    changed, rollback_s, output = _playbook(
        net,
        inventory,
        "edge.yml",
        "--limit",
        "cluster_test",
        "-e",
        f"varta_wheel={dist.wheel}",
        "-e",
        "varta_edge_check=false",  # central is down on purpose
    )
    assert _running_venv(edge, "edge") == old_venv
    assert "Install Varta with the role's extra only" not in _changed_tasks(output)
    venvs = sorted(p.name for p in (edge.root / "opt/varta/venvs").iterdir())
    assert [v.split("-")[2] for v in venvs] == ["0.1.0", "0.1.1"]
    assert not (central.root / "run/varta/varta-central.pid").exists()  # central untouched

    # Central back (the playbook starts what is stopped): the spooled sightings arrive.
    changed, _, _ = _playbook(net, inventory, "central.yml")
    assert changed == 1
    plates = {p for _photo, p in spooled}
    _wait(
        "the spooled sightings at central",
        lambda: plates <= {s["plate"] for s in _sightings(net)},
        120,
    )
    timings = {
        "first_deploy_s": round(first_s, 1),
        "no_change_rerun_s": round(rerun_s, 1),
        "upgrade_one_cluster_s": round(upgrade_s, 1),
        "rollback_s": round(rollback_s, 1),
        "wheel_bytes": dist.wheel.stat().st_size,
    }
    print(json.dumps(timings))
    print("slowest tasks of the re-run:", *rerun_slowest, sep="\n  ")


def _changed_tasks(output: str) -> str:
    """The TASK headers of the tasks that reported ``changed``."""
    names, current = [], ""
    for line in output.splitlines():
        if line.startswith("TASK ["):
            current = line
        elif line.startswith("changed:"):
            names.append(current)
    return "\n".join(names)


def test_ansible_lint_is_clean(tmp_path: Path) -> None:
    if not (BIN / "ansible-lint").is_file():
        pytest.skip("ansible-lint is not installed (the dev group pins it)")
    done = subprocess.run(
        [str(BIN / "ansible-lint"), "--offline", "--nocolor"],
        cwd=ANSIBLE_DIR,
        env={**os.environ, "ANSIBLE_HOME": str(tmp_path), "PATH": f"{BIN}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
