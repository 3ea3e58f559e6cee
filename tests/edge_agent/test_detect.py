"""Detections, NMS and the OpenVINO vehicle detector on real models and real frames."""

from __future__ import annotations

import csv
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import get_args

import numpy as np
import pytest

from edge_agent.detect import (
    HEADS,
    MOTORCYCLE,
    VEHICLE,
    Detections,
    DetectorModelName,
    OpenVINOVehicleDetector,
    VehicleDetectorConfig,
    box_iou,
)
from edge_agent.openvino_model import InferenceConfig

FAST: tuple[DetectorModelName, ...] = ("person-vehicle-bike-detection-2004",)
ENSEMBLE: tuple[DetectorModelName, ...] = (
    "person-vehicle-bike-detection-2004",
    "vehicle-detection-0201",
)
TARGETS = {"car": 0.9, "truck": 0.9, "bus": 0.9, "motorcycle": 0.7}
GT_CLASS = {"car": VEHICLE, "truck": VEHICLE, "bus": VEHICLE, "motorcycle": MOTORCYCLE}


def dets(rows: list[tuple[float, float, float, float, float, int]]) -> Detections:
    """Detections from ``(x1, y1, x2, y2, confidence, class_id)`` rows."""
    arr = np.array(rows, dtype=np.float32).reshape(-1, 6)
    return Detections.from_arrays(arr[:, :4], arr[:, 4], arr[:, 5])


# ---- Detections and NMS -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("xyxy", "confidence", "class_id", "error"),
    [
        (np.zeros((2, 4), np.float32), np.zeros(2, np.float32), np.zeros(2, np.int32), None),
        (np.zeros((2, 4), np.float32), np.zeros(3, np.float32), np.zeros(2, np.int32), ValueError),
        (np.zeros((2, 3), np.float32), np.zeros(2, np.float32), np.zeros(2, np.int32), ValueError),
        (np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32), None),
    ],
)
def test_detections_shapes(xyxy, confidence, class_id, error):
    if error is None:
        assert len(Detections(xyxy, confidence, class_id)) == len(xyxy)
    else:
        with pytest.raises(error, match="expects xyxy"):
            Detections(xyxy, confidence, class_id)


@pytest.mark.parametrize(
    ("rows", "iou", "agnostic", "kept_confidences"),
    [
        ([], 0.5, False, []),
        ([(0, 0, 10, 10, 0.9, 0)], 0.5, False, [0.9]),
        # same class, heavy overlap: the weaker box goes
        ([(0, 0, 10, 10, 0.6, 0), (1, 1, 10, 10, 0.9, 0)], 0.5, False, [0.9]),
        # different classes overlap: class-aware NMS keeps both, agnostic keeps one
        ([(0, 0, 10, 10, 0.6, 0), (1, 1, 10, 10, 0.9, 1)], 0.5, False, [0.9, 0.6]),
        ([(0, 0, 10, 10, 0.6, 0), (1, 1, 10, 10, 0.9, 1)], 0.5, True, [0.9]),
        # IoU 1/3 is below the threshold: both stay
        ([(0, 0, 10, 10, 0.8, 0), (5, 0, 15, 10, 0.7, 0)], 0.5, False, [0.8, 0.7]),
        ([(0, 0, 10, 10, 0.8, 0), (5, 0, 15, 10, 0.7, 0)], 0.3, False, [0.8]),
        # chain: A suppresses B, B would have suppressed C, but C survives A
        (
            [(0, 0, 10, 10, 0.9, 0), (3, 0, 13, 10, 0.8, 0), (7, 0, 17, 10, 0.7, 0)],
            0.4,
            False,
            [0.9, 0.7],
        ),
    ],
)
def test_nms(rows, iou, agnostic, kept_confidences):
    kept = dets(rows).with_nms(iou, class_agnostic=agnostic)
    np.testing.assert_allclose(kept.confidence, kept_confidences, rtol=1e-6)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
        ((0, 0, 10, 10), (10, 0, 20, 10), 0.0),
        ((0, 0, 10, 10), (5, 0, 15, 10), 1 / 3),
        ((0, 0, 10, 10), (0, 0, 5, 5), 0.25),
        ((0, 0, 0, 0), (0, 0, 0, 0), 0.0),
    ],
)
def test_box_iou(a, b, expected):
    got = box_iou(np.array([a], np.float32), np.array([b], np.float32))
    assert got.shape == (1, 1)
    assert got[0, 0] == pytest.approx(expected, abs=1e-6)


