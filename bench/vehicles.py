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
- ``type_reliability``: the same vehicles by type confidence band (0.1 wide): how many,
  and the share whose type agrees. It shows whether the type confidence is calibrated
  (it is not yet: see the README).

Labels are not exhaustive (distant vehicles are often not boxed), so precision is not
reported.
"""

from __future__ import annotations

import csv
import time
from collections import Counter, defaultdict
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


def run(dataset: Path, models_dir: Path | None = None, threads: int = 2) -> dict[str, Any]:
    """Detect and type every frame of a data set; recall per class, type agreement.

    Args:
        dataset: Folder with ``ground_truth.csv`` (vehicle boxes) and its images.
        models_dir: Model store root (default: ``$VARTA_MODELS``).
        threads: CPU inference threads.
    """
    import openvino as ov

    from bench.plates import load_image
    from edge_agent.attributes import VehicleAttributeClassifier
    from edge_agent.detect import MOTORCYCLE, VEHICLE, OpenVINOVehicleDetector
    from models.store import ModelStore, default_models_dir

    store = ModelStore(models_dir or default_models_dir())
    core = ov.Core()
    core.set_property("CPU", {"INFERENCE_NUM_THREADS": threads})
    detector = OpenVINOVehicleDetector(store, core=core)
    classifier = VehicleAttributeClassifier(store, core=core)
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    agree = typed = 0
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    bands: dict[str, list[int]] = {}
    start = time.perf_counter()
    files = load_boxes(dataset)
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
                given = attrs[hit].type
                typed += 1
                right = any(same_type(label, given) for label in names)
                agree += right
                low = min(int(attrs[hit].type_confidence * 10), 9) / 10
                band = bands.setdefault(f"{low:.1f}-{low + 0.1:.1f}", [0, 0])
                band[0] += 1
                band[1] += right
                confusion["/".join(sorted(set(names)))][given] += 1
    result: dict[str, Any] = {
        "dataset": dataset.name,
        "images": len(files),
        "type_agreement": round(agree / max(typed, 1), 4),
        "typed_vehicles": typed,
    }
    for label in ("car", "motorcycle", "truck", "bus"):
        result[f"recall_{label}"] = round(found[label] / max(total[label], 1), 4)
        result[f"labelled_{label}"] = total[label]
    result["confusion"] = {k: dict(v) for k, v in sorted(confusion.items())}
    result["type_reliability"] = {
        k: {"vehicles": n, "agree": round(ok / n, 3)} for k, (n, ok) in sorted(bands.items())
    }
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result
