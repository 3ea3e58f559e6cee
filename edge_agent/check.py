"""``varta edge check``: is this box ready to run its agent? One row per question.

Run by engineers on site and by the Ansible role after a deploy. Each check does the real
thing the agent would do, briefly: models are sha256-verified, each camera is opened and
one frame is read and run through the vehicle detector, central is reached over CURVE and
answers a real hello, and the spool directory takes a synced write with room to spare.

How the central link tells its failures apart (read from the ZeroMQ socket monitor):

* no TCP connection at all: nothing listens at the endpoint (central down, firewall);
* connected, then ``HANDSHAKE_FAILED_AUTH``: central's authenticator refused this agent's
  public key (it is not in the allow-list directory);
* connected, then dropped without a handshake: the CURVE handshake failed, most likely
  ``central.server_public_key`` is not central's key;
* handshake done but no ack of the hello: the key is allow-listed under another agent id.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent.config import AgentConfig
from shared import wire
from shared.checks import CheckResult, fail, guarded, ok, warn
from shared.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from edge_agent.capture import CameraConfig
    from edge_agent.detect import Detector
    from models.store import ModelStore

_PROBE_BYTES = 64 << 10


def run_checks(
    config: AgentConfig,
    models_dir: Path | None = None,
    camera_timeout: float = 10.0,
    link_timeout: float = 5.0,
) -> list[CheckResult]:
    """Every check of the edge box, in the order an engineer would fix them."""
    from models.store import ModelStore, default_models_dir

    store = ModelStore(models_dir or config.pipeline.models_dir or default_models_dir())
    results = guarded("models", lambda: check_models(config, store))
    detector = None
    if all(r.status == "ok" for r in results):
        detector = _load_detector(config, store, results)
    results += guarded("cameras", lambda: check_cameras(config, detector, camera_timeout))
    results += guarded("central link", lambda: check_central(config, link_timeout))
    results += guarded("spool", lambda: check_spool(config))
    return results


def required(config: AgentConfig) -> list[tuple[str, str | None]]:
    """Every ``(model, precision)`` the agent loads with this configuration."""
    from edge_agent.face_models import EMBEDDING_MODEL, LANDMARKS_MODEL
    from edge_agent.pipeline import required_models

    models = required_models(config.pipeline)
    for camera in config.cameras:
        if camera.faces.enabled:
            models += [(camera.faces.detector, None), (LANDMARKS_MODEL, None)]
            models += [(EMBEDDING_MODEL, None)]
    return list(dict.fromkeys(models))


def check_models(config: AgentConfig, store: ModelStore) -> list[CheckResult]:
    """Each model present and matching the manifest's sha256."""
    from models.store import pull_command

    problems = []
    wanted = required(config)
    for name, precision in wanted:
        try:
            store.path(name, precision)
        except ModelError as err:
            # The store's messages are "<what is wrong>; <how to fix it>".
            what, _, how = str(err).partition("; ")
            fix = how or f"run `{pull_command(store.root)} --model {name}`"
            problems.append(fail(f"model {name}", what, fix))
    if problems:
        return problems
    return [ok("models", f"{len(wanted)} models sha256-verified in {store.root}")]


def _load_detector(
    config: AgentConfig, store: ModelStore, results: list[CheckResult]
) -> Detector | None:
    from edge_agent.detect import OpenVINOVehicleDetector

    try:
        return OpenVINOVehicleDetector(store, config.pipeline.detector)
    except Exception as err:  # a model that verifies but does not load is this row's failure
        results.append(
            fail("vehicle detector", f"cannot load: {err}", "reinstall the models or OpenVINO")
        )
        return None


def check_cameras(
    config: AgentConfig, detector: Detector | None, timeout: float
) -> list[CheckResult]:
    """Each camera opened and one frame read (and run through the vehicle detector)."""
    if not config.cameras:
        return [fail("cameras", "no cameras configured", "add a 'cameras:' list to the config")]
    return [_check_camera(camera, detector, timeout) for camera in config.cameras]


