"""Plate localisation: find plate-like text lines with PP-OCR text detection.

A licence plate is a short, dense line of large characters. The DB text detector finds
it reliably even on a strongly downscaled image (a 320-pixel image keeps a plate about
ten pixels tall), which is what makes this fast. Boxes that belong to one line (a plate
split at a gap, an emblem or a sticker) are merged; two stacked lines of similar width
form a two-line plate. The crops themselves are cut from the full-resolution frame.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from edge_agent.ocr import TextBox, TextDetector
    from edge_agent.plate_detect import PlateBoxDetector

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]

MIN_TEXT_HEIGHT: Final = 7.0  # pixels in the full frame; smaller text is unreadable
MIN_ASPECT: Final = 1.3  # width / height of a single plate line
MAX_ASPECT: Final = 14.0
SEARCH_SIZE: Final = (320, 256)  # (width, height) plate text detection runs at, for video
SEARCH_SHAPE: Final = (SEARCH_SIZE[1], SEARCH_SIZE[0])  # the same as a model input (h, w)


@dataclass(frozen=True, slots=True)
class PlateRegion:
    """A plate-like text region.

    Attributes:
        lines: Corners (tl, tr, br, bl) of each text line in frame pixels, top first.
        score: Mean text probability of the detector over the lines.
    """

    lines: tuple[npt.NDArray[np.float32], ...]
    score: float

    @property
    def box(self) -> Box:
        """Axis-aligned box around all lines, ``(x1, y1, x2, y2)``."""
        import numpy as np

        pts = np.concatenate(self.lines)
        return (
            float(pts[:, 0].min()),
            float(pts[:, 1].min()),
            float(pts[:, 0].max()),
            float(pts[:, 1].max()),
        )

    @property
    def line_height(self) -> float:
        """Mean height of the region's lines in frame pixels (its text size)."""
        return sum(_geometry(line)[1] for line in self.lines) / len(self.lines)


def _geometry(corners: npt.NDArray[np.float32]) -> tuple[float, float, float, float]:
    """Centre y, height, left x and right x of a (roughly horizontal) box."""
    ys = corners[:, 1]
    xs = corners[:, 0]
    height = float((corners[3, 1] - corners[0, 1] + corners[2, 1] - corners[1, 1]) / 2)
    return float(ys.mean()), max(height, 1.0), float(xs.min()), float(xs.max())


