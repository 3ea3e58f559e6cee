"""Plate reading benchmark: Varta's reader against the naive PP-OCR pipeline, same run.

For each photo of a data set (``ground_truth.csv`` with ``file`` and ``plate_text``, and
plate boxes where the set has them) both readers run on the whole image, alternating, so
both see the same machine load:

- ``reader``: :class:`edge_agent.plate_reader.PPOCRPlateReader` (text detection on a
  downscaled image, plate grammar);
- ``baseline``: what PaddleOCR does out of the box: text detection with the image's
  shorter side scaled to 736 pixels, recognition of every box with the full dictionary,
  and the most plate-like line (4-10 letters and digits, digits preferred) as the read.

A read is exact when its folded text (Latin look-alikes, letters and digits only) equals
the folded ground truth. ``exact_rate_o_is_0`` also counts reads that differ only by the
letter O against the digit 0, which some labels mix up (e.g. ``RKO99AN`` for a Slovak
``RK-099AN``). ``any_text_exact_rate`` counts photos where any text the reader returned
(every plate for the reader, every line for the baseline) is exact: an upper bound that
needs someone to pick the right line. ``plate_found_rate`` is the share of photos whose
read box overlaps the labelled plate box with IoU >= 0.5 or, for sets without boxes,
whose read is within one edit of the label.

``false_plate_reads_per_image`` counts, per photo, the plates a reader reports that are
not the labelled plate: a read whose box lies mostly (half its area or more) inside the
labelled plate box, or whose text is within one edit of the label, is the labelled plate
read (rightly or not); every other reported plate is text taken for a plate (a badge,
lettering on a truck, a sign). A set without plate labels (``ground_truth.csv`` with no
``plate_text`` column, such as vehicles-street, or a folder of images without a
``ground_truth.csv``) has no legible plate, so every plate read there is false.
The reader's confidences are calibrated (:mod:`edge_agent.plate_calibrate`), as on a
sighting: ``reliability`` shows how well. ``worst`` lists the photos that went worst
(false reads first, then the furthest misreads and the plates not found) with what was
read, so that regressions show.
"""

from __future__ import annotations

import csv
import logging
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from shared.plates import fold

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from edge_agent.ocr import TextDetector, TextRecognizer

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]
_IMAGE_SUFFIXES: Final = (".jpg", ".jpeg", ".png", ".bmp")
_WORST: Final = 10  # photos listed under "worst"


@dataclass(frozen=True, slots=True)
class Read:
    """One plate a reader reports: folded text, box in image pixels, confidence."""

    text: str
    box: Box | None
    confidence: float


# A reader under test: image -> (the plates it reports, best first; every text it read).
ReadFn = Callable[["npt.NDArray[np.uint8]"], tuple[list[Read], tuple[str, ...]]]


@dataclass(frozen=True, slots=True)
class Sample:
    """One photo of a data set."""

    path: Path
    text: str
    box: Box | None


@dataclass(slots=True)
class Outcome:
    """What one reader made of one photo: every plate it reported, best first."""

    reads: list[Read]
    texts: tuple[str, ...]
    ms: float

    @property
    def read(self) -> str:
        """The text of the reader's best plate ("" for none)."""
        return self.reads[0].text if self.reads else ""

    @property
    def box(self) -> Box | None:
        """The box of the reader's best plate."""
        return self.reads[0].box if self.reads else None


def load_samples(dataset: Path) -> list[Sample]:
    """The photos of a data set with their plate labels.

    Rows of ``<dataset>/ground_truth.csv`` (boxes as ``x1, y1, x2, y2`` when given), one
    sample per file. A CSV without ``plate_text`` (e.g. vehicle boxes) and a folder
    without a CSV (every image under it) give samples with no legible plate (text "").
    """
    csv_path = dataset / "ground_truth.csv"
    if not csv_path.is_file():
        files = sorted(p for p in dataset.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)
        return [Sample(p, "", None) for p in files]
    samples: dict[str, Sample] = {}
    with csv_path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            box = None
            if row.get("bbox_w"):
                x, y, w, h = (float(row[k]) for k in ("bbox_x", "bbox_y", "bbox_w", "bbox_h"))
                box = (x, y, x + w, y + h)
            text = row.get("plate_text") or ""
            samples.setdefault(row["file"], Sample(dataset / row["file"], text, box))
    return list(samples.values())


def load_image(path: Path) -> npt.NDArray[np.uint8]:
    """A photo as a BGR uint8 array.

    Raises:
        FileNotFoundError: The file is missing or not an image.
    """
    import cv2
    import numpy as np

    image = cv2.imread(str(path))
    if image is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return np.asarray(image, dtype=np.uint8)


