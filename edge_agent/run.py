"""Running the edge pipeline: the agent loop (cameras -> pipeline -> spool) and file runs.

``run_agent`` is what ``varta edge run`` does: it builds the capture hub, the pipeline and
the ``EdgeAgent`` (spool + publisher), feeds every batch of fresh frames through the
pipeline, makes the finished sightings durable, prints a one-line status every
``status_interval_s`` seconds, and on SIGTERM/SIGINT flushes open tracks and stops.

``detect_paths`` is what ``varta edge detect`` does: the same pipeline over photos, photo
folders and video files, one :class:`~edge_agent.sightings.Emitted` at a time.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from edge_agent.config import AgentConfig

if TYPE_CHECKING:
    from edge_agent.app import EdgeAgent
    from edge_agent.capture import CameraHub, CapturedFrame
    from edge_agent.faces import FaceStage
    from edge_agent.pipeline import Pipeline
    from edge_agent.sightings import Emitted
    from shared import wire
    from shared.metrics import MetricsServer

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".ts", ".mpg"})
STILLS_CAMERA = "photos"


def run_agent(
    config: AgentConfig,
    models_dir: Path | None = None,
    stop: threading.Event | None = None,
    seconds: float = 0.0,
    status: TextIO = sys.stderr,
) -> int:
    """Run the agent until ``stop`` is set, SIGTERM/SIGINT, or ``seconds`` elapse.

    Args:
        config: The agent configuration (cameras, pipeline, central link, spool).
        models_dir: Model store root; default ``config.pipeline.models_dir`` or
            ``models.store.default_models_dir()``.
        stop: Set it to stop the agent (signals set it too, from the main thread).
        seconds: Stop after this long; 0 runs until stopped.
        status: Where the periodic status line goes.

    Returns:
        The number of sightings made durable in the spool.

    Raises:
        ModelMissing: a model is not in the store (the message names the pull command).
        ConfigError: ``metrics`` is enabled and its address cannot be bound.
    """
    from edge_agent.app import EdgeAgent
    from edge_agent.capture import CameraHub
    from edge_agent.clock import AgentClock
    from edge_agent.faces import build_face_stage
    from edge_agent.pipeline import build_pipeline
    from models.store import ModelStore, default_models_dir

    root = models_dir or config.pipeline.models_dir or default_models_dir()
    pipeline = build_pipeline(ModelStore(root), config.pipeline, config.cameras)
    # Every live frame, hence every sighting, is stamped by this clock (steps guarded).
    clock = AgentClock(config.clock.step_threshold_s, config.clock.step_confirm_s)
    faces = build_face_stage(ModelStore(root), config.cameras, clock=clock.now)
    hub = CameraHub(config.cameras, clock=clock.now)
    # Central fetches a matching face's crop from the stage's buffer; nothing else sends one.
    crops = faces.crop_jpeg if faces is not None else None
    agent = EdgeAgent(
        config, hub.cameras(), hub.stats, pipeline.model_versions, crops=crops, clock=clock
    )
    pipeline.warm_up()
    stop = stop if stop is not None else threading.Event()
    metrics = _serve_metrics(config, hub, pipeline, agent)
    restore = _on_signals(stop)
    agent.start()
    hub.start()
    try:
        total = _loop(config, pipeline, hub, agent, stop, seconds, status, faces)
    finally:
        if metrics is not None:
            metrics.close()
        flushed = _submit(agent, pipeline.flush())
        if faces is not None:
            _submit_faces(agent, faces.flush())
        log.info("stopping: %d open tracks flushed to the spool", flushed)
        hub.stop()
        agent.stop()
        restore()
    return total + flushed


def _serve_metrics(
    config: AgentConfig, hub: CameraHub, pipeline: Pipeline, agent: EdgeAgent
) -> MetricsServer | None:
    """Start the Prometheus listener when ``metrics.enabled`` (prometheus-client loads then)."""
    if not config.metrics.enabled:
        return None
    from edge_agent.metrics import EdgeCollector
    from shared.metrics import serve

    return serve(config.metrics, EdgeCollector(hub, pipeline, agent))


def _loop(
    config: AgentConfig,
    pipeline: Pipeline,
    hub: CameraHub,
    agent: EdgeAgent,
    stop: threading.Event,
    seconds: float,
    status: TextIO,
    faces: FaceStage | None = None,
) -> int:
    started = last_status = time.monotonic()
    total, ended = 0, False
    while not stop.is_set():
        now = time.monotonic()
        if seconds and now - started >= seconds:
            break
        frames = hub.next_frames(timeout=0.5)
        idle = not frames
        total += _submit(agent, pipeline.process(frames))
        if faces is not None:
            _submit_faces(agent, faces.process(frames))
        frames.clear()  # hand the buffers back to the cameras' pools before the next wait
        if idle and hub.finished and not ended:
            ended = True
            total += _submit(agent, pipeline.flush())
            if faces is not None:
                _submit_faces(agent, faces.flush())
            log.info("every camera has ended; sightings keep going out until stopped")
        if config.status_interval_s and now - last_status >= config.status_interval_s:
            last_status = now
            print(status_line(hub, pipeline, agent, total), file=status, flush=True)
        if ended:
            stop.wait(0.5)
    return total


def _submit_faces(agent: EdgeAgent, observations: Sequence[wire.FaceObservation]) -> None:
    """Spool face observations: embeddings only, never an image (crops stay on the edge)."""
    if observations:
        agent.submit([(obs, ()) for obs in observations])


def _submit(agent: EdgeAgent, emitted: Sequence[Emitted]) -> int:
    if emitted:
        agent.submit([(e.sighting, e.thumbnails) for e in emitted])
    else:
        agent.retry()  # sightings the disk refused go in once it takes them, idle or not
    return len(emitted)


def status_line(hub: CameraHub, pipeline: Pipeline, agent: EdgeAgent, sightings: int) -> str:
    """``status: <camera> in/out fps, dropped | ... | sightings N spool D``."""
    cams = " | ".join(
        f"{s.camera_id} {'up' if s.online else 'DOWN'} {s.fps_in:.1f}/{s.fps_out:.1f} fps "
        f"dropped {s.frames_dropped}"
        for s in hub.status()
    )
    depth = agent.spool.stats().depth
    ms = sum(pipeline.times.per_frame().values())
    line = f"status: {cams} | {ms:.1f} ms/frame | sightings {sightings} | spool {depth}"
    if agent.submits.held:
        line += f" | DISK FULL: {agent.submits.held} held in memory"
    return line


def _on_signals(stop: threading.Event) -> Callable[[], None]:
    """Make SIGTERM/SIGINT set ``stop``; return a function restoring the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum: int, _frame: Any) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        stop.set()

    for sig in old:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, previous in old.items():
            signal.signal(sig, previous)

    return restore


