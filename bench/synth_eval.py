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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from bench.plates import figures, load_samples, measure, readers

_SIZES: Final = ((120.0, "<120px"), (200.0, "120-199px"), (float("inf"), ">=200px"))


def _size(row: dict[str, str]) -> str:
    width = float(row["plate_px"])
    return next(label for limit, label in _SIZES if width < limit)


def _dirty(row: dict[str, str]) -> str:
    return "dirty" if float(row["dirt"]) > 0 else "clean"


#: Columns computed from others, usable with ``--by``.
DERIVED: Final[dict[str, Callable[[dict[str, str]], str]]] = {"size": _size, "dirty": _dirty}


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
    ours, naive = readers(models_dir)
    mine, base = measure(samples, ours, naive if baseline else None)
    result: dict[str, Any] = {"dataset": dataset.name, **figures(samples, mine, base)}
    result["by"] = {}
    for column in by:
        derive = DERIVED.get(column)
        groups: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            groups.setdefault(derive(row) if derive else row[column], []).append(i)
        result["by"][column] = {
            value: figures(
                [samples[i] for i in idx],
                [mine[i] for i in idx],
                [base[i] for i in idx] if base else [],
            )
            for value, idx in sorted(groups.items())
        }
    return result
