"""Real photos of the development sets and the real face chain, for the face tests."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from edge_agent.face_analysis import FaceAnalyser
from shared import wire

OBAMA = "faces-dev/images/examples__knn_examples__train__obama__obama.jpg"
OBAMA_2 = "faces-dev/images/examples__knn_examples__test__obama1.jpg"
BIDEN = "faces-dev/images/examples__knn_examples__train__biden__biden2.jpg"
BIDEN_2 = "faces-dev/images/examples__biden.jpg"
OBAMA_AND_BIDEN = "faces-dev/images/examples__knn_examples__test__obama_and_biden.jpg"
CLAPTON = "faces-dev-2/images/clapton-1.jpg"
STREET = "vehicles-street/images"


def photo_bytes(shared_data: Path, rel: str) -> bytes:
    """A photo file of the shared data, as uploaded."""
    return (shared_data / rel).read_bytes()


def street_photo(shared_data: Path) -> Path:
    """A street scene with vehicles and no face."""
    return sorted((shared_data / STREET).iterdir())[0]


def two_faces_jpeg(shared_data: Path) -> bytes:
    """A real photo of two people (Obama and Biden, faces-dev)."""
    return photo_bytes(shared_data, OBAMA_AND_BIDEN)


def observation(
    analyser: FaceAnalyser, shared_data: Path, rel: str, camera_id: str = "door-1"
) -> wire.FaceObservation:
    """The FaceObservation the edge sends for the one face of a photo (real face chain,
    embedding as float16 like the agent's)."""
    image = cv2.imread(str(shared_data / rel))
    faces = analyser(np.asarray(image, np.uint8))
    assert len(faces) == 1 and faces[0].embedding is not None, rel
    face = faces[0]
    emb = np.asarray(face.embedding, dtype="<f2")
    box = [float(v) for v in face.box]
    return wire.FaceObservation(
        event_id=wire.new_event_id(),
        camera_id=camera_id,
        captured_at=time.time(),
        box=(box[0], box[1], box[2], box[3]),
        quality=min(1.0, float(face.quality)),
        embedding=emb.tobytes(),
        dim=len(emb),
        model="face-reidentification-retail-0095",
    )
