"""Edge pipeline benchmark: whole-pipeline frames/s at 1080p and 720p, decode included.

A street clip from the shared traffic-video set is re-encoded at 1920x1080 and 1280x720
(upscaled; no public 1080p road clip is in the set) into a temporary folder. Each run
plays it on ``cameras`` file cameras at once through the real ``CameraHub`` (one decode
thread per camera, as fast as decoded, no frame dropped) into one ``Pipeline`` with
motion gating on, at 1 and 2 inference threads (one inference stream, the agent's
default: on 2 cores two detector streams measured no faster and 20 MB larger). ``fps`` is
frames through the pipeline per wall-clock second; ``stage_ms`` the pipeline's own
milliseconds per frame by stage (decoding runs on the capture threads, in parallel);
``decode_ms`` is one thread decoding the clip alone. With ``realtime`` the cameras are
paced at the clip's frame rate and drop frames the pipeline does not take in time.

The box is shared: ``load_average`` at the start says how busy it was.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Sequence, Sized
from pathlib import Path
from typing import Any, Protocol

from shared.paths import data_dir

log = logging.getLogger(__name__)

SOURCE_CLIP = "traffic-video/videos/vehiclecounting__input_video.mp4"
RESOLUTIONS: dict[str, tuple[int, int]] = {"1080p": (1920, 1080), "720p": (1280, 720)}
TARGET_FPS_1080P = 100.0
TARGET_RSS_MB = 400.0


def make_clip(source: Path, dest: Path, size: tuple[int, int], frames: int) -> str:
    """Re-encode the first ``frames`` frames of ``source`` at ``size``; return the codec."""
    import cv2

    cap = cv2.VideoCapture(str(source))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    writer = None
    for codec in ("avc1", "mp4v"):
        writer = cv2.VideoWriter(str(dest), cv2.VideoWriter.fourcc(*codec), fps, size)
        if writer.isOpened():
            break
    if writer is None or not writer.isOpened():
        raise RuntimeError(f"no H.264 or MPEG-4 encoder available to write {dest}")
    written = 0
    while written < frames:
        ok, image = cap.read()
        if not ok:
            break
        writer.write(cv2.resize(image, size, interpolation=cv2.INTER_CUBIC))
        written += 1
    writer.release()
    cap.release()
    if written == 0:
        raise RuntimeError(f"could not read {source}")
    return codec


def decode_ms(clip: Path) -> float:
    """Milliseconds per frame to decode ``clip`` to BGR on one thread."""
    import cv2

    cap = cv2.VideoCapture(str(clip), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    count, start = 0, time.perf_counter()
    while cap.read()[0]:
        count += 1
    cap.release()
    return round((time.perf_counter() - start) * 1000 / max(count, 1), 2)


class SideStage(Protocol):
    """A stage that sees the same frames after the pipeline (the face stage): what it
    returns from ``process`` and ``flush`` is counted as its outputs."""

    def process(self, frames: list[Any]) -> Sized: ...

    def flush(self) -> Sized: ...


def run_once(
    pipeline: Any,
    clip: Path | Sequence[Path],
    cameras: int,
    label: str,
    realtime: bool,
    side: SideStage | None = None,
) -> dict[str, Any]:
    """Play ``clip`` on ``cameras`` cameras (or one listed clip per camera) through
    ``pipeline`` and then ``side``, if given; return their figures."""
    from edge_agent.capture import CameraConfig, CameraHub
    from edge_agent.pipeline import StageTimes

    clips = [clip] * cameras if isinstance(clip, Path) else list(clip)
    configs = [
        CameraConfig(camera_id=f"{label}-{i}", kind="file", source=str(c), realtime=realtime)
        for i, c in enumerate(clips)
    ]
    pipeline.times = StageTimes()
    hub = CameraHub(configs)
    hub.start()
    side_s, side_outputs = 0.0, 0
    start = time.perf_counter()
    try:
        while True:
            frames = hub.next_frames(timeout=1.0)
            if not frames and hub.finished:
                break
            pipeline.process(frames)
            if side is not None:
                t0 = time.perf_counter()
                side_outputs += len(side.process(frames))
                side_s += time.perf_counter() - t0
            frames.clear()  # hand the buffers back to the cameras' pools
        pipeline.flush()
        if side is not None:
            side_outputs += len(side.flush())
    finally:
        seconds = time.perf_counter() - start
        status = hub.status()
        hub.stop()
    times = pipeline.times
    figures: dict[str, Any] = {
        "fps": round(times.frames / seconds, 1),
        "frames": times.frames,
        "seconds": round(seconds, 2),
        "detected_share": round(times.detected / max(times.frames, 1), 3),
        "sightings": times.sightings,
        "frames_dropped": sum(s.frames_dropped for s in status),
        "stage_ms": times.per_frame(),
    }
    if side is not None:
        figures["side_ms_per_frame"] = side_s * 1000 / max(times.frames, 1)
        figures["side_outputs"] = side_outputs
    return figures


def build(store: Any, threads: int) -> Any:
    """A pipeline whose models run on ``threads`` CPU threads, one stream each."""
    from edge_agent.config import PipelineConfig
    from edge_agent.detect import VehicleDetectorConfig
    from edge_agent.openvino_model import InferenceConfig
    from edge_agent.pipeline import build_pipeline

    defaults = PipelineConfig()
    detector = VehicleDetectorConfig(
        **{
            **defaults.detector.model_dump(),
            "inference": InferenceConfig(threads=threads, streams=1),
        }
    )
    config = PipelineConfig(detector=detector, inference=InferenceConfig(threads=threads))
    return build_pipeline(store, config)


def _setting(
    models_dir: Path, threads: int, clips: dict[str, Path], cameras: int, realtime: bool
) -> tuple[list[dict[str, Any]], float]:
    """Every clip at one thread setting (in a fresh process); the runs and peak RSS in MB."""
    from models.store import ModelStore

    logging.basicConfig(level=logging.WARNING)
    pipeline = build(ModelStore(models_dir), threads)
    pipeline.warm_up(RESOLUTIONS["1080p"])
    runs = []
    for name, clip in clips.items():
        figures = run_once(pipeline, clip, cameras, f"{name}-t{threads}", realtime)
        runs.append({"resolution": name, "threads": threads, **figures})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return runs, round(peak, 1)


def run(
    models_dir: Path | None = None,
    frames: int = 240,
    cameras: int = 4,
    threads: Sequence[int] = (1, 2),
    realtime: bool = False,
) -> dict[str, Any]:
    """Benchmark the pipeline at every resolution and thread setting; return one object.

    Args:
        models_dir: Model store root (default: ``$VARTA_MODELS`` or ``var/models``).
        frames: Frames of the clip each camera plays.
        cameras: Cameras playing the clip at once.
        threads: Inference thread settings to try, each in its own process.
        realtime: Pace the cameras at the clip's frame rate (late frames drop).
    """
    from edge_agent.config import PipelineConfig
    from models.store import ModelStore, default_models_dir

    store = ModelStore(models_dir or default_models_dir())
    result: dict[str, Any] = {
        "clip": f"{SOURCE_CLIP} (upscaled)",
        "cameras": cameras,
        "frames_per_camera": frames,
        "max_detect_fps": PipelineConfig().max_detect_fps,
        "realtime": realtime,
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    tmp = Path(tempfile.mkdtemp(prefix="varta-bench-edge-"))
    try:
        clips = {}
        for name, size in RESOLUTIONS.items():
            clips[name] = tmp / f"road-{name}.mp4"
            result["codec"] = make_clip(data_dir() / SOURCE_CLIP, clips[name], size, frames)
            result[f"decode_ms_{name}"] = decode_ms(clips[name])
        runs: list[dict[str, Any]] = []
        rss: dict[str, float] = {}
        ctx = multiprocessing.get_context("spawn")
        for n in threads:
            # One process per setting: its peak RSS is what an agent so configured uses.
            with ctx.Pool(1) as pool:
                found, peak = pool.apply(_setting, (store.root, n, clips, cameras, realtime))
            runs += found
            rss[f"threads_{n}"] = peak
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name in RESOLUTIONS:
        best = max((r for r in runs if r["resolution"] == name), key=lambda r: r["fps"])
        result[f"fps_{name}"] = best["fps"]
        result[f"threads_{name}"] = best["threads"]
    result["peak_rss_mb"] = max(rss.values())
    result["peak_rss_mb_by_setting"] = rss
    result["target"] = {"fps_1080p": TARGET_FPS_1080P, "peak_rss_mb": TARGET_RSS_MB}
    result["meets_target"] = (
        result["fps_1080p"] >= TARGET_FPS_1080P and result["peak_rss_mb"] <= TARGET_RSS_MB
    )
    result["runs"] = runs
    return result
