"""The edge face stage: faces tracked across frames, one ``FaceObservation`` per track.

For every camera whose ``faces.enabled`` is set, frames (at most ``detect_fps`` a second)
go through :class:`~edge_agent.face_analysis.FaceAnalyser`. Faces are tracked by box
overlap (greedy IoU, as small and cheap as the faces are few); every track keeps its best
face by quality. When a track ends (unseen for ``track_timeout_s``) or grows older than
``track_max_age_s``, it yields one :class:`shared.wire.FaceObservation`: the best face's
embedding as float16, its quality, box, camera and time, under a fresh event id (the
observation id). The JPEG crop of that face goes to the edge-only
:class:`~edge_agent.face_crops.FaceCropStore` under the same id; the observation carries
no image. Tracks whose faces never passed the quality gate send nothing.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from edge_agent.face_analysis import FaceAnalyser, FaceSample
from edge_agent.face_config import FacesConfig
from edge_agent.face_crops import FaceCropStore
from edge_agent.face_models import EMBEDDING_MODEL, FaceModels, grow_box
from edge_agent.openvino_model import Image
from shared import wire

if TYPE_CHECKING:
    from edge_agent.capture import CameraConfig
    from edge_agent.sources.base import CapturedFrame
    from models.store import ModelStore

CROP_BOX_SCALE = 1.4  # the crop shows some hair and chin around the detector box


@dataclass
class _Best:
    sample: FaceSample
    captured_at: float
    crop: bytes


@dataclass
class FaceTrack:
    """One face followed across frames."""

    track_id: int
    box: NDArray[np.float32]
    started_at: float
    last_seen: float
    frames: int = 0
    best: _Best | None = None

    def offer(self, sample: FaceSample, at: float, crop: Image, jpeg_quality: int) -> None:
        """Take ``sample`` as the track's face if it passed the gate and beats the best."""
        self.box, self.last_seen, self.frames = sample.box, at, self.frames + 1
        if sample.embedding is None:
            return
        if self.best is not None and sample.quality <= self.best.sample.quality:
            return
        self.best = _Best(sample, at, encode_jpeg(crop, jpeg_quality))


