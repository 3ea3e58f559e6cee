"""What counts as a plate: the grammar a read must fit, and one plate per place.

Text detection finds every line of text on a car and around it: badges (``CHEVROLET``,
``GS300``), dealer stickers, lettering on trucks (``BARWOOD``, ``SQUAD``), shop signs and
a camera's on-screen clock (``20180412150248``, ``IPC``). Such a read becomes a false
alert the moment a fuzzy or wildcard wanted entry is near it, so a read is a plate only
when (:func:`is_plate`):

- it fits a named plate format (:data:`shared.plates.FORMATS`: Ukrainian, Slovak,
  Czech, Polish, UK, ...) with a confidence of at least :data:`MIN_FORMAT_CONFIDENCE`;
  one with no digit at all (Slovak personalised plates like ``KMBORAK``, but also
  ``BA`` + ``RWOOD``) needs :data:`MIN_LETTERS_ONLY_CONFIDENCE`;
- or it is the generic fallback (plates of other countries and personalised plates)
  under stricter rules: five to eight characters holding both letters and digits, or
  exactly seven digits read as one group (US numeric plates; a clock reads with dashes
  and dots: ``2014-06-1``), with a mean character probability of at least
  :data:`MIN_GENERIC_OCR` (a generic candidate's confidence is that times the generic
  prior, 0.4).

Measured on the reads the reader returned before this gate (plates-us, plates-eu,
plates-ua-dev, vehicles-street, traffic-video frames): every exact read in a named
format had confidence 0.50 or more, every false one 0.33 or less (and BARWOOD 0.40);
of 305 false generic reads, 298 lacked letters or digits or had another length, while
10 of the 113 exact generic reads were letters or digits only (7 of them seven digits).

A place holds one plate: of reads whose boxes overlap (:func:`one_per_place`), only the
best-scored is kept (a second text box over the same plate reads as ``KA000EK`` next to
``KA6003EK``). And a generic read that is not the best read of its search area (a vehicle
box, or the whole frame) is dropped (:func:`generic_only_first`): it is a sticker or a
badge next to the car's plate (``14MILE`` beside ``WA56660``, ``GS300`` beside a US
plate) more often than a second car's plate, whose vehicle box the edge pipeline searches
on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from shared import plates

if TYPE_CHECKING:
    from shared.wire import Plate

MIN_FORMAT_CONFIDENCE: Final = 0.45
MIN_LETTERS_ONLY_CONFIDENCE: Final = 0.45
MIN_GENERIC_OCR: Final = 0.86
MIN_US_CONFIDENCE: Final = 0.5
#: Formats that say little about a text: the generic fallback and the US layouts (three
#: letters and three digits fit a dealer sticker as well as a plate).
WEAK_FORMATS: Final = frozenset({plates.GENERIC, plates.US})
_SAME_PLACE: Final = 0.5  # share of the smaller box inside the other: one place
_WEAK_MIN_HEIGHT: Final = 0.8  # a weak read's text height against the tallest read's


def is_plate(text: str, format_name: str, confidence: float, raw: str = "") -> bool:
    """Whether a read may be reported as a plate (see the module docstring).

    Args:
        text: The read, folded (Latin look-alikes, letters and digits).
        format_name: Its format from :func:`shared.plates.candidates`.
        confidence: Its candidate confidence.
        raw: The OCR text it was read from.
    """
    has_digit = any(c.isdigit() for c in text)
    has_letter = any(c.isalpha() for c in text)
    if format_name == plates.US:
        return confidence >= MIN_US_CONFIDENCE
    if format_name and format_name != plates.GENERIC:
        floor = MIN_FORMAT_CONFIDENCE if has_digit else MIN_LETTERS_ONLY_CONFIDENCE
        return confidence >= floor
    if confidence < MIN_GENERIC_OCR * plates.GENERIC_PRIOR:
        return False
    if has_digit and has_letter:
        return 5 <= len(text) <= 8
    return has_digit and len(text) == 7 and raw.strip().isalnum()


def one_per_place(scored: Sequence[tuple[float, Plate]]) -> list[tuple[float, Plate]]:
    """The best-scored read of each place: a read whose box lies mostly (half the
    smaller box) over a better read's box is dropped."""
    kept: list[tuple[float, Plate]] = []
    for score, plate in sorted(scored, key=lambda sp: -sp[0]):
        if not any(_overlap(plate, other) >= _SAME_PLACE for _, other in kept):
            kept.append((score, plate))
    return kept


def weak_only_tallest(scored: Sequence[tuple[float, Plate]]) -> list[tuple[float, Plate]]:
    """The reads of one search area without weak ones (:data:`WEAK_FORMATS`) whose text
    is clearly smaller than the tallest read's: a plate is the largest text on a car
    that reads as a plate; a dealer sticker under it (``OSW722`` under ``FWE50``) fits a
    US layout as well as a plate does."""
    tallest = max((_height(p) for _, p in scored), default=0.0)
    return [
        (s, p)
        for s, p in scored
        if p.format not in WEAK_FORMATS or _height(p) >= _WEAK_MIN_HEIGHT * tallest
    ]


def _height(plate: Plate) -> float:
    return plate.box[3] - plate.box[1] if plate.box is not None else 0.0


def generic_only_first(scored: Sequence[tuple[float, Plate]]) -> list[tuple[float, Plate]]:
    """The reads of one search area without the weak ones (:data:`WEAK_FORMATS`) that
    are not its best."""
    ranked = sorted(scored, key=lambda sp: -sp[0])
    return [sp for i, sp in enumerate(ranked) if i == 0 or sp[1].format not in WEAK_FORMATS]


def _overlap(a: Plate, b: Plate) -> float:
    if a.box is None or b.box is None:
        return 0.0
    (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = a.box, b.box
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    smaller = min((ax2 - ax1) * (ay2 - ay1), (bx2 - bx1) * (by2 - by1))
    return inter / smaller if smaller > 0 else 0.0