def _check_camera(camera: CameraConfig, detector: Detector | None, timeout: float) -> CheckResult:
    from edge_agent.capture import CameraHub

    name = f"camera {camera.camera_id}"
    if camera.kind == "snapshots":
        # A check changes nothing: it leaves every photo where it is (the running agent
        # deletes or moves them), a photo already waiting counts as a frame, and it scans
        # ten times as often as the agent so a new photo is read before the agent takes it.
        snapshots = camera.snapshots.model_copy(
            update={
                "after": "keep",
                "move_to": None,
                "process_existing": True,
                "poll_s": min(camera.snapshots.poll_s / 10, 0.02),
            }
        )
        camera = camera.model_copy(update={"snapshots": snapshots})
    started = time.monotonic()
    hub = CameraHub([camera])
    hub.start()
    try:
        frames = hub.next_frames(timeout=timeout)
        status = hub.status()[0]
    finally:
        hub.stop()
    if not frames:
        why = status.error or "no frame arrived"
        fix = f"check that the {camera.kind} source is reachable from this box and streams"
        if camera.kind == "snapshots":
            fix = "check that the camera uploads snapshots into the folder"
        return fail(name, f"no frame within {timeout:g} s: {why}", fix)
    image = frames[0].image
    read_ms = (time.monotonic() - started) * 1000
    detail = f"frame {image.shape[1]}x{image.shape[0]} read in {read_ms:.0f} ms"
    if detector is None:
        return warn(name, detail + "; not inferred (the detector did not load)", "fix the models")
    began = time.perf_counter()
    found = detector.detect(image)
    infer_ms = (time.perf_counter() - began) * 1000
    return ok(name, f"{detail}; detector: {len(found)} vehicles in {infer_ms:.0f} ms")


def check_central(config: AgentConfig, timeout: float) -> list[CheckResult]:
    """Central reached over CURVE, this agent's key accepted and a hello acknowledged."""
    from shared import keys

    c = config.central
    try:
        server_key = keys.load_public(c.server_public_key)
        pair = keys.load_pair(c.agent_secret_key)
    except ConfigError as err:
        return [
            fail(
                "agent keys",
                str(err),
                f"`varta keys gen {config.agent_id}` and copy central's central.key to "
                f"{c.server_public_key}",
            )
        ]
    outcome, detail = _handshake(config, server_key, pair, timeout)
    public = pair.public.decode()
    allow = (
        f"add this agent's public key {c.agent_secret_key.with_suffix('.key')} "
        f"({public}) to central's allow-list as {config.agent_id}.key"
    )
    fixes = {
        "unreachable": f"start central or open the route/firewall to {c.endpoint}",
        "refused": allow,
        "handshake": f"central.server_public_key ({c.server_public_key}) must be central's "
        "public key (central.key)",
        "silent": f"the key is allow-listed under another name: rename it on central to "
        f"{config.agent_id}.key, or set agent_id to that name",
    }
    if outcome == "ok":
        return [ok("central link", detail)]
    return [fail("central link", detail, fixes[outcome])]