def iou(a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
    """Intersection over union of two x1, y1, x2, y2 boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = float(w * h)
    union = float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])) - inter
    return inter / union if union > 0 else 0.0


def encode_jpeg(image: Image, quality: int) -> bytes:
    """``image`` as JPEG bytes."""
    import cv2

    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"could not encode a {image.shape} crop as JPEG")
    return bytes(data)


@dataclass
class FaceTracker:
    """Greedy IoU tracking of the faces of one camera; emits finished tracks."""

    config: FacesConfig
    tracks: list[FaceTrack] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def update(self, image: Image, samples: Iterable[FaceSample], at: float) -> list[FaceTrack]:
        """Add one frame's faces; return the tracks that ended or aged out."""
        free = list(self.tracks)
        for sample in samples:
            scored = [(iou(t.box, sample.box), t) for t in free]
            overlap, track = max(scored, key=lambda p: p[0], default=(0.0, None))
            if track is None or overlap < self.config.track_iou:
                track = FaceTrack(next(self._ids), sample.box, at, at)
                self.tracks.append(track)
            else:
                free.remove(track)
            track.offer(sample, at, self._crop(image, sample.box), self.config.crops.quality)
        return self.reap(at)

    def reap(self, now: float | None = None) -> list[FaceTrack]:
        """Remove and return the tracks unseen for the timeout or older than the max age
        (all of them when ``now`` is None)."""
        done = [
            t
            for t in self.tracks
            if now is None
            or now - t.last_seen > self.config.track_timeout_s
            or now - t.started_at >= self.config.track_max_age_s
        ]
        self.tracks = [t for t in self.tracks if t not in done]
        return done

    def _crop(self, image: Image, box: NDArray[np.float32]) -> Image:
        import cv2

        height, width = image.shape[:2]
        x1, y1, x2, y2 = grow_box(box, CROP_BOX_SCALE, width, height)
        crop = image[y1:y2, x1:x2]
        limit = self.config.crops.width
        if crop.shape[1] > limit:
            size = (limit, max(1, round(crop.shape[0] * limit / crop.shape[1])))
            crop = np.asarray(cv2.resize(crop, size, interpolation=cv2.INTER_AREA), np.uint8)
        return np.ascontiguousarray(crop)


@dataclass
class _FaceCamera:
    analyser: FaceAnalyser
    tracker: FaceTracker
    config: FacesConfig
    last_detect: float = float("-inf")


class FaceStage:
    """Face processing of every face-enabled camera of an agent.

    Args:
        cameras: ``camera_id -> (analyser, faces config)`` of the face cameras.
        crops: The edge-only crop buffer.
        model_version: Named in each observation (``model`` field).
    """

    def __init__(
        self,
        cameras: dict[str, tuple[FaceAnalyser, FacesConfig]],
        crops: FaceCropStore,
        model_version: str = EMBEDDING_MODEL,
    ) -> None:
        self._cameras = {
            cid: _FaceCamera(analyser, FaceTracker(cfg), cfg)
            for cid, (analyser, cfg) in cameras.items()
        }
        self.crops = crops
        self.model_version = model_version
        self.faces_seen = 0
        self.observations = 0

    def crop_jpeg(self, observation_id: str) -> bytes | None:
        """The JPEG crop of an observation while the buffer holds it (the crop request's
        lookup: the only way a face image leaves the edge)."""
        crop = self.crops.get(observation_id)
        return crop.jpeg if crop is not None else None

    @property
    def camera_ids(self) -> set[str]:
        """The cameras with faces on."""
        return set(self._cameras)

    def process(self, frames: Iterable[CapturedFrame]) -> list[wire.FaceObservation]:
        """Faces of the frames of face cameras; observations of tracks that finished."""
        out: list[wire.FaceObservation] = []
        for frame in frames:
            camera = self._cameras.get(frame.camera_id)
            if camera is None:
                continue
            fps = camera.config.detect_fps
            if fps and frame.captured_at - camera.last_detect < 1.0 / fps:
                continue
            camera.last_detect = frame.captured_at
            out += self.process_image(frame.camera_id, frame.image, frame.captured_at)
        return out

    def process_image(self, camera_id: str, image: Image, at: float) -> list[wire.FaceObservation]:
        """Run one image of a face camera through detection, tracking and emission."""
        camera = self._cameras[camera_id]
        samples = camera.analyser(image)
        self.faces_seen += len(samples)
        ended = camera.tracker.update(image, samples, at)
        return self._emit(camera_id, ended)

    def flush(self) -> list[wire.FaceObservation]:
        """End every track (agent stopping, end of a file)."""
        out: list[wire.FaceObservation] = []
        for camera_id, camera in self._cameras.items():
            out += self._emit(camera_id, camera.tracker.reap(None))
        return out

    def _emit(self, camera_id: str, tracks: list[FaceTrack]) -> list[wire.FaceObservation]:
        out = []
        for track in tracks:
            best = track.best
            if best is None or best.sample.embedding is None:
                continue  # no face of this track passed the quality gate
            event_id = wire.new_event_id(best.captured_at)
            self.crops.put(event_id, best.crop, camera_id, best.captured_at)
            vector = np.asarray(best.sample.embedding, dtype="<f2")
            box = tuple(round(float(v), 1) for v in best.sample.box)
            out.append(
                wire.FaceObservation(
                    event_id=event_id,
                    camera_id=camera_id,
                    captured_at=best.captured_at,
                    box=(box[0], box[1], box[2], box[3]),
                    quality=float(min(1.0, max(0.0, best.sample.quality))),
                    embedding=vector.tobytes(),
                    dim=len(vector),
                    model=self.model_version,
                )
            )
        self.observations += len(out)
        return out


def build_face_stage(
    store: ModelStore,
    cameras: Iterable[CameraConfig],
    crops: FaceCropStore | None = None,
    clock: Callable[[], float] = time.time,
) -> FaceStage | None:
    """The face stage of the cameras with ``faces.enabled``, or None when there are none.

    Models are loaded once per detector kind and shared by the cameras. The crop buffer
    takes the bounds of the first face camera unless one is given; it ages crops on
    ``clock``, the clock the frames are stamped by (the agent's ``AgentClock.now``).

    Raises:
        ModelMissing: a face model is not in the store (the message names the pull command).
        ModelCorrupt: a model file failed its sha256 check.
    """
    import openvino as ov

    enabled = [c for c in cameras if c.faces.enabled]
    if not enabled:
        return None
    core = ov.Core()
    loaded: dict[tuple[str, float], FaceModels] = {}
    stage_cameras: dict[str, tuple[FaceAnalyser, FacesConfig]] = {}
    for camera in enabled:
        cfg = camera.faces
        key = (cfg.detector, cfg.detector_threshold)
        if key not in loaded:
            loaded[key] = FaceModels.load(store, cfg.detector, cfg.detector_threshold, core=core)
        stage_cameras[camera.camera_id] = (FaceAnalyser(loaded[key], cfg.quality), cfg)
    first = enabled[0].faces.crops
    crops = crops if crops is not None else FaceCropStore(first.max_count, first.max_age_s, clock)
    entry = store.manifest.entry(EMBEDDING_MODEL)
    version = f"{EMBEDDING_MODEL}:{entry.precision}:{entry.graph_file.sha256[:12]}"
    return FaceStage(stage_cameras, crops, version)
