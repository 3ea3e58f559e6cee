"""Vehicle benchmark: detector recall per class and vehicle-type agreement.

``varta bench vehicles --dataset DIR`` runs the edge pipeline's vehicle stages on every
frame of a set with vehicle boxes (``ground_truth.csv`` rows ``file, vehicle_type, xmin,
ymin, xmax, ymax``; vehicles-street) as ``varta edge detect`` does on a photo: the
detector, then the type of each four-wheeled box (:meth:`VehicleAttributeClassifier.classify`).

- ``recall_<class>``: labelled boxes of that class matched one to one (greedy, IoU at
  least 0.5) by a detection of the right detector class (``vehicle`` for car, van, truck
  and bus, ``motorcycle`` for two-wheelers).
- ``type_agreement``: of the four-wheeled labelled vehicles found, the share whose type
  agrees with the label, car and van counting as one class (the set labels vans as cars).
  A few objects are boxed twice under two names (one vehicle both ``bus`` and ``truck``):
  such duplicates (IoU at least 0.85) are one object, found once, and either name agrees.
- ``confusion``: label -> type given -> count, over the same vehicles.
- ``type_reliability``: the same vehicles by (calibrated) type confidence band (0.1
  wide): how many, the share whose type agrees and their mean confidence; ``type_ece``
  the gap between confidence and agreement weighted by vehicles (expected calibration
  error), overall and on the set's ``test`` frames.

``varta bench calibrate-types --dataset DIR`` fits the type calibration
(:mod:`edge_agent.type_calibrate`) on the set's ``train`` frames and reports the held-out
``test`` frames three ways: the model's probability of the given type (``model``, what
the agent reported before), of its family (car and van summed: ``uncalibrated``) and the
fitted curve over that (``calibrated``); ``--out`` writes the parameter file.

Labels are not exhaustive (distant vehicles are often not boxed), so precision is not
reported.
"""

from __future__ import annotations

import csv
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

if TYPE_CHECKING:
    from edge_agent.detect import Detections

FOUR_WHEELED: Final = frozenset({"car", "van", "truck", "bus"})
_SAME_OBJECT_IOU: Final = 0.85
_MATCH_IOU: Final = 0.5


def same_type(label: str, given: str) -> bool:
    """Whether a type agrees with a label, car and van being one class."""
    fold = {"van": "car"}
    return fold.get(label, label) == fold.get(given, given)


def load_boxes(dataset: Path) -> dict[str, list[tuple[str, list[float]]]]:
    """File -> labelled ``(vehicle_type, [x1, y1, x2, y2])`` of a data set."""
    boxes: dict[str, list[tuple[str, list[float]]]] = defaultdict(list)
    with (dataset / "ground_truth.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            box = [float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")]
            boxes[row["file"]].append((row["vehicle_type"], box))
    return dict(boxes)


def objects(truth: list[tuple[str, list[float]]]) -> list[tuple[list[str], list[float]]]:
    """Labelled boxes with duplicates (IoU >= 0.85, different names) merged into one
    object carrying every name."""
    from edge_agent.detect import box_iou

    merged: list[tuple[list[str], list[float]]] = []
    for name, box in truth:
        for names, other in merged:
            same_kind = (name == "motorcycle") == (names[0] == "motorcycle")
            overlap = box_iou(np.array([box], np.float32), np.array([other], np.float32))[0, 0]
            if same_kind and overlap >= _SAME_OBJECT_IOU:
                names.append(name)
                break
        else:
            merged.append(([name], box))
    return merged


def match(
    truth: list[tuple[list[str], list[float]]], found: Detections, class_id: int
) -> list[int]:
    """For each labelled object, the index of its matching detection of ``class_id``
    (greedy by IoU, one to one, IoU >= 0.5) or -1."""
    from edge_agent.detect import box_iou

    result = [-1] * len(truth)
    candidates = np.flatnonzero(found.class_id == class_id)
    if not truth or not len(candidates):
        return result
    iou = box_iou(np.array([b for _, b in truth], np.float32), found.xyxy[candidates])
    for flat in np.argsort(-iou, axis=None):
        g, d = np.unravel_index(flat, iou.shape)
        if iou[g, d] < _MATCH_IOU:
            break
        if result[g] < 0 and np.isfinite(iou[:, d]).all():
            result[g] = int(candidates[d])
            iou[:, d] = -np.inf
    return result


