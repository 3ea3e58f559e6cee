"""PaddleOCR (PP-OCR) text detection and recognition run through OpenVINO.

Recognition is a CTC model: for each horizontal time step it gives a probability for
every class of its dictionary (blank at index 0, the dictionary from the ONNX metadata
key ``character``, then a space). :func:`ctc_decode` turns those into text, a confidence
per character and the top alternatives per character, which the plate grammar uses.

Detection is a DB (differentiable binarisation) model: a text-probability map that
:class:`TextDetector` turns into rotated boxes.

Memory: OpenVINO's CPU plugin keeps state for every input shape a dynamic model has run
(executors, JIT kernels, buffers): about 8 MB per recognition width and 1-40 MB per
detection shape, never given back. So plate recognition runs on one static width (crops
padded to it) and detection inputs are padded to multiples of 64. A static copy of the
detection model costs its weights and buffers again (about 45 MB), so only the shapes a
caller names (the video search window) get one; everything else shares the one dynamic
model, compiled on first use.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from edge_agent.openvino_model import compile_properties

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import openvino as ov

log = logging.getLogger(__name__)

REC_HEIGHT: Final = 48
_REC_STEP: Final = 32  # recognition inputs are padded to multiples of this width
_REC_MAX_WIDTH: Final = 640
# PaddleOCR's own recognition input (3x48x320): a line up to 6.7:1 fits unsqueezed.
PLATE_REC_WIDTH: Final = 320
_PAD: Final = 64  # detection inputs are padded to multiples of this
_MAX_SHRINK: Final = 0.08  # an input this much too big for a static shape is shrunk to fit
# Characters a licence plate can hold (Cyrillic plate letters read as their Latin
# look-alikes, which is all the PP-OCR dictionary has), plus the separators OCR reads
# between groups. Recognition may be restricted to these (see TextRecognizer).
PLATE_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ -."


@dataclass(frozen=True, slots=True)
class TextRead:
    """One recognised line of text.

    Attributes:
        text: The decoded text (CTC-collapsed, blanks removed).
        confidence: Mean of the per-character confidences (0 for empty text).
        char_confidences: Probability of each character of ``text``.
        alternatives: Per character of ``text``, the best classes at its peak time step
            as ``(character, probability)`` pairs, most probable first.
    """

    text: str
    confidence: float
    char_confidences: tuple[float, ...]
    alternatives: tuple[tuple[tuple[str, float], ...], ...]


def read_dictionary(model: ov.Model) -> list[str]:
    """The CTC classes of a PP-OCR recognition model: blank, the dictionary, a space.

    Args:
        model: The recognition model read with ``openvino.Core.read_model`` from ONNX.

    Raises:
        ValueError: The model carries no ``character`` metadata.
    """
    if not model.has_rt_info(["framework", "character"]):
        raise ValueError("recognition model has no 'character' entry in its ONNX metadata")
    text = model.get_rt_info(["framework", "character"]).astype(str)
    return ["", *text.split("\n"), " "]


def ctc_decode(probs: npt.NDArray[np.float32], classes: Sequence[str], top_k: int = 3) -> TextRead:
    """Greedy CTC decoding of one line.

    Repeated classes collapse into one character unless a blank separates them; blanks
    (class 0) are dropped. A character's confidence is its highest probability within
    its run of time steps; the alternatives come from that same step.

    Args:
        probs: ``[T, C]`` class probabilities per time step (softmax output).
        classes: The class characters, ``classes[0]`` being the blank.
        top_k: How many alternatives to keep per character.
    """
    import numpy as np

    best = probs.argmax(axis=1)
    chars: list[str] = []
    confs: list[float] = []
    alts: list[tuple[tuple[str, float], ...]] = []
    prev = 0
    for t, cls in enumerate(best.tolist()):
        if cls != 0 and cls == prev and chars:
            if probs[t, cls] > confs[-1]:
                confs[-1] = float(probs[t, cls])
                alts[-1] = _alternatives(probs[t], classes, top_k)
        elif cls != 0:
            chars.append(classes[cls])
            confs.append(float(probs[t, cls]))
            alts.append(_alternatives(probs[t], classes, top_k))
        prev = cls
    mean = float(np.mean(confs)) if confs else 0.0
    return TextRead("".join(chars), mean, tuple(confs), tuple(alts))


def _alternatives(
    row: npt.NDArray[np.float32], classes: Sequence[str], top_k: int
) -> tuple[tuple[str, float], ...]:
    import numpy as np

    idx = np.argpartition(row, -top_k - 1)[-top_k - 1 :]
    idx = idx[np.argsort(row[idx])[::-1]]
    return tuple((classes[i], float(row[i])) for i in idx.tolist() if i != 0)[:top_k]


def compress_weights(model: ov.Model) -> None:
    """Store the model's FP32 weights as FP16, in place.

    The CPU plugin keeps the model it compiled alongside its own (BF16 or FP32) copy of
    the weights, so the PP-OCR ONNX files cost their FP32 weights twice. This is the
    transformation ``openvino.save_model(compress_to_fp16=True)`` applies when writing
    IR; inference precision is unchanged. Measured: 19 MB less for the two PP-OCR models.
    """
    from openvino._offline_transformations import compress_model_transformation

    compress_model_transformation(model)


class TextRecognizer:
    """PP-OCR recognition: crops of text lines in, :class:`TextRead` out."""

    def __init__(
        self,
        model_path: Path,
        core: ov.Core | None = None,
        device: str = "CPU",
        alphabet: str | None = PLATE_ALPHABET,
        width: int | None = PLATE_REC_WIDTH,
    ) -> None:
        """Load the model and its dictionary.

        Args:
            model_path: The ``PP-OCR*_rec*.onnx`` (or converted ``.xml``) file.
            core: An OpenVINO core to share; a new one if None.
            device: OpenVINO device name.
            alphabet: Restrict recognition to these characters (and the blank); None
                keeps the full dictionary. The classifier head is cut down to these
                classes, which makes recognition faster and stops a plate's ``0`` being
                read as a look-alike from another script.
            width: Compile for this one input width (a multiple of 8): every crop is
                padded to it, as PaddleOCR pads to 320, and a wider one squeezed into it.
                Memory stays fixed (41 MB, against 22 MB plus about 8 MB for every new
                width the dynamic model meets: 64 MB after five, 170 MB once it has met
                them all). On 500 synthetic plates it read 88.0 % exactly against 87.4 %
                with tight padding. None keeps the dynamic model, inputs padded to
                multiples of 32 px.
        """
        import openvino as ov

        if not model_path.is_file():
            raise FileNotFoundError(f"recognition model not found: {model_path}")
        if width is not None and (width % 8 or width < REC_HEIGHT):
            raise ValueError(f"recognition width must be a multiple of 8 from 48, got {width}")
        core = core or ov.Core()
        model = core.read_model(str(model_path))
        self.classes = read_dictionary(model)
        if alphabet is not None:
            keep = [0, *class_ids(self.classes, alphabet)]
            model = restrict_classes(model, keep)
            self.classes = [self.classes[i] for i in keep]
        if width is not None:
            model.reshape([1, 3, REC_HEIGHT, width])
        compress_weights(model)
        self.width = width
        self._compiled = core.compile_model(
            model, device, {"PERFORMANCE_HINT": "LATENCY", **compile_properties(device)}
        )

    def recognize(self, crops: Sequence[npt.NDArray[np.uint8]]) -> list[TextRead]:
        """Read one line of text from each BGR crop.

        Crops run one at a time (a batch dimension would multiply the input shapes the
        plugin keeps state for, and saves nothing measurable on CPU).
        """
        reads = []
        for crop in crops:
            batch, width = self.preprocess(crop)
            probs = self._compiled(batch)[0][0]
            reads.append(ctc_decode(probs[: width // 8 + 1], self.classes))
        return reads

    def preprocess(self, crop: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.float32], int]:
        """Resize to height 48 keeping aspect (squeezed to the model width if wider), scale
        to [-1, 1], pad right with 0; a batch of one, and the width the text takes."""
        import cv2
        import numpy as np

        width = _rec_width(crop)
        if self.width is not None:
            width, padded = min(width, self.width), self.width
        else:
            padded = -(-width // _REC_STEP) * _REC_STEP
        batch = np.zeros((1, 3, REC_HEIGHT, padded), dtype=np.float32)
        img = cv2.resize(crop, (width, REC_HEIGHT), interpolation=cv2.INTER_LINEAR)
        batch[0, :, :, :width] = img.transpose(2, 0, 1) / 127.5 - 1.0
        return batch, width


def class_ids(classes: Sequence[str], alphabet: str) -> list[int]:
    """Indices of the alphabet's characters among the classes (unknown ones skipped)."""
    index = {c: i for i, c in enumerate(classes) if i > 0}
    missing = [c for c in alphabet if c not in index]
    if missing:
        log.info("characters missing from the OCR dictionary: %s", missing)
    return [index[c] for c in alphabet if c in index]


