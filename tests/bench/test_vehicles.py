"""`varta bench vehicles` on vehicles-street with the real detector and attribute model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from bench.vehicles import match, objects, same_type
from edge_agent.detect import MOTORCYCLE, VEHICLE, Detections
from edge_agent.type_calibrate import TypeCalibrator
from varta.cli import app

# Measured with `varta bench vehicles --dataset ../shared/data/vehicles-street --json`:
# type agreement 76.3 % with the whole box and no prior, 95.5 % with the type view and the
# truck prior; recall car 0.9755, motorcycle 0.872, truck 1.0, bus 1.0 (the detector).
# At FP32 on every processor (README, *Inference precision*): type agreement 95.1 %,
# motorcycle recall 0.8696 (360 of 414, one fewer than BF16 on an AMX box found).
MIN_TYPE_AGREEMENT = 0.93
MIN_RECALL = {"car": 0.975, "motorcycle": 0.865, "truck": 1.0, "bus": 1.0}
# Calibrated type confidence (`varta bench calibrate-types`, fitted on the train frames):
# expected calibration error 0.019 over all frames, 0.041 on the test frames (the model's
# own probability of the type: 0.127 there).
MAX_TYPE_ECE = 0.03
MAX_TYPE_ECE_TEST = 0.06


@pytest.mark.parametrize(
    ("label", "given", "agrees"),
    [("car", "car", True), ("car", "van", True), ("van", "car", True),
     ("car", "truck", False), ("bus", "truck", False), ("truck", "truck", True)],
)  # fmt: skip
def test_car_and_van_are_one_class(label, given, agrees):
    assert same_type(label, given) is agrees


def test_a_vehicle_boxed_twice_is_one_object_found_once():
    truth: list[tuple[str, list[float]]] = [
        ("bus", [0, 0, 100, 100]),
        ("truck", [1, 1, 100, 100]),
        ("car", [200, 0, 300, 80]),
    ]
    objs = objects(truth)
    assert [names for names, _ in objs] == [["bus", "truck"], ["car"]]
    found = Detections.from_arrays(
        [[2, 2, 98, 99], [205, 0, 300, 80], [0, 0, 100, 100]], [0.9, 0.8, 0.7],
        [VEHICLE, VEHICLE, MOTORCYCLE],
    )  # fmt: skip
    assert match(objs, found, VEHICLE) == [0, 1]
    assert match(objs, found, MOTORCYCLE) == [2, -1]


@pytest.mark.slow
def test_bench_vehicles_on_vehicles_street(model_store, shared_data):
    cmd = ["bench", "vehicles", "--dataset", str(shared_data / "vehicles-street")]
    result = CliRunner().invoke(app, [*cmd, "--models", str(model_store.root), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    assert out["images"] == 80 and out["typed_vehicles"] >= 220
    assert out["type_agreement"] >= MIN_TYPE_AGREEMENT, out
    for label, floor in MIN_RECALL.items():
        assert out[f"recall_{label}"] >= floor, (label, out)
    assert sum(out["confusion"]["car"].values()) == round(out["recall_car"] * 204)
    assert np.isclose(
        sum(sum(c.values()) for c in out["confusion"].values()), out["typed_vehicles"]
    )
    bands = out["type_reliability"]
    assert sum(b["vehicles"] for b in bands.values()) == out["typed_vehicles"]
    agreeing = sum(b["vehicles"] * b["agree"] for b in bands.values())
    assert agreeing == pytest.approx(out["type_agreement"] * out["typed_vehicles"], abs=1.0)
    # calibrated: confidence and agreement differ by little, also on the held-out frames
    assert out["type_ece"] <= MAX_TYPE_ECE and out["type_ece_test"] <= MAX_TYPE_ECE_TEST, out


@pytest.mark.slow
def test_type_calibration_beats_the_models_probability_on_held_out_frames(
    model_store, shared_data, tmp_path
):
    target = tmp_path / "type_calibration.json"
    cmd = ["bench", "calibrate-types", "--dataset", str(shared_data / "vehicles-street")]
    result = CliRunner().invoke(
        app, [*cmd, "--models", str(model_store.root), "--out", str(target), "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    assert out["train_vehicles"] + out["test_vehicles"] >= 220
    assert out["test_ece_calibrated"] < out["test_ece_model"] / 2, out
    assert out["test_brier_calibrated"] < out["test_brier_model"], out
    written = TypeCalibrator.load(target)
    assert (written.slope, written.offset) == pytest.approx((out["slope"], out["offset"]), abs=1e-3)
    shipped = TypeCalibrator.load()
    expected = (written.slope, written.offset)
    assert (shipped.slope, shipped.offset) == pytest.approx(expected, abs=0.05)
