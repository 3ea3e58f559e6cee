"""Ukrainian licence plates drawn with Pillow, front view, for the synthetic test set.

A :class:`PlateSpec` says what is on a plate (text, layout, colours, holder); :func:`render`
draws it at a given resolution. Geometry is in millimetres after the plates of DSTU 4278
as seen on the road: the one-line plate is 520 x 112 mm with a thin border, characters
about 76 mm tall at a fixed pitch, a gap between groups and a blue band on the left
(2015: the flag over ``UA``; 2004: a yellow trident over ``UA`` on yellow); the square plate
(280 x 200 mm) puts the letters over the digits; the 1995 plate has the flag with the
numeric region code under it and no band. Characters are the Open DIN font
(``fonts-opendin``, the DIN 1451 look of real plates) or, when it is missing, DejaVu Sans
Condensed Bold condensed further to plate proportions.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from PIL import ImageDraw, ImageFont

#: Font files tried in order: Debian's fonts-opendin, then fonts-dejavu-core.
FONT_CANDIDATES: Final = (
    Path("/usr/share/fonts/truetype/opendin/OSP-DIN.ttf"),
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf"),
)
FONT_PACKAGES: Final = ("fonts-opendin", "fonts-dejavu-core")

Colour = tuple[int, int, int]
WHITE: Final[Colour] = (244, 245, 241)
BLACK: Final[Colour] = (22, 22, 24)
BLUE: Final[Colour] = (0, 87, 183)
YELLOW: Final[Colour] = (255, 213, 0)
#: Plate ground -> (ground colour, character and border colour).
GROUNDS: Final[dict[str, tuple[Colour, Colour]]] = {
    "white": (WHITE, BLACK),
    "yellow": ((250, 206, 40), BLACK),  # buses and taxis
    "red": ((196, 26, 38), WHITE),  # transit, diplomatic
    "black": ((20, 20, 22), WHITE),  # military
}
#: Plate size in millimetres by number of text rows.
SIZES_MM: Final = {1: (520.0, 112.0), 2: (280.0, 200.0)}
_CHAR_MM: Final = {1: 77.0, 2: 70.0}  # character (cap) height
_GLYPH_ASPECT: Final = 0.6  # width / height of a plate "0"
_GAP: Final = 0.45  # a space between groups, in character pitches
_BAND_MM: Final = 40.0
_HOLDER_MM: Final = (7.0, 7.0, 7.0, 17.0)  # plate holder margin: left, top, right, bottom


@dataclass(frozen=True, slots=True)
class PlateSpec:
    """What is on one plate.

    Attributes:
        kind: Layout name (``ua_current``, ``ua_ev``, ``ua_square``, ``ua_1995``,
            ``ua_transit``, ``ua_diplomatic``, ``ua_military``).
        text: The registration as the ground truth writes it: Latin look-alikes, no gaps.
        rows: The characters as printed, top row first; a space is a gap between groups,
            two spaces a wide one, ``-`` a printed dash.
        region: Region label (``UA-AT``) where the text names one, else empty.
        numeric_region: The two-digit region code printed under the flag (1995 plates).
        ground: Key of :data:`GROUNDS`.
        band: Left band: ``2015`` (flag over UA), ``2004`` (trident over UA), ``1995``
            (flag over the numeric region, no band) or ``none``.
        holder: Caption of a dark plastic plate holder around the plate; empty: none.
        screws: Whether screw heads sit in the gaps between groups.
    """

    kind: str
    text: str
    rows: tuple[str, ...]
    region: str = ""
    numeric_region: str = ""
    ground: str = "white"
    band: str = "2015"
    holder: str = ""
    screws: bool = False

    @property
    def size_mm(self) -> tuple[float, float]:
        """Width and height of the plate itself (without a holder) in millimetres."""
        return SIZES_MM[len(self.rows)]


@dataclass(frozen=True, slots=True)
class RenderedPlate:
    """A drawn plate: RGBA pixels and where the plate's own corners are in them."""

    rgba: npt.NDArray[np.uint8]
    corners: npt.NDArray[np.float32]  # tl, tr, br, bl of the plate (not the holder), pixel
    # centres at whole numbers


def find_font(path: Path | None = None) -> Path:
    """The plate font: ``path`` if given, else the first of :data:`FONT_CANDIDATES`.

    Raises:
        FileNotFoundError: No font file found; the message names the Debian packages.
    """
    for candidate in (path,) if path else FONT_CANDIDATES:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(p) for p in ((path,) if path else FONT_CANDIDATES))
    raise FileNotFoundError(
        f"no plate font found (tried {tried}); install the Debian packages "
        f"{' '.join(FONT_PACKAGES)} (./run setup does as root) or pass --font"
    )


@functools.lru_cache(maxsize=16)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    from PIL import ImageFont

    return ImageFont.truetype(path, size)