def restrict_classes(model: ov.Model, keep: Sequence[int]) -> ov.Model:
    """Cut a PP-OCR recognition head (MatMul, Add, Softmax) down to the ``keep`` classes.

    The softmax over a subset of logits equals the full softmax renormalised over that
    subset, so decoding is unchanged for the kept classes; the head gets far cheaper
    (18,710 classes down to a few dozen).

    Raises:
        ValueError: The model does not end in MatMul -> Add -> Softmax.
    """
    import numpy as np
    import openvino as ov
    import openvino.opset13 as ops

    node = model.get_results()[0].input_value(0).get_node()
    if node.get_type_name() != "Softmax":
        raise ValueError(f"expected a Softmax output, found {node.get_type_name()}")
    chain = node.input_value(0).get_node()
    while chain.get_type_name() == "Identity":
        chain = chain.input_value(0).get_node()
    matmul = chain.input_value(0).get_node()
    if chain.get_type_name() != "Add" or matmul.get_type_name() != "MatMul":
        raise ValueError("expected the recognition head to be MatMul -> Add -> Softmax")
    idx = np.asarray(keep, dtype=np.int64)
    weights = matmul.input_value(1).get_node().get_data()[:, idx]
    bias = chain.input_value(1).get_node().get_data()[idx]
    logits = ops.add(
        ops.matmul(
            matmul.input_value(0), ops.constant(np.ascontiguousarray(weights)), False, False
        ),
        ops.constant(np.ascontiguousarray(bias)),
    )
    return ov.Model([ops.softmax(logits, -1).output(0)], model.get_parameters(), "rec_plate")


