"""A small OpenVINO model wrapper: preprocess -> infer -> postprocess (model_api style).

The wrapper reads the input name, shape and layout from the model and bakes the
conversion from an OpenCV image (uint8, HWC, BGR) into the graph with OpenVINO's
``PrePostProcessor``: the element type conversion, the HWC -> CHW transpose and, when
``resize_in_graph`` is set, the resize. Python then hands OpenVINO a view of the image with
a batch axis and makes no float copy. Subclasses implement ``preprocess`` (crop, resize or
letterbox in numpy/OpenCV and return whatever ``postprocess`` needs to map results back)
and ``postprocess`` (raw output arrays -> a typed result).

``__call__`` runs one image synchronously; ``infer_many`` keeps several requests in flight
with an ``AsyncInferQueue`` so a 2-stream compiled model uses both cores; ``start`` and
``finish`` overlap several models on one frame.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import openvino as ov

log = logging.getLogger(__name__)

ResultT = TypeVar("ResultT")
Image = NDArray[np.uint8]
Outputs = dict[str, NDArray[Any]]

# Every model runs at FP32 on the CPU unless configured otherwise. The CPU plugin's default
# is BF16 wherever the processor has BF16 instructions, and BF16 results differ between
# processor families (AMX against AVX512-BF16): a plate read at 0.99 on one box came out
# as another text on the next, and calibrations fitted on one no longer held on the
# other. FP32 gives the same reads and confidences on every x86 box.
DEFAULT_PRECISION: Final = "f32"


def compile_properties(device: str, precision: str = DEFAULT_PRECISION) -> dict[str, Any]:
    """The OpenVINO properties every model of Varta is compiled with on ``device``.

    ``precision`` is the CPU's ``INFERENCE_PRECISION_HINT`` (``f32``, ``bf16``, ``f16``);
    ``auto`` leaves the plugin's choice. Other devices keep their own defaults.
    """
    if device.upper().startswith("CPU") and precision != "auto":
        return {"INFERENCE_PRECISION_HINT": precision}
    return {}


class InferenceConfig(BaseModel):
    """How one model is compiled and run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: str = Field(default="CPU", description="OpenVINO device name, e.g. CPU or GPU.")
    threads: int = Field(
        default=0,
        ge=0,
        description="CPU inference threads (INFERENCE_NUM_THREADS); 0 lets OpenVINO pick.",
    )
    streams: int = Field(
        default=1,
        ge=1,
        description="Inference streams: 1 gives the lowest latency per frame, 2 the highest "
        "throughput on a 2-core box when frames are submitted with infer_many.",
    )
    precision: Literal["f32", "bf16", "f16", "auto"] = Field(
        default=DEFAULT_PRECISION,
        description="CPU inference precision (INFERENCE_PRECISION_HINT). f32 gives the "
        "same reads and confidences on every processor; bf16 is faster where the CPU has "
        "BF16 instructions but its results differ between processor families, so the "
        "shipped calibrations no longer hold; auto leaves OpenVINO's choice.",
    )
    jobs: int = Field(
        default=0,
        ge=0,
        description="Requests kept in flight by infer_many; 0 uses the compiled model's "
        "optimal number.",
    )


def model_layout(node: ov.Output, fallback_channels: int = 3) -> str:
    """The layout of an input as a string such as ``NCHW``, read from the model.

    Models without layout metadata get one guessed from the shape: a 4-d input whose
    second dimension equals ``fallback_channels`` is ``NCHW``, else ``NHWC``.
    """
    import openvino as ov

    layout = ov.layout_helpers.get_layout(node)
    if not layout.empty:
        return str(layout.to_string()).strip("[]").replace(",", "")
    shape = node.get_partial_shape()
    channels = shape[1]
    if channels.is_static and channels.get_length() == fallback_channels:
        return "NCHW"
    return "NHWC"


