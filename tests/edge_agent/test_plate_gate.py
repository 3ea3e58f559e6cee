"""Only plates are plates: the gate on reads, and false plate reads on real plate-less data."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from typer.testing import CliRunner

from edge_agent.plate_gate import generic_only_first, is_plate, one_per_place
from shared.plates import candidates
from shared.wire import Plate
from varta.cli import app


@pytest.mark.parametrize(
    ("text", "fmt", "confidence", "raw", "expected"),
    [
        ("AA1234BB", "ua_current", 0.9, "AA 1234 BB", True),
        ("RK708AI", "sk", 0.46, "RK708AI", True),
        ("2O10501", "cz", 0.33, "2014 0501", False),  # a date forced into a format
        ("KMBORAK", "sk_vanity", 0.5, "KM-BORAK", True),
        ("BARWOOD", "sk_vanity", 0.398, "BARWOOD", False),  # truck lettering
        ("YG9X2G", "eu_generic", 0.35, "YG9-X2G", True),
        ("CHEVROLET", "eu_generic", 0.4, "CHEVROLET", False),  # a badge
        ("SQUAD", "eu_generic", 0.4, "SQUAD", False),
        ("IPC", "eu_generic", 0.4, "IPC", False),  # on-screen text
        ("20180412150248", "eu_generic", 0.4, "2018-04-12 15:02:48", False),
        ("4639520", "eu_generic", 0.4, "4639520", True),  # US numeric plate
        ("2014061", "eu_generic", 0.4, "2014-06-1", False),  # a clock
        ("DPJ2", "eu_generic", 0.4, "DP J 2", False),  # too short for the fallback
        ("6MMD595", "eu_generic", 0.3, "6MMD595", False),  # generic needs OCR certainty
    ],
)
def test_is_plate(text, fmt, confidence, raw, expected):
    assert is_plate(text, fmt, confidence, raw) is expected


def plate(text: str, confidence: float, box: tuple[float, float, float, float]) -> Plate:
    return Plate(text=text, raw=text, confidence=confidence, box=box, format="eu_generic")


def test_a_number_is_not_made_military_by_a_look_alike():
    """``219906`` on a sign fits the military layout only with its 0 taken for an O: the
    candidate search may rank that first, but never high enough to be a plate."""
    alts = [[(c, 0.99)] for c in "219906"]
    alts[4] = [("0", 0.99), ("O", 0.004), ("Q", 0.002)]
    assert not any(is_plate(c.text, c.format, c.confidence, "219906") for c in candidates(alts))


def test_one_plate_per_place():
    reads = [
        (0.5, plate("KA000EK", 0.5, (10, 10, 60, 30))),
        (0.9, plate("KA6003EK", 0.9, (0, 8, 100, 32))),
        (0.6, plate("AT1234BC", 0.6, (200, 10, 300, 30))),
    ]
    assert [p.text for _, p in one_per_place(reads)] == ["KA6003EK", "AT1234BC"]


def test_a_generic_read_beside_the_best_is_dropped():
    reads = [
        (0.35, plate("14MILE", 0.39, (0, 0, 50, 20))),
        (0.8, msgspec.structs.replace(plate("WA56660", 0.85, (100, 0, 200, 20)), format="pl")),
        (
            0.5,
            msgspec.structs.replace(plate("AT1234BC", 0.6, (300, 0, 400, 20)), format="ua_current"),
        ),
    ]
    assert [p.text for _, p in generic_only_first(reads)] == ["WA56660", "AT1234BC"]
    alone = [(0.35, plate("6MMD595", 0.39, (0, 0, 50, 20)))]
    assert generic_only_first(alone) == alone


def bench(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["bench", "plates", *args, "--json"])
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.output.strip().splitlines()[-1])
    return out


@pytest.mark.slow
def test_no_plate_read_on_the_demo_road_video(model_store, shared_data):
    video = shared_data / "traffic-video" / "videos" / "vehiclecounting__input_video.mp4"
    out = bench("--video", str(video), "--models", str(model_store.root))
    found = out["videos"][video.name]
    # Before the gate: one sighting read the truck lettering BARWOOD as a plate.
    assert found["sightings"] >= 15
    assert found["false_plate_reads"] == 0, found["reads"]
