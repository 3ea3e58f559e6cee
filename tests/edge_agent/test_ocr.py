"""PP-OCR through OpenVINO: CTC decoding, the dictionary, the pruned head, real crops."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import openvino as ov
import pytest

from bench.plates import load_image
from edge_agent.ocr import (
    PLATE_ALPHABET,
    TextDetector,
    TextRecognizer,
    class_ids,
    ctc_decode,
    order_corners,
    read_dictionary,
    restrict_classes,
    warp_quad,
)
from models.store import ModelStore
from shared.plates import candidates

CLASSES = ["", "A", "B", "1", " "]


def _probs(rows: list[list[float]]) -> npt.NDArray[np.float32]:
    arr = np.asarray(rows, dtype=np.float32)
    return np.asarray(arr / arr.sum(axis=1, keepdims=True), dtype=np.float32)


@pytest.mark.parametrize(
    ("best", "text"),
    [
        ([1, 1, 0, 1, 2], "AAB"),  # a blank separates repeated A
        ([1, 1, 1, 2, 2], "AB"),  # repeats collapse
        ([0, 0, 0], ""),
        ([3, 4, 3], "1 1"),
        ([0, 2, 0, 0, 2, 2, 0], "BB"),
    ],
)
def test_ctc_collapse(best: list[int], text: str) -> None:
    rows = [[0.1] * len(CLASSES) for _ in best]
    for row, cls in zip(rows, best, strict=True):
        row[cls] = 2.0
    assert ctc_decode(_probs(rows), CLASSES).text == text


def test_ctc_char_confidence_is_peak_of_run_and_alternatives_follow() -> None:
    probs = np.array(
        [
            [0.0, 0.6, 0.3, 0.1, 0.0],  # A 0.6
            [0.0, 0.9, 0.0, 0.1, 0.0],  # A 0.9: same run, the peak counts
            [1.0, 0.0, 0.0, 0.0, 0.0],  # blank
            [0.1, 0.0, 0.3, 0.6, 0.0],  # 1 0.6, B second
        ],
        dtype=np.float32,
    )
    read = ctc_decode(probs, CLASSES, top_k=2)
    assert read.text == "A1"
    assert read.char_confidences == pytest.approx((0.9, 0.6))
    assert read.confidence == pytest.approx(0.75)
    assert read.alternatives[0][0][0] == "A"
    assert read.alternatives[0][0][1] == pytest.approx(0.9)
    assert [c for c, _ in read.alternatives[1]] == ["1", "B"]  # blank never an alternative


@pytest.fixture(scope="module")
def rec_path(model_store: ModelStore) -> Path:
    return model_store.path("PP-OCRv6_rec_small")


@pytest.fixture(scope="module")
def recognizer(rec_path: Path) -> TextRecognizer:
    return TextRecognizer(rec_path)


def test_dictionary_from_onnx_metadata(rec_path: Path) -> None:
    model = ov.Core().read_model(str(rec_path))
    classes = read_dictionary(model)
    assert classes[0] == "" and classes[-1] == " "
    assert len(classes) == model.outputs[0].get_partial_shape()[2].get_length()
    assert len(class_ids(classes, PLATE_ALPHABET)) == len(PLATE_ALPHABET)


def test_pruned_head_equals_renormalised_full_softmax(rec_path: Path) -> None:
    core = ov.Core()
    model = core.read_model(str(rec_path))
    keep = [0, *class_ids(read_dictionary(model), PLATE_ALPHABET)]
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 48, 160)).astype(np.float32)
    full = core.compile_model(model, "CPU")(x)[0][0][:, keep]
    pruned = core.compile_model(restrict_classes(model, keep), "CPU")(x)[0][0]
    np.testing.assert_allclose(pruned, full / full.sum(axis=1, keepdims=True), atol=1e-4)


def _plate_image(text: str) -> np.ndarray:
    img = np.full((60, 300, 3), 245, np.uint8)
    cv2.rectangle(img, (2, 2), (297, 57), (0, 0, 0), 2)
    cv2.putText(img, text, (14, 45), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (20, 20, 20), 3)
    return img


def test_recognizer_reads_a_batch_of_crops(recognizer: TextRecognizer) -> None:
    reads = recognizer.recognize([_plate_image("AT 1234 BC"), _plate_image("BH 0077")])
    assert [r.text.replace(" ", "") for r in reads] == ["AT1234BC", "BH0077"]
    for read in reads:
        assert len(read.char_confidences) == len(read.text) == len(read.alternatives)
        assert all(0.0 <= p <= 1.0 for p in read.char_confidences)
    assert recognizer.recognize([]) == []


def test_recognizer_reads_a_real_ukrainian_crop(
    recognizer: TextRecognizer, shared_data: Path
) -> None:
    crop = load_image(shared_data / "plates-ua-crops/images/ocr__AA0013BM.png")
    read = recognizer.recognize([crop])[0]
    assert "AA0013BM" in read.text.replace(" ", "")  # raw read may hold the flag's "UA"
    assert candidates(read.alternatives)[0].text == "AA0013BM"


def test_detector_finds_the_text_line(model_store: ModelStore) -> None:
    detector = TextDetector(model_store.path("PP-OCRv6_det_small"))
    frame = np.full((240, 320, 3), 90, np.uint8)
    frame[100:160, 10:310] = _plate_image("AT 1234 BC")
    boxes = detector.detect(frame, max_side=320)
    assert len(boxes) == 1
    corners = boxes[0].corners
    assert corners[:, 0].min() < 40 and corners[:, 0].max() > 260
    assert 95 < corners[:, 1].mean() < 165


@pytest.mark.parametrize(
    ("size", "compiled"),
    [
        ((320, 240), [(256, 320)]),  # 4:3 fits the static window
        ((1920, 1080), [(256, 320)]),  # scaled to 320x180: fits
        ((300, 264), [(256, 320)]),  # 8 px too tall: shrunk 3 % to fit
        ((320, 320), [None]),  # square: the dynamic model
        ((240, 320), [None]),  # portrait
    ],
)
def test_detector_compiles_a_static_model_only_for_its_window(
    model_store: ModelStore, size: tuple[int, int], compiled: list[tuple[int, int] | None]
) -> None:
    detector = TextDetector(model_store.path("PP-OCRv6_det_small"), static_shapes=[(256, 320)])
    assert detector.compiled_shapes == []  # nothing until first use
    width, height = size
    frame = np.full((height, width, 3), 90, np.uint8)
    band = max(40, height // 5)
    top = height // 2 - band // 2
    frame[top : top + band, 20 : width - 20] = cv2.resize(
        _plate_image("AT 1234 BC"), (width - 40, band)
    )
    boxes = detector.detect(frame, max_side=320)
    assert detector.compiled_shapes == compiled
    assert len(boxes) == 1  # same text found whichever model ran
    assert abs(float(boxes[0].corners[:, 1].mean()) - height / 2) < height / 20


def test_warp_and_corner_order() -> None:
    pts = np.array([[50, 10], [0, 0], [0, 10], [50, 0]], dtype=np.float32)
    assert order_corners(pts).tolist() == [[0, 0], [50, 0], [50, 10], [0, 10]]
    image = np.zeros((20, 60, 3), np.uint8)
    assert warp_quad(image, order_corners(pts)).shape == (48, 240, 3)


def test_missing_model_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.onnx"):
        TextRecognizer(tmp_path / "nope.onnx")