def normalise(text: str) -> str:
    """Folded text with letters and digits only."""
    return re.sub(r"[^A-Z0-9]", "", fold(text))


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``x1, y1, x2, y2`` boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def baseline_reader(detector: TextDetector, recognizer: TextRecognizer) -> ReadFn:
    """The naive pipeline: PaddleOCR's default detection scale, every line recognised,
    the most plate-like line (4-10 letters and digits, digits preferred) its one plate."""
    from edge_agent.ocr import warp_quad

    def read(image: npt.NDArray[np.uint8]) -> tuple[list[Read], tuple[str, ...]]:
        boxes = detector.detect(image, min_side=736)
        reads = recognizer.recognize([warp_quad(image, b.corners) for b in boxes])
        best: Read | None = None
        best_score = 0.0
        for box, line in zip(boxes, reads, strict=True):
            text = normalise(line.text)
            if not 4 <= len(text) <= 10:
                continue
            score = line.confidence * (1.0 if any(c.isdigit() for c in text) else 0.6)
            if score > best_score:
                c = box.corners
                xyxy = (c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max())
                best_score = score
                best = Read(
                    text,
                    (float(xyxy[0]), float(xyxy[1]), float(xyxy[2]), float(xyxy[3])),
                    line.confidence,
                )
        found = [best] if best is not None else []
        return found, tuple(normalise(line.text) for line in reads)

    return read


def is_false(read: Read, sample: Sample) -> bool:
    """Whether a reported plate is not the labelled plate (see the module docstring)."""
    truth = normalise(sample.text)
    if not truth:
        return True
    if edit_distance(read.text, truth) <= 1:
        return False
    if sample.box is None or read.box is None:
        return True
    return inside_share(read.box, sample.box) < 0.5


def inside_share(a: Box, b: Box) -> float:
    """The share of box ``a``'s area that lies inside box ``b``."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = (a[2] - a[0]) * (a[3] - a[1])
    return iw * ih / area if area > 0 else 0.0


def summarise(samples: Sequence[Sample], outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Accuracy, false plate reads and latency figures of one reader over a data set
    (accuracy over the photos with a labelled plate)."""
    n = max(sum(1 for s in samples if normalise(s.text)), 1)
    exact = o_is_0 = near = found = any_text = false = 0
    for sample, out in zip(samples, outcomes, strict=True):
        false += sum(is_false(r, sample) for r in out.reads)
        truth, read = normalise(sample.text), out.read
        if not truth:
            continue
        exact += read == truth
        any_text += truth in out.texts
        o_is_0 += read.replace("O", "0") == truth.replace("O", "0")
        near += edit_distance(read, truth) <= 1
        if sample.box is not None:
            found += out.box is not None and iou(out.box, sample.box) >= 0.5
        else:
            found += edit_distance(read, truth) <= 1
    ms = sorted(o.ms for o in outcomes) or [0.0]
    return {
        "exact_rate": round(exact / n, 4),
        "exact_rate_o_is_0": round(o_is_0 / n, 4),
        "within_one_edit_rate": round(near / n, 4),
        "any_text_exact_rate": round(any_text / n, 4),
        "plate_found_rate": round(found / n, 4),
        "false_plate_reads_per_image": round(false / max(len(samples), 1), 4),
        "false_plate_reads": false,
        "reliability": reliability(samples, outcomes),
        "median_ms": round(statistics.median(ms), 1),
        "p90_ms": round(ms[min(len(ms) - 1, int(0.9 * len(ms)))], 1),
    }


