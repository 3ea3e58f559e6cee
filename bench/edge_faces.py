"""Edge pipeline benchmark with face cameras: ``varta bench edge --face-cameras N``.

Like ``bench.edge`` (four file cameras through the real ``CameraHub`` and ``Pipeline``,
decode included), but the first ``face_cameras`` cameras play a clip with faces (the
faces-dev Hamilton clip, upscaled like the road clip) and have ``faces.enabled``: their
frames also go through the face stage (detection at ``detect_fps`` of media time,
landmarks, alignment, embedding, tracking). The same setting runs without faces, in its
own process, as the baseline: ``fps_ratio_faces`` is fps with faces over fps without,
both medians of ``repeat`` runs in one process; each variant's peak RSS is its own
process's. The box is shared and noisy: compare the ratio, not absolute numbers across runs.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.edge import RESOLUTIONS, SOURCE_CLIP, TARGET_FPS_1080P, build, make_clip
from shared.paths import data_dir

FACE_CLIP = "faces-dev/videos/short_hamilton_clip.mp4"


def _play(pipeline: Any, faces: Any, clips: list[Path], label: str) -> dict[str, Any]:
    """Play one clip per camera through the pipeline (and the face stage); figures."""
    from bench.edge import run_once

    figures = run_once(pipeline, clips, len(clips), label, realtime=False, side=faces)
    return {
        "fps": figures["fps"],
        "face_ms_per_frame": figures.get("side_ms_per_frame", 0.0),
        "face_observations": figures.get("side_outputs", 0),
    }


def _variant(
    models_dir: Path,
    threads: int,
    clips: dict[str, list[Path]],
    face_cameras: int,
    with_faces: bool,
    detect_fps: float,
    repeat: int,
) -> dict[str, Any]:
    """One process: every resolution ``repeat`` times; median figures and peak RSS."""
    from edge_agent.capture import CameraConfig
    from edge_agent.face_config import FacesConfig
    from edge_agent.faces import FaceStage, build_face_stage
    from models.store import ModelStore

    logging.basicConfig(level=logging.WARNING)
    store = ModelStore(models_dir)
    pipeline = build(store, threads)
    pipeline.warm_up(RESOLUTIONS["1080p"])
    out: dict[str, Any] = {}
    for name, paths in clips.items():
        runs = []
        for r in range(repeat):
            label = f"{name}-t{threads}-r{r}"
            faces: FaceStage | None = None
            if with_faces:
                cfg = FacesConfig(enabled=True, detect_fps=detect_fps)
                cams = [
                    CameraConfig(camera_id=f"{label}-{i}", kind="file", source=str(p), faces=cfg)
                    for i, p in enumerate(paths[:face_cameras])
                ]
                faces = build_face_stage(store, cams)
            runs.append(_play(pipeline, faces, paths, label))
        out[name] = {
            "fps": round(statistics.median(r["fps"] for r in runs), 1),
            "fps_runs": [round(r["fps"], 1) for r in runs],
            "face_ms_per_frame": round(statistics.median(r["face_ms_per_frame"] for r in runs), 2),
            "face_observations": runs[0]["face_observations"],
        }
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def run(
    models_dir: Path | None = None,
    frames: int = 240,
    cameras: int = 4,
    threads: int = 2,
    face_cameras: int = 1,
    detect_fps: float = 5.0,
    repeat: int = 3,
) -> dict[str, Any]:
    """fps at 1080p and 720p with ``face_cameras`` face cameras, and without faces."""
    from models.store import ModelStore, default_models_dir

    if not 0 < face_cameras <= cameras:
        raise ValueError(f"face_cameras must be 1..{cameras}, got {face_cameras}")
    store = ModelStore(models_dir or default_models_dir())
    result: dict[str, Any] = {
        "clip": f"{SOURCE_CLIP} (upscaled)",
        "face_clip": f"{FACE_CLIP} (upscaled)",
        "cameras": cameras,
        "face_cameras": face_cameras,
        "face_detect_fps": detect_fps,
        "frames_per_camera": frames,
        "threads": threads,
        "repeat": repeat,
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    tmp = Path(tempfile.mkdtemp(prefix="varta-bench-edge-faces-"))
    try:
        clips: dict[str, list[Path]] = {}
        for name, size in RESOLUTIONS.items():
            road, face = tmp / f"road-{name}.mp4", tmp / f"faces-{name}.mp4"
            make_clip(data_dir() / SOURCE_CLIP, road, size, frames)
            make_clip(data_dir() / FACE_CLIP, face, size, frames)
            clips[name] = [face] * face_cameras + [road] * (cameras - face_cameras)
        ctx = multiprocessing.get_context("spawn")
        found = {}
        for with_faces in (False, True):
            with ctx.Pool(1) as pool:
                found[with_faces] = pool.apply(
                    _variant,
                    (store.root, threads, clips, face_cameras, with_faces, detect_fps, repeat),
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    on, off = found[True], found[False]
    for name in RESOLUTIONS:
        result[f"fps_{name}"] = on[name]["fps"]
        result[f"fps_{name}_no_faces"] = off[name]["fps"]
        result[f"fps_ratio_faces_{name}"] = round(on[name]["fps"] / max(off[name]["fps"], 1e-9), 3)
        result[f"face_ms_per_frame_{name}"] = on[name]["face_ms_per_frame"]
        result[f"face_observations_{name}"] = on[name]["face_observations"]
        result[f"runs_{name}"] = {"faces": on[name]["fps_runs"], "no_faces": off[name]["fps_runs"]}
    result["peak_rss_mb"] = on["peak_rss_mb"]
    result["peak_rss_mb_no_faces"] = off["peak_rss_mb"]
    result["target"] = {"fps_1080p": TARGET_FPS_1080P}
    result["meets_target"] = result["fps_1080p"] >= TARGET_FPS_1080P
    return result
