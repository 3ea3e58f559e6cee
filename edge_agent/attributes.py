"""Vehicle type and colour with vehicle-attributes-recognition-barrier-0039.

The model classifies a 72x72 vehicle crop into a type (car, bus, truck, van) and a colour
(white, gray, yellow, red, green, blue, black), each as a softmax. All vehicle crops of a
frame go through inferences of a fixed batch (``VEHICLES_PER_BATCH`` vehicles, padded):
with a dynamic batch the CPU plugin kept 1.7 MB more for every batch size it met, 52 MB
at 16 images against 26 MB fixed. Motorcycles are not sent: the model never
saw two-wheelers, so they keep the detector's ``motorcycle`` type and no colour.

The type is read from the box without its outer 10 % left and right and 15 % top and
bottom (:func:`type_view`), the colour from its body panel (the box without its outer
15 % left and right, its top 15 % and its bottom 40 %). The model was trained on
close front views at a barrier; on street views the tail lights, plate and road in a full
crop pull its colour towards red and white (a black SUV seen from behind reads "red"
0.99). On 35 vehicles-street crops whose colour we checked by eye, the body panel gave
29 right against 18 for the full crop. Both crops of every vehicle share one batch.

Type on street views (``varta bench vehicles --dataset ../shared/data/vehicles-street``,
224 four-wheeled vehicles found, car and van one class): the whole box gave 76.3 %
agreement, with 47 of 199 cars typed ``truck`` (rear views of SUVs and hatchbacks). The
detector's boxes frame more road and background than the close barrier views the model
learnt from; the tighter type view gives 87.5 %. The model is also over-sure of
``truck`` on these views, so its truck probability is weighted down (:data:`TYPE_PRIOR`,
the scores renormalised): 95.5 %. Both were chosen on the set's ``train`` frames (98.0 %
of 149) and give 90.7 % of 75 on its ``test`` frames, most of which show the same few
cars. The pickup trucks of the set score ``truck`` at 0.99 or more and stay trucks; a
real truck the model is unsure of may now be typed ``car``. Detector class (``vehicle``
for all four-wheelers) and box geometry did not separate cars from the set's (small)
trucks: box height over the height expected at the box's image row is 1.04 for cars
against 1.07 for trucks (median).

Known weaknesses (from the model card and our checks): silver / blue-grey reads as white;
yellow and bus are its weakest classes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from edge_agent.detect import MOTORCYCLE, Detections
from edge_agent.openvino_model import Image, InferenceConfig, OpenVINOModel, Outputs
from edge_agent.type_calibrate import TypeCalibrator, load_default

if TYPE_CHECKING:
    import openvino as ov

    from models.store import ModelStore

log = logging.getLogger(__name__)

MODEL_NAME = "vehicle-attributes-recognition-barrier-0039"
VEHICLE_TYPES: tuple[str, ...] = ("car", "bus", "truck", "van")
COLOURS: tuple[str, ...] = ("white", "gray", "yellow", "red", "green", "blue", "black")


@dataclass(frozen=True)
class VehicleAttributes:
    """Type and colour of one vehicle with the classifier's probabilities.

    ``colour`` is empty (confidence 0) when the model was not run, i.e. for motorcycles.
    ``type_scores`` / ``colour_scores`` are the full softmax over ``VEHICLE_TYPES`` /
    ``COLOURS`` (empty when the model was not run), for callers that want runner-ups.
    """

    type: str
    type_confidence: float
    colour: str = ""
    colour_confidence: float = 0.0
    type_scores: tuple[float, ...] = ()
    colour_scores: tuple[float, ...] = ()


VEHICLES_PER_BATCH = 4  # vehicles per inference: a frame rarely has more to classify
#: Weight of each type's probability (``VEHICLE_TYPES`` order) before renormalising:
#: on street views the model calls rear views of cars ``truck`` (module docstring).
TYPE_PRIOR: tuple[float, ...] = (1.0, 1.0, 0.1, 1.0)


class AttributesModel(OpenVINOModel[list[VehicleAttributes]]):
    """The raw 0039 network over a batch of crops."""

    def preprocess(self, image: Image) -> tuple[Image, int]:
        """``image`` is a batch [2N, 72, 72, 3]: N type views, then their N body panels."""
        return image, len(image) // 2

    def postprocess(self, outputs: Outputs, meta: int) -> list[VehicleAttributes]:
        """Type from the type views (weighted by ``TYPE_PRIOR``), colour from the body
        panels (arg-max of each softmax)."""
        types = outputs["type"].reshape(-1, len(VEHICLE_TYPES))[:meta] * TYPE_PRIOR
        types /= types.sum(axis=1, keepdims=True)
        colours = outputs["color"].reshape(-1, len(COLOURS))[meta:]
        t_idx, c_idx = types.argmax(axis=1), colours.argmax(axis=1)
        return [
            VehicleAttributes(
                VEHICLE_TYPES[t],
                float(types[i, t]),
                COLOURS[c],
                float(colours[i, c]),
                tuple(types[i].tolist()),
                tuple(colours[i].tolist()),
            )
            for i, (t, c) in enumerate(zip(t_idx, c_idx, strict=True))
        ]


class VehicleAttributeClassifier:
    """Type and colour of detected vehicles.

    Args:
        store: Model store holding vehicle-attributes-recognition-barrier-0039.
        precision: Model precision; ``None`` uses the manifest default (FP16).
        config: Device, threads and streams.
        core: A shared ``openvino.Core``; one is created when ``None``.
        calibrator: Maps the model's type probabilities to P(type right)
            (:mod:`edge_agent.type_calibrate`); the shipped calibration when ``None``.
    """

    def __init__(
        self,
        store: ModelStore,
        precision: str | None = None,
        config: InferenceConfig | None = None,
        core: ov.Core | None = None,
        calibrator: TypeCalibrator | None = None,
    ) -> None:
        self.model = AttributesModel(
            store.path(MODEL_NAME, precision), config, core, batch=2 * VEHICLES_PER_BATCH
        )
        self.calibrator = calibrator if calibrator is not None else load_default()

    def type_confidence(self, kind: str, scores: Mapping[str, float]) -> float:
        """The calibrated confidence of ``kind`` given the model's per-type ``scores``
        (one crop's or a track's mean)."""
        return self.calibrator(kind, scores)

    def classify_crops(self, crops: Sequence[Image]) -> list[VehicleAttributes]:
        """Type and colour of each vehicle crop (uint8 HWC BGR, any size), in batches of
        ``VEHICLES_PER_BATCH`` (the last one padded with blank crops). The type confidence
        is calibrated; ``type_scores`` keep the model's probabilities."""
        width, height = self.model.input_size
        blank = np.zeros((height, width, 3), dtype=np.uint8)
        out: list[VehicleAttributes] = []
        for start in range(0, len(crops), VEHICLES_PER_BATCH):
            part = list(crops[start : start + VEHICLES_PER_BATCH])
            pad = [blank] * (VEHICLES_PER_BATCH - len(part))
            views = [type_view(image) for image in part]
            panels = [body_panel(image) for image in part]
            batch = stack_crops([*views, *pad, *panels, *pad], self.model.input_size)
            out += [
                replace(a, type_confidence=self.type_confidence(a.type, self._scores(a)))
                for a in self.model(batch)[: len(part)]
            ]
        return out

    @staticmethod
    def _scores(attributes: VehicleAttributes) -> dict[str, float]:
        return dict(zip(VEHICLE_TYPES, attributes.type_scores, strict=True))

    def classify(self, frame: Image, detections: Detections) -> list[VehicleAttributes]:
        """Attributes of every detection of a frame, in detection order.

        Motorcycles get type ``motorcycle`` with the detector's confidence and no colour;
        all other boxes are cropped and classified in one batch.
        """
        is_moto = detections.class_id == MOTORCYCLE
        vehicles = np.flatnonzero(~is_moto)
        crops = [crop(frame, detections.xyxy[i]) for i in vehicles]
        classified = iter(self.classify_crops(crops))
        return [
            VehicleAttributes("motorcycle", float(detections.confidence[i]))
            if is_moto[i]
            else next(classified)
            for i in range(len(detections))
        ]


