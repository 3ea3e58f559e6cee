"""Plate reads through the whole edge pipeline, for ``varta bench plates``.

``--pipeline`` reads photos as ``varta edge detect`` does (vehicle detection, a plate
search in every vehicle box and in the whole photo, every plate found a sighting), and
``--video`` runs a video through the tracking pipeline and counts the sightings that carry
a plate: the shared road videos show no legible plate, so every plate there is false.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.plates import Read, ReadFn

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from edge_agent.pipeline import Pipeline


def _pipeline(models_dir: Path | None) -> Pipeline:
    """The pipeline ``varta edge detect`` builds."""
    from edge_agent.config import PipelineConfig, PlateStageConfig
    from edge_agent.pipeline import build_pipeline
    from models.store import ModelStore, default_models_dir

    store = ModelStore(models_dir or default_models_dir())
    return build_pipeline(store, PipelineConfig(plates=PlateStageConfig(fallback_side=640)))


def pipeline_reader(models_dir: Path | None = None) -> ReadFn:
    """The plates of the sightings the edge pipeline makes of a photo, most confident
    first."""
    from edge_agent.capture import CapturedFrame

    pipeline = _pipeline(models_dir)

    def read(image: npt.NDArray[np.uint8]) -> tuple[list[Read], tuple[str, ...]]:
        emitted = pipeline.process_stills([CapturedFrame("bench", 0, 0.0, image, "bench")])
        found = [
            Read(e.sighting.plate.text, e.sighting.plate.box, e.sighting.plate.confidence)
            for e in emitted
            if e.sighting.plate is not None
        ]
        found.sort(key=lambda r: -r.confidence)
        return found, tuple(r.text for r in found)

    return read


def video_reads(videos: Sequence[Path], models_dir: Path | None = None) -> dict[str, Any]:
    """Sightings and plate reads of each video through the tracking pipeline."""
    from edge_agent.run import detect_paths

    pipeline = _pipeline(models_dir)
    errors: list[str] = []
    result: dict[str, Any] = {}
    for video in videos:
        emitted = list(detect_paths(pipeline, [video], errors.append))
        plates = [e.sighting.plate for e in emitted if e.sighting.plate is not None]
        result[video.name] = {
            "sightings": len(emitted),
            "false_plate_reads": len(plates),
            "reads": [{"text": p.text, "confidence": p.confidence} for p in plates],
        }
    if errors:
        raise FileNotFoundError("; ".join(errors))
    return result
