"""The face chain on real photos with the real OpenVINO models: alignment, the quality
gate, same/different person scores, enrolment refusals, tracking to one observation per
track, and the edge-only crop ring buffer."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from central.faces.enrol import EnrolmentRefused, enrol_file, enrol_photo
from central.faces.matcher import DEFAULT_THRESHOLD, FaceGallery, decode_embedding
from edge_agent.capture import CameraConfig
from edge_agent.face_analysis import FaceAnalyser
from edge_agent.face_config import FaceQualityConfig, FacesConfig
from edge_agent.face_crops import FaceCropStore
from edge_agent.face_models import ALIGNED_SIZE, TEMPLATE, FaceModels, align, alignment_matrix
from edge_agent.faces import FaceStage, build_face_stage
from models.store import ModelStore

OBAMA = "faces-dev/images/examples__knn_examples__train__obama__obama.jpg"
OBAMA_2 = "faces-dev/images/examples__knn_examples__test__obama1.jpg"
BIDEN = "faces-dev/images/examples__knn_examples__train__biden__biden2.jpg"
LENNON = "faces-dev-2/images/lennon-1.jpg"
LENNON_2 = "faces-dev-2/images/lennon-2.jpg"
CLAPTON = "faces-dev-2/images/clapton-1.jpg"
STREET = "vehicles-street/images"


@pytest.fixture(scope="module")
def models(model_store: ModelStore) -> FaceModels:
    return FaceModels.load(model_store)


@pytest.fixture(scope="module")
def analyser(models: FaceModels) -> FaceAnalyser:
    return FaceAnalyser(models)


def _image(shared_data: Path, rel: str) -> np.ndarray:
    image = cv2.imread(str(shared_data / rel))
    assert image is not None, rel
    return np.asarray(image, dtype=np.uint8)


def _embed(analyser: FaceAnalyser, image: np.ndarray) -> np.ndarray:
    faces = analyser(image)
    assert len(faces) == 1 and faces[0].embedding is not None
    return faces[0].embedding


def test_alignment_puts_the_landmarks_on_the_template(
    analyser: FaceAnalyser, models: FaceModels, shared_data: Path
) -> None:
    image = _image(shared_data, LENNON)
    (face,) = analyser(image)
    target = TEMPLATE * ALIGNED_SIZE
    matrix = alignment_matrix(face.landmarks)
    moved = face.landmarks @ matrix[:, :2].T + matrix[:, 2]
    # A similarity transform cannot fit five points exactly; it comes within a few pixels.
    assert np.abs(moved - target).max() < 6.0
    assert np.linalg.norm(moved - target, axis=1).mean() < 3.5
    # The landmark model run again on the aligned face finds them on the template.
    aligned = align(image, face.landmarks)
    assert aligned.shape == (ALIGNED_SIZE, ALIGNED_SIZE, 3)
    again = models.landmarks(aligned) * ALIGNED_SIZE
    # Faces differ from the mean template (this nose sits lower): within 8 of 128 px.
    assert np.abs(again - target).max() < 8.0
    assert np.linalg.norm(again - target, axis=1).mean() < 4.0
    # Eyes level after alignment although the photo's face may be tilted: within 5
    # degrees (3.6 on an AVX512-BF16 box, 3.3 on an AMX one: the landmark model's noise).
    eyes = again[1] - again[0]
    assert abs(np.degrees(np.arctan2(eyes[1], eyes[0]))) < 5.0


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        (OBAMA, OBAMA_2, True),
        (LENNON, LENNON_2, True),
        (OBAMA, BIDEN, False),
        (LENNON, CLAPTON, False),
        (BIDEN, CLAPTON, False),
    ],
)
def test_same_person_scores_above_the_threshold_and_others_below(
    analyser: FaceAnalyser, shared_data: Path, first: str, second: str, same: bool
) -> None:
    a = _embed(analyser, _image(shared_data, first))
    b = _embed(analyser, _image(shared_data, second))
    assert abs(float(np.linalg.norm(a)) - 1.0) < 1e-4
    score = float(a @ b)
    assert (score >= DEFAULT_THRESHOLD) is same, score
    gallery = FaceGallery(np.stack([a]), ["p1"], version=7)
    found = gallery.search(b, k=5, threshold=DEFAULT_THRESHOLD)
    assert [(c.person_id, c.watchlist_version) for c in found] == ([("p1", 7)] if same else [])


def test_enrolment_refuses_no_face_and_two_faces_with_clear_reasons(
    analyser: FaceAnalyser, shared_data: Path, tmp_path: Path
) -> None:
    street = sorted((shared_data / STREET).iterdir())[0]
    with pytest.raises(EnrolmentRefused, match=r"no face found"):
        enrol_file(analyser, street)
    left, right = _image(shared_data, OBAMA), _image(shared_data, LENNON)
    height = 600
    pair = np.hstack(
        [
            cv2.resize(im, (round(im.shape[1] * height / im.shape[0]), height))
            for im in (left, right)
        ]
    )
    with pytest.raises(EnrolmentRefused, match=r"2 faces found; use a photo showing only"):
        enrol_photo(analyser, np.ascontiguousarray(pair), "pair.jpg")
    junk = tmp_path / "notes.jpg"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(EnrolmentRefused, match=r"not an image format"):
        enrol_file(analyser, junk)
    tiny = np.asarray(cv2.resize(left, (left.shape[1] // 12, left.shape[0] // 12)), np.uint8)
    with pytest.raises(EnrolmentRefused, match=r"(not usable for matching|no face found)"):
        enrol_photo(analyser, tiny, "tiny.jpg")
    enrolled = enrol_file(analyser, shared_data / LENNON)
    assert enrolled.embedding.shape == (256,) and enrolled.quality > 0


def _frames_of(image: np.ndarray, canvas: tuple[int, int], at: tuple[int, int]) -> np.ndarray:
    """``image`` pasted on a grey canvas at ``at`` (x, y)."""
    frame = np.full((canvas[1], canvas[0], 3), 90, np.uint8)
    x, y = at
    frame[y : y + image.shape[0], x : x + image.shape[1]] = image
    return frame


def test_tracker_sends_one_observation_per_track_with_its_best_face(
    analyser: FaceAnalyser, shared_data: Path
) -> None:
    crops = FaceCropStore(max_count=10, max_age_s=600.0, clock=lambda: 1_000.0)
    config = FacesConfig(enabled=True, detect_fps=0, track_timeout_s=0.5)
    stage = FaceStage({"door-1": (analyser, config)}, crops)
    lennon = cv2.resize(_image(shared_data, LENNON), (420, 315))
    blurred = cv2.GaussianBlur(lennon, (0, 0), 2.0)
    sharp_embedding = _embed(analyser, _frames_of(lennon, (1280, 720), (106, 100)))
    sent = []
    for i, (face, dx) in enumerate([(blurred, 0), (lennon, 6), (blurred, 12), (blurred, 18)]):
        frame = _frames_of(face, (1280, 720), (100 + dx, 100))
        sent += stage.process_image("door-1", frame, 1_000.0 + i * 0.1)
    assert sent == []  # the track is still open
    clapton = cv2.resize(_image(shared_data, CLAPTON), (420, 282))
    sent += stage.process_image("door-1", _frames_of(clapton, (1280, 720), (700, 300)), 1_001.0)
    assert len(sent) == 1  # the first track timed out; the second is open
    sent += stage.flush()
    assert len(sent) == 2
    first, second = sent
    assert first.camera_id == "door-1" and first.captured_at == pytest.approx(1_000.1)
    embedding = decode_embedding(first.embedding, first.dim)
    blurred_embedding = _embed(analyser, _frames_of(blurred, (1280, 720), (112, 100)))
    # The sharp frame's face, not a blurred one.
    assert float(embedding @ sharp_embedding) > 0.99 > float(embedding @ blurred_embedding)
    assert float(embedding @ decode_embedding(second.embedding, second.dim)) < DEFAULT_THRESHOLD
    assert first.thumbnails == [] and second.thumbnails == []
    x1, y1, x2, y2 = first.box
    assert 100 <= x1 < x2 <= 100 + 6 + 420 and 100 <= y1 < y2 <= 415
    crop = crops.get(first.event_id)
    assert crop is not None and crop.jpeg[:2] == b"\xff\xd8" and crop.camera_id == "door-1"
    assert crops.get(second.event_id) is not None and len(crops) == 2


def test_the_crop_ring_buffer_evicts_by_count_and_by_age() -> None:
    now = [0.0]
    store = FaceCropStore(max_count=3, max_age_s=60.0, clock=lambda: now[0])
    for i in range(5):
        now[0] = float(i)
        store.put(f"obs-{i}", b"\xff\xd8" + bytes([i]), "cam")
    assert [store.get(f"obs-{i}") is not None for i in range(5)] == [False, False, True, True, True]
    assert store.evicted_count == 2 and len(store) == 3
    now[0] = 63.5  # obs-2 (t=2) and obs-3 (t=3) are over a minute old, obs-4 not
    assert store.get("obs-3") is None and store.get("obs-4") is not None
    assert store.evicted_age == 2 and len(store) == 1
    now[0] = 65.0
    assert len(store) == 0 and store.get("obs-4") is None


def test_faces_are_off_unless_a_camera_turns_them_on(model_store: ModelStore) -> None:
    road = CameraConfig(camera_id="road", kind="file", source="x.mp4")
    assert road.faces.enabled is False
    assert build_face_stage(model_store, [road]) is None
    door = CameraConfig.model_validate(
        {
            "camera_id": "door",
            "kind": "file",
            "source": "x.mp4",
            "faces": {
                "enabled": True,
                "detector": "face-detection-adas-0001",
                "quality": {"min_size": 60},
                "crops": {"max_count": 7},
            },
        }
    )
    stage = build_face_stage(model_store, [road, door])
    assert stage is not None and stage.camera_ids == {"door"}
    assert stage.crops.max_count == 7
    assert stage.model_version.startswith("face-reidentification-retail-0095:")
    assert FaceQualityConfig().min_size == 40
