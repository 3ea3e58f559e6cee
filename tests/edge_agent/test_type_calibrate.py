"""Vehicle-type confidence calibration: family probability, the logistic fit, the file."""

from __future__ import annotations

import math
import random

import pytest

from edge_agent.type_calibrate import (
    TypeCalibrator,
    family_probability,
    fit,
    load_default,
    logit,
)


def test_car_and_van_are_one_family_truck_and_bus_their_own() -> None:
    scores = {"car": 0.3, "bus": 0.1, "truck": 0.2, "van": 0.4}
    assert family_probability("van", scores) == pytest.approx(0.7)
    assert family_probability("car", scores) == pytest.approx(0.7)
    assert family_probability("truck", scores) == pytest.approx(0.2)
    assert family_probability("bus", scores) == pytest.approx(0.1)
    # a track's summed votes are normalised
    assert family_probability("truck", {k: 3 * v for k, v in scores.items()}) == pytest.approx(0.2)
    assert family_probability("car", {}) == 0.0


def test_the_identity_returns_the_family_probability() -> None:
    scores = {"car": 0.5, "bus": 0.0, "truck": 0.1, "van": 0.4}
    assert TypeCalibrator()("car", scores) == pytest.approx(0.9, abs=1e-4)


def test_fit_recovers_a_known_curve() -> None:
    rng = random.Random(3)
    slope, offset = 0.6, 0.9
    examples = []
    for _ in range(20_000):
        p = rng.uniform(0.3, 0.999)
        truth = 1 / (1 + math.exp(-(slope * logit(p) + offset)))
        examples.append((p, rng.random() < truth))
    got = fit(examples, ridge=0.0)
    assert got == pytest.approx((slope, offset), abs=0.08)


def test_few_errors_keep_the_curve_near_the_identity() -> None:
    # three wrong of 150, all confident: the ridge keeps the slope positive and moderate
    examples = [(0.97, True)] * 147 + [(0.95, False)] * 3
    slope, _ = fit(examples)
    assert 0.2 < slope < 1.5


def test_save_and_load_round_trip_and_the_shipped_file(tmp_path) -> None:
    path = tmp_path / "c.json"
    TypeCalibrator(0.5, 1.25, {"dataset": "x"}).save(path)
    back = TypeCalibrator.load(path)
    assert (back.slope, back.offset, back.provenance["dataset"]) == (0.5, 1.25, "x")
    shipped = load_default()
    assert shipped.provenance["dataset"] == "vehicles-street"
    # calibrated confidence rises with the family probability
    assert shipped.probability(0.5) < shipped.probability(0.8) < shipped.probability(0.99)
    path.write_text('{"schema": 99}', encoding="utf-8")
    with pytest.raises(ValueError, match="schema"):
        TypeCalibrator.load(path)