# -- files -----------------------------------------------------------------------------


class InputError(Exception):
    """An input path could not be read; the message says which and why."""


def expand_paths(paths: Sequence[Path], on_error: Callable[[str], None]) -> list[Path]:
    """Files to process: the given files, and the photos and videos inside given folders."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            media = sorted(
                p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES
            )
            if not media:
                on_error(f"{path}: folder holds no photos or videos")
            out += media
        elif path.exists():
            out.append(path)
        else:
            on_error(f"{path}: no such file or folder")
    return out


def detect_paths(
    pipeline: Pipeline, paths: Sequence[Path], on_error: Callable[[str], None]
) -> Iterator[Emitted]:
    """Sightings of every photo and video in ``paths``; unreadable inputs go to ``on_error``.

    Photos are stills (every vehicle and plate is a sighting); a video yields one sighting
    per tracked vehicle pass. ``pipeline.times.frames`` counts the frames read.
    """
    for n, path in enumerate(expand_paths(paths, on_error), start=1):
        try:
            if path.suffix.lower() in VIDEO_SUFFIXES:
                yield from _detect_video(pipeline, path, f"file-{n}")
            else:
                yield from pipeline.process_stills([_load_still(path)])
        except InputError as err:
            on_error(str(err))


def _load_still(path: Path) -> CapturedFrame:
    import cv2
    import numpy as np

    from edge_agent.capture import CapturedFrame

    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(f"{path}: not a photo or video (unknown suffix {path.suffix!r})")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise InputError(f"{path}: cannot read: {err}") from err
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError(f"{path}: not a readable image (corrupt or not an image)")
    frame = np.asarray(image, dtype=np.uint8)
    return CapturedFrame(STILLS_CAMERA, 0, os.path.getmtime(path), frame, str(path))


def _detect_video(pipeline: Pipeline, path: Path, camera_id: str) -> Iterator[Emitted]:
    import cv2

    from edge_agent.capture import CameraConfig, CameraHub

    probe = cv2.VideoCapture(str(path))
    readable = probe.isOpened() and probe.grab()
    probe.release()
    if not readable:
        raise InputError(f"{path}: not a readable video (corrupt, truncated or unknown codec)")
    camera = CameraConfig(camera_id=camera_id, kind="file", source=str(path), realtime=False)
    with CameraHub([camera]) as hub:
        while True:
            frames = hub.next_frames(timeout=1.0)
            if not frames and hub.finished:
                break
            yield from pipeline.process(frames)
            frames.clear()  # hand the buffers back to the camera's pool
    yield from pipeline.flush()


def sighting_record(emitted: Emitted) -> dict[str, Any]:
    """One sighting as the flat JSON object ``varta edge detect --json`` prints."""
    s = emitted.sighting
    plate, vehicle = s.plate, s.vehicle
    return {
        "source": emitted.source,
        "frame": emitted.frame,
        "camera_id": s.camera_id,
        "event_id": s.event_id,
        "captured_at": round(s.captured_at, 3),
        "plate": plate.text if plate else None,
        "plate_raw": plate.raw if plate else None,
        "plate_confidence": plate.confidence if plate else None,
        "candidates": [[c.text, c.confidence] for c in plate.candidates] if plate else [],
        "plate_format": plate.format if plate else None,
        "plate_region": plate.region if plate else None,
        "vehicle_type": vehicle.type or None if vehicle else None,
        "vehicle_type_confidence": vehicle.type_confidence if vehicle else None,
        "colour": vehicle.colour or None if vehicle else None,
        "colour_confidence": vehicle.colour_confidence if vehicle else None,
        "bbox": _rounded(vehicle.box) if vehicle else None,
        "plate_bbox": _rounded(plate.box) if plate and plate.box else None,
        "track_frames": s.track_frames,
        "track_seconds": s.track_seconds,
        "thumbnails": [t.role for t in s.thumbnails],
    }


def _rounded(box: Sequence[float]) -> list[float]:
    return [round(float(v), 1) for v in box]


def sighting_text(record: dict[str, Any]) -> str:
    """A one-line human-readable form of :func:`sighting_record`."""
    plate = f"{record['plate']} ({record['plate_confidence']:.2f})" if record["plate"] else "-"
    kind = " ".join(filter(None, [record["colour"], record["vehicle_type"]])) or "-"
    return f"{record['source']} frame {record['frame']}: plate {plate}, vehicle {kind}"
