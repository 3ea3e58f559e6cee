"""Plate reading on a synthetic set, broken down by how the plates were made.

``varta bench synth-eval --dataset DIR --by condition --by lines`` runs the same two
readers as ``varta bench plates`` (Varta's reader and the naive PP-OCR pipeline, see
:mod:`bench.plates`) over a set written by ``varta bench synth-plates`` and reports the
same figures for the whole set and for each value of each ``--by`` column of its
``ground_truth.csv`` (``condition``, ``lines``, ``blur``, ``layout``, ``scene``, ...), plus
``size`` (the plate's width in pixels in three bands) and ``dirty``.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bench.plates import (
    Box,
    Outcome,
    Sample,
    baseline_reader,
    load_samples,
    measure,
    summarise,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from bench.plates import ReadFn

_SIZES: Final = ((120.0, "<120px"), (200.0, "120-199px"), (float("inf"), ">=200px"))


def _size(row: dict[str, str]) -> str:
    width = float(row["plate_px"])
    return next(label for limit, label in _SIZES if width < limit)


def _dirty(row: dict[str, str]) -> str:
    return "dirty" if float(row["dirt"]) > 0 else "clean"


#: Columns computed from others, usable with ``--by``.
DERIVED: Final[dict[str, Callable[[dict[str, str]], str]]] = {"size": _size, "dirty": _dirty}


def _readers(models_dir: Path | None) -> tuple[ReadFn, ReadFn]:
    """Varta's reader on the whole image and the naive baseline, as bench.plates has them."""
    import openvino as ov

    from edge_agent.ocr import TextDetector, TextRecognizer
    from edge_agent.plate_reader import PPOCRPlateReader
    from models.store import ModelStore, default_models_dir

    store = ModelStore(models_dir or default_models_dir())
    det_path, rec_path = store.path("PP-OCRv6_det_small"), store.path("PP-OCRv6_rec_small")
    core = ov.Core()
    reader = PPOCRPlateReader.from_paths(det_path, rec_path, core=core)

    def ours(image: npt.NDArray[np.uint8]) -> tuple[str, Box | None, tuple[str, ...]]:
        found = reader.read(image)
        texts = tuple(p.text for p in found)
        return (found[0].text, found[0].box, texts) if found else ("", None, ())

    naive = baseline_reader(
        TextDetector(det_path, core), TextRecognizer(rec_path, core, alphabet=None)
    )
    return ours, naive


def _timed(fn: ReadFn, image: npt.NDArray[np.uint8]) -> Outcome:
    start = time.perf_counter()
    read, box, texts = fn(image)
    return Outcome(read, box, texts, (time.perf_counter() - start) * 1000)


def _figures(
    samples: Sequence[Sample], mine: Sequence[Outcome], base: Sequence[Outcome]
) -> dict[str, Any]:
    result: dict[str, Any] = {"images": len(samples), "reader": summarise(samples, mine)}
    if base:
        result["baseline"] = summarise(samples, base)
        result["speed_ratio"] = round(
            result["baseline"]["median_ms"] / max(result["reader"]["median_ms"], 1e-6), 2
        )
    return result


def run(
    dataset: Path,
    by: Sequence[str] = ("condition", "lines", "blur"),
    models_dir: Path | None = None,
    baseline: bool = True,
) -> dict[str, Any]:
    """Benchmark the readers on a synthetic set, overall and per value of each column.

    Args:
        dataset: A folder written by ``varta bench synth-plates``.
        by: Columns of its ``ground_truth.csv`` (or of :data:`DERIVED`) to break down by.
        models_dir: Model store root (default: ``$VARTA_MODELS``).
        baseline: Also run the naive PP-OCR pipeline (doubles the time).

    Raises:
        ValueError: A ``by`` column is neither in the CSV nor derived.
    """
    with (dataset / "ground_truth.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    known = set(rows[0]) if rows else set()
    unknown = [c for c in by if c not in known and c not in DERIVED]
    if unknown:
        raise ValueError(
            f"unknown --by column(s) {', '.join(unknown)}; expected one of "
            f"{', '.join(sorted(known | set(DERIVED)))}"
        )
    samples = load_samples(dataset)
    ours, naive = _readers(models_dir)
    mine, base = measure(samples, ours, naive if baseline else None)
    result: dict[str, Any] = {"dataset": dataset.name, **_figures(samples, mine, base)}
    result["by"] = {}
    for column in by:
        derive = DERIVED.get(column)
        groups: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            groups.setdefault(derive(row) if derive else row[column], []).append(i)
        result["by"][column] = {
            value: _figures(
                [samples[i] for i in idx],
                [mine[i] for i in idx],
                [base[i] for i in idx] if base else [],
            )
            for value, idx in sorted(groups.items())
        }
    return result
