"""The edge pipeline: camera frames in, finished sightings with their JPEG thumbnails out.

Per batch (at most one frame per camera), video cameras go through

    motion gate (+ at most ``max_detect_fps`` detections per camera)
    -> vehicle detection (all gated frames of the batch in one ``detect_many``) -> tracker
    -> type/colour (all crops of the batch in one inference, first few frames of a track)
    -> plate reading (vehicles at least ``min_vehicle_width`` wide whose voted plate is not
       yet stable; per track every ``interval_s``, doubling after each miss; at most
       ``max_reads_per_batch``, least recently tried first; text detection always at one
       input size, see ``sightings.read_in_box``) -> thumbnail candidates
    -> tracks due for emission become ``wire.Sighting`` + JPEG frames.

Snapshot cameras (and ``process_stills``) treat every frame as a still: every vehicle and
every plate found, inside a vehicle box or not, is a sighting of its own.

``StageTimes`` keeps milliseconds per stage for the benchmark (``varta bench edge``).
Measured there (4 cameras of an upscaled street clip, shared 2-core box, one inference
thread): about 14 ms of pipeline work per 1080p frame, of which detection is 8 ms at
half the frames (24 fps in, 12.5 detections/s), plates 3.5 ms, the rest about 2 ms.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from edge_agent.attributes import COLOURS, VEHICLE_TYPES, crop
from edge_agent.config import PipelineConfig
from edge_agent.detect import MOTORCYCLE, Detections, Detector
from edge_agent.memory import HeapTrimmer, trim_heap, tune_allocator
from edge_agent.motion import MotionConfig, MotionGate
from edge_agent.plate_detect import PLATE_DETECTOR
from edge_agent.plate_locate import SEARCH_SHAPE
from edge_agent.sightings import (
    Emitted,
    StillReader,
    as_box,
    make_sighting,
    plate_snapshot,
    read_in_box,
    sharpness_factor,
    shrink,
)
from edge_agent.track import Image, Snapshot, Track, Tracker
from shared import wire
from shared.histogram import Histogram

if TYPE_CHECKING:
    import openvino as ov

    from edge_agent.attributes import VehicleAttributeClassifier
    from edge_agent.capture import CameraConfig, CapturedFrame
    from edge_agent.plate_calibrate import PlateCalibrator
    from edge_agent.plate_reader import PlateReader
    from models.store import ModelStore

log = logging.getLogger(__name__)

_TIME_SLACK = 1e-3  # frame times are not exact multiples of 1 / fps
# A camera's frame time going back this much (a confirmed wall clock step back, a looped
# file) restarts the camera's tracking: its timers would otherwise wait for the old time.
_STEP_BACK_S = 1.0
_MAX_BACKOFF = 16  # a track's plate interval grows at most this much after misses


@dataclass
class StageTimes:
    """Milliseconds spent per stage, and frame counts, since construction."""

    ms: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    frames: int = 0
    detected: int = 0
    sightings: int = 0
    plate_reads: int = 0  # plate reads attempted on video tracks
    plates_read: int = 0  # of them, those that gave a plate
    # Seconds per call of each stage (one batch of frames), for the metrics endpoint.
    seconds: dict[str, Histogram] = field(default_factory=lambda: defaultdict(Histogram))

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Add the time spent in the ``with`` block to ``name``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.ms[name] += elapsed * 1000
            self.seconds[name].observe(elapsed)

    def per_frame(self) -> dict[str, float]:
        """Mean milliseconds per frame of every stage."""
        n = max(self.frames, 1)
        return {name: round(ms / n, 3) for name, ms in self.ms.items()}


@dataclass
class _Camera:
    camera_id: str
    gate: MotionGate | None
    tracker: Tracker
    source: str = ""
    seen: float = field(default_factory=time.monotonic)
    last_detect: float = -math.inf
    last_time: float = -math.inf  # the newest frame time processed


@dataclass
class _Job:
    """One frame that went through detection, with the track of each detection."""

    frame: CapturedFrame
    camera: _Camera
    detections: Detections
    tracks: list[Track | None]

    def live(self) -> Iterator[tuple[int, Track]]:
        """``(detection index, track)`` of matched detections whose track is not emitted."""
        for i, track in enumerate(self.tracks):
            if track is not None and not track.emitted:
                yield i, track


class Pipeline:
    """Turns batches of camera frames into sightings (see the module docstring).

    Args:
        detector: Vehicle detector.
        attributes: Type/colour classifier; None skips attributes.
        reader: Plate reader for video frames; None skips plates.
        config: Pipeline settings.
        cameras: Configured cameras (motion settings, ROI, snapshot cameras); frames of
            other camera ids use default motion settings.
        still_reader: Plate reader for stills (default: ``reader``).
        model_versions: Model name -> version, for the agent's hello.
        calibrator: Turns the reader's plate confidence into the probability that the
            read is exact, on every sighting's plate; None leaves it as read.
    """

    def __init__(
        self,
        detector: Detector,
        attributes: VehicleAttributeClassifier | None,
        reader: PlateReader | None,
        config: PipelineConfig | None = None,
        cameras: Sequence[CameraConfig] = (),
        still_reader: PlateReader | None = None,
        model_versions: dict[str, str] | None = None,
        calibrator: PlateCalibrator | None = None,
    ) -> None:
        self.detector, self.attributes, self.reader = detector, attributes, reader
        self.calibrator = calibrator
        self.still_reader = still_reader if still_reader is not None else reader
        self.config = config if config is not None else PipelineConfig()
        self.model_versions = dict(model_versions or {})
        self.times = StageTimes()
        self._configs = {c.camera_id: c for c in cameras}
        self._stills = {c.camera_id for c in cameras if c.kind == "snapshots"}
        self._cameras: dict[str, _Camera] = {}
        self._still = StillReader(detector, attributes, self.still_reader, self.config, calibrator)
        self._trimmer = HeapTrimmer(self.config.heap_trim_s)

    def process(self, frames: Sequence[CapturedFrame]) -> list[Emitted]:
        """Run one batch (at most one frame per camera); return the sightings now due."""
        out = self.process_stills([f for f in frames if f.camera_id in self._stills])
        video = [f for f in frames if f.camera_id not in self._stills]
        out += self._restart_stepped_back(video)
        self.times.frames += len(video)
        with self.times.stage("motion"):
            todo = [f for f in video if self._gate(f)]
        with self.times.stage("detect"):
            found = self._detect([f.image for f in todo])
        self.times.detected += len(todo)
        with self.times.stage("track"):
            jobs = [self._track(f, d) for f, d in zip(todo, found, strict=True)]
        with self.times.stage("attributes"):
            self._classify(jobs)
        with self.times.stage("plates"):
            self._read_plates(jobs)
        with self.times.stage("thumbnails"):
            for job in jobs:
                self._offer_shots(job)
        with self.times.stage("emit"):
            for f in video:
                camera = self._camera(f)
                camera.seen = time.monotonic()
                camera.last_time = max(camera.last_time, f.captured_at)
                out += [self._emit(camera, t) for t in camera.tracker.due(f.captured_at)]
            out += self._reap()
        with self.times.stage("trim"):
            self._trimmer.maybe_trim()
        self.times.sightings += len(out)
        return out

    def warm_up(self, size: tuple[int, int] = (1280, 720)) -> None:
        """Run every model once on a blank frame, so the first real frames are not late
        (OpenVINO finishes compiling a shape on its first inference)."""
        blank = np.zeros((size[1], size[0], 3), dtype=np.uint8)
        self._detect([blank, blank])
        if self.attributes is not None:
            self.attributes.classify_crops([blank[:72, :72]])
        if self.reader is not None:
            read_in_box(self.reader, blank, (0.0, 0.0, 100.0, 80.0))
        trim_heap()  # model compilation leaves much freed memory behind

    def flush(self) -> list[Emitted]:
        """End every track (streams ended or the agent stops); return what is still due."""
        return [self._emit(c, t) for c in self._cameras.values() for t in c.tracker.flush()]

    # -- stages ------------------------------------------------------------------------

    def _restart_stepped_back(self, frames: Sequence[CapturedFrame]) -> list[Emitted]:
        """Emit the tracks of a camera whose time went back, and start it afresh.

        Track ages, the detection rate limit and the motion gate all compare frame times;
        after a step back they would hold every track and skip detection until the old time
        came round again (an hour, for an hour's step).
        """
        out: list[Emitted] = []
        for f in frames:
            camera = self._cameras.get(f.camera_id)
            if camera is None or f.captured_at >= camera.last_time - _STEP_BACK_S:
                continue
            log.warning(
                "camera %s: frame time went back %.1f s; its open tracks are emitted now",
                f.camera_id,
                camera.last_time - f.captured_at,
            )
            out += [self._emit(camera, t) for t in camera.tracker.flush()]
            del self._cameras[f.camera_id]
        return out

    def _camera(self, frame: CapturedFrame) -> _Camera:
        camera = self._cameras.get(frame.camera_id)
        if camera is None:
            config = self._configs.get(frame.camera_id)
            motion = config.motion if config is not None else MotionConfig()
            gate = MotionGate(motion, config.roi if config is not None else None)
            camera = _Camera(frame.camera_id, gate, Tracker(self.config.tracker), frame.source)
            self._cameras[frame.camera_id] = camera
        return camera

    def _gate(self, frame: CapturedFrame) -> bool:
        """Whether to detect on this frame: motion (or keep-alive) and the rate limit."""
        camera = self._camera(frame)
        if (
            camera.gate is not None
            and not camera.gate.update(frame.image, frame.captured_at).run_detection
        ):
            return False
        fps = self.config.max_detect_fps
        if fps and frame.captured_at - camera.last_detect < 1.0 / fps - _TIME_SLACK:
            return False
        camera.last_detect = frame.captured_at
        return True

    def _detect(self, images: list[Image]) -> list[Detections]:
        if len(images) > 1:
            return self.detector.detect_many(images)
        return [self.detector.detect(image) for image in images]

    def _track(self, frame: CapturedFrame, detections: Detections) -> _Job:
        camera = self._camera(frame)
        tracks = camera.tracker.update(
            detections.xyxy, detections.confidence, detections.class_id, frame.captured_at
        )
        return _Job(frame, camera, detections, tracks)

    def _classify(self, jobs: Sequence[_Job]) -> None:
        if self.attributes is None:
            return
        wanted: list[Track] = []
        crops: list[Image] = []
        for job in jobs:
            for i, track in job.live():
                if track.attribute_frames >= self.config.attribute_frames:
                    continue
                if job.detections.class_id[i] == MOTORCYCLE:
                    track.add_attributes({"motorcycle": float(job.detections.confidence[i])}, {})
                    continue
                wanted.append(track)
                crops.append(crop(job.frame.image, job.detections.xyxy[i]))
        for track, attrs in zip(wanted, self.attributes.classify_crops(crops), strict=True):
            track.add_attributes(
                dict(zip(VEHICLE_TYPES, attrs.type_scores, strict=True)),
                dict(zip(COLOURS, attrs.colour_scores, strict=True)),
            )

    def _read_plates(self, jobs: Sequence[_Job]) -> None:
        cfg = self.config.plates
        if self.reader is None or not cfg.enabled:
            return
        due: list[tuple[float, float, _Job, int, Track]] = []
        for job in jobs:
            now = job.frame.captured_at
            for i, track in job.live():
                x1, _, x2, _ = job.detections.xyxy[i]
                wait = cfg.interval_s * min(2**track.plate_misses, _MAX_BACKOFF)
                if (
                    track.stable_since is None
                    and x2 - x1 >= cfg.min_vehicle_width
                    and now - track.last_plate_try >= wait - _TIME_SLACK
                ):
                    area = float(job.detections.area[i])
                    due.append((track.last_plate_try, -area, job, i, track))
        due.sort(key=lambda d: (d[0], d[1]))
        deadline = time.perf_counter() + cfg.budget_ms / 1000 if cfg.budget_ms else math.inf
        for n, (_, _, job, i, track) in enumerate(due[: cfg.max_reads_per_batch]):
            if n and time.perf_counter() > deadline:
                break
            now = job.frame.captured_at
            track.last_plate_try = now
            plate = read_in_box(self.reader, job.frame.image, as_box(job.detections.xyxy[i]))
            self.times.plate_reads += 1
            if plate is None:
                track.plate_misses += 1
                continue
            self.times.plates_read += 1
            shot = plate_snapshot(job.frame, plate, self.config.thumbnails.plate_width)
            track.add_plate(plate, now, shot, self.config.tracker)

    def _offer_shots(self, job: _Job) -> None:
        height, width = job.frame.image.shape[:2]
        for i, track in job.live():
            box = as_box(job.detections.xyxy[i])
            area = (box[2] - box[0]) * (box[3] - box[1])
            touches = box[0] <= 2 or box[1] <= 2 or box[2] >= width - 2 or box[3] >= height - 2
            bound = area * (0.5 if touches else 1.0)  # a cut-off vehicle makes a poor image
            if track.vehicle_shot is not None and bound <= track.vehicle_shot.score:
                continue
            image = shrink(crop(job.frame.image, box), self.config.thumbnails.vehicle_width)
            score = bound * sharpness_factor(image)
            f = job.frame
            track.offer_vehicle_shot(Snapshot(image, score, f.index, f.captured_at, box))

    def _reap(self) -> list[Emitted]:
        """Flush the tracks of cameras that sent nothing for a while (offline, ended)."""
        c = self.config.tracker
        idle = time.monotonic() - (c.max_age_s + c.emit_delay_s + 1.0)
        return [
            self._emit(camera, t)
            for camera in self._cameras.values()
            if camera.seen < idle and camera.tracker.tracks
            for t in camera.tracker.flush()
        ]

    def _emit(self, camera: _Camera, track: Track) -> Emitted:
        shot, plate_shot = track.vehicle_shot, track.plate_shot()
        if track.class_id == MOTORCYCLE:
            kind, kind_conf = "motorcycle", _share(track.class_votes, MOTORCYCLE)
        else:
            kind, kind_conf = track.vehicle_type()
            if self.attributes is not None and kind:
                kind_conf = self.attributes.type_confidence(kind, track.type_votes)
        colour, colour_conf = track.colour()
        vehicle = wire.Vehicle(
            box=shot.box if shot is not None else as_box(track.box),
            type=kind, type_confidence=kind_conf, colour=colour, colour_confidence=colour_conf,
        )  # fmt: skip
        best = plate_shot or shot
        plate = track.plate
        if plate is not None and self.calibrator is not None:
            plate = self.calibrator.apply_track(plate, track.reads)
        sighting, jpegs = make_sighting(
            camera.camera_id,
            best.time if best is not None else track.last_seen,
            vehicle,
            plate,
            [("vehicle", shot), ("plate", plate_shot)],
            self.config.thumbnails.quality,
            track_frames=track.hits,
            track_seconds=max(track.last_seen - track.first_seen, 0.0),
        )
        return Emitted(sighting, jpegs, camera.source, best.frame if best is not None else 0)

    def process_stills(self, frames: Sequence[CapturedFrame]) -> list[Emitted]:
        """Every vehicle and every plate in each frame, each as its own sighting."""
        out: list[Emitted] = []
        for frame in frames:
            self.times.frames += 1
            with self.times.stage("stills"):
                out += self._still.read(frame)
        self.times.sightings += len(out)
        return out


def _share(votes: dict[int, float], key: int) -> float:
    total = sum(votes.values())
    return round(votes.get(key, 0.0) / total, 4) if total > 0 else 0.0


OCR_DETECTION, OCR_RECOGNITION = "PP-OCRv6_det_small", "PP-OCRv6_rec_small"


def required_models(config: PipelineConfig) -> list[tuple[str, str | None]]:
    """``(model, precision)`` of every model the pipeline loads (None: manifest default)."""
    from edge_agent.attributes import MODEL_NAME

    models: list[tuple[str, str | None]] = [
        (name, config.detector.precisions.get(name)) for name in config.detector.models
    ]
    if config.attributes:
        models.append((MODEL_NAME, None))
    if config.plates.enabled:
        models += [(OCR_DETECTION, None), (OCR_RECOGNITION, None), (PLATE_DETECTOR, None)]
    return models


def build_pipeline(
    store: ModelStore,
    config: PipelineConfig | None = None,
    cameras: Sequence[CameraConfig] = (),
    core: ov.Core | None = None,
) -> Pipeline:
    """Load the models a pipeline needs from ``store`` and build it.

    Also tunes the process's allocator for the pipeline (``memory.tune_allocator``),
    before the models allocate.

    Raises:
        ModelMissing: a model is not in the store (the message names the pull command).
        ModelCorrupt: a model file failed its sha256 check.
    """
    import openvino as ov

    from edge_agent.attributes import VehicleAttributeClassifier
    from edge_agent.detect import OpenVINOVehicleDetector
    from edge_agent.ocr import TextDetector, TextRecognizer
    from edge_agent.plate_calibrate import PlateCalibrator
    from edge_agent.plate_detect import PlateBoxDetector
    from edge_agent.plate_locate import PlateLocator
    from edge_agent.plate_reader import PPOCRPlateReader

    config = config if config is not None else PipelineConfig()
    tune_allocator()
    versions = {
        name: _version(store, name, precision) for name, precision in required_models(config)
    }
    core = core if core is not None else ov.Core()
    # Snippets (JIT-fused element-wise subgraphs) cost 13 MB across these models and
    # gained nothing measurable on them (A/B, median ms per inference).
    core.set_property("CPU", {"SNIPPETS_MODE": "DISABLE"})
    if config.inference is not None and config.inference.threads:
        core.set_property("CPU", {"INFERENCE_NUM_THREADS": config.inference.threads})
    detector = OpenVINOVehicleDetector(store, config.detector, core)
    attributes = None
    if config.attributes:
        attributes = VehicleAttributeClassifier(store, None, config.inference, core)
    reader = still_reader = calibrator = None
    if config.plates.enabled:
        calibrator = PlateCalibrator.load()
        # Every video read runs at the search window's size: a static model for it.
        text_detector = TextDetector(store.path(OCR_DETECTION), core, static_shapes=[SEARCH_SHAPE])
        locator = PlateLocator(text_detector)
        recognizer = TextRecognizer(store.path(OCR_RECOGNITION), core)
        reader = PPOCRPlateReader(
            locator,
            recognizer,
            fallback_side=config.plates.fallback_side,
            relook_unread=False,
            zoom_side=None,
        )
        # Stills get the plate detector's boxes as a last look (video: the next frames).
        finder = PlateBoxDetector(store.path(PLATE_DETECTOR), core)
        still_reader = PPOCRPlateReader(
            locator, recognizer, finder=finder, zoom_side=config.plates.still_zoom_side
        )
    return Pipeline(
        detector, attributes, reader, config, cameras, still_reader, versions, calibrator
    )


def _version(store: ModelStore, name: str, precision: str | None) -> str:
    """``precision:sha256-prefix`` of a model's graph file; verifies the model is present."""
    store.path(name, precision)
    entry = store.manifest.entry(name, precision)
    return f"{entry.precision}:{entry.graph_file.sha256[:12]}"