def _handshake(
    config: AgentConfig, server_key: bytes, pair: Any, timeout: float
) -> tuple[str, str]:
    """``(outcome, detail)``; outcome is ok, unreachable, refused, handshake or silent."""
    import zmq

    endpoint = config.central.endpoint
    ctx: zmq.Context[Any] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.curve_serverkey, sock.curve_publickey = server_key, pair.public
    sock.curve_secretkey = pair.secret
    sock.setsockopt(zmq.LINGER, 0)
    monitor = sock.get_monitor_socket()
    started = time.monotonic()
    try:
        try:
            sock.connect(endpoint)
        except zmq.ZMQError as err:
            return "unreachable", f"{endpoint}: cannot connect: {err}"
        events = _events_until_handshake(monitor, started + timeout)
        if zmq.EVENT_HANDSHAKE_SUCCEEDED not in events:
            return _handshake_failure(events, endpoint, timeout)
        msg_id = int(time.time() * 1000)
        sock.send_multipart([wire.encode(_hello(config, msg_id))])
        ack = _await_ack(sock, msg_id, started + timeout)
    finally:
        sock.disable_monitor()
        monitor.close(0)
        sock.close(0)
        ctx.term()
    ms = (time.monotonic() - started) * 1000
    if ack is None:
        return "silent", (
            f"central took the key but did not acknowledge a hello from {config.agent_id!r} "
            f"within {timeout:g} s"
        )
    if ack.status != "ok":
        return "silent", f"central answered the hello with {ack.status}: {ack.error}"
    return "ok", f"{endpoint}: key accepted, hello acknowledged in {ms:.0f} ms"


def _events_until_handshake(monitor: Any, deadline: float) -> set[int]:
    """Monitor events seen until the handshake succeeded or failed, or ``deadline``."""
    import zmq
    from zmq.utils.monitor import recv_monitor_message

    done = {
        zmq.EVENT_HANDSHAKE_SUCCEEDED,
        zmq.EVENT_HANDSHAKE_FAILED_AUTH,
        zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
        zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
    }
    events: set[int] = set()
    while (left := deadline - time.monotonic()) > 0:
        if not monitor.poll(int(left * 1000) + 1):
            break
        event = int(recv_monitor_message(monitor)["event"])
        events.add(event)
        if event in done or (zmq.EVENT_CONNECTED in events and event == zmq.EVENT_DISCONNECTED):
            break
    return events


def _handshake_failure(events: set[int], endpoint: str, timeout: float) -> tuple[str, str]:
    import zmq

    if zmq.EVENT_HANDSHAKE_FAILED_AUTH in events:
        return "refused", f"{endpoint}: central refused this agent's key (not allow-listed)"
    if zmq.EVENT_CONNECTED not in events:
        return "unreachable", f"{endpoint}: no connection within {timeout:g} s (nothing listens)"
    return "handshake", (
        f"{endpoint}: connected, but the CURVE handshake failed (wrong server key, or not "
        "central at this address)"
    )


def _hello(config: AgentConfig, msg_id: int) -> wire.AgentHello:
    from edge_agent.app import software_version

    return wire.AgentHello(
        agent_id=config.agent_id,
        software_version=software_version(),
        cameras=[c.info() for c in config.cameras],
        started_at=time.time(),
        msg_id=msg_id,
    )


def _await_ack(sock: Any, ref: int, deadline: float) -> wire.Ack | None:
    while (left := deadline - time.monotonic()) > 0:
        if not sock.poll(int(left * 1000) + 1):
            return None
        try:
            msg = wire.decode(sock.recv_multipart()[0])
        except wire.WireError:
            continue
        if isinstance(msg, wire.Ack) and msg.ref == ref:
            return msg
    return None


def check_spool(config: AgentConfig) -> list[CheckResult]:
    """The spool directory takes a synced write, with at least ``min_free_mb`` free."""
    directory = config.spool.dir
    minimum = config.spool.min_free_mb << 20
    probe = directory / f".varta-check-{os.getpid()}"
    fix_space = f"free space on the file system of {directory}, or move spool.dir"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _write_synced(probe, b"\0" * _PROBE_BYTES)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            return [fail("spool", f"{directory}: disk full ({err.strerror})", fix_space)]
        fix = f"make {directory} writable by the agent's user"
        return [fail("spool", f"{directory}: cannot write: {err}", fix)]
    finally:
        probe.unlink(missing_ok=True)
    st = os.statvfs(directory)
    free = st.f_bavail * st.f_frsize
    detail = f"{directory}: writable, {free >> 20} MiB free (minimum {minimum >> 20} MiB)"
    if free < minimum:
        return [fail("spool", detail, fix_space)]
    return [ok("spool", detail)]


def _write_synced(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
