"""Face models: detection, 5-point landmarks, alignment and a 256-d embedding.

The chain is the one Open Model Zoo's face recognition demo uses, and the one the models
README asks for: a face detector (face-detection-retail-0004, or face-detection-adas-0001
for small faces) -> landmarks-regression-retail-0009 on the face box -> a similarity
transform (rotation, uniform scale, translation; Umeyama least squares) that
takes the five landmarks onto the standard template :data:`TEMPLATE` (least squares) -> the 128x128
aligned face into face-reidentification-retail-0095, whose 256 outputs are L2-normalised
so that the cosine of two faces is their dot product.

Without the alignment, same-person and different-person similarities overlap; with it the
development sets separate (see ``varta bench faces``).

Every wrapper is an :class:`OpenVINOModel` (pre-processing baked into the graph). This
module is used by the edge pipeline and by central's enrolment, so both embed faces with
exactly the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
from numpy.typing import NDArray

from edge_agent.openvino_model import (
    Image,
    InferenceConfig,
    OpenVINOModel,
    Outputs,
    resize_batch,
)

if TYPE_CHECKING:
    import openvino as ov

    from models.store import ModelStore

DetectorName = Literal["face-detection-retail-0004", "face-detection-adas-0001"]
LANDMARKS_MODEL: Final = "landmarks-regression-retail-0009"
EMBEDDING_MODEL: Final = "face-reidentification-retail-0095"
EMBEDDING_DIM: Final = 256
ALIGNED_SIZE: Final = 128

# The standard 5-point template (left eye, right eye, nose tip, left and right mouth
# corners) of the 96x112 face used by SphereFace/ArcFace and Open Model Zoo's face
# recognition demo, as fractions of the crop; scaled to the 128x128 input of 0095.
TEMPLATE: Final = np.array(
    [
        [30.2946 / 96, 51.6963 / 112],
        [65.5318 / 96, 51.5014 / 112],
        [48.0252 / 96, 71.7366 / 112],
        [33.5493 / 96, 92.3655 / 112],
        [62.7299 / 96, 92.2041 / 112],
    ],
    dtype=np.float32,
)

# The landmark model sees the detector box grown by this factor (as the OMZ demo does):
# a tight box cuts the chin and brows the landmarks are regressed from.
LANDMARK_BOX_SCALE: Final = 1.15


@dataclass(frozen=True)
class FaceBoxes:
    """Faces found in one image: ``boxes`` [N, 4] x1, y1, x2, y2 in pixels, ``scores`` [N]."""

    boxes: NDArray[np.float32]
    scores: NDArray[np.float32]

    def __len__(self) -> int:
        return len(self.scores)


class FaceDetector(OpenVINOModel[FaceBoxes]):
    """An SSD face detector of Open Model Zoo (output [1, 1, 200, 7])."""

    def __init__(
        self,
        model_path: Path,
        threshold: float = 0.5,
        config: InferenceConfig | None = None,
        core: ov.Core | None = None,
    ) -> None:
        super().__init__(model_path, config, core)
        self.threshold = threshold

    def preprocess(self, image: Image) -> tuple[Image, Any]:
        """Resize the frame to the network input; keep its size to scale boxes back."""
        return resize_batch(image, self.input_size), (image.shape[1], image.shape[0])

    def postprocess(self, outputs: Outputs, meta: Any) -> FaceBoxes:
        """Rows ``[image, label, conf, x1, y1, x2, y2]`` (normalised) -> pixel boxes."""
        width, height = meta
        rows = next(iter(outputs.values())).reshape(-1, 7)
        rows = rows[(rows[:, 0] >= 0) & (rows[:, 2] >= self.threshold)]
        boxes = np.clip(rows[:, 3:7], 0.0, 1.0) * np.array(
            [width, height, width, height], dtype=np.float32
        )
        keep = (boxes[:, 2] - boxes[:, 0] >= 2) & (boxes[:, 3] - boxes[:, 1] >= 2)
        return FaceBoxes(boxes[keep].astype(np.float32), rows[keep, 2].astype(np.float32))


class LandmarkRegressor(OpenVINOModel[NDArray[np.float32]]):
    """landmarks-regression-retail-0009: five (x, y) points, as fractions of its crop."""

    def preprocess(self, image: Image) -> tuple[Image, Any]:
        """The face crop resized to 48x48."""
        return resize_batch(image, self.input_size), None

    def postprocess(self, outputs: Outputs, meta: Any) -> NDArray[np.float32]:
        """[1, 10, 1, 1] -> [5, 2] fractions of the crop."""
        return next(iter(outputs.values())).reshape(5, 2).astype(np.float32)


class FaceEmbedder(OpenVINOModel[NDArray[np.float32]]):
    """face-reidentification-retail-0095: a 128x128 aligned face -> unit 256-d vector."""

    def preprocess(self, image: Image) -> tuple[Image, Any]:
        """The aligned face (already 128x128) as a batch of one."""
        if image.shape[:2] != (self.input_size[1], self.input_size[0]):
            return resize_batch(image, self.input_size), None
        return image[np.newaxis], None

    def postprocess(self, outputs: Outputs, meta: Any) -> NDArray[np.float32]:
        """L2-normalised embedding (cosine similarity = dot product)."""
        vector = next(iter(outputs.values())).reshape(-1).astype(np.float32)
        return normalise(vector)


def normalise(vector: NDArray[np.float32]) -> NDArray[np.float32]:
    """``vector`` scaled to unit length (a zero vector stays zero)."""
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def grow_box(box: NDArray[np.float32], scale: float, width: int, height: int) -> NDArray[np.int32]:
    """``box`` grown by ``scale`` about its centre, clipped to the image, as ints."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half_w, half_h = (box[2] - box[0]) * scale / 2, (box[3] - box[1]) * scale / 2
    out = np.array([cx - half_w, cy - half_h, cx + half_w, cy + half_h])
    out = np.clip(np.round(out), 0, [width, height, width, height])
    return out.astype(np.int32)


