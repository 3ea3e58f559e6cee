"""Enrolment: one photo of a wanted person -> one embedding, or a clear refusal.

Central embeds enrolment photos with the same code and models as the edge
(:class:`edge_agent.face_analysis.FaceAnalyser`), so enrolled and observed embeddings are
comparable. A photo is refused when it shows no face the quality gate accepts, or more
than one face (whose face would be enrolled is then a guess). The photo itself is kept by
the watchlist (it is shown beside the edge crop when a match is confirmed); this module
keeps nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from shared.errors import InvalidRequest

if TYPE_CHECKING:
    from edge_agent.face_analysis import FaceAnalyser


class EnrolmentRefused(InvalidRequest):
    """A photo cannot be enrolled; the message says why, in words an operator can act on."""


@dataclass(frozen=True)
class Enrolled:
    """The embedding of an enrolled photo and what it was taken from."""

    embedding: NDArray[np.float32]
    box: tuple[float, float, float, float]
    quality: float


def decode_photo(data: bytes) -> NDArray[np.uint8]:
    """A JPEG/PNG/... photo as a BGR image.

    Raises:
        EnrolmentRefused: the bytes are not an image OpenCV can read.
    """
    import cv2

    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise EnrolmentRefused(
            f"the photo ({len(data)} bytes) is not an image format that can be read "
            "(expected JPEG, PNG, BMP or WebP)"
        )
    return np.asarray(image, dtype=np.uint8)


def enrol_photo(analyser: FaceAnalyser, image: NDArray[np.uint8], name: str = "photo") -> Enrolled:
    """The embedding of the single usable face in ``image``.

    Args:
        analyser: The face chain (detector, landmarks, alignment, gate, embedder).
        image: BGR photo.
        name: How to call the photo in a refusal (e.g. its file name).

    Raises:
        EnrolmentRefused: no face, no face passing the quality gate, or several faces.
    """
    faces = analyser(image)
    if not faces:
        raise EnrolmentRefused(f"{name}: no face found; use a photo showing the face clearly")
    if len(faces) > 1:
        raise EnrolmentRefused(
            f"{name}: {len(faces)} faces found; use a photo showing only the person to enrol "
            "(crop it to their face)"
        )
    face = faces[0]
    if face.embedding is None:
        raise EnrolmentRefused(f"{name}: the face is not usable for matching: {face.refused}")
    box = tuple(float(v) for v in face.box)
    return Enrolled(face.embedding, (box[0], box[1], box[2], box[3]), face.quality)


def enrol_file(analyser: FaceAnalyser, path: Path) -> Enrolled:
    """:func:`enrol_photo` of a photo file.

    Raises:
        EnrolmentRefused: the file cannot be read or its face cannot be enrolled.
    """
    try:
        data = path.read_bytes()
    except OSError as err:
        raise EnrolmentRefused(f"{path.name}: cannot read the photo: {err.strerror}") from err
    return enrol_photo(analyser, decode_photo(data), path.name)
