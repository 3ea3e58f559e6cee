"""The edge pipeline with real models on real road video and plate photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.plates import iou, load_image
from edge_agent.capture import CameraConfig, CapturedFrame
from edge_agent.pipeline import Pipeline, build_pipeline
from edge_agent.sightings import Emitted, read_in_box, search_region
from models.store import ModelStore
from shared import wire

CLIP = "traffic-video/videos/intel__car-detection.mp4"
CLIP_FRAMES = 200
TYPES = {"car", "van", "truck", "bus", "motorcycle", ""}


@pytest.fixture(scope="module")
def pipeline(model_store: ModelStore) -> Pipeline:
    snapshots = CameraConfig(camera_id="anpr", kind="snapshots", source="/nonexistent")
    return build_pipeline(model_store, cameras=[snapshots])


def _frames(path: Path, limit: int) -> list[CapturedFrame]:
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    frames: list[CapturedFrame] = []
    while len(frames) < limit:
        ok, image = cap.read()
        if not ok:
            break
        t = 1000.0 + len(frames) / fps
        frames.append(CapturedFrame("road", len(frames), t, np.asarray(image, np.uint8), "x"))
    cap.release()
    return frames


@pytest.fixture(scope="module")
def video_sightings(pipeline: Pipeline, shared_data: Path) -> tuple[list[Emitted], int]:
    frames = _frames(shared_data / CLIP, CLIP_FRAMES)
    out: list[Emitted] = []
    for frame in frames:
        out += pipeline.process([frame])
    return out + pipeline.flush(), len(frames)


@pytest.mark.slow
def test_video_gives_one_sighting_per_pass(video_sightings: tuple[list[Emitted], int]) -> None:
    sightings, frames = video_sightings
    # A few cars enter and leave this parking lot in the first 16 s; tracking must not
    # turn every frame into a sighting.
    assert 1 <= len(sightings) <= 12
    assert all(e.sighting.track_frames >= 2 for e in sightings)
    assert sum(e.sighting.track_frames for e in sightings) > len(sightings) * 5
    assert len({e.sighting.event_id for e in sightings}) == len(sightings)
    assert all(0 <= e.frame < frames for e in sightings)


@pytest.mark.slow
def test_video_sightings_are_well_formed(video_sightings: tuple[list[Emitted], int]) -> None:
    for emitted in video_sightings[0]:
        s = emitted.sighting
        assert s.camera_id == "road" and s.captured_at >= 1000.0
        assert s.vehicle is not None and s.vehicle.type in TYPES
        x1, y1, x2, y2 = s.vehicle.box
        assert 0 <= x1 < x2 <= 768 and 0 <= y1 < y2 <= 432
        assert len(emitted.thumbnails) == len(s.thumbnails) >= 1
        for thumb, jpeg in zip(s.thumbnails, emitted.thumbnails, strict=True):
            assert jpeg[:2] == b"\xff\xd8" and len(jpeg) <= wire.MAX_THUMBNAIL_BYTES
            assert thumb.width <= 320
            decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            assert decoded is not None and decoded.shape[:2] == (thumb.height, thumb.width)
        assert wire.decode_item(wire.encode_item(s)) == s


@pytest.mark.slow
def test_stage_times_are_counted(pipeline: Pipeline, video_sightings: object) -> None:
    ms = pipeline.times.per_frame()
    assert {"motion", "detect", "track", "attributes", "plates", "thumbnails"} <= set(ms)
    assert pipeline.times.frames >= CLIP_FRAMES
    assert 0 < pipeline.times.detected < pipeline.times.frames  # motion gate + rate limit


@pytest.mark.slow
def test_snapshot_camera_frames_are_stills(pipeline: Pipeline, shared_data: Path) -> None:
    image = load_image(shared_data / "plates-ua-dev/images/AA1080BC.jpg")
    out = pipeline.process([CapturedFrame("anpr", 0, 5.0, image, "AA1080BC.jpg")])
    plates = [e.sighting.plate.text for e in out if e.sighting.plate]
    assert "AA1080BC" in plates
    assert all(e.sighting.camera_id == "anpr" and e.source == "AA1080BC.jpg" for e in out)


def test_only_stills_get_the_costly_looks(pipeline: Pipeline) -> None:
    # Video keeps to its cheap looks (fps); a still may read a place again and zoom.
    from edge_agent.plate_reader import PPOCRPlateReader

    video, still = pipeline.reader, pipeline.still_reader
    assert isinstance(video, PPOCRPlateReader) and isinstance(still, PPOCRPlateReader)
    assert (video.relook_unread, video.zoom_side, video.finder) == (False, None, None)
    assert still.relook_unread and still.zoom_side == 1600 and still.finder is not None


def test_the_still_zoom_look_can_be_switched_off(model_store: ModelStore) -> None:
    from edge_agent.config import PipelineConfig, PlateStageConfig
    from edge_agent.plate_reader import PPOCRPlateReader

    config = PipelineConfig(plates=PlateStageConfig(still_zoom_side=None))
    still = build_pipeline(model_store, config).still_reader
    assert isinstance(still, PPOCRPlateReader) and still.zoom_side is None
    assert still.relook_unread and still.finder is not None  # the other looks stay


@pytest.mark.slow
@pytest.mark.parametrize("scale", [1.0, 0.4])  # large vehicle: crop; small: upscaled region
def test_read_in_box_maps_the_plate_to_the_frame(
    pipeline: Pipeline, shared_data: Path, scale: float
) -> None:
    photo = load_image(shared_data / "plates-ua-dev/images/AO1467BH.jpeg")
    image = np.asarray(cv2.resize(photo, None, fx=scale, fy=scale), dtype=np.uint8)
    vehicles = pipeline.detector.detect(image)
    assert pipeline.reader is not None and len(vehicles)
    x1, y1, x2, y2 = (float(v) for v in vehicles.xyxy[0])
    plate = read_in_box(pipeline.reader, image, (x1, y1, x2, y2))
    assert pipeline.still_reader is not None
    whole = pipeline.still_reader.read(image)
    assert plate is not None and plate.text == "AO1467BH"
    assert plate.box is not None and whole[0].box is not None
    assert iou(plate.box, whole[0].box) > 0.6


@pytest.mark.parametrize(
    ("box", "frame", "region"),
    [
        ((100, 100, 200, 180), (1920, 1080), (100, 100, 200, 180)),  # already 5:4
        ((100, 100, 300, 180), (1920, 1080), (100, 60, 300, 220)),  # wide: grow height
        ((100, 100, 180, 300), (1920, 1080), (15, 100, 265, 300)),  # tall: grow width
        ((0, 1000, 200, 1080), (1920, 1080), (0, 920, 200, 1080)),  # moved inside the frame
        ((0, 0, 1900, 1000), (1920, 1080), (0, 0, 1900, 1080)),  # clipped to the frame
    ],
)
def test_search_region(
    box: tuple[float, float, float, float],
    frame: tuple[int, int],
    region: tuple[int, int, int, int],
) -> None:
    assert search_region(box, *frame) == pytest.approx(region, abs=1)


@pytest.mark.slow
def test_a_clock_step_back_restarts_the_camera(pipeline: Pipeline, shared_data: Path) -> None:
    """Frame times going back an hour (a confirmed wall clock step) must not stall the
    camera: open tracks are emitted at once and detection goes on with the new times."""
    frames = _frames(shared_data / CLIP, 120)
    base, step_at, step = 1_790_000_000.0 - 1000.0, 60, -3600.0  # wall clock times
    before = [
        CapturedFrame("road-step", f.index, base + f.captured_at, f.image, f.source)
        for f in frames[:step_at]
    ]
    after = [
        CapturedFrame("road-step", f.index, base + f.captured_at + step, f.image, f.source)
        for f in frames[step_at:]
    ]
    for frame in before:
        pipeline.process([frame])
    detected = pipeline.times.detected
    emitted = pipeline.process([after[0]])  # the step: what was open comes out now
    assert emitted and all(e.sighting.captured_at >= before[0].captured_at for e in emitted)
    for frame in after[1:]:
        emitted += pipeline.process([frame])
    assert pipeline.times.detected - detected >= len(after) // 4  # detection went on
    late = [e for e in emitted + pipeline.flush() if e.sighting.camera_id == "road-step"]
    assert any(e.sighting.captured_at < after[-1].captured_at for e in late)
