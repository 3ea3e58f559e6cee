"""Sightings from what the pipeline found: thumbnails, ``wire.Sighting`` assembly, stills.

Thumbnails are size-bounded JPEGs (``ThumbnailConfig``: at most 320 px wide, quality 80 by
default, so 10-40 KB each). ``StillReader`` handles frames that stand alone (snapshot
cameras, photos given to ``varta edge detect``): every vehicle in the frame is a sighting,
with the plate read inside its box (or found in the whole frame and lying inside it), and
every plate outside all vehicle boxes (close-up plate photos) is a sighting too.
``read_in_box`` reads the plate of one vehicle of a video frame at a fixed detection size.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from edge_agent.attributes import crop
from edge_agent.config import PipelineConfig
from edge_agent.plate_locate import SEARCH_SIZE
from edge_agent.track import Box, Image, Snapshot
from shared import wire

if TYPE_CHECKING:
    from edge_agent.attributes import VehicleAttributeClassifier
    from edge_agent.capture import CapturedFrame
    from edge_agent.detect import Detector
    from edge_agent.plate_calibrate import PlateCalibrator
    from edge_agent.plate_reader import PlateReader

log = logging.getLogger(__name__)

Role = Literal["vehicle", "plate"]
_SHARPNESS_REF = 100.0  # Laplacian variance at which sharpness counts half
_STANDALONE_MIN_SCORE = 0.3  # plate_score a plate outside every vehicle box needs
_SAME_PLATE_IOU = 0.3


@dataclass(frozen=True, slots=True)
class Emitted:
    """A finished sighting with its thumbnail JPEGs (in ``sighting.thumbnails`` order).

    Attributes:
        sighting: What goes to central.
        thumbnails: JPEG bytes, one per ``sighting.thumbnails`` entry.
        source: Where the frames came from (file path, stream URL, snapshot file).
        frame: Index of the frame the sighting's best image came from.
    """

    sighting: wire.Sighting
    thumbnails: list[bytes]
    source: str
    frame: int


def make_sighting(
    camera_id: str,
    captured_at: float,
    vehicle: wire.Vehicle | None,
    plate: wire.Plate | None,
    shots: Sequence[tuple[Role, Snapshot | None]],
    quality: int,
    track_frames: int = 1,
    track_seconds: float = 0.0,
) -> tuple[wire.Sighting, list[bytes]]:
    """A new sighting (fresh event id) and the JPEG bytes of its thumbnails."""
    thumbs: list[wire.Thumbnail] = []
    jpegs: list[bytes] = []
    for role, shot in shots:
        if shot is not None:
            h, w = shot.image.shape[:2]
            thumbs.append(wire.Thumbnail(role=role, width=w, height=h))
            jpegs.append(encode_jpeg(shot.image, quality))
    sighting = wire.Sighting(
        event_id=wire.new_event_id(captured_at),
        camera_id=camera_id,
        captured_at=max(captured_at, 0.0),
        vehicle=vehicle,
        plate=plate,
        track_frames=track_frames,
        track_seconds=round(track_seconds, 3),
        thumbnails=thumbs,
    )
    return sighting, jpegs


def as_box(values: Sequence[float] | np.ndarray) -> Box:
    """Four numbers as a ``Box`` of Python floats."""
    x1, y1, x2, y2 = (float(v) for v in values)
    return (x1, y1, x2, y2)


def shrink(image: Image, width: int) -> Image:
    """A copy of ``image`` at most ``width`` pixels wide (aspect kept)."""
    import cv2

    h, w = image.shape[:2]
    if w <= width:
        return image.copy()
    size = (width, max(1, round(h * width / w)))
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def sharpness_factor(image: Image) -> float:
    """0..1, growing with the variance of the Laplacian (focus, motion blur)."""
    import cv2

    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    var = float(cv2.Laplacian(grey, cv2.CV_16S).var())
    return var / (var + _SHARPNESS_REF)


def encode_jpeg(image: Image, quality: int) -> bytes:
    """JPEG bytes of a BGR image."""
    import cv2

    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"JPEG encoding failed for an image of shape {image.shape}")
    return bytes(data.tobytes())


def plate_snapshot(frame: CapturedFrame, plate: wire.Plate, width: int) -> Snapshot | None:
    """The plate's pixels with a small margin, scored by confidence and size."""
    if plate.box is None:
        return None
    x1, y1, x2, y2 = plate.box
    mx, my = 0.1 * (x2 - x1), 0.2 * (y2 - y1)
    image = shrink(crop(frame.image, (x1 - mx, y1 - my, x2 + mx, y2 + my)), width)
    score = plate.confidence * min(1.0, (x2 - x1) / 100.0)
    return Snapshot(image, score, frame.index, frame.captured_at, plate.box)