@dataclass(frozen=True, slots=True)
class Typed:
    """One four-wheeled labelled vehicle found and typed."""

    split: str
    model_p: float  # the model's probability of the given type (what was reported before)
    family_p: float  # the model's probability of the given type's family (uncalibrated)
    confidence: float  # the calibrated type confidence the agent reports
    right: bool


def run(dataset: Path, models_dir: Path | None = None, threads: int = 2) -> dict[str, Any]:
    """Detect and type every frame of a data set; recall per class, type agreement.

    Args:
        dataset: Folder with ``ground_truth.csv`` (vehicle boxes) and its images.
        models_dir: Model store root (default: ``$VARTA_MODELS``).
        threads: CPU inference threads.
    """
    start = time.perf_counter()
    files = load_boxes(dataset)
    found, total, typed, confusion = _survey(dataset, files, models_dir, threads)
    agree = sum(t.right for t in typed)
    result: dict[str, Any] = {
        "dataset": dataset.name,
        "images": len(files),
        "type_agreement": round(agree / max(len(typed), 1), 4),
        "typed_vehicles": len(typed),
    }
    for label in ("car", "motorcycle", "truck", "bus"):
        result[f"recall_{label}"] = round(found[label] / max(total[label], 1), 4)
        result[f"labelled_{label}"] = total[label]
    result["confusion"] = {k: dict(v) for k, v in sorted(confusion.items())}
    pairs = [(t.confidence, t.right) for t in typed]
    result["type_reliability"] = reliability(pairs)
    result["type_ece"] = ece(pairs)
    result["type_ece_test"] = ece([(t.confidence, t.right) for t in typed if t.split == "test"])
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def calibrate_types(
    dataset: Path, models_dir: Path | None = None, out: Path | None = None, threads: int = 2
) -> dict[str, Any]:
    """Fit the type calibration on the ``train`` frames; report the ``test`` frames with the
    model's family probability and with the fitted curve; write it to ``out`` if given."""
    from edge_agent.type_calibrate import TypeCalibrator, fit

    files = load_boxes(dataset)
    _, _, typed, _ = _survey(dataset, files, models_dir, threads)
    train = [(t.family_p, t.right) for t in typed if t.split != "test"]
    test = [(t.family_p, t.right) for t in typed if t.split == "test"]
    model = [(t.model_p, t.right) for t in typed if t.split == "test"]
    slope, offset = fit(train)
    calibrator = TypeCalibrator(slope, offset)
    calibrated = [(calibrator.probability(p), right) for p, right in test]
    result: dict[str, Any] = {
        "dataset": dataset.name,
        "slope": round(slope, 4),
        "offset": round(offset, 4),
        "train_vehicles": len(train),
        "train_errors": sum(not r for _, r in train),
        "test_vehicles": len(test),
        "test_errors": sum(not r for _, r in test),
        "test_ece_model": ece(model),
        "test_ece_uncalibrated": ece(test),
        "test_ece_calibrated": ece(calibrated),
        "test_brier_model": brier(model),
        "test_brier_uncalibrated": brier(test),
        "test_brier_calibrated": brier(calibrated),
        "test_reliability_model": reliability(model),
        "test_reliability_uncalibrated": reliability(test),
        "test_reliability_calibrated": reliability(calibrated),
    }
    if out is not None:
        provenance = {
            k: result[k]
            for k in ("dataset", "train_vehicles", "train_errors", "test_vehicles", "test_errors")
        } | {
            "test_ece": [result["test_ece_uncalibrated"], result["test_ece_calibrated"]],
            "command": f"varta bench calibrate-types --dataset {dataset.name}",
        }
        TypeCalibrator(slope, offset, provenance).save(out)
        result["written"] = str(out)
    return result