def crop(frame: Image, box: NDArray[np.float32] | Sequence[float]) -> Image:
    """The pixels of ``box`` (x1, y1, x2, y2), clipped to the frame and at least 1x1."""
    height, width = frame.shape[:2]
    x1, y1, x2, y2 = (round(float(v)) for v in box)
    x1, y1 = min(max(x1, 0), width - 1), min(max(y1, 0), height - 1)
    x2, y2 = min(max(x2, x1 + 1), width), min(max(y2, y1 + 1), height)
    return frame[y1:y2, x1:x2]


def type_view(image: Image) -> Image:
    """The part of a vehicle crop the type is read from (see the module docstring)."""
    height, width = image.shape[:2]
    top, left = int(0.15 * height), int(0.1 * width)
    bottom, right = max(height - top, top + 1), max(width - left, left + 1)
    return image[top:bottom, left:right]


def body_panel(image: Image) -> Image:
    """The body of a vehicle crop: no lights, plate or road (see the module docstring)."""
    height, width = image.shape[:2]
    top, bottom = int(0.15 * height), max(int(0.6 * height), int(0.15 * height) + 1)
    left, right = int(0.15 * width), max(int(0.85 * width), int(0.15 * width) + 1)
    return image[top:bottom, left:right]


def stack_crops(crops: Sequence[Image], size: tuple[int, int]) -> Image:
    """Resize crops to ``size`` (width, height) and stack them into [N, H, W, C]."""
    import cv2

    batch = np.empty((len(crops), size[1], size[0], 3), dtype=np.uint8)
    for i, image in enumerate(crops):
        batch[i] = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    return batch
