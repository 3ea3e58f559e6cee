"""One image -> the faces in it, each aligned, quality-gated and (if it passes) embedded.

The quality gate keeps faces the embedding cannot be trusted on out of matching: too
small, too blurred, turned too far, or detected with too little confidence. Its measures:

- ``size``: the shorter side of the detector box, pixels.
- ``blur``: variance of the Laplacian of the aligned 128x128 face in grey (sharp faces
  score in the hundreds; a heavily blurred or upscaled one under ~20).
- ``yaw``: how far the nose tip sits from the eyes' midpoint, in inter-ocular distances,
  horizontally along the eye line (0 frontal; ~0.5 and more for a half profile).
- ``roll``: the angle of the eye line, degrees (alignment undoes it, but a large roll
  usually means the landmarks are off).

The ``quality`` of a face (0..1) ranks the faces of a track so its best one is sent: the
detector confidence times a size, a sharpness and a frontal factor, each 1 when
comfortably good. It is a ranking, not a probability.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from edge_agent.face_config import FaceQualityConfig
from edge_agent.face_models import (
    LANDMARK_BOX_SCALE,
    FaceModels,
    align,
    grow_box,
)
from edge_agent.openvino_model import Image


@dataclass(frozen=True)
class FaceMeasures:
    """The gate's measures of one face (see the module docstring)."""

    size: float
    blur: float
    yaw: float
    roll: float
    confidence: float

    def quality(self) -> float:
        """A 0..1 ranking score: confidence x size x sharpness x frontal factors."""
        size = min(1.0, self.size / 96.0)
        sharp = min(1.0, self.blur / 100.0)
        frontal = max(0.0, 1.0 - self.yaw)
        return round(self.confidence * size * sharp * frontal, 4)

    def refusal(self, gate: FaceQualityConfig) -> str:
        """Why the face fails ``gate``, or empty."""
        checks = (
            (self.size < gate.min_size, f"face {self.size:.0f} px, at least {gate.min_size}"),
            (self.blur < gate.min_blur, f"blur {self.blur:.1f}, at least {gate.min_blur}"),
            (self.yaw > gate.max_yaw, f"turned away (yaw {self.yaw:.2f} > {gate.max_yaw})"),
            (abs(self.roll) > gate.max_roll, f"tilted {self.roll:.0f} deg > {gate.max_roll}"),
            (
                self.confidence < gate.min_confidence,
                f"confidence {self.confidence:.2f}, at least {gate.min_confidence}",
            ),
        )
        return "; ".join(text for failed, text in checks if failed)


@dataclass(frozen=True)
class FaceSample:
    """One face in one image.

    Attributes:
        box: x1, y1, x2, y2 in image pixels.
        landmarks: [5, 2] image pixels (eyes, nose, mouth corners).
        aligned: the 128x128 aligned face (stays on the edge).
        measures: the quality gate's measures.
        refused: why the gate refused it, or empty.
        embedding: unit 256-d float32, or None when refused.
    """

    box: NDArray[np.float32]
    landmarks: NDArray[np.float32]
    aligned: Image
    measures: FaceMeasures
    refused: str
    embedding: NDArray[np.float32] | None

    @property
    def quality(self) -> float:
        """The ranking score of :meth:`FaceMeasures.quality`."""
        return self.measures.quality()


def measure(
    aligned: Image, landmarks: NDArray[np.float32], box: NDArray[np.float32], score: float
) -> FaceMeasures:
    """The gate's measures of one aligned face."""
    import cv2

    grey = cv2.cvtColor(aligned, cv2.COLOR_BGR2GRAY)
    blur = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    left, right, nose = landmarks[0], landmarks[1], landmarks[2]
    eye = right - left
    distance = float(np.hypot(*eye)) or 1.0
    along = float(np.dot(nose - (left + right) / 2, eye / distance))
    return FaceMeasures(
        size=float(min(box[2] - box[0], box[3] - box[1])),
        blur=blur,
        yaw=abs(along) / distance,
        roll=math.degrees(math.atan2(float(eye[1]), float(eye[0]))),
        confidence=score,
    )


class FaceAnalyser:
    """Detect -> landmarks -> align -> gate -> embed, for every face of an image."""

    def __init__(self, models: FaceModels, gate: FaceQualityConfig | None = None) -> None:
        self.models = models
        self.gate = gate if gate is not None else FaceQualityConfig()

    def __call__(self, image: Image, embed_refused: bool = False) -> list[FaceSample]:
        """Every face the detector finds in ``image`` (BGR), largest first.

        Args:
            image: The frame or photo.
            embed_refused: Embed faces the gate refuses too (benchmarks, diagnostics).
        """
        found = self.models.detector(image)
        samples = [
            self.sample(image, box, float(score), embed_refused)
            for box, score in zip(found.boxes, found.scores, strict=True)
        ]
        samples.sort(key=lambda s: -(s.box[2] - s.box[0]) * (s.box[3] - s.box[1]))
        return samples

    def sample(
        self, image: Image, box: NDArray[np.float32], score: float, embed_refused: bool = False
    ) -> FaceSample:
        """Landmarks, alignment, gate and embedding of one detected face."""
        height, width = image.shape[:2]
        x1, y1, x2, y2 = grow_box(box, LANDMARK_BOX_SCALE, width, height)
        crop = image[y1:y2, x1:x2]
        points = self.models.landmarks(np.ascontiguousarray(crop))
        landmarks = points * np.array([x2 - x1, y2 - y1], dtype=np.float32) + np.array(
            [x1, y1], dtype=np.float32
        )
        aligned = align(image, landmarks)
        measures = measure(aligned, landmarks, box, score)
        refused = measures.refusal(self.gate)
        embedding = None
        if embed_refused or not refused:
            embedding = self.models.embedder(aligned)
        return FaceSample(box, landmarks, aligned, measures, refused, embedding)
