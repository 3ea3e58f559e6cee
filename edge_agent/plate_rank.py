"""Choosing among plate reads: how plausible a read is, which read of a place stands.

:class:`edge_agent.plate_reader.PPOCRPlateReader` reads several places and several cuts of
a place; these functions weigh the reads (:func:`plate_score`, :func:`size_factor`),
merge the cuts of one place (:func:`vote`) and drop reads a better one makes redundant
(:func:`drop_partial`, :func:`second_guess`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import msgspec
import numpy as np

from shared import plates
from shared.wire import Plate, PlateCandidate

if TYPE_CHECKING:
    from edge_agent.plate_locate import PlateRegion

Box = tuple[float, float, float, float]

_NO_DIGIT_FACTOR: Final = 0.6  # most plates hold digits; vanity plates and shop signs may not
_NO_LETTER_FACTOR: Final = 0.6  # no plate format is digits only; years and phone numbers are
_GENERIC_FACTOR: Final = 0.9
_ODD_LENGTH_FACTOR: Final = 0.8  # plates hold 4-8 characters
SIZE_EXPONENT: Final = 0.25  # text half as tall as the tallest scores 16 % less
WEAK_SIZE_EXPONENT: Final = 1.0  # for generic and US reads: half as tall, half the score
_SAME_PLACE_IOU: Final = 0.5  # boxes of two reads of one place overlap at least this


def second_guess(plate: Plate, found: Sequence[tuple[float, Plate]]) -> bool:
    """Whether a finer look's read only second-guesses an earlier read of its place.

    A place is read again when no read so far is confident, but a reading of the same
    glyphs is no new evidence: a generic read (a coin toss between two weak readings), or
    a read that differs from the earlier one only by look-alikes, which the grammar
    bends into a named format from a tighter crop (``SO57703``, Polish, over a
    diplomatic plate's ``S057703``). The earlier read stands. A read that holds more
    (``IA9086TH`` over ``IA9086``), the same text again or a read of a place with no
    read yet is kept.
    """
    for _, other in found:
        if plate.text == other.text or iou(plate.box, other.box) <= _SAME_PLACE_IOU:
            continue  # the same read again is kept: its box may fit the plate better
        if plate.format == plates.GENERIC or look_alikes(plate.text, other.text):
            return True
    return False


def look_alikes(a: str, b: str) -> bool:
    """Whether two texts differ only by look-alike characters (``0``/``O``, ``1``/``I``, ...)."""
    return len(a) == len(b) and all(
        x == y or y in plates.CONFUSIONS.get(x, "") for x, y in zip(a, b, strict=True)
    )


def vote(reads: Sequence[Plate]) -> Plate:
    """The reading of one region that its readings (of different cuts) support most.

    A text's support is the mean of the confidences the readings give it among their
    candidates. The reading that rates the best-supported text highest is returned with
    that text, the support as its confidence and the texts ranked by support as its
    candidates: cuts that disagree give a less confident read (and a frame whose reads
    all disagree is searched again at a finer scale).

    Args:
        reads: Readings of one region, each with its candidates.
    """
    support: dict[str, float] = {}
    for read in reads:
        for cand in read.candidates:
            support[cand.text] = support.get(cand.text, 0.0) + cand.confidence / len(reads)
    ranked = sorted(support, key=lambda text: -support[text])
    best = ranked[0]

    def rating(read: Plate) -> float:
        return max((c.confidence for c in read.candidates if c.text == best), default=0.0)

    source = max(reads, key=rating)
    info = plates.parse(best)
    return msgspec.structs.replace(
        source,
        text=best,
        confidence=round(min(support[best], 1.0), 4),
        candidates=[PlateCandidate(t, round(min(support[t], 1.0), 4)) for t in ranked][
            : len(source.candidates)
        ],
        format=source.format if best == source.text else info.format,
        region=source.region if best == source.text else info.region,
    )


def drop_partial(found: Sequence[tuple[float, Plate]]) -> list[tuple[float, Plate]]:
    """Drop reads that a longer, about as plausible read of an overlapping region contains.

    A detection box that cuts a plate short reads as part of the plate; a longer read of
    the same place that holds it (and scores at least 80 % as well) is the fuller read.
    """

    def letters(plate: Plate) -> str:
        return "".join(c for c in plates.fold(plate.raw) if c.isalnum())

    def covered(score: float, plate: Plate) -> bool:
        text = letters(plate)
        return any(
            other_score >= 0.8 * score
            and len(letters(other)) > len(text)
            and text in letters(other)
            and iou(plate.box, other.box) > 0.2
            for other_score, other in found
        )

    return [(score, plate) for score, plate in found if not covered(score, plate)]


def iou(a: Box | None, b: Box | None) -> float:
    if a is None or b is None:
        return 0.0
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(
        0.0, min(a[3], b[3]) - max(a[1], b[1])
    )
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def overlaps_any(region: PlateRegion, others: Sequence[PlateRegion]) -> bool:
    """Whether a region is nearly the same box as one already read (IoU above 0.7)."""
    return any(iou(region.box, other.box) > 0.7 for other in others)


def shares_line(region: PlateRegion, other: PlateRegion) -> bool:
    """Whether two regions of two lines pair one line each with a different other line
    (another reading of the same stacked text)."""
    if len(region.lines) != 2 or len(other.lines) != 2:
        return False
    same = [bool(np.allclose(a, b, atol=1.0)) for a in region.lines for b in other.lines]
    return sum(same) == 1


def plate_score(plate: Plate) -> float:
    """How plate-like a read is: its confidence, lowered for texts without digits or
    without letters and for lengths plates rarely have."""
    score = plate.confidence
    if not 4 <= len(plate.text) <= 8:
        score *= _ODD_LENGTH_FACTOR
    if not any(c.isdigit() for c in plate.text):
        score *= _NO_DIGIT_FACTOR
    if not any(c.isalpha() for c in plate.text):
        score *= _NO_LETTER_FACTOR
    if plate.format == plates.GENERIC:
        score *= _GENERIC_FACTOR
    return score


def size_factor(height: float, tallest: float, exponent: float = SIZE_EXPONENT) -> float:
    """Weight of a read by its text size relative to the tallest text found in the frame.

    A plate is usually the largest line of text on a car; captions, watermarks and
    stickers (``2011``, ``SW722``) are smaller. Mild: it only settles reads of about
    equal plausibility, as the format and the confidence still decide the rest. Reads
    in a weak format (:data:`~edge_agent.plate_gate.WEAK_FORMATS`) are weighed by size
    in proportion (``exponent`` 1): a dealer sticker below a plate (``OSW722`` under
    ``FWE50``) fits a US layout as well as the plate does.
    """
    return float(min(1.0, height / max(tallest, 1e-6)) ** exponent)


__all__ = [
    "SIZE_EXPONENT",
    "WEAK_SIZE_EXPONENT",
    "drop_partial",
    "iou",
    "look_alikes",
    "overlaps_any",
    "plate_score",
    "second_guess",
    "size_factor",
    "vote",
]
