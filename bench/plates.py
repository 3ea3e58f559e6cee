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
from typing import TYPE_CHECKING, Any

from shared.plates import fold

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from edge_agent.ocr import TextDetector, TextRecognizer

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]
# A reader under test: image -> (its plate read, the read's box, every text it read).
ReadFn = Callable[["npt.NDArray[np.uint8]"], tuple[str, Box | None, tuple[str, ...]]]


@dataclass(frozen=True, slots=True)
class Sample:
    """One photo of a data set."""

    path: Path
    text: str
    box: Box | None


@dataclass(slots=True)
class Outcome:
    """What one reader made of one photo."""

    read: str
    box: Box | None
    texts: tuple[str, ...]
    ms: float


def load_samples(dataset: Path) -> list[Sample]:
    """Rows of ``<dataset>/ground_truth.csv`` (boxes as ``x1, y1, x2, y2`` when given)."""
    samples = []
    with (dataset / "ground_truth.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            box = None
            if row.get("bbox_w"):
                x, y, w, h = (float(row[k]) for k in ("bbox_x", "bbox_y", "bbox_w", "bbox_h"))
                box = (x, y, x + w, y + h)
            samples.append(Sample(dataset / row["file"], row["plate_text"], box))
    return samples


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
    """The naive pipeline: PaddleOCR's default detection scale, every line recognised."""
    from edge_agent.ocr import warp_quad

    def read(image: npt.NDArray[np.uint8]) -> tuple[str, Box | None, tuple[str, ...]]:
        boxes = detector.detect(image, min_side=736)
        reads = recognizer.recognize([warp_quad(image, b.corners) for b in boxes])
        best, best_score, best_box = "", 0.0, None
        for box, line in zip(boxes, reads, strict=True):
            text = normalise(line.text)
            if not 4 <= len(text) <= 10:
                continue
            score = line.confidence * (1.0 if any(c.isdigit() for c in text) else 0.6)
            if score > best_score:
                c = box.corners
                best, best_score = text, score
                best_box = (c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max())
        return best, best_box, tuple(normalise(line.text) for line in reads)

    return read


def summarise(samples: Sequence[Sample], outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Accuracy and latency figures of one reader over a data set."""
    n = max(len(samples), 1)
    exact = o_is_0 = near = found = any_text = 0
    for sample, out in zip(samples, outcomes, strict=True):
        truth, read = normalise(sample.text), out.read
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
        "median_ms": round(statistics.median(ms), 1),
        "p90_ms": round(ms[min(len(ms) - 1, int(0.9 * len(ms)))], 1),
    }


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
    read, box, texts = fn(image)
    return Outcome(read, box, texts, (time.perf_counter() - start) * 1000)


def readers(models_dir: Path | None = None, vehicles: bool = False) -> tuple[ReadFn, ReadFn]:
    """Varta's reader and the naive PP-OCR baseline, each as a ``ReadFn``.

    Args:
        models_dir: Model store root (default: ``$VARTA_MODELS``).
        vehicles: Give Varta's reader the vehicle detector's boxes (the edge pipeline)
            instead of the whole photo; its time then includes vehicle detection.
    """
    import openvino as ov

    from edge_agent.ocr import TextDetector, TextRecognizer
    from edge_agent.plate_reader import PPOCRPlateReader
    from models.store import ModelStore, default_models_dir

    store = ModelStore(models_dir or default_models_dir())
    det_path, rec_path = store.path("PP-OCRv6_det_small"), store.path("PP-OCRv6_rec_small")
    core = ov.Core()
    reader = PPOCRPlateReader.from_paths(det_path, rec_path, core=core)

    detector = None
    if vehicles:
        from edge_agent.detect import OpenVINOVehicleDetector

        detector = OpenVINOVehicleDetector(store, core=core)

    def ours(image: npt.NDArray[np.uint8]) -> tuple[str, Box | None, tuple[str, ...]]:
        boxes = None
        if detector is not None:
            boxes = [
                (float(a), float(b), float(c), float(d))
                for a, b, c, d in detector.detect(image).xyxy
            ]
        found = reader.read(image, boxes)
        texts = tuple(p.text for p in found)
        return (found[0].text, found[0].box, texts) if found else ("", None, ())

    naive = baseline_reader(
        TextDetector(det_path, core), TextRecognizer(rec_path, core, alphabet=None)
    )
    return ours, naive


def figures(
    samples: Sequence[Sample], mine: Sequence[Outcome], base: Sequence[Outcome]
) -> dict[str, Any]:
    """The image count, each reader's summary and the speed ratio (no baseline figures
    when ``base`` is empty)."""
    result: dict[str, Any] = {"images": len(samples), "reader": summarise(samples, mine)}
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
) -> dict[str, Any]:
    """Benchmark both readers on one data set and return the result object.

    Args:
        dataset: Folder with ``ground_truth.csv`` and the images it names.
        models_dir: Model store root (default: ``$VARTA_MODELS``).
        failures: List the photos the reader got wrong, with both reads.
        vehicles: Give the reader the vehicle detector's boxes (see :func:`readers`).
    """
    ours, naive = readers(models_dir, vehicles)
    samples = load_samples(dataset)
    mine, base = measure(samples, ours, naive)
    result: dict[str, Any] = {"dataset": dataset.name, "vehicle_boxes": vehicles}
    result |= figures(samples, mine, base)
    if failures:
        result["failures"] = [
            {"file": s.path.name, "truth": s.text, "read": o.read, "baseline": b.read}
            for s, o, b in zip(samples, mine, base, strict=True)
            if o.read != normalise(s.text)
        ]
    return result