def _same_line(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> bool:
    ya, ha, la, ra = _geometry(a)
    yb, hb, lb, rb = _geometry(b)
    similar = 0.7 <= ha / hb <= 1.45 and abs(ya - yb) < 0.35 * min(ha, hb)
    gap = max(lb - ra, la - rb)
    return similar and gap < 1.5 * min(ha, hb)


def _stacked(top: npt.NDArray[np.float32], bottom: npt.NDArray[np.float32]) -> bool:
    yt, ht, lt, rt = _geometry(top)
    yb, hb, lb, rb = _geometry(bottom)
    overlap = min(rt, rb) - max(lt, lb)
    return (
        0.5 <= ht / hb <= 2.0
        and 0 < yb - yt < 1.6 * max(ht, hb)
        and overlap > 0.6 * min(rt - lt, rb - lb)
    )


def _merge(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """One box around two boxes on one line: the outer corners of the left and right one."""
    import numpy as np

    left, right = (a, b) if a[:, 0].mean() <= b[:, 0].mean() else (b, a)
    return np.array([left[0], right[1], right[2], left[3]], dtype=np.float32)


def merge_lines(boxes: Sequence[TextBox]) -> list[tuple[npt.NDArray[np.float32], float]]:
    """Merge text boxes that continue one another on the same line, left to right."""
    items = sorted(((b.corners, b.score) for b in boxes), key=lambda cs: float(cs[0][0, 0]))
    merged: list[tuple[npt.NDArray[np.float32], float]] = []
    for corners, score in items:
        for i, (line, line_score) in enumerate(merged):
            if _same_line(line, corners):
                merged[i] = (_merge(line, corners), (line_score + score) / 2)
                break
        else:
            merged.append((corners, score))
    return merged


def plate_regions(boxes: Sequence[TextBox]) -> list[PlateRegion]:
    """Group detected text boxes into plate-like regions (one or two lines), best first."""
    lines = [
        (c, s)
        for c, s in merge_lines(boxes)
        if _geometry(c)[1] >= MIN_TEXT_HEIGHT
        and (_geometry(c)[3] - _geometry(c)[2]) / _geometry(c)[1] >= MIN_ASPECT * 0.6
    ]
    regions: list[PlateRegion] = []
    for c, s in lines:
        _, h, left, right = _geometry(c)
        if MIN_ASPECT <= (right - left) / h <= MAX_ASPECT:
            regions.append(PlateRegion((c,), s))
    for (top, st), (bottom, sb) in ((a, b) for a in lines for b in lines if a is not b):
        if _stacked(top, bottom):
            regions.append(PlateRegion((top, bottom), (st + sb) / 2))
    return sorted(regions, key=lambda r: -_area(r.box) * r.score)


def _area(box: Box) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


class PlateLocator:
    """Finds plate-like text regions in a frame or inside given vehicle boxes."""

    def __init__(self, detector: TextDetector, max_side: int = 320) -> None:
        """Args:
        detector: The PP-OCR text detector.
        max_side: Longer side (pixels) each image or vehicle crop is scaled to for
            detection; plates stay readable for detection down to ~8 px tall.
        """
        self._detector = detector
        self.max_side = max_side

    def locate(
        self,
        frame: npt.NDArray[np.uint8],
        vehicles: Sequence[Box] | None = None,
        max_side: int | None = None,
        *,
        upscale: float = 1.0,
    ) -> list[PlateRegion]:
        """Plate regions in frame pixels: in each vehicle box, or in the whole frame.

        Args:
            frame: BGR image.
            vehicles: Boxes to search in; None or empty searches the whole frame.
            max_side: Detection scale for this call instead of the default.
            upscale: How far an image (or vehicle crop) smaller than ``max_side`` may be
                scaled up towards it (a factor; 1 never enlarges).
        """
        import numpy as np

        side = max_side or self.max_side
        if not vehicles:
            return plate_regions(self._detector.detect(frame, side, upscale=upscale))
        h, w = frame.shape[:2]
        regions: list[PlateRegion] = []
        for x1, y1, x2, y2 in vehicles:
            left, top = max(0, int(x1)), max(0, int(y1))
            right, bottom = min(w, int(x2 + 1)), min(h, int(y2 + 1))
            if right - left < 16 or bottom - top < 16:
                continue
            crop = frame[top:bottom, left:right]
            offset = np.array([left, top], dtype=np.float32)
            for region in plate_regions(self._detector.detect(crop, side, upscale=upscale)):
                lines = tuple(line + offset for line in region.lines)
                regions.append(PlateRegion(lines, region.score))
        return regions

    def locate_in_plates(
        self,
        frame: npt.NDArray[np.uint8],
        finder: PlateBoxDetector,
        vehicles: Sequence[Box] | None = None,
    ) -> list[PlateRegion]:
        """Text regions inside the plate boxes ``finder`` sees in each vehicle box (or the
        whole frame), in frame pixels (:func:`edge_agent.plate_detect.regions_in_boxes`)."""
        from edge_agent.plate_detect import regions_in_boxes

        h, w = frame.shape[:2]
        areas = vehicles or [(0.0, 0.0, float(w), float(h))]
        regions: list[PlateRegion] = []
        for x1, y1, x2, y2 in areas:
            left, top = max(0, int(x1)), max(0, int(y1))
            right, bottom = min(w, int(x2 + 1)), min(h, int(y2 + 1))
            if right - left < 16 or bottom - top < 16:
                continue
            boxes = [
                (bx1 + left, by1 + top, bx2 + left, by2 + top)
                for bx1, by1, bx2, by2 in finder.detect(frame[top:bottom, left:right])
            ]
            regions.extend(regions_in_boxes(self._detector, frame, boxes))
        return regions