def reliability(samples: Sequence[Sample], outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Every reported plate by confidence band (0.1 wide): how many, and the share that
    is the labelled plate read exactly (false plate reads count as wrong)."""
    bands: dict[str, list[int]] = {}
    for sample, out in zip(samples, outcomes, strict=True):
        truth = normalise(sample.text)
        for read in out.reads:
            low = min(int(read.confidence * 10), 9) / 10
            band = bands.setdefault(f"{low:.1f}-{low + 0.1:.1f}", [0, 0])
            band[0] += 1
            band[1] += read.text == truth
    return {k: {"reads": n, "correct": round(ok / n, 3)} for k, (n, ok) in sorted(bands.items())}


def measure(
    samples: Sequence[Sample], ours: ReadFn, naive: ReadFn | None
) -> tuple[list[Outcome], list[Outcome]]:
    """Each reader's outcome per sample, timed (no baseline outcomes when ``naive`` is None).

    The first image runs once untimed through both: first inferences compile kernels.
    """
    mine: list[Outcome] = []
    base: list[Outcome] = []
    for i, sample in enumerate(samples):
        image = load_image(sample.path)
        if i == 0:
            ours(image)
            if naive is not None:
                naive(image)
        mine.append(_timed(ours, image))
        if naive is not None:
            base.append(_timed(naive, image))
    return mine, base


def _timed(fn: ReadFn, image: npt.NDArray[np.uint8]) -> Outcome:
    start = time.perf_counter()
    reads, texts = fn(image)
    return Outcome(reads, texts, (time.perf_counter() - start) * 1000)


def worst(
    samples: Sequence[Sample], outcomes: Sequence[Outcome], limit: int = _WORST
) -> list[dict[str, Any]]:
    """The photos a reader did worst on: most false plate reads first, then the furthest
    misreads of the labelled plate (a plate not read at all counts as every character
    wrong), each with its file, label, read and false reads."""
    rows = []
    for sample, out in zip(samples, outcomes, strict=True):
        truth = normalise(sample.text)
        false = [r for r in out.reads if is_false(r, sample)]
        distance = edit_distance(out.read, truth) if truth else 0
        if false or distance:
            rows.append((len(false), distance, sample, out, false))
    rows.sort(key=lambda r: (-r[0], -r[1], r[2].path.name))
    return [
        {
            "file": sample.path.name,
            "truth": normalise(sample.text),
            "read": out.read,
            "edits": distance,
            "false_reads": [{"text": r.text, "confidence": round(r.confidence, 3)} for r in false],
        }
        for _, distance, sample, out, false in rows[:limit]
    ]


def readers(models_dir: Path | None = None, vehicles: bool = False) -> tuple[ReadFn, ReadFn]:
    """Varta's reader and the naive PP-OCR baseline, each as a ``ReadFn``.

    Args:
        models_dir: Model store root (default: ``$VARTA_MODELS``).
        vehicles: Give Varta's reader the vehicle detector's boxes (the edge pipeline)
            instead of the whole photo; its time then includes vehicle detection.
    """
    import openvino as ov

    from edge_agent.ocr import TextDetector, TextRecognizer
    from edge_agent.plate_calibrate import PlateCalibrator
    from edge_agent.plate_detect import PLATE_DETECTOR
    from edge_agent.plate_reader import PPOCRPlateReader
    from models.store import ModelStore, default_models_dir

    calibrator = PlateCalibrator.load()
    store = ModelStore(models_dir or default_models_dir())
    det_path, rec_path = store.path("PP-OCRv6_det_small"), store.path("PP-OCRv6_rec_small")
    core = ov.Core()
    reader = PPOCRPlateReader.from_paths(
        det_path, rec_path, core=core, plate_model=store.path(PLATE_DETECTOR)
    )

    detector = None
    if vehicles:
        from edge_agent.detect import OpenVINOVehicleDetector

        detector = OpenVINOVehicleDetector(store, core=core)

    def ours(image: npt.NDArray[np.uint8]) -> tuple[list[Read], tuple[str, ...]]:
        boxes = None
        if detector is not None:
            boxes = [
                (float(a), float(b), float(c), float(d))
                for a, b, c, d in detector.detect(image).xyxy
            ]
        plates = [calibrator.apply(p) for p in reader.read(image, boxes)]
        found = [Read(p.text, p.box, p.confidence) for p in plates]
        return found, tuple(p.text for p in found)

    naive = baseline_reader(
        TextDetector(det_path, core), TextRecognizer(rec_path, core, alphabet=None)
    )
    return ours, naive


def figures(
    samples: Sequence[Sample], mine: Sequence[Outcome], base: Sequence[Outcome]
) -> dict[str, Any]:
    """The image count, each reader's summary and the speed ratio (no baseline figures
    when ``base`` is empty)."""
    result: dict[str, Any] = {
        "images": len(samples),
        "labelled_plates": sum(1 for s in samples if normalise(s.text)),
        "reader": summarise(samples, mine),
    }
    if base:
        result["baseline"] = summarise(samples, base)
        result["speed_ratio"] = round(
            result["baseline"]["median_ms"] / max(result["reader"]["median_ms"], 1e-6), 2
        )
    return result


def run(
    dataset: Path,
    models_dir: Path | None = None,
    failures: bool = False,
    vehicles: bool = False,
    pipeline: bool = False,
) -> dict[str, Any]:
    """Benchmark both readers on one data set and return the result object.

    Args:
        dataset: Folder with ``ground_truth.csv`` and the images it names, or any folder
            of images without plates.
        models_dir: Model store root (default: ``$VARTA_MODELS``).
        failures: List the photos the reader got wrong, with both reads.
        vehicles: Give the reader the vehicle detector's boxes (see :func:`readers`).
        pipeline: Read as ``varta edge detect`` does instead: the plates of every
            sighting the edge pipeline makes of a photo
            (:func:`bench.plate_pipeline.pipeline_reader`).
    """
    ours, naive = readers(models_dir, vehicles)
    if pipeline:
        from bench.plate_pipeline import pipeline_reader

        ours = pipeline_reader(models_dir)
    samples = load_samples(dataset)
    mine, base = measure(samples, ours, naive)
    result: dict[str, Any] = {
        "dataset": dataset.name,
        "vehicle_boxes": vehicles,
        "pipeline": pipeline,
    }
    result |= figures(samples, mine, base)
    result["worst"] = worst(samples, mine)
    if failures:
        result["failures"] = [
            {"file": s.path.name, "truth": s.text, "read": o.read, "baseline": b.read}
            for s, o, b in zip(samples, mine, base, strict=True)
            if o.read != normalise(s.text)
        ]
    return result