def search_region(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """``box`` grown to the aspect of ``SEARCH_SIZE`` and moved inside a frame."""
    x1, y1, x2, y2 = box
    w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    aspect = SEARCH_SIZE[0] / SEARCH_SIZE[1]
    w, h = (h * aspect, h) if w / h < aspect else (w, w / aspect)
    w, h = min(w, width), min(h, height)
    left = min(max((x1 + x2 - w) / 2, 0.0), width - w)
    top = min(max((y1 + y2 - h) / 2, 0.0), height - h)
    return round(left), round(top), round(left + w), round(top + h)


def read_in_box(reader: PlateReader, image: Image, box: Box) -> wire.Plate | None:
    """The most plate-like read in a vehicle box, its text detection always at one size.

    The box is grown to the aspect of ``SEARCH_SIZE``; a region smaller than that is
    upscaled to it first, so every detection input has the same shape (the text detector
    compiles, and keeps in memory, one model per input shape).
    """
    import cv2
    import msgspec

    height, width = image.shape[:2]
    left, top, right, bottom = search_region(box, width, height)
    if right - left >= SEARCH_SIZE[0]:
        found = reader.read(image, [(left, top, right, bottom)])
        return found[0] if found else None
    region = cv2.resize(image[top:bottom, left:right], SEARCH_SIZE, interpolation=cv2.INTER_CUBIC)
    found = reader.read(np.asarray(region, dtype=np.uint8))
    if not found or found[0].box is None:
        return found[0] if found else None
    sx, sy = (right - left) / SEARCH_SIZE[0], (bottom - top) / SEARCH_SIZE[1]
    x1, y1, x2, y2 = found[0].box
    mapped = (left + x1 * sx, top + y1 * sy, left + x2 * sx, top + y2 * sy)
    return msgspec.structs.replace(found[0], box=mapped)


@dataclass
class _Found:
    vehicle: wire.Vehicle | None
    plate: wire.Plate | None
    vehicle_shot: Snapshot | None = None


class StillReader:
    """Every vehicle and plate of a standalone frame (see the module docstring)."""

    def __init__(
        self,
        detector: Detector,
        attributes: VehicleAttributeClassifier | None,
        reader: PlateReader | None,
        config: PipelineConfig,
        calibrator: PlateCalibrator | None = None,
    ) -> None:
        self.detector, self.attributes, self.reader = detector, attributes, reader
        self.config = config
        self.calibrator = calibrator

    def read(self, frame: CapturedFrame) -> list[Emitted]:
        """The sightings of one frame, vehicles first (largest first), then lone plates."""
        found = self._vehicles(frame)
        if self.reader is not None:
            self._assign(found, self.reader.read(frame.image))
        out = []
        thumbs = self.config.thumbnails
        for item in found:
            pshot = plate_snapshot(frame, item.plate, thumbs.plate_width) if item.plate else None
            plate = item.plate
            if plate is not None and self.calibrator is not None:
                plate = self.calibrator.apply(plate)
            sighting, jpegs = make_sighting(
                frame.camera_id,
                frame.captured_at,
                item.vehicle,
                plate,
                [("vehicle", item.vehicle_shot), ("plate", pshot)],
                thumbs.quality,
            )
            out.append(Emitted(sighting, jpegs, frame.source, frame.index))
        return out

    def _vehicles(self, frame: CapturedFrame) -> list[_Found]:
        image = frame.image
        dets = self.detector.detect(image)
        high = np.asarray(self.config.tracker.high_thresholds, dtype=np.float32)
        dets = dets[dets.confidence >= high[np.clip(dets.class_id, 0, len(high) - 1)]]
        dets = dets[np.argsort(-dets.area, kind="stable")]
        attrs = self.attributes.classify(image, dets) if self.attributes is not None else []
        found: list[_Found] = []
        for i in range(len(dets)):
            box = as_box(dets.xyxy[i])
            kind = attrs[i] if attrs else None
            vehicle = wire.Vehicle(
                box=box,
                type=kind.type if kind else dets.labels[i],
                type_confidence=round(kind.type_confidence, 4) if kind else 0.0,
                colour=kind.colour if kind else "",
                colour_confidence=round(kind.colour_confidence, 4) if kind else 0.0,
            )
            shot = Snapshot(
                shrink(crop(image, box), self.config.thumbnails.vehicle_width),
                1.0, frame.index, frame.captured_at, box,
            )  # fmt: skip
            plate = None
            if self.reader is not None and box[2] - box[0] >= self.config.plates.min_vehicle_width:
                plate = next(iter(self.reader.read(image, [box])), None)
            found.append(_Found(vehicle, plate, shot))
        return found

    @staticmethod
    def _assign(found: list[_Found], plates: Sequence[wire.Plate]) -> None:
        """Give whole-frame plates to the smallest plate-less vehicle around them, or
        make them sightings of their own when they lie outside every vehicle."""
        from edge_agent.plate_rank import plate_score

        for plate in plates:
            if plate.box is None or any(
                f.plate is not None and box_iou(f.plate.box, plate.box) > _SAME_PLATE_IOU
                for f in found
            ):
                continue
            cx, cy = (plate.box[0] + plate.box[2]) / 2, (plate.box[1] + plate.box[3]) / 2
            around = [
                f
                for f in found
                if f.vehicle is not None
                and f.vehicle.box[0] <= cx <= f.vehicle.box[2]
                and f.vehicle.box[1] <= cy <= f.vehicle.box[3]
            ]
            free = [f for f in around if f.plate is None]
            if free:
                min(free, key=lambda f: _area(f.vehicle)).plate = plate
            elif not around and plate_score(plate) >= _STANDALONE_MIN_SCORE:
                found.append(_Found(None, plate))


def _area(vehicle: wire.Vehicle | None) -> float:
    if vehicle is None:
        return 0.0
    x1, y1, x2, y2 = vehicle.box
    return (x2 - x1) * (y2 - y1)


def box_iou(a: Box | None, b: Box | None) -> float:
    """IoU of two boxes (0 when either is missing)."""
    if a is None or b is None:
        return 0.0
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
    return iw * ih / union if union > 0 else 0.0