def _survey(
    dataset: Path,
    files: dict[str, list[tuple[str, list[float]]]],
    models_dir: Path | None,
    threads: int,
) -> tuple[Counter[str], Counter[str], list[Typed], dict[str, Counter[str]]]:
    """Detect and type every frame: found and labelled per class, the typed vehicles and
    the confusion (label -> type given -> count)."""
    import openvino as ov

    from bench.plates import load_image
    from edge_agent.attributes import VEHICLE_TYPES, VehicleAttributeClassifier
    from edge_agent.detect import MOTORCYCLE, VEHICLE, OpenVINOVehicleDetector
    from edge_agent.type_calibrate import family_probability
    from models.store import ModelStore, default_models_dir

    store = ModelStore(models_dir or default_models_dir())
    core = ov.Core()
    core.set_property("CPU", {"INFERENCE_NUM_THREADS": threads})
    detector = OpenVINOVehicleDetector(store, core=core)
    classifier = VehicleAttributeClassifier(store, core=core)
    splits = load_splits(dataset)
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    typed: list[Typed] = []
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    for name, truth in files.items():
        image = load_image(dataset / name)
        dets = detector.detect(image)
        attrs = classifier.classify(image, dets)
        for class_id in (VEHICLE, MOTORCYCLE):
            objs = [
                o for o in objects(truth) if (o[0][0] == "motorcycle") == (class_id == MOTORCYCLE)
            ]
            for (names, _), hit in zip(objs, match(objs, dets, class_id), strict=True):
                for label in set(names):
                    total[label] += 1
                    found[label] += hit >= 0
                if hit < 0 or class_id == MOTORCYCLE:
                    continue
                given = attrs[hit]
                scores = dict(zip(VEHICLE_TYPES, given.type_scores, strict=True))
                right = any(same_type(label, given.type) for label in names)
                typed.append(
                    Typed(
                        splits.get(name, ""),
                        scores[given.type],
                        family_probability(given.type, scores),
                        given.type_confidence,
                        right,
                    )
                )
                confusion["/".join(sorted(set(names)))][given.type] += 1
    return found, total, typed, confusion


def load_splits(dataset: Path) -> dict[str, str]:
    """File -> its ``split`` (``train`` / ``test``; empty when the set has none)."""
    with (dataset / "ground_truth.csv").open(newline="", encoding="utf-8") as fh:
        return {row["file"]: row.get("split") or "" for row in csv.DictReader(fh)}


def reliability(pairs: Sequence[tuple[float, bool]]) -> dict[str, dict[str, float]]:
    """Confidence band (0.1 wide) -> vehicles, share right and mean confidence."""
    bands: dict[str, list[float]] = {}
    for confidence, right in pairs:
        low = min(int(confidence * 10), 9) / 10
        band = bands.setdefault(f"{low:.1f}-{low + 0.1:.1f}", [0, 0, 0.0])
        band[0] += 1
        band[1] += right
        band[2] += confidence
    return {
        k: {"vehicles": n, "agree": round(ok / n, 3), "mean_confidence": round(c / n, 3)}
        for k, (n, ok, c) in sorted(bands.items())
    }


def ece(pairs: Sequence[tuple[float, bool]]) -> float:
    """Expected calibration error over 0.1-wide bands (0 when empty)."""
    bands = reliability(pairs)
    n = sum(b["vehicles"] for b in bands.values())
    gap = sum(b["vehicles"] * abs(b["agree"] - b["mean_confidence"]) for b in bands.values())
    return round(gap / n, 4) if n else 0.0


def brier(pairs: Sequence[tuple[float, bool]]) -> float:
    """Mean squared gap between confidence and outcome (0 when empty)."""
    if not pairs:
        return 0.0
    return round(sum((c - float(r)) ** 2 for c, r in pairs) / len(pairs), 4)
