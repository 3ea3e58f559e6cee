"""Vehicle type and colour on real vehicles-street crops with the real 0039 model."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from edge_agent.attributes import (
    COLOURS,
    VEHICLE_TYPES,
    VehicleAttributeClassifier,
    body_panel,
    crop,
)
from edge_agent.detect import MOTORCYCLE, VEHICLE, Detections


@pytest.fixture(scope="module")
def classifier(model_store):
    return VehicleAttributeClassifier(model_store)


@pytest.fixture(scope="module")
def street_rows(shared_data):
    with (shared_data / "vehicles-street" / "ground_truth.csv").open() as fh:
        return list(csv.DictReader(fh))


def read(shared_data: Path, name: str) -> np.ndarray:
    import cv2

    image = cv2.imread(str(shared_data / "vehicles-street" / name))
    assert image is not None, name
    return np.asarray(image, dtype=np.uint8)


def box_of(row: dict[str, str]) -> list[float]:
    return [float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")]


# Colours checked by eye on the frames; type is the model's answer, recorded to catch drift.
@pytest.mark.parametrize(
    ("name", "box", "expected"),
    [
        ("images/train__frame1446.jpg", (160, 391, 632, 721), ("red", {"car"})),
        ("images/train__frame1052.jpg", (152, 307, 954, 921), ("blue", {"bus", "truck"})),
        ("images/test__frame2014.jpg", (1, 261, 150, 413), ("white", {"car"})),
        ("images/test__frame2006.jpg", (271, 191, 470, 327), ("black", {"truck", "van", "car"})),
        ("images/train__frame1125.jpg", (891, 409, 1624, 887), ("white", {"car"})),
    ],
)
def test_known_vehicles(classifier, shared_data, name, box, expected):
    colour, types = expected
    (got,) = classifier.classify_crops([crop(read(shared_data, name), box)])
    assert got.colour == colour, got
    assert got.type in types, got


def test_labels_and_confidences_are_valid(classifier, shared_data, street_rows):
    rows = [r for r in street_rows if r["vehicle_type"] != "motorcycle"][:40]
    crops = [crop(read(shared_data, r["file"]), box_of(r)) for r in rows]
    results = classifier.classify_crops(crops)
    assert len(results) == len(crops)
    for got in results:
        assert got.type in VEHICLE_TYPES and got.colour in COLOURS
        assert sum(got.type_scores) == pytest.approx(1.0, abs=1e-3)
        assert sum(got.colour_scores) == pytest.approx(1.0, abs=1e-3)
        # the reported confidence is the calibrated probability of the type's family
        scores = dict(zip(VEHICLE_TYPES, got.type_scores, strict=True))
        assert got.type_scores[VEHICLE_TYPES.index(got.type)] == pytest.approx(max(got.type_scores))
        assert got.type_confidence == pytest.approx(classifier.type_confidence(got.type, scores))
        assert got.colour_confidence == pytest.approx(max(got.colour_scores))
        assert 0.0 < got.type_confidence < 1.0
        assert 1 / len(COLOURS) <= got.colour_confidence <= 1.0
    # the batch gives what one-by-one inference gives
    for image, batched in list(zip(crops, results, strict=True))[:5]:
        (single,) = classifier.classify_crops([image])
        assert (single.type, single.colour) == (batched.type, batched.colour)
        assert single.type_confidence == pytest.approx(batched.type_confidence, abs=1e-3)


def test_trucks_are_trucks(classifier, shared_data, street_rows):
    trucks = [r for r in street_rows if r["vehicle_type"] == "truck"]
    results = classifier.classify_crops(
        [crop(read(shared_data, r["file"]), box_of(r)) for r in trucks]
    )
    votes = Counter(r.type for r in results)
    assert votes["truck"] / len(trucks) >= 0.8, votes


def test_motorcycles_keep_detector_type(classifier, shared_data):
    frame = read(shared_data, "images/test__frame104.jpg")
    detections = Detections.from_arrays(
        [[374, 268, 762, 624], [654, 154, 712, 262], [305, 160, 417, 239]],
        [0.9, 0.4, 0.8],
        [VEHICLE, MOTORCYCLE, VEHICLE],
    )
    got = classifier.classify(frame, detections)
    assert [g.type == "motorcycle" for g in got] == [False, True, False]
    assert got[1].type_confidence == pytest.approx(0.4)
    assert got[1].colour == "" and got[1].colour_scores == ()
    assert got[0].type in VEHICLE_TYPES and got[2].colour in COLOURS
    assert classifier.classify(frame, Detections.empty()) == []


@pytest.mark.parametrize(
    ("box", "shape"),
    [
        ((10, 20, 50, 80), (60, 40)),
        ((-5, -5, 10, 10), (10, 10)),  # clipped at the frame's top-left
        ((95, 95, 200, 200), (5, 5)),  # clipped at the bottom-right
        ((30, 30, 30, 30), (1, 1)),  # empty box still gives one pixel
    ],
)
def test_crop_clips_to_frame(box, shape):
    frame = np.zeros((100, 100, 3), np.uint8)
    got = crop(frame, box)
    assert got.shape[:2] == shape
    assert body_panel(got).size > 0
