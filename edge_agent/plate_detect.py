"""Plate regions from a plate detector, for plates text detection misses.

The PP-OCR text detector finds a plate by its characters. A dark, blurred or low-contrast
plate (a US plate at dusk, a dirty one) gives it too little to go on at any scale the
reader affords, while the plate's shape still shows. Open Model Zoo's
``vehicle-license-plate-detection-barrier-0106`` (Apache-2.0, in the model manifest with
its sha256) finds plate-shaped rectangles in one 300x300 pass (about 2 ms).

Its boxes are not read directly: a US plate holds a state name and a slogan besides its
number. Each box, grown by :data:`GROW` on every side, is cut from the full-resolution
frame, scaled to one fixed size (:data:`CROP_SIZE`, so text detection runs on one input
shape and OpenVINO keeps one executor for it) and searched for text lines there; the
lines found become :class:`~edge_agent.plate_locate.PlateRegion` objects in frame pixels,
read like any other region.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from edge_agent.detect import DetectorModel, HeadSpec

if TYPE_CHECKING:
    import numpy.typing as npt
    import openvino as ov

    from edge_agent.ocr import TextDetector
    from edge_agent.plate_locate import PlateRegion
    from models.store import ModelStore

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]

PLATE_DETECTOR: Final = "vehicle-license-plate-detection-barrier-0106"
_PLATE_LABEL: Final = 2  # the model's labels: 1 vehicle, 2 plate
GROW: Final = 0.25  # share of the box's width and height added on each side
CROP_SIZE: Final = (320, 160)  # (width, height) a grown plate box is scaled to
_SLACK: Final = 0.05  # share of a plate box's size its text may reach beyond it
MIN_PLATE_WIDTH: Final = 24.0  # pixels in the frame; narrower boxes hold no legible text


class PlateBoxDetector:
    """Plate rectangles in a BGR image from ``vehicle-license-plate-detection-barrier-0106``."""

    def __init__(
        self, model_path: Path, core: ov.Core | None = None, threshold: float = 0.1
    ) -> None:
        """Args:
        model_path: The model's ``.xml`` file.
        core: An OpenVINO core to share.
        threshold: Minimum score of a plate box.
        """
        if not model_path.is_file():
            raise FileNotFoundError(f"plate detection model not found: {model_path}")
        self._path = model_path
        self._core = core
        self.threshold = threshold
        self._model: DetectorModel | None = None

    def _compiled(self) -> DetectorModel:
        """The model, compiled on first use: an agent that reads only video never
        spends the memory on it."""
        if self._model is None:
            thresholds = np.array([self.threshold, self.threshold], dtype=np.float32)
            head = HeadSpec("ssd", {_PLATE_LABEL: 0})
            self._model = DetectorModel(self._path, head, thresholds, core=self._core)
        return self._model

    @classmethod
    def from_store(cls, store: ModelStore, core: ov.Core | None = None) -> PlateBoxDetector:
        """The detector from a model store (verified against the manifest's sha256)."""
        return cls(store.path(PLATE_DETECTOR), core)

    def detect(self, image: npt.NDArray[np.uint8], limit: int = 3) -> list[Box]:
        """Plate boxes ``(x1, y1, x2, y2)`` in image pixels, most confident first."""
        found = self._compiled()(image).with_nms(0.3)
        boxes = [
            (float(x1), float(y1), float(x2), float(y2))
            for x1, y1, x2, y2 in found.xyxy
            if x2 - x1 >= MIN_PLATE_WIDTH
        ]
        return boxes[:limit]


def grown(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """A box grown by :data:`GROW` on each side, in whole pixels inside the image."""
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) * GROW, (y2 - y1) * GROW
    return (
        max(0, int(x1 - dx)),
        max(0, int(y1 - dy)),
        min(width, int(x2 + dx + 1)),
        min(height, int(y2 + dy + 1)),
    )


def regions_in_boxes(
    detector: TextDetector, frame: npt.NDArray[np.uint8], boxes: Sequence[Box]
) -> list[PlateRegion]:
    """Plate-like text regions inside plate boxes, in frame pixels (see the module
    docstring), best of each box first."""
    import cv2

    from edge_agent.plate_locate import PlateRegion, plate_regions

    h, w = frame.shape[:2]
    regions: list[PlateRegion] = []
    for box in boxes:
        left, top, right, bottom = grown(box, w, h)
        if right - left < 8 or bottom - top < 4:
            continue
        crop = np.asarray(
            cv2.resize(frame[top:bottom, left:right], CROP_SIZE, interpolation=cv2.INTER_CUBIC),
            dtype=np.uint8,
        )
        scale = np.array(
            [(right - left) / CROP_SIZE[0], (bottom - top) / CROP_SIZE[1]], dtype=np.float32
        )
        offset = np.array([left, top], dtype=np.float32)
        # Text boxes grown past the plate (DB's unclip on blurred glyphs) are cut back
        # to it, with a little slack: the plate's edge is as far as its text goes.
        dx, dy = (box[2] - box[0]) * _SLACK, (box[3] - box[1]) * _SLACK
        low = np.array([box[0] - dx, box[1] - dy], dtype=np.float32)
        high = np.array([box[2] + dx, box[3] + dy], dtype=np.float32)
        for region in plate_regions(detector.detect(crop, max(CROP_SIZE))):
            lines = tuple(np.clip(line * scale + offset, low, high) for line in region.lines)
            regions.append(PlateRegion(lines, region.score))
    return regions