def test_detections_select_merge_labels():
    d = dets([(0, 0, 10, 10, 0.9, 0), (20, 20, 30, 40, 0.5, 1)])
    assert d.labels == ["vehicle", "motorcycle"]
    np.testing.assert_allclose(d.area, [100, 200])
    moto = d[d.class_id == MOTORCYCLE]
    assert len(moto) == 1 and moto.labels == ["motorcycle"]
    merged = Detections.merge([d, moto, Detections.empty()])
    assert len(merged) == 3 and merged.xyxy.dtype == np.float32
    assert merged.class_id.dtype == np.int32
    with pytest.raises(ValueError, match="class_names"):
        Detections.merge([d, Detections.empty(("person",))])


def test_every_configurable_model_has_a_head():
    assert set(HEADS) == set(get_args(DetectorModelName))
    with pytest.raises(ValueError, match="literal_error"):
        VehicleDetectorConfig.model_validate({"models": ["vehicle-detection-9999"]})
    with pytest.raises(ValueError, match="extra_forbidden"):
        VehicleDetectorConfig.model_validate({"treshold": 0.2})


# ---- the detector on vehicles-street ------------------------------------------------------


def load_ground_truth(root: Path) -> dict[str, list[tuple[str, list[float]]]]:
    boxes: dict[str, list[tuple[str, list[float]]]] = defaultdict(list)
    with (root / "ground_truth.csv").open() as fh:
        for row in csv.DictReader(fh):
            box = [float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")]
            boxes[row["file"]].append((row["vehicle_type"], box))
    return dict(boxes)


def matched(truth: list[tuple[str, list[float]]], found: Detections) -> list[tuple[str, bool]]:
    """Greedy one-to-one matching at IoU >= 0.5 between truth boxes and same-class boxes.

    A few objects are boxed twice under two names (train__frame1713: one vehicle is both
    "bus" and "truck", IoU 0.9); such duplicates are one object that needs one detection,
    and a hit counts for both names.
    """
    result = []
    for cls_id in (VEHICLE, MOTORCYCLE):
        objects: list[tuple[list[str], list[float]]] = []
        for name, box in truth:
            if GT_CLASS[name] != cls_id:
                continue
            same = [
                o
                for o in objects
                if box_iou(np.array([box], np.float32), np.array([o[1]], np.float32))[0, 0] >= 0.85
            ]
            if same:
                same[0][0].append(name)
            else:
                objects.append(([name], box))
        if not objects:
            continue
        iou = box_iou(
            np.array([b for _, b in objects], np.float32), found.xyxy[found.class_id == cls_id]
        )
        hit = np.zeros(len(objects), dtype=bool)
        for flat in np.argsort(-iou, axis=None):
            g, d = np.unravel_index(flat, iou.shape)
            if iou[g, d] < 0.5:
                break
            if not hit[g] and np.isfinite(iou[:, d]).all():
                hit[g] = True
                iou[:, d] = -np.inf
        result += [
            (name, bool(h)) for (names, _), h in zip(objects, hit, strict=True) for name in names
        ]
    return result


@pytest.fixture(scope="module")
def street(shared_data):
    import cv2

    root = shared_data / "vehicles-street"
    truth = load_ground_truth(root)
    return truth, {name: cv2.imread(str(root / name)) for name in truth}


@pytest.mark.slow
@pytest.mark.parametrize("models", [FAST, ENSEMBLE], ids=["2004", "2004+0201"])
def test_recall_on_vehicles_street(model_store, street, models, capsys):
    truth, images = street
    detector = OpenVINOVehicleDetector(model_store, VehicleDetectorConfig(models=models))
    names = list(truth)
    found = detector.detect_many([images[n] for n in names])
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for name, frame_dets in zip(names, found, strict=True):
        for cls, hit in matched(truth[name], frame_dets):
            totals[cls][0] += hit
            totals[cls][1] += 1
    recall = {cls: hits / n for cls, (hits, n) in totals.items()}
    with capsys.disabled():
        print(
            f"\nrecall@IoU0.5 on vehicles-street ({len(names)} frames), models={'+'.join(models)}"
        )
        print(f"{'class':<11}{'found':>7}{'boxes':>7}{'recall':>8}{'target':>8}")
        for cls, (hits, n) in sorted(totals.items()):
            print(f"{cls:<11}{hits:>7}{n:>7}{recall[cls]:>8.3f}{TARGETS[cls]:>8.2f}")
    failing = {c: round(r, 3) for c, r in recall.items() if r < TARGETS[c]}
    assert not failing, f"recall below target: {failing} (all: {recall})"


@pytest.mark.slow
def test_single_and_batch_paths_agree(model_store, street):
    truth, images = street
    frames = [images[n] for n in list(truth)[:6]]
    config = VehicleDetectorConfig(models=ENSEMBLE, inference=InferenceConfig(streams=2))
    detector = OpenVINOVehicleDetector(model_store, config)
    singles = [detector.detect(frame) for frame in frames]
    for single, batched in zip(singles, detector.detect_many(frames), strict=True):
        assert len(single) == len(batched) > 0
        np.testing.assert_allclose(single.xyxy, batched.xyxy, atol=1e-3)
        np.testing.assert_array_equal(single.class_id, batched.class_id)
        assert single.xyxy.dtype == np.float32 and single.class_id.dtype == np.int32
    for frame, found in zip(frames, detector.detect_many(frames), strict=True):
        frame_h, frame_w = frame.shape[:2]
        assert (found.xyxy[:, 2] <= frame_w).all() and (found.xyxy[:, 3] <= frame_h).all()
        assert (found.xyxy[:, :2] >= 0).all()


@pytest.mark.slow
@pytest.mark.parametrize("models", [FAST, ENSEMBLE], ids=["2004", "2004+0201"])
def test_latency_per_frame(model_store, street, models, capsys):
    """ms per frame for detect() on 1 and 2 threads, and detect_many() on 2 streams.

    The box is shared with other work, so the table shows the median and the best of 30
    runs; the best is close to what an idle box gives.
    """
    import cv2

    truth, images = street
    frames = {
        f"{w // 16 * 9}p": [cv2.resize(images[n], (w, w // 16 * 9)) for n in list(truth)[:10]]
        for w in (1280, 1920)
    }
    rows = []
    for threads, streams in ((1, 1), (2, 1), (2, 2)):
        inference = InferenceConfig(threads=threads, streams=streams)
        detector = OpenVINOVehicleDetector(
            model_store, VehicleDetectorConfig(models=models, inference=inference)
        )
        for size, batch in frames.items():
            detector.detect_many(batch[:2])  # warm-up
            times = []
            for _ in range(3):
                for frame in batch:
                    start = time.perf_counter()
                    if streams == 1:
                        detector.detect(frame)
                    else:
                        detector.detect_many([frame] * 4)
                    times.append((time.perf_counter() - start) * 1000 / (1 if streams == 1 else 4))
            rows.append((threads, streams, size, statistics.median(times), min(times)))
    with capsys.disabled():
        print(f"\nms per frame, models={'+'.join(models)} (streams=2: detect_many, amortised)")
        for threads, streams, size, median, best in rows:
            setting = f"threads={threads} streams={streams} {size:<6}"
            print(f"{setting} median {median:6.1f}  best {best:6.1f}")
    # No bound on the times (a shared box makes any bound flaky; `varta bench edge` measures
    # speed): every setting ran and gave a time.
    assert len(rows) == 6 and all(0 < best <= median for *_, median, best in rows)
