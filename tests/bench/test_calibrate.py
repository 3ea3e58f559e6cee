"""The calibration fit: threshold choice, interval bounds, and a fit that round-trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.calibrate import (
    Example,
    choose_threshold,
    fit,
    load_examples,
    run,
    save_examples,
    wilson_lower,
)
from edge_agent.plate_calibrate import PlateCalibrator
from shared.wire import Plate, PlateCandidate


@pytest.mark.parametrize(
    ("correct", "n", "expected"),
    [(0, 0, 0.0), (149, 149, 0.9820), (600, 600, 0.9955), (99, 100, 0.9564)],
)
def test_wilson_lower_bound(correct: int, n: int, expected: float) -> None:
    assert wilson_lower(correct, n) == pytest.approx(expected, abs=5e-4)


@pytest.mark.parametrize(
    ("prob", "correct", "expected"),
    [
        # 60 right at 0.995, then wrong ones at 0.9: the threshold stays above them
        ([0.995] * 60 + [0.9] * 5, [1] * 60 + [0] * 5, 0.99),
        # too few reads above any threshold to choose one
        ([0.995] * 10, [1] * 10, 1.0),
        # everything right: the lowest confidence seen
        ([0.5] * 30 + [0.999] * 30, [1] * 60, 0.5),
        # a wrong read at the top stops the search: 1 wrong in 60 misses 99.5%
        ([0.999] + [0.98] * 59, [0] + [1] * 59, 1.0),
    ],
)
def test_choose_threshold(prob: list[float], correct: list[int], expected: float) -> None:
    assert choose_threshold(np.array(prob), np.array(correct, dtype=float)) == expected


def _example(i: int, conf: float, ok: bool) -> Example:
    plate = Plate(
        text="AA1234BB",
        raw="AA 1234 BB",
        confidence=conf,
        candidates=[PlateCandidate("AA1234BB", conf), PlateCandidate("AA1234B8", conf / 3)],
        char_confidences=[min(conf + 0.05, 1.0)] * 8,
        format="ua_current",
        box=(0.0, 0.0, 100.0, 25.0),
    )
    return Example("made-up", f"{i}.jpg", plate, ok)


def _examples() -> list[Example]:
    # confident reads right, unsure ones wrong half the time
    return [_example(i, 0.97, True) for i in range(300)] + [
        _example(300 + i, 0.5, i % 2 == 0) for i in range(100)
    ]


def test_fit_separates_confident_from_unsure_reads() -> None:
    calibrator = fit(_examples(), {"datasets": "made-up"})
    sure = calibrator.apply(_example(0, 0.97, True).plate).confidence
    unsure = calibrator.apply(_example(0, 0.5, True).plate).confidence
    assert sure > 0.97 and 0.35 < unsure < 0.65


def test_run_fits_from_a_cache_and_writes_a_loadable_file(tmp_path: Path) -> None:
    cache, out = tmp_path / "reads.jsonl", tmp_path / "cal.json"
    save_examples(_examples(), cache)
    assert len(load_examples(cache)) == 400
    result = run([], cache=cache, out=out)
    loaded = PlateCalibrator.load(out)
    assert loaded.alert_threshold == result["alert_threshold"]
    counts = loaded.provenance["datasets"]["made-up"]
    assert counts["fit"]["reads"] + counts["test"]["reads"] == 400
    assert loaded.provenance["held_out"]["reads"] == counts["test"]["reads"]
