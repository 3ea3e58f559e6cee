"""Synthetic Ukrainian plate test sets (``varta bench synth-plates``).

Renders plates the reader has never seen (:mod:`bench.synth_plate`), puts them into real
photos and degrades them (:mod:`bench.synth_scene`), and writes a data set in the layout
of ``plates-ua-dev``, so ``varta bench plates --dataset DIR`` runs on it unchanged:
``images/`` and ``ground_truth.csv`` with ``file,plate_text,bbox_x,bbox_y,bbox_w,bbox_h,
corners,...``. ``corners`` holds the plate's four corners (top-left, top-right,
bottom-right, bottom-left) as ``x y`` pairs separated by spaces; the box is their upright
bounding box. Columns after ``note`` say how each plate was made (layout, grammar format,
lines, day or night, blur, dirt, pose, ...), for breakdowns (:mod:`bench.synth_eval`).

Image ``i`` of seed ``s`` depends on ``(s, i)`` only: a set of 40 is the start of a set
of 500 with the same seed, and the same seed gives the same bytes on the same libraries.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bench.synth_camera import Conditions
from bench.synth_plate import PlateSpec, find_font
from bench.synth_scene import Background, compose, load_backgrounds, pick_background
from shared import plates

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

#: Layouts and their default shares: mostly current plates, as on the road.
KINDS: Final[Mapping[str, float]] = {
    "ua_current": 0.56,
    "ua_ev": 0.08,
    "ua_square": 0.14,
    "ua_1995": 0.07,
    "ua_transit": 0.05,
    "ua_diplomatic": 0.04,
    "ua_military": 0.06,
}
#: Layout -> the format :func:`shared.plates.parse` gives its texts.
GRAMMAR_FORMATS: Final[Mapping[str, str]] = {
    "ua_current": "ua_current",
    "ua_ev": "ua_ev",
    "ua_square": "ua_current",
    "ua_1995": "ua_1995",
    "ua_transit": "ua_transit",
    "ua_diplomatic": "ua_diplomatic",
    "ua_military": "ua_military",
}
_REGION_CODES: Final = tuple(sorted(plates.REGIONS))
_NUMERIC_CODES: Final = tuple(sorted(plates.NUMERIC_REGIONS))
_HOLDERS: Final = (
    "AUTO-PLAZA KYIV",
    "TOYOTA CENTRE LVIV",
    "+380 67 512 40 18",
    "WWW.AVTO.UA",
    "SKODA ODESA",
    "AUTOMARKET",
)
_ATTEMPTS: Final = 20
COLUMNS: Final = (
    # The columns of the shared plate sets (plates-ua-dev), in their order.
    *("file", "plate_text", "bbox_x", "bbox_y", "bbox_w", "bbox_h", "corners", "country"),
    *("image_w", "image_h", "label_source", "source_path", "source_commit", "note"),
    # How the plate was made.
    *("layout", "format", "region", "lines", "condition", "infrared", "blur", "blur_px"),
    *("dirt", "occluded", "lighting", "scene", "plate_px", "yaw", "pitch", "roll"),
    *("bg_scale", "jpeg_quality", "seed", "index"),
)


@dataclass(frozen=True, slots=True)
class SynthOptions:
    """What a generated set holds (shares are probabilities per image)."""

    night_share: float = 0.3
    infrared_share: float = 0.4  # of the night images
    blur_share: float = 0.4  # motion 60 %, defocus 40 % of these
    dirt_share: float = 0.2
    occlusion_share: float = 0.04
    uneven_share: float = 0.35
    street_share: float = 0.25  # of the images whose plate is small enough for a street
    min_px: float = 80.0
    max_px: float = 300.0
    kinds: Mapping[str, float] = field(default_factory=lambda: dict(KINDS))


@dataclass(frozen=True, slots=True)
class SynthImage:
    """One image of a set and its ground-truth row (keys: :data:`COLUMNS`)."""

    image: npt.NDArray[np.uint8]
    row: dict[str, Any]


def _pick(alphabet: str, n: int, rng: np.random.Generator) -> str:
    return "".join(alphabet[int(i)] for i in rng.integers(len(alphabet), size=n))


def random_plate(kind: str, rng: np.random.Generator) -> PlateSpec:
    """A random, valid plate of one layout (see :data:`KINDS`)."""
    letters, digits = plates.UA_LETTERS, _pick(plates.DIGITS, 4, rng)
    region = _REGION_CODES[int(rng.integers(len(_REGION_CODES)))]
    holder = _HOLDERS[int(rng.integers(len(_HOLDERS)))] if rng.random() < 0.3 else ""
    screws = bool(rng.random() < 0.4)
    if kind in ("ua_current", "ua_ev", "ua_square"):
        if kind == "ua_ev":
            series = _pick("YZ", 1, rng) + _pick(plates.UA_EV_LETTERS, 1, rng)
        else:
            series = _pick(letters, 2, rng)
        rows = (
            (f"{region}  {series}", digits)
            if kind == "ua_square"
            else (f"{region} {digits} {series}",)
        )
        yellow = kind == "ua_current" and rng.random() < 0.05  # buses and taxis
        band = "2004" if kind != "ua_ev" and rng.random() < 0.3 else "2015"
        return PlateSpec(
            kind, region + digits + series, rows, plates.REGIONS[region], "",
            "yellow" if yellow else "white", band, holder, screws,
        )  # fmt: skip
    if kind == "ua_1995":
        code = _NUMERIC_CODES[int(rng.integers(len(_NUMERIC_CODES)))]
        five, series = _pick(plates.DIGITS, 5, rng), _pick(letters, 2, rng)
        rows = (f"{five[:3]}-{five[3:]} {series}",)
        return PlateSpec(
            kind, five + series, rows, plates.NUMERIC_REGIONS[code], code, "white", "1995",
            holder, screws,
        )  # fmt: skip
    if kind == "ua_transit":
        return PlateSpec(kind, f"T{digits}{region}", (f"T {digits} {region}",), ground="red")
    if kind == "ua_diplomatic":
        prefix = ("CDP", "DP", "D", "S")[int(rng.integers(4))]
        code = f"{int(rng.integers(1, 200)):03d}"
        serial = _pick(plates.DIGITS, 3, rng)
        return PlateSpec(kind, prefix + code + serial, (f"{prefix} {code} {serial}",), ground="red")
    if kind == "ua_military":
        tail = _pick(letters, 1, rng) + _pick(plates.DIGITS, 1, rng)
        rows = (f"{digits[:2]} {digits[2:]}  {tail}",)
        return PlateSpec(kind, digits + tail, rows, ground="black", band="none", holder=holder)
    raise ValueError(f"unknown plate layout {kind!r}; expected one of {', '.join(KINDS)}")


def random_conditions(options: SynthOptions, rng: np.random.Generator) -> Conditions:
    """How one plate is shown, drawn with the shares of ``options``."""
    night = bool(rng.random() < options.night_share)
    plate_px = math.exp(rng.uniform(math.log(options.min_px), math.log(options.max_px)))
    blur = "none"
    if rng.random() < options.blur_share:
        blur = "motion" if rng.random() < 0.6 else "defocus"
    if blur == "motion":  # up to a third of a character's width
        blur_px = rng.uniform(1.5, 1.5 + 0.035 * plate_px)
    else:
        blur_px = rng.uniform(0.8, 1 + 0.01 * plate_px) if blur == "defocus" else 0.0
    street = rng.random() < options.street_share and plate_px <= 170
    yaw = float(max(-40.0, min(40.0, rng.normal(0, 15))))
    return Conditions(
        scene="street" if street else "car",
        plate_px=plate_px / math.cos(math.radians(yaw)),  # as wide as wanted once turned
        yaw=yaw,
        pitch=float(rng.uniform(0, 25)),
        roll=float(max(-12.0, min(12.0, rng.normal(0, 4)))),
        night=night,
        infrared=night and bool(rng.random() < options.infrared_share),
        blur=blur,
        blur_px=round(float(blur_px), 2),
        dirt=round(float(rng.uniform(0.3, 0.8)), 2) if rng.random() < options.dirt_share else 0.0,
        occluded=bool(rng.random() < options.occlusion_share),
        uneven=bool(rng.random() < options.uneven_share),
        jpeg_quality=int(rng.integers(35, 86) if night else rng.integers(45, 96)),
    )


def _kind(options: SynthOptions, rng: np.random.Generator) -> str:
    names = list(options.kinds)
    weights = [options.kinds[n] for n in names]
    total = sum(weights)
    return names[int(rng.choice(len(names), p=[w / total for w in weights]))]


def make_sample(
    seed: int,
    index: int,
    options: SynthOptions,
    backgrounds: list[Background],
    font: Path,
) -> SynthImage:
    """Image ``index`` of the set of ``seed``: a function of the two (and the options).

    Raises:
        RuntimeError: No background photo fits; not seen with the shared data.
    """
    import numpy as np

    rng = np.random.default_rng([seed, index])
    for _ in range(_ATTEMPTS):
        spec = random_plate(_kind(options, rng), rng)
        cond = random_conditions(options, rng)
        bg, per_mm, scale = pick_background(backgrounds, cond, spec.size_mm[0], rng)
        scene = compose(spec, cond, bg, per_mm, scale, font, rng)
        if scene is not None:
            break
    else:
        raise RuntimeError(f"no background fits plate {index} of seed {seed}")
    height, width = scene.image.shape[:2]
    lo, hi = scene.corners.min(axis=0), scene.corners.max(axis=0)
    x0, y0 = max(0, math.floor(lo[0])), max(0, math.floor(lo[1]))
    x1, y1 = min(width, math.ceil(hi[0])), min(height, math.ceil(hi[1]))
    row = {
        "file": f"images/{index:05d}_{spec.text}.jpg",
        "plate_text": spec.text,
        **{"bbox_x": x0, "bbox_y": y0, "bbox_w": x1 - x0, "bbox_h": y1 - y0},
        "corners": " ".join(f"{v:.1f}" for v in scene.corners.reshape(-1)),
        **{"country": "ua", "image_w": width, "image_h": height},
        "label_source": "synthetic (bench.synth)",
        "source_path": bg.path.relative_to(bg.path.parents[2]).as_posix(),
        **{"source_commit": "", "note": ""},
        **{"layout": spec.kind, "format": GRAMMAR_FORMATS[spec.kind], "region": spec.region},
        "lines": len(spec.rows),
        "condition": "night" if cond.night else "day",
        **{"infrared": int(cond.infrared), "blur": cond.blur, "blur_px": cond.blur_px},
        **{"dirt": cond.dirt, "occluded": int(cond.occluded)},
        **{"lighting": "uneven" if cond.uneven else "even", "scene": bg.kind},
        "plate_px": round(float(np.linalg.norm(scene.corners[1] - scene.corners[0])), 1),
        **{k: round(getattr(cond, k) * scene.turned, 1) for k in ("yaw", "pitch", "roll")},
        "bg_scale": round(scale, 3),
        **{"jpeg_quality": cond.jpeg_quality, "seed": seed, "index": index},
    }
    return SynthImage(scene.image, row)


def generate(
    out: Path,
    count: int,
    seed: int,
    options: SynthOptions | None = None,
    *,
    font: Path | None = None,
    data: Path | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write a synthetic plate set to ``out`` and return a summary of what it holds.

    Args:
        out: Data set folder (created); gets ``images/``, ``ground_truth.csv`` and
            ``SOURCE.md``.
        count: Number of images.
        seed: Random seed; the set is a function of it (see the module docstring).
        options: Shares of conditions and layouts (defaults: :class:`SynthOptions`).
        font: Character font file (default: :func:`bench.synth_plate.find_font`).
        data: Shared data folder with the background photos (default: ``$VARTA_SHARED``).
        overwrite: Replace a set already in ``out``.

    Raises:
        FileExistsError: ``out`` already holds a set and ``overwrite`` is off.
    """
    import cv2

    from shared.paths import data_dir

    options = options or SynthOptions()
    font = find_font(font)
    backgrounds = load_backgrounds(data or data_dir())
    truth = out / "ground_truth.csv"
    if truth.exists():
        if not overwrite:
            raise FileExistsError(f"{truth} exists; choose another --out or pass --overwrite")
        with truth.open(newline="", encoding="utf-8") as fh:  # the old set's images only
            for old in csv.DictReader(fh):
                (out / old["file"]).unlink(missing_ok=True)
    (out / "images").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for index in range(count):
        sample = make_sample(seed, index, options, backgrounds, font)
        row = sample.row
        quality = [cv2.IMWRITE_JPEG_QUALITY, int(row["jpeg_quality"])]
        if not cv2.imwrite(str(out / row["file"]), sample.image, quality):
            raise OSError(f"cannot write {out / row['file']}")
        rows.append(row)
    with truth.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    summary = summarise(rows)
    summary.update(out=str(out), seed=seed, font=font.name)
    summary["seconds"] = round(time.perf_counter() - start, 1)
    _write_source(out, summary, options)
    return summary


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts of a set's rows by layout, lines, condition, blur, dirt and scene."""

    def count(key: str) -> dict[str, int]:
        return dict(sorted(Counter(str(r[key]) for r in rows).items()))

    widths = [float(r["plate_px"]) for r in rows] or [0.0]
    return {
        "images": len(rows),
        "layouts": count("layout"),
        "lines": count("lines"),
        "conditions": count("condition"),
        "infrared": sum(int(r["infrared"]) for r in rows),
        "blur": count("blur"),
        "dirty": sum(float(r["dirt"]) > 0 for r in rows),
        "occluded": sum(int(r["occluded"]) for r in rows),
        "lighting": count("lighting"),
        "scenes": count("scene"),
        "plate_px": {
            "min": round(min(widths), 1),
            "median": round(statistics.median(widths), 1),
            "max": round(max(widths), 1),
        },
    }


def _write_source(out: Path, summary: dict[str, Any], options: SynthOptions) -> None:
    """``SOURCE.md`` beside the set, as the shared data sets have."""
    text = f"""# Synthetic Ukrainian plates (bench.synth)
- Made by: `varta bench synth-plates --out {out} --count {summary["images"]} \
--seed {summary["seed"]}` (font {summary["font"]}), in {summary["seconds"]} s, with
  {options}.
- Plates are drawn, not photographed; the backgrounds are photos of the shared data sets
  (plates-eu: AGPL-3.0, its own plates inpainted away; vehicles-street: MIT), named per
  image in `source_path`. Keep the set local like its sources: do not commit it.
- ground_truth.csv: the plates-ua-dev columns, with boxes and `corners` (tl tr br bl as
  `x y` pairs), then how each plate was made (layout, grammar format, condition, ...).
- Counts: `{json.dumps(summary)}`
"""
    (out / "SOURCE.md").write_text(text, encoding="utf-8")