def alignment_matrix(landmarks: NDArray[np.float32], size: int = ALIGNED_SIZE) -> NDArray[Any]:
    """The 2x3 similarity transform taking image ``landmarks`` [5, 2] onto the template.

    Least squares over all five points (Umeyama 1991): a robust fit such as
    ``cv2.estimateAffinePartial2D`` with LMEDS would fit a subset of the points and leave
    the nose several pixels off.

    Raises:
        ValueError: the points are degenerate (all in one place).
    """
    src = landmarks.astype(np.float64)
    dst = (TEMPLATE * size).astype(np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = float((src_c**2).sum()) / len(src)
    if src_var < 1e-9:
        raise ValueError("face landmarks are degenerate; no alignment transform")
    u, sigma, vt = np.linalg.svd(dst_c.T @ src_c / len(src))
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0
    rotation = u @ np.diag(d) @ vt
    scale = float((sigma * d).sum()) / src_var
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def align(image: Image, landmarks: NDArray[np.float32], size: int = ALIGNED_SIZE) -> Image:
    """The face warped so its five ``landmarks`` (image pixels) sit on the template."""
    import cv2

    matrix = alignment_matrix(landmarks, size)
    warped = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR)
    return np.asarray(warped, dtype=np.uint8)


@dataclass(frozen=True)
class FaceModels:
    """The three models of the face chain, loaded once and shared."""

    detector: FaceDetector
    landmarks: LandmarkRegressor
    embedder: FaceEmbedder

    @classmethod
    def load(
        cls,
        store: ModelStore,
        detector: DetectorName = "face-detection-retail-0004",
        threshold: float = 0.5,
        inference: InferenceConfig | None = None,
        core: ov.Core | None = None,
    ) -> FaceModels:
        """Load (and sha256-verify) the models from ``store``.

        Raises:
            ModelMissing: a model is not in the store (the message names the pull command).
            ModelCorrupt: a model file failed its sha256 check.
        """
        import openvino as ov

        core = core if core is not None else ov.Core()
        return cls(
            FaceDetector(store.path(detector), threshold, inference, core),
            LandmarkRegressor(store.path(LANDMARKS_MODEL), inference, core),
            FaceEmbedder(store.path(EMBEDDING_MODEL), inference, core),
        )
