"""The plate-reading seam: a BGR frame (and optional vehicle boxes) in, plate reads out.

``PPOCRPlateReader`` locates plate-like text with PP-OCR detection on a downscaled image
(:mod:`edge_agent.plate_locate`), cuts and rectifies each candidate line from the full
frame, reads it with PP-OCR recognition restricted to plate characters and lets the plate
grammar (:func:`shared.plates.candidates`) rank the readings. Regions are read best-ranked
first and reading stops at the first confident read in a national format, so a frame
usually costs one detection and one recognition; an uncertain region is read from two
more cuts that vote, and only when nothing confident turns up is the frame searched again
at finer scales (``fallback_side``, then ``fine_side``), inside the boxes of a plate
detector (``finder``, :mod:`edge_agent.plate_detect`) and, last, on the frame scaled *up*
(``zoom_side``: DB misses some plates at every scale up to the photo's own). A finer look
reads new places first and then, for stills, places an earlier look read without result
(``relook_unread``: its tighter box often reads what the coarse one could not). Reads are
ranked by plausibility (:mod:`edge_agent.plate_rank`) and, mildly, by text size. The raw
OCR text is kept as read; the grammar only proposes and orders candidates. Only candidates that
:func:`edge_agent.plate_gate.is_plate` accepts (a named format, or the generic fallback
under stricter rules) are reported, one per place.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from edge_agent.plate_gate import (
    WEAK_FORMATS,
    generic_only_first,
    is_plate,
    one_per_place,
    weak_only_tallest,
)
from edge_agent.plate_locate import SEARCH_SHAPE
from edge_agent.plate_rank import (
    SIZE_EXPONENT,
    WEAK_SIZE_EXPONENT,
    drop_partial,
    overlaps_any,
    plate_score,
    second_guess,
    shares_line,
    size_factor,
    vote,
)
from shared import plates
from shared.wire import Plate, PlateCandidate

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import openvino as ov

    from edge_agent.ocr import TextRead, TextRecognizer
    from edge_agent.plate_detect import PlateBoxDetector
    from edge_agent.plate_locate import PlateLocator, PlateRegion
    from models.store import ModelStore

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]
Alternatives = list[tuple[tuple[str, float], ...]]

# Margin around a detected line, in line heights: DB boxes can clip the first or last glyph.
_MARGIN_X: Final = 0.2
_MARGIN_Y: Final = 0.06
# Margins of the two more cuts of an uncertain region, as (x, y) in line heights: both
# wider (a box may clip the first or last glyph), one loose, one tight (a loose box leaves
# the glyphs small; a negative margin cuts into the box).
_REREAD_CUTS: Final = ((_MARGIN_X * 2, _MARGIN_Y * 2), (_MARGIN_X * 2, -0.05))
# Kinds of look (:meth:`PPOCRPlateReader._looks`).
_SCALE: Final = "scale"  # text detection on the frame scaled down to a side
_PLATE_BOXES: Final = "plate boxes"  # text detection inside the plate detector's boxes
_ZOOM: Final = "zoom"  # text detection on the frame scaled up to a side
_ZOOM_MIN_SHARE: Final = 1 / 40  # the zoom look's least text height, of the area's height
# The zoom look enlarges at most this much: a 1280-pixel photo goes to 1600 px, a
# 300-pixel vehicle box to 600 px rather than 1600 (DB's cost grows with the area).
_ZOOM_MAX_FACTOR: Final = 2.0


class PlateReader(abc.ABC):
    """Reads licence plates in a frame."""

    @abc.abstractmethod
    def read(
        self, frame: npt.NDArray[np.uint8], vehicles: Sequence[Box] | None = None
    ) -> list[Plate]:
        """Plates in a BGR frame, most plate-like first.

        Args:
            frame: The camera frame, BGR, ``[H, W, 3]`` uint8.
            vehicles: Vehicle boxes ``(x1, y1, x2, y2)`` in frame pixels to search in;
                None or empty searches the whole frame.
        """


class PPOCRPlateReader(PlateReader):
    """PP-OCR text detection + recognition with the plate grammar."""

    def __init__(
        self,
        locator: PlateLocator,
        recognizer: TextRecognizer,
        *,
        max_regions: int = 4,
        min_confidence: float = 0.3,
        top_n: int = 5,
        stop_confidence: float = 0.6,
        fallback_side: int | None = 640,
        fine_side: int | None = 960,
        reread_below: float = 0.8,
        finder: PlateBoxDetector | None = None,
        relook_unread: bool = True,
        zoom_side: int | None = 1600,
    ) -> None:
        """Args:
        locator: Finds plate-like text regions.
        recognizer: Reads text lines.
        max_regions: Read at most this many regions per frame (or per vehicle set).
        min_confidence: Drop reads whose best candidate is less confident.
        top_n: Candidates to keep per plate.
        stop_confidence: Stop reading a frame's (or vehicle's) regions once a read in a
            national format reaches this confidence.
        fallback_side: Detection scale for a second look when the first finds no
            confident read; None disables it (and the third look).
        fine_side: Detection scale for a third look when the second finds no
            confident read either (text a dozen pixels tall in a 1280-pixel photo,
            as a US plate's characters often are); None disables it.
        reread_below: Read a region twice more, cut differently, and let the three
            readings vote (:func:`vote`) when its best reading is less confident
            than this.
        finder: A plate detector whose boxes are searched for text last, when the
            finer looks found no confident read either (needs ``fallback_side``).
        relook_unread: Let the finer looks read again a place a coarser look read
            without a confident read coming of it. The coarse box of a small plate
            often cuts it badly (a US plate's box at 320 px takes in its frame and reads
            ``HLOKTY1`` from one cut and ``HL0K1Y`` from the next, a vote below the gate;
            a two-line plate's top row loses a group); the box the finer look draws is
            tighter. Costs recognitions only on frames without a confident read: on
            for stills, off for video (the next frames look again).
        zoom_side: Detection scale of the last look, after the others found no
            confident read, with the image scaled *up* towards it when smaller (at
            most twice, :data:`_ZOOM_MAX_FACTOR`). DB
            misses some plates at every scale up to the photo's own and sees them
            enlarged: embossed or thin glyphs on a busy plate (a US plate's characters
            9-15 px tall in a 1280-pixel photo). The slowest look, so it comes last and
            only for frames without a confident read; None disables it (video).
        """
        self._locator = locator
        self._recognizer = recognizer
        self.max_regions = max_regions
        self.min_confidence = min_confidence
        self.top_n = top_n
        self.stop_confidence = stop_confidence
        self.fallback_side = fallback_side
        self.fine_side = fine_side
        self.finder = finder
        self.reread_below = reread_below
        self.relook_unread = relook_unread
        self.zoom_side = zoom_side

    @classmethod
    def from_paths(
        cls,
        det_model: Path,
        rec_model: Path,
        *,
        device: str = "CPU",
        core: ov.Core | None = None,
        max_side: int = 320,
        static_shapes: Sequence[tuple[int, int]] = (SEARCH_SHAPE,),
        plate_model: Path | None = None,
    ) -> PPOCRPlateReader:
        """Build a reader from the PP-OCR detection and recognition model files.

        ``static_shapes`` are the ``(height, width)`` detection inputs that get a static
        (faster) model: by default the one a landscape frame scaled to ``max_side`` 320
        fits in, which is also the edge pipeline's video search window.
        ``plate_model`` is the plate detector whose boxes are searched last
        (:class:`~edge_agent.plate_detect.PlateBoxDetector`); None leaves it out.
        """
        import openvino as ov

        from edge_agent.ocr import TextDetector, TextRecognizer
        from edge_agent.plate_locate import PlateLocator

        core = core or ov.Core()
        detector = TextDetector(det_model, core, device, static_shapes=static_shapes)
        locator = PlateLocator(detector, max_side=max_side)
        finder = None
        if plate_model is not None:
            from edge_agent.plate_detect import PlateBoxDetector

            finder = PlateBoxDetector(plate_model, core)
        return cls(locator, TextRecognizer(rec_model, core, device), finder=finder)

    @classmethod
    def from_store(cls, store: ModelStore, *, device: str = "CPU") -> PPOCRPlateReader:
        """Build a reader from the verified PP-OCR models and plate detector of a store."""
        from edge_agent.plate_detect import PLATE_DETECTOR

        return cls.from_paths(
            store.path("PP-OCRv6_det_small"),
            store.path("PP-OCRv6_rec_small"),
            device=device,
            plate_model=store.path(PLATE_DETECTOR),
        )

    def read(
        self, frame: npt.NDArray[np.uint8], vehicles: Sequence[Box] | None = None
    ) -> list[Plate]:
        """Plates in a BGR frame, most plate-like first (see :class:`PlateReader`).

        Each vehicle box (or the whole frame when none are given) is searched on its
        own: its regions are read best-ranked first until one gives a confident read in
        a national format.
        """
        rois: list[Sequence[Box] | None] = [[v] for v in vehicles] if vehicles else [None]
        scored: list[tuple[float, Plate]] = []
        for roi in rois:
            regions = self._locator.locate(frame, roi)[: self.max_regions]
            tallest = max((r.line_height for r in regions), default=1.0)
            found = self._read_regions(frame, regions, tallest)
            for kind, side in self._looks():
                if self._confident(found):
                    break
                if kind == _PLATE_BOXES and self.finder is not None:
                    # Plates too dark or blurred for text detection alone: search for
                    # text inside the boxes a plate detector finds.
                    again = self._locator.locate_in_plates(frame, self.finder, roi)
                else:
                    # Small or faint plates: look again at a finer scale.
                    enlarge = _ZOOM_MAX_FACTOR if kind == _ZOOM else 1.0
                    again = self._locator.locate(frame, roi, side, upscale=enlarge)
                if kind == _ZOOM:
                    again = _tall_enough(again, frame, roi)
                fresh = self._fresh(again, regions)
                reads = self._read_regions(frame, fresh, tallest)
                found.extend([sp for sp in reads if not second_guess(sp[1], found)])
                regions.extend(fresh)
            scored.extend(generic_only_first(weak_only_tallest(drop_partial(found))))
        return [plate for _, plate in one_per_place(scored)]

    def _fresh(
        self, again: Sequence[PlateRegion], regions: Sequence[PlateRegion]
    ) -> list[PlateRegion]:
        """The regions of a new look worth reading: new places first, then (with
        ``relook_unread``) places an earlier look read, ``max_regions`` in all. A finer
        look only runs when no read so far is confident, so an earlier read of the place
        was wrong, partial (``IA9086`` from a box that cut ``TH`` off a two-line plate)
        or none. New places keep their turn: a re-read badge must not crowd out a plate."""
        new = [r for r in again if not overlaps_any(r, regions)]
        relooked = [r for r in again if self.relook_unread and overlaps_any(r, regions)]
        return (new + relooked)[: self.max_regions]

    def _looks(self) -> list[tuple[str, int]]:
        """The looks after the first, in order, as ``(kind, detection scale)``: finer
        scales, the plate detector's boxes, then the enlarged zoom look (none without a
        fallback)."""
        if not self.fallback_side:
            return []
        looks = [(_SCALE, self.fallback_side)]
        if self.fine_side and self.fine_side > self.fallback_side:
            looks.append((_SCALE, self.fine_side))
        if self.finder is not None:
            looks.append((_PLATE_BOXES, 0))
        if self.zoom_side and self.zoom_side > max(side for _, side in looks):
            looks.append((_ZOOM, self.zoom_side))
        return looks

    def _confident(self, found: Sequence[tuple[float, Plate]]) -> bool:
        return any(p.format != plates.GENERIC and s >= self.stop_confidence for s, p in found)

    def _read_regions(
        self, frame: npt.NDArray[np.uint8], regions: Sequence[PlateRegion], tallest: float
    ) -> list[tuple[float, Plate]]:
        """Read regions in order until a confident national read; ``tallest`` is the
        text height the frame's regions are measured against (:func:`size_factor`)."""
        found: list[tuple[float, Plate]] = []
        for i, region in enumerate(regions):
            scored = self._read_region(frame, region, tallest)
            if scored is None:
                continue
            found.append(scored)
            if self._confident(found):
                # Another pairing of the same line may be the plate: the rings of an
                # Audi's badge (``000``) stacked over ``KA EK`` read ``KA000EK`` (0.77)
                # while ``KA EK`` over ``6003`` is the plate (1.0). Read those too and
                # let the places keep their best (one_per_place).
                rivals = [r for r in regions[i + 1 :] if shares_line(r, region)]
                found.extend(
                    sp for r in rivals if (sp := self._read_region(frame, r, tallest)) is not None
                )
                break
        return found

    def _read_region(
        self, frame: npt.NDArray[np.uint8], region: PlateRegion, tallest: float
    ) -> tuple[float, Plate] | None:
        """One region's plate read and its score, or None when it reads no plate."""
        lines = self._recognizer.recognize([plate_crop(frame, c) for c in region.lines])
        plate = self._plate(region, lines)
        if plate is not None and plate.confidence < self.reread_below:
            plate = self._reread(frame, region, plate)
        if plate is None or not is_plate(plate.text, plate.format, plate.confidence, plate.raw):
            return None
        exponent = WEAK_SIZE_EXPONENT if plate.format in WEAK_FORMATS else SIZE_EXPONENT
        return plate_score(plate) * size_factor(region.line_height, tallest, exponent), plate

    def _reread(
        self, frame: npt.NDArray[np.uint8], region: PlateRegion, plate: Plate
    ) -> Plate | None:
        """A vote over more cuts of an uncertain region.

        Two crops of one plate often disagree on one ambiguous glyph (``RK708AT`` 0.74
        against ``RK708AI`` 0.69), by margins that are noise. The region is read again
        from two wider cuts, one framing the line loosely and one tightly
        (:data:`_REREAD_CUTS`); the reading the cuts support most wins, as confident as
        their mean support (None below ``min_confidence``).
        """
        reads = [plate]
        for mx, my in _REREAD_CUTS:
            crops = [plate_crop(frame, c, mx, my) for c in region.lines]
            other = self._plate(region, self._recognizer.recognize(crops))
            if other is not None:
                reads.append(other)
        voted = vote(reads)
        return voted if voted.confidence >= self.min_confidence else None

    def _plate(self, region: PlateRegion, lines: list[TextRead]) -> Plate | None:
        best: list[plates.Candidate] = []
        for order in line_orders(lines):
            found = plates.candidates(order, self.top_n)
            if found and (not best or found[0].confidence > best[0].confidence):
                best = found
        if not best or best[0].confidence < self.min_confidence:
            return None
        top = best[0]
        raw = " ".join(line.text for line in lines)
        return Plate(
            text=top.text,
            raw=raw[:64],
            confidence=round(top.confidence, 4),
            candidates=[PlateCandidate(c.text, round(c.confidence, 4)) for c in best],
            char_confidences=[
                round(p, 4) for line in lines for p in line.char_confidences if p >= 0
            ][:32],
            format=top.format,
            region=plates.parse(top.text).region,
            box=region.box,
        )


def _tall_enough(
    regions: Sequence[PlateRegion], frame: npt.NDArray[np.uint8], roi: Sequence[Box] | None
) -> list[PlateRegion]:
    """The zoom look's regions whose text is at least :data:`_ZOOM_MIN_SHARE` of the
    searched area's height. The look is for plates DB misses although their glyphs are
    large; text only the enlarged image shows because it is small is a camera's clock
    or date overlay far more often (``7I05818`` from ``17:05:18``, 12 px in a 720-pixel
    frame, where the plates this look finds are 21 px and taller)."""
    height = roi[0][3] - roi[0][1] if roi else float(frame.shape[0])
    return [r for r in regions if r.line_height >= height * _ZOOM_MIN_SHARE]


def line_orders(lines: Sequence[TextRead]) -> list[Alternatives]:
    """Per-character alternatives of a region in each plausible reading order.

    Two lines are joined either way round; a line of digits may also sit between the
    halves of the other line (``1234`` over ``AA BB`` reads ``AA1234BB``). A line
    with fewer than two letters or digits is a mark, not plate text: no orders.
    """
    alts = [list(line.alternatives) for line in lines]
    if len(alts) == 1:
        return [alts[0]]
    texts = ["".join(c for c in plates.fold(line.text) if c.isalnum()) for line in lines]
    if len(alts) != 2 or min(len(t) for t in texts) < 2:
        return []
    top, bottom = alts[0], alts[1]
    orders = [top + bottom, bottom + top]
    for (digits, letters), (dt, lt) in zip(
        ((top, bottom), (bottom, top)), ((texts[0], texts[1]), (texts[1], texts[0])), strict=True
    ):
        # The letters line need not read as letters: a square plate's ``KA OO`` often
        # reads ``KA 00``, and the grammar takes the 0s for the Os there.
        if dt.isdigit() and not lt.isdigit():
            half = len(letters) // 2
            orders.append(letters[:half] + digits + letters[half:])
    return orders


def plate_crop(
    frame: npt.NDArray[np.uint8],
    corners: npt.NDArray[np.float32],
    margin_x: float = _MARGIN_X,
    margin_y: float = _MARGIN_Y,
) -> npt.NDArray[np.uint8]:
    """Rectified crop of one text line with a margin (DB boxes hug the glyphs)."""
    from edge_agent.ocr import warp_quad

    return warp_quad(frame, expand(corners, margin_x, margin_y), height=48)


def expand(corners: npt.NDArray[np.float32], dx: float, dy: float) -> npt.NDArray[np.float32]:
    """Grow a quadrilateral along its own axes by ``dx``/``dy`` times its height."""
    import numpy as np

    tl, tr, br, bl = corners.astype(np.float32)
    across = (tr - tl + br - bl) / 2
    down = (bl - tl + br - tr) / 2
    height = float(np.linalg.norm(down))
    ux = across / max(float(np.linalg.norm(across)), 1e-6) * dx * height
    uy = down / max(height, 1e-6) * dy * height
    return np.array([tl - ux - uy, tr + ux - uy, br + ux + uy, bl - ux + uy], dtype=np.float32)