@functools.lru_cache(maxsize=4)
def _font_metrics(path: str) -> tuple[float, float]:
    """Cap height per point of font size and the factor that gives a plate-wide "0"."""
    font = _font(path, 200)
    _, top, _, bottom = font.getbbox("H", anchor="ls")
    left, _, right, _ = font.getbbox("0", anchor="ls")
    cap = (bottom - top) / 200
    aspect = (right - left) / max(bottom - top, 1)
    return cap, min(max(_GLYPH_ASPECT / aspect, 0.5), 1.2)


@functools.lru_cache(maxsize=512)
def _glyph(path: str, char: str, cap_px: int) -> tuple[bytes, int, int, int]:
    """One character as an ``L`` mask condensed to plate proportions.

    Returns:
        Mask bytes, width, height and the mask's top relative to the baseline.
    """
    from PIL import Image, ImageDraw

    cap_ratio, condense = _font_metrics(path)
    font = _font(path, max(4, round(cap_px / cap_ratio)))
    left, top, right, bottom = (round(v) for v in font.getbbox(char, anchor="ls"))
    # Plate dies are a little bolder than the font: thicken strokes by 1 % of the height.
    bold = round(cap_px * 0.01)
    left, top, right, bottom = left - bold, top - bold, right + bold, bottom + bold
    mask = Image.new("L", (right - left + 2, bottom - top + 2), 0)
    ImageDraw.Draw(mask).text(
        (1 - left, 1 - top),
        char,
        fill=255,
        font=font,
        anchor="ls",
        stroke_width=bold,
        stroke_fill=255,
    )
    width = max(1, round(mask.width * condense))
    mask = mask.resize((width, mask.height), Image.Resampling.LANCZOS)
    return mask.tobytes(), width, mask.height, top - 1


def render(spec: PlateSpec, font: Path, px_per_mm: float) -> RenderedPlate:
    """Draw a plate (and its holder) at ``px_per_mm`` pixels per millimetre."""
    import numpy as np
    from PIL import Image, ImageDraw

    w_mm, h_mm = spec.size_mm
    ml, mt, mr, mb = _HOLDER_MM if spec.holder else (0.0, 0.0, 0.0, 0.0)
    size = (math.ceil((w_mm + ml + mr) * px_per_mm), math.ceil((h_mm + mt + mb) * px_per_mm))
    image = Image.new("RGB", size, (0, 0, 0))
    alpha = Image.new("L", size, 0)
    draw, k = ImageDraw.Draw(image), px_per_mm
    plate = (ml * k, mt * k, (ml + w_mm) * k - 1, (mt + h_mm) * k - 1)
    if spec.holder:
        ImageDraw.Draw(alpha).rounded_rectangle((0, 0, size[0] - 1, size[1] - 1), 9 * k, 255)
        draw.rounded_rectangle((0, 0, size[0] - 1, size[1] - 1), 9 * k, fill=(28, 28, 30))
        _caption(draw, spec.holder, font, (size[0] / 2, (mt + h_mm + mb / 2) * k), 6.5 * k)
    else:
        ImageDraw.Draw(alpha).rounded_rectangle(plate, 5 * k, 255)
    ground, ink = GROUNDS[spec.ground]
    draw.rounded_rectangle(plate, 5 * k, fill=ground)
    inset = 1.6 * k
    border = (plate[0] + inset, plate[1] + inset, plate[2] - inset, plate[3] - inset)
    draw.rounded_rectangle(border, 4 * k, outline=ink, width=max(1, round(1.3 * k)))
    band_right = _band(draw, spec, font, (border[0], border[1], border[3]), k)
    _rows(draw, spec, font, (band_right + 4 * k, border[1], border[2] - 5 * k, border[3]), k)
    # The plate's outline in OpenCV's convention: pixel centres at whole numbers.
    x0, y0 = ml * k - 0.5, mt * k - 0.5
    x1, y1 = (ml + w_mm) * k - 0.5, (mt + h_mm) * k - 0.5
    corners = np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], dtype=np.float32)
    rgba = np.dstack([np.asarray(image), np.asarray(alpha)]).astype(np.uint8)
    return RenderedPlate(rgba, corners)


def _band(
    draw: ImageDraw.ImageDraw,
    spec: PlateSpec,
    font: Path,
    at: tuple[float, float, float],
    k: float,
) -> float:
    """Draw the left band (flag, trident, UA or the 1995 region code); its right edge."""
    x, top, bottom = at
    if spec.band == "none":
        return x + 3 * k
    if spec.band == "1995":
        _flag(draw, (x + 4 * k, top + 8 * k, x + 34 * k, top + 28 * k), k)
        _text(draw, spec.numeric_region, font, (x + 19 * k, bottom - 10 * k), 26 * k, BLACK)
        return x + 36 * k
    band_bottom = bottom if len(spec.rows) == 1 else top + 0.62 * (bottom - top)
    right = x + _BAND_MM * k
    mid = top + 0.55 * (band_bottom - top)
    if spec.band == "2004":
        draw.rectangle((x, top, right, mid), fill=BLUE)
        draw.rectangle((x, mid, right, band_bottom), fill=YELLOW)
        _trident(draw, (x + 11 * k, top + 6 * k, right - 11 * k, mid - 6 * k), k)
        _text(draw, "UA", font, (x + _BAND_MM * k / 2, band_bottom - 7 * k), 20 * k, BLUE)
    else:
        draw.rectangle((x, top, right, band_bottom), fill=BLUE)
        _flag(draw, (x + 7 * k, top + 9 * k, right - 7 * k, top + 26 * k), k)
        _text(draw, "UA", font, (x + _BAND_MM * k / 2, band_bottom - 7 * k), 22 * k, WHITE)
    return right