class OpenVINOModel(ABC, Generic[ResultT]):
    """Base of every OpenVINO-backed model: one input image, typed result.

    Args:
        model_path: ``.xml`` or ``.onnx`` file (from ``ModelStore.path``).
        config: Device, threads, streams.
        core: A shared ``openvino.Core``; one is created when ``None``.
        resize_in_graph: Let OpenVINO resize any input size to the model size (linear).
            When false the caller's ``preprocess`` must resize.
        batch: Fix the batch dimension at this size so ``preprocess`` may return
            [batch, H, W, C] (the caller pads). Not a dynamic batch: the CPU plugin
            keeps state for every batch size it meets (1.7 MB each for 0039).
        rgb_model: The network expects RGB; the BGR -> RGB swap is baked into the graph.
        mean_scale: ``(mean, scale)`` baked into the graph as ``(x - mean) / scale`` for
            networks that expect normalised input (PaddleOCR: ``(127.5, 127.5)``).

    One instance owns one synchronous infer request: call ``__call__``/``start`` from one
    thread at a time. ``infer_many`` makes its own requests.
    """

    def __init__(
        self,
        model_path: Path,
        config: InferenceConfig | None = None,
        core: ov.Core | None = None,
        *,
        resize_in_graph: bool = False,
        batch: int | None = None,
        rgb_model: bool = False,
        mean_scale: tuple[float, float] | None = None,
    ) -> None:
        import openvino as ov

        self.config = config if config is not None else InferenceConfig()
        self.core = core if core is not None else ov.Core()
        self.model_path = model_path
        model = self.core.read_model(model_path)
        if len(model.inputs) != 1:
            raise ValueError(f"{model_path} has {len(model.inputs)} inputs; expected 1 image")
        node = model.input(0)
        self.input_name = node.get_any_name()
        self.layout = model_layout(node)
        shape = node.get_partial_shape()
        h_index, w_index = self.layout.index("H"), self.layout.index("W")
        self.input_size = (  # (width, height)
            shape[w_index].get_length() if shape[w_index].is_static else -1,
            shape[h_index].get_length() if shape[h_index].is_static else -1,
        )
        self.output_names = [out.get_any_name() for out in model.outputs]
        if batch is not None:
            batched = ov.PartialShape(shape)
            batched[self.layout.index("N")] = ov.Dimension(batch)
            model.reshape({self.input_name: batched})
        model = self._bake_preprocessing(model, resize_in_graph, rgb_model, mean_scale)
        self.compiled = self.core.compile_model(model, self.config.device, self._properties())
        self._request = self.compiled.create_infer_request()
        self._queue: ov.AsyncInferQueue | None = None
        log.info(
            "loaded %s: input %s %s %s, threads=%s streams=%s",
            model_path.name,
            self.input_name,
            self.layout,
            self.input_size,
            self.config.threads,
            self.config.streams,
        )

    def _properties(self) -> dict[str, Any]:
        props: dict[str, Any] = {
            "NUM_STREAMS": str(self.config.streams),
            **compile_properties(self.config.device, self.config.precision),
        }
        if self.config.device == "CPU" and self.config.threads:
            props["INFERENCE_NUM_THREADS"] = self.config.threads
        return props

    def _bake_preprocessing(
        self,
        model: ov.Model,
        resize_in_graph: bool,
        rgb_model: bool,
        mean_scale: tuple[float, float] | None,
    ) -> ov.Model:
        import openvino as ov
        from openvino.preprocess import ColorFormat, PrePostProcessor, ResizeAlgorithm

        ppp = PrePostProcessor(model)
        tensor = ppp.input().tensor()
        tensor.set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
        steps = ppp.input().preprocess()
        if resize_in_graph:
            tensor.set_spatial_dynamic_shape()
            steps.resize(ResizeAlgorithm.RESIZE_LINEAR)
        if rgb_model:
            tensor.set_color_format(ColorFormat.BGR)
            steps.convert_color(ColorFormat.RGB)
        if mean_scale is not None:
            steps.convert_element_type(ov.Type.f32).mean(mean_scale[0]).scale(mean_scale[1])
        ppp.input().model().set_layout(ov.Layout(self.layout))
        return ppp.build()

    @abstractmethod
    def preprocess(self, image: Image) -> tuple[Image, Any]:
        """Turn one image into the model's uint8 NHWC input plus metadata for postprocess."""

    @abstractmethod
    def postprocess(self, outputs: Outputs, meta: Any) -> ResultT:
        """Turn the raw outputs of one inference into the typed result."""

    def __call__(self, image: Image) -> ResultT:
        """Run one image synchronously."""
        tensor, meta = self.preprocess(image)
        self._request.infer({0: tensor})
        return self.postprocess(self._outputs(self._request), meta)

    def start(self, image: Image) -> Any:
        """Start one image on this model's own request; pair with ``finish``.

        Lets a caller overlap several models on one frame (start all, then finish all).
        """
        tensor, meta = self.preprocess(image)
        self._request.start_async({0: tensor})
        return meta

    def finish(self, meta: Any) -> ResultT:
        """Wait for the inference begun by ``start`` and return its result."""
        self._request.wait()
        return self.postprocess(self._outputs(self._request), meta)

    def infer_many(self, images: Sequence[Image]) -> list[ResultT]:
        """Run several images with requests in flight in parallel; results keep input order.

        The async queue is made on first use and kept: making and dropping one per call
        races with OpenVINO's callback threads and can abort the process. The callback
        only copies the outputs; postprocessing runs on the caller's thread.
        """
        from openvino import AsyncInferQueue

        if self._queue is None:
            self._queue = AsyncInferQueue(self.compiled, self.config.jobs)
            self._queue.set_callback(self._collect)
        raw: list[Outputs] = [{} for _ in images]
        metas: list[Any] = []
        for index, image in enumerate(images):
            tensor, meta = self.preprocess(image)
            metas.append(meta)
            self._queue.start_async({0: tensor}, (raw, index))
        self._queue.wait_all()
        return [self.postprocess(out, meta) for out, meta in zip(raw, metas, strict=True)]

    def _collect(self, request: ov.InferRequest, slot: tuple[list[Outputs], int]) -> None:
        results, index = slot
        results[index] = self._outputs(request)

    def _outputs(self, request: ov.InferRequest) -> Outputs:
        # Copy: the request's output buffers are reused by its next inference.
        return {
            name: np.array(request.get_output_tensor(i).data)
            for i, name in enumerate(self.output_names)
        }


def resize_batch(image: Image, size: tuple[int, int]) -> Image:
    """Resize ``image`` to ``size`` (width, height) bilinearly, as a batch of one.

    Bilinear is what the Open Model Zoo detectors were trained with: on vehicles-street it
    found more motorcycles than area averaging (0.87 vs 0.86 recall) at a 20th of the
    cost (0.13 ms vs 3.6 ms for 1080p -> 448x256). OpenCV's resize also beats the same
    resize baked into the graph (1080p: 14.9 vs 18.6 ms per detection on one thread).
    """
    import cv2

    resized = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_LINEAR), dtype=np.uint8)
    return resized[np.newaxis]
