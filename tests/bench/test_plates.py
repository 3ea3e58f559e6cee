"""`varta bench plates` figures: false plate reads, worst photos, plate-less sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.plates import Outcome, Read, Sample, is_false, load_samples, summarise, worst

PLATE = (100.0, 100.0, 200.0, 130.0)


@pytest.mark.parametrize(
    ("read", "label", "box", "false"),
    [
        (Read("AB123", (110, 105, 190, 125), 0.9), "AB123", PLATE, False),
        (Read("AB128", (110, 105, 190, 125), 0.9), "AB123", PLATE, False),  # a misread
        (Read("XYZ99", (110, 105, 190, 125), 0.9), "AB123", PLATE, False),  # on the plate
        (Read("GS300", (300, 100, 360, 120), 0.9), "AB123", PLATE, True),  # a badge
        (Read("AB124", (300, 100, 360, 120), 0.9), "AB123", PLATE, False),  # one edit
        (Read("GS300", None, 0.9), "AB123", None, True),
        (Read("AB123", (110, 105, 190, 125), 0.9), "", None, True),  # no legible plate
    ],
)
def test_false_plate_reads(read, label, box, false):
    assert is_false(read, Sample(Path("a.jpg"), label, box)) is false


def test_summary_and_worst():
    samples = [
        Sample(Path("good.jpg"), "AB123", PLATE),
        Sample(Path("badge.jpg"), "CD456", PLATE),
        Sample(Path("missed.jpg"), "EF789", PLATE),
        Sample(Path("street.jpg"), "", None),
    ]
    on_plate = (110.0, 105.0, 190.0, 125.0)
    outcomes = [
        Outcome([Read("AB123", on_plate, 0.95)], (), 10.0),
        Outcome([Read("CD456", on_plate, 0.85), Read("GS300", (0, 0, 50, 20), 0.35)], (), 10.0),
        Outcome([], (), 10.0),
        Outcome([Read("IPC12", (0, 0, 50, 20), 0.38)], (), 10.0),
    ]
    figures = summarise(samples, outcomes)
    assert figures["exact_rate"] == pytest.approx(2 / 3, abs=1e-4)  # labelled photos only
    assert figures["false_plate_reads"] == 2
    assert figures["false_plate_reads_per_image"] == 0.5
    assert figures["reliability"]["0.3-0.4"] == {"reads": 2, "correct": 0.0}
    assert figures["reliability"]["0.9-1.0"] == {"reads": 1, "correct": 1.0}
    listed = worst(samples, outcomes)
    assert [w["file"] for w in listed] == ["badge.jpg", "street.jpg", "missed.jpg"]
    assert listed[0]["false_reads"] == [{"text": "GS300", "confidence": 0.35}]
    assert listed[2] == {
        "file": "missed.jpg", "truth": "EF789", "read": "", "edits": 5, "false_reads": []
    }  # fmt: skip


def test_plate_less_sets(shared_data):
    street = load_samples(shared_data / "vehicles-street")
    assert len(street) == 80 and all(s.text == "" and s.box is None for s in street)
    frames = load_samples(shared_data / "traffic-video" / "frames")
    assert len(frames) == 64 and all(s.path.suffix == ".jpg" for s in frames)