def _rec_width(crop: npt.NDArray[np.uint8]) -> int:
    h, w = crop.shape[:2]
    steps = math.ceil(REC_HEIGHT * int(w) / max(int(h), 1) / 8)
    return max(REC_HEIGHT, min(steps * 8, _REC_MAX_WIDTH))


@dataclass(frozen=True, slots=True)
class TextBox:
    """A detected text region: four corners (tl, tr, br, bl) in image pixels, and a score."""

    corners: npt.NDArray[np.float32]
    score: float


class TextDetector:
    """PP-OCR DB text detection."""

    def __init__(
        self,
        model_path: Path,
        core: ov.Core | None = None,
        device: str = "CPU",
        *,
        static_shapes: Sequence[tuple[int, int]] = (),
        threshold: float = 0.3,
        box_threshold: float = 0.5,
        unclip_ratio: float = 1.6,
    ) -> None:
        """Prepare the model; it is compiled per shape family on first use.

        Args:
            model_path: The ``PP-OCR*_det*.onnx`` (or ``.xml``) file.
            core: An OpenVINO core to share; a new one if None.
            device: OpenVINO device name.
            static_shapes: ``(height, width)`` input shapes (multiples of 64) that get a
                static copy of the model, about 15 % faster than the dynamic model and
                about 45 MB each; use it for the one shape a video pipeline runs on.
            threshold: Probability above which a map pixel counts as text.
            box_threshold: Minimum mean probability inside a box to keep it.
            unclip_ratio: How far to grow the shrunk text kernels back (DB's ``r``).
        """
        import openvino as ov

        if not model_path.is_file():
            raise FileNotFoundError(f"detection model not found: {model_path}")
        self._core = core or ov.Core()
        self._device = device
        self._path = model_path
        self._static_shapes = frozenset(static_shapes)
        self._compiled: dict[tuple[int, int] | None, ov.CompiledModel] = {}
        self.threshold = threshold
        self.box_threshold = box_threshold
        self.unclip_ratio = unclip_ratio

    def detect(
        self,
        image: npt.NDArray[np.uint8],
        max_side: int = 640,
        min_side: int | None = None,
        *,
        upscale: float = 1.0,
    ) -> list[TextBox]:
        """Find text lines in a BGR image.

        Args:
            image: BGR image.
            max_side: Scale the image down so its longer side is at most this.
            min_side: Instead, scale it (up or down) so its shorter side is at least
                this, as PaddleOCR does by default (736).
            upscale: How far the image may be scaled *up* towards ``max_side`` (a
                factor; 1 never enlarges). DB misses some text at the photo's own scale
                and finds it enlarged.
        """
        import cv2
        import numpy as np

        h, w = image.shape[:2]
        if min_side is not None:
            scale = max(1.0, min_side / min(h, w))
            rh, rw = (max(32, round(h * scale / 32) * 32), max(32, round(w * scale / 32) * 32))
            img = cv2.resize(image, (rw, rh), interpolation=cv2.INTER_AREA)
            x = (img.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
            return self.postprocess(self._model(None)(x)[0][0, 0], (w / rw, h / rh))
        scale = min(max(1.0, upscale), max_side / max(h, w))
        rh, rw = max(32, round(h * scale)), max(32, round(w * scale))
        static = self._static_fit(rh, rw)
        if static is not None:
            ph, pw = static
            fit = min(1.0, ph / rh, pw / rw)
            rh, rw = min(round(rh * fit), ph), min(round(rw * fit), pw)
        else:
            ph, pw = -(-rh // _PAD) * _PAD, -(-rw // _PAD) * _PAD
        shrink = rw <= w
        img = cv2.resize(
            image, (rw, rh), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
        )
        x = np.zeros((1, 3, ph, pw), dtype=np.float32)
        x[0, :, :rh, :rw] = (img.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)
        prob = self._model(static)(x)[0][0, 0, :rh, :rw]
        return self.postprocess(prob, (w / rw, h / rh))

    def _static_fit(self, height: int, width: int) -> tuple[int, int] | None:
        """The smallest static shape an input of this size fits in, shrunk by at most
        ``_MAX_SHRINK`` (a search window rounded a pixel too tall still uses it)."""
        fits = [
            (sh, sw)
            for sh, sw in self._static_shapes
            if min(1.0, sh / height, sw / width) >= 1.0 - _MAX_SHRINK
        ]
        return min(fits, key=lambda s: s[0] * s[1]) if fits else None

    @property
    def compiled_shapes(self) -> list[tuple[int, int] | None]:
        """The models compiled so far: static input shapes, None for the dynamic one."""
        return list(self._compiled)

    def _model(self, shape: tuple[int, int] | None) -> ov.CompiledModel:
        """The static model for ``shape``, or the dynamic one for None; compiled once."""
        if shape not in self._compiled:
            model = self._core.read_model(str(self._path))
            compress_weights(model)
            if shape is not None:
                model.reshape([1, 3, *shape])
            log.debug("compiling text detection for %s", shape or "any shape")
            self._compiled[shape] = self._core.compile_model(
                model,
                self._device,
                {"PERFORMANCE_HINT": "LATENCY", **compile_properties(self._device)},
            )
        return self._compiled[shape]

    def postprocess(
        self, prob: npt.NDArray[np.float32], scale: tuple[float, float]
    ) -> list[TextBox]:
        """Turn a DB probability map into boxes in original-image pixels."""
        import cv2
        import numpy as np

        mask = (prob > self.threshold).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        boxes: list[TextBox] = []
        for contour in contours:
            (cx, cy), (rw, rh), angle = cv2.minAreaRect(contour)
            if min(rw, rh) < 3:
                continue
            score = _mean_inside(prob, contour)
            if score < self.box_threshold:
                continue
            grow = rw * rh * self.unclip_ratio / (2 * (rw + rh))
            rect = ((cx, cy), (rw + 2 * grow, rh + 2 * grow), angle)
            pts = np.asarray(cv2.boxPoints(rect), dtype=np.float32)
            boxes.append(TextBox(order_corners(pts * np.array(scale, np.float32)), score))
        return boxes


def _mean_inside(prob: npt.NDArray[np.float32], contour: npt.NDArray[Any]) -> float:
    import cv2
    import numpy as np

    x, y, w, h = cv2.boundingRect(contour)
    mask = np.zeros((h, w), dtype=np.uint8)
    cv2.fillPoly(mask, [contour - np.array([x, y])], 1)
    return float(cv2.mean(prob[y : y + h, x : x + w], mask)[0])


def order_corners(pts: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """Order four points as top-left, top-right, bottom-right, bottom-left."""
    import numpy as np

    by_x = pts[np.argsort(pts[:, 0])]
    left = by_x[:2][np.argsort(by_x[:2, 1])]
    right = by_x[2:][np.argsort(by_x[2:, 1])]
    return np.array([left[0], right[0], right[1], left[1]], dtype=np.float32)


def warp_quad(
    image: npt.NDArray[np.uint8],
    corners: npt.NDArray[np.float32],
    height: int = REC_HEIGHT,
    stretch: float = 1.0,
) -> npt.NDArray[np.uint8]:
    """Cut a quadrilateral out of an image and rectify it to ``height`` rows.

    ``stretch`` widens the result relative to the box's own aspect ratio.
    """
    import cv2
    import numpy as np

    tl, tr, br, bl = corners
    width = max(float(np.linalg.norm(tr - tl)), float(np.linalg.norm(br - bl)))
    tall = max(float(np.linalg.norm(bl - tl)), float(np.linalg.norm(br - tr)), 1.0)
    out_w = max(8, round(width * height * stretch / tall))
    dst = np.array([[0, 0], [out_w, 0], [out_w, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(corners.astype(np.float32), dst)
    out = cv2.warpPerspective(
        image, matrix, (out_w, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return np.asarray(out, dtype=np.uint8)