def _flag(draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float], k: float) -> None:
    x0, y0, x1, y1 = box
    draw.rectangle((x0 - k, y0 - k, x1 + k, y1 + k), fill=WHITE)
    draw.rectangle((x0, y0, x1, (y0 + y1) / 2), fill=BLUE)
    draw.rectangle((x0, (y0 + y1) / 2, x1, y1), fill=YELLOW)


def _trident(draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float], k: float) -> None:
    """A simplified tryzub: stem, two side prongs curving into a base."""
    x0, y0, x1, y1 = box
    w, h, lw = x1 - x0, y1 - y0, max(1, round(2.2 * k))

    def p(u: float, v: float) -> tuple[float, float]:
        return (x0 + u * w, y0 + v * h)

    outer = ((0.0, 0.05), (0.0, 0.7), (0.2, 0.88), (0.5, 0.9))
    inner = ((0.28, 0.35), (0.3, 0.72), (0.5, 0.78))
    for prong in (outer, inner):
        draw.line([p(u, v) for u, v in prong], YELLOW, lw)
        draw.line([p(1.0 - u, v) for u, v in prong], YELLOW, lw)
    draw.line([p(0.5, 0.0), p(0.5, 1.0)], YELLOW, lw)
    draw.polygon([p(0.5, -0.05), p(0.6, 0.1), p(0.5, 0.22), p(0.4, 0.1)], fill=YELLOW)


def _rows(
    draw: ImageDraw.ImageDraw,
    spec: PlateSpec,
    font: Path,
    area: tuple[float, float, float, float],
    k: float,
) -> None:
    """Draw the text rows at a fixed pitch, each row centred in its share of the area."""
    x0, y0, x1, y1 = area
    n = len(spec.rows)
    cap = _CHAR_MM[n] * k
    _, ink = GROUNDS[spec.ground]
    pitch_max = cap * _GLYPH_ASPECT * 1.22
    for i, row in enumerate(spec.rows):
        units = sum(_GAP if c == " " else 0.7 if c == "-" else 1.0 for c in row)
        pitch = min((x1 - x0) / units, pitch_max)
        # A square plate's digits are centred under the letters, across the whole width.
        left = x0 if n == 1 or i == 0 else x0 - _BAND_MM * k / 2
        x = left + ((x1 - left) - units * pitch) / 2
        centre_y = y0 + (y1 - y0) * (i + 0.5) / n + (0.02 if n == 1 else 0.0) * (y1 - y0)
        for c in row:
            step = pitch * (_GAP if c == " " else 0.7 if c == "-" else 1.0)
            if c == " ":
                if spec.screws and n == 1:
                    _screw(draw, (x + step / 2, y0 + 0.5 * (y1 - y0)), k)
            else:
                _char(draw, c, font, (x + step / 2, centre_y + cap / 2), round(cap), ink)
            x += step


def _char(
    draw: ImageDraw.ImageDraw,
    char: str,
    font: Path,
    baseline_centre: tuple[float, float],
    cap_px: int,
    fill: Colour,
) -> None:
    from PIL import Image

    data, w, h, top = _glyph(str(font), char, cap_px)
    mask = Image.frombytes("L", (w, h), data)
    cx, base = baseline_centre
    draw.bitmap((round(cx - w / 2), round(base + top)), mask, fill=fill)


def _text(
    draw: ImageDraw.ImageDraw,
    text: str,
    font: Path,
    baseline_centre: tuple[float, float],
    cap: float,
    fill: Colour,
) -> None:
    """A short centred label (UA, the region code) of cap height ``cap`` pixels."""
    cx, base = baseline_centre
    widths = [_glyph(str(font), c, round(cap))[1] for c in text]
    x = cx - (sum(widths) + 0.06 * cap * (len(text) - 1)) / 2
    for c, w in zip(text, widths, strict=True):
        _char(draw, c, font, (x + w / 2, base), round(cap), fill)
        x += w + 0.06 * cap


def _caption(
    draw: ImageDraw.ImageDraw, text: str, font: Path, centre: tuple[float, float], cap: float
) -> None:
    """Dealer caption on the holder's bottom edge: small, silver, evenly spaced."""
    if cap >= 3:
        _text(draw, text, font, (centre[0], centre[1] + cap / 2), cap, (188, 188, 190))


def _screw(draw: ImageDraw.ImageDraw, centre: tuple[float, float], k: float) -> None:
    cx, cy = centre
    r = 4.5 * k
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(168, 170, 172), outline=(90, 90, 92))
    draw.line((cx - 0.6 * r, cy, cx + 0.6 * r, cy), fill=(80, 80, 82), width=max(1, round(k)))
